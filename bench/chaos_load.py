"""The load of the chaos benchmark: a client that posts like a careful caller would.

``n`` single ``POST /v1/notifications`` at ``rate`` per second from ``clients`` threads, each with
its own ``Idempotency-Key``, retried (same key, same body) on a connection error, a 429 or a 5xx
until it is accepted: a request whose answer was lost when the API died is replayed and returns
the original id, so the ids collected here are exactly what was accepted, once each. The time of
each acceptance is kept for the recovery and stall figures; every failed try is counted by cause
(``connect``, ``500``, ``503``...), because an API that answers 500 under a fault is a finding.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from queue import Empty, SimpleQueue

import httpx


class Load:
    def __init__(
        self,
        base_url: str,
        key: str,
        n: int,
        rate: float,
        clients: int = 4,
        give_up_after: float = 180.0,
    ) -> None:
        self.base_url, self.key, self.n, self.rate, self.clients = base_url, key, n, rate, clients
        self.give_up_after = give_up_after
        self.run = uuid.uuid4().hex[:8]
        self.accepted: dict[str, float] = {}  # notification id -> time the 202 arrived
        self.rejected: Counter[str] = Counter()  # error code of a 4xx -> count
        self.failed_tries: Counter[str] = Counter()
        self.given_up = 0
        self.started = 0.0
        self._lock = threading.Lock()
        self._todo: SimpleQueue[int] = SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> Load:
        for i in range(self.n):
            self._todo.put(i)
        self.started = time.time()
        self._threads = [
            threading.Thread(target=self._client, name=f"load-{c}", daemon=True)
            for c in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    @property
    def duration(self) -> float:
        """Seconds the posting takes at ``rate`` (faults are placed within it)."""
        return self.n / self.rate

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while True:
                try:
                    i = self._todo.get_nowait()
                except Empty:
                    return
                due = self.started + i / self.rate
                if due > time.time():
                    time.sleep(due - time.time())
                self._post(client, i)

    def _post(self, client: httpx.Client, i: int) -> None:
        body = {
            "channel": "email",
            "to": f"user{i}@example.com",
            "subject": f"Receipt {i}",
            "body": "Thanks",
            "reference": f"chaos-{self.run}-{i}",
        }
        headers = {"Idempotency-Key": f"chaos-{self.run}-{i}"}
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            try:
                response = client.post("/v1/notifications", json=body, headers=headers)
            except httpx.HTTPError as e:
                cause = "connect" if isinstance(e, httpx.ConnectError) else type(e).__name__
            else:
                if response.status_code == 202:
                    with self._lock:
                        self.accepted[response.json()["id"]] = time.time()
                    return
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    with self._lock:
                        self.rejected[
                            response.json().get("error", {}).get("code", str(response.status_code))
                        ] += 1
                    return
                cause = str(response.status_code)
            with self._lock:
                self.failed_tries[cause] += 1
            time.sleep(0.5)
        with self._lock:
            self.given_up += 1
