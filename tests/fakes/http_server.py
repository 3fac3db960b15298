"""The HTTP server our fakes run on: threads per request and a listen backlog deep enough for
bursts (the stdlib default of 5 resets connections when tests send dozens at once)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class FakeHTTPServer(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
