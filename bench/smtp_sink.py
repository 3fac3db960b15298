"""An independent counting SMTP sink: where the chaos benchmark sees what a recipient would see.

Runs in its own process (``python -m bench.smtp_sink --port P --out FILE``), so no fault we inject
into notifier's processes can touch it, and answers every message the way a relay does: ``250``
after DATA, which is the moment the provider has accepted it. Before answering it appends one
line to ``FILE``, flushed at once::

    <unix time>\t<X-Notifier-Notification-Id>\t<Message-ID>

Nothing of notifier reads that file; the benchmark reads it at the end (:func:`read_sends`) and
compares it with the ids the API returned, so a message sent twice is counted even when our own
``delivery_events`` never recorded the second send. The server is the SMTP fake of the test suite
(``tests/fakes/smtp_server.py``: aiosmtpd over real SMTP); this module only changes what it does
with an accepted message, and can hold each DATA ``--latency-ms`` to act like a real relay.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

NOTIFICATION_HEADER = "X-Notifier-Notification-Id"  # providers/email/headers.py


@dataclass(frozen=True)
class Send:
    at: float
    notification_id: str
    message_id: str


@dataclass
class SinkCount:
    """What the sink saw, per notification id."""

    sends: list[Send]
    by_notification: dict[str, list[Send]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for send in self.sends:
            self.by_notification.setdefault(send.notification_id, []).append(send)

    def first_seen(self) -> dict[str, float]:
        return {nid: sends[0].at for nid, sends in self.by_notification.items()}

    def duplicated(self) -> dict[str, int]:
        """Notification id -> how many times it arrived, for those that arrived more than once."""
        return {nid: len(s) for nid, s in self.by_notification.items() if len(s) > 1}

    def duplicates_with_same_message_id(self) -> int:
        """Duplicated notifications whose copies all carried one Message-ID (a receiver can
        de-duplicate)."""
        return sum(
            1
            for s in self.by_notification.values()
            if len(s) > 1 and len({x.message_id for x in s}) == 1
        )


def read_sends(path: Path) -> SinkCount:
    sends = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3:  # a line cut short by a kill of the sink would be ignored
                sends.append(Send(float(parts[0]), parts[1], parts[2]))
    sends.sort(key=lambda s: s.at)
    return SinkCount(sends)


def serve(port: int, out: Path, latency_ms: float) -> None:
    from tests.fakes.smtp_server import FakeSmtpServer

    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lock = threading.Lock()

    class CountingSink(FakeSmtpServer):
        def record(self, server, session, envelope) -> None:
            headers = parser.parsebytes(bytes(envelope.original_content or b""))
            notification = headers.get(NOTIFICATION_HEADER, "-")
            line = f"{time.time():.6f}\t{notification}\t{headers.get('Message-ID', '-')}\n"
            with lock:
                os.write(
                    descriptor, line.encode()
                )  # one O_APPEND write per message: never interleaved

    sink = CountingSink()
    sink.port = port
    sink.delay_data(latency_ms / 1000)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with sink:
        print(f"smtp sink on 127.0.0.1:{port}, writing {out}", flush=True)
        stop.wait()
    os.close(descriptor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    serve(args.port, args.out, args.latency_ms)


if __name__ == "__main__":
    main()
