"""CPU time by process, from the operating system: what each part of the system cost.

A benchmark names the processes it cares about by label (``api``, ``worker``, ``postgres``,
``broker``, ``redis``): as process groups (every process of ours gets its own session, so its
group holds it and what it forks, e.g. uvicorn's workers), as a list of pids (a private server's
processes: PostgreSQL puts each backend in a session of its own), or by command name for
services we did not start. A sampler thread reads
``utime + stime`` from ``/proc/<pid>/stat`` every ``interval`` seconds and keeps, per process,
the first and the last value it saw; a process that is killed keeps what it had used at its last
sample (at most ``interval`` of its CPU goes unseen). The result is in milliseconds.

Shared services (the local PostgreSQL, Redis and RabbitMQ) also serve whatever else runs on the
machine, so their figures are an upper bound unless the benchmark ran alone; private instances
(``tests/private_services.py``) are counted exactly.
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

# What a label covers, asked anew at every sample: process group ids, or pids given negated.
Selector = Callable[[], Iterable[int]]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, process group, utime + stime in ticks) of ``pid``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[2]), int(fields[11]) + int(fields[12])


def groups(*pgids: Callable[[], int | None]) -> Selector:
    """A selector for process groups whose leader pid may change (a restarted process)."""
    return lambda: [pgid for get in pgids if (pgid := get()) is not None]


def pids(get: Callable[[], Iterable[int]]) -> Selector:
    """A selector for the processes ``get`` lists (a private server's ``pids()``, which reaches the
    PostgreSQL backends that run in sessions of their own)."""
    return lambda: [-pid for pid in get()]


def named(*names: str) -> Selector:
    """A selector for every process whose command name is one of ``names`` (a shared service)."""
    wanted = set(names)

    def select() -> list[int]:
        found = []
        for path in glob.glob("/proc/[0-9]*/stat"):
            stat = _stat(int(path.split("/")[2]))
            if stat is not None and stat[0] in wanted:
                found.append(-int(path.split("/")[2]))  # negative: a pid, not a group
        return found

    return select


def shared_labels(broker: str, **ours: Selector) -> dict[str, Selector]:
    """Our processes' labels plus the local services by command name (``postgres``, ``beam.smp``,
    ``redis-server``); with a Redis broker, one redis-server is both ``broker`` and ``redis``."""
    labels = {**ours, "postgres": named("postgres")}
    if broker == "rabbitmq":
        labels.update(broker=named("beam.smp"), redis=named("redis-server"))
    else:
        labels["broker"] = named("redis-server")
    return labels


class CpuMeter:
    """Samples labelled process groups in a thread; ``result()`` gives ``cpu_ms_by_process``."""

    def __init__(self, labels: dict[str, Selector], interval: float = 0.5) -> None:
        self.labels = labels
        self.interval = interval
        self._first: dict[tuple[str, int], int] = {}
        self._last: dict[tuple[str, int], int] = {}
        self._started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def start(self) -> CpuMeter:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.result()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        wanted: dict[int, str] = {}
        pids: dict[int, str] = {}
        for label, select in self.labels.items():
            for ident in select():
                if ident < 0:
                    pids[-ident] = label
                else:
                    wanted[ident] = label
        for path in glob.glob("/proc/[0-9]*/stat"):
            pid = int(path.split("/")[2])
            stat = _stat(pid)
            if stat is None:
                continue
            owner = pids.get(pid) or wanted.get(stat[1])
            if owner is None:
                continue
            key = (owner, pid)
            # running before start(): count from now; born since: count all it used
            self._first.setdefault(key, 0 if self._started else stat[2])
            self._last[key] = stat[2]
        self._started = True

    def result(self) -> dict[str, float]:
        """CPU milliseconds used by each label since ``start()``."""
        totals = dict.fromkeys(self.labels, 0.0)
        for key, last in self._last.items():
            totals[key[0]] += (last - self._first[key]) * 1000 / TICKS
        return {label: round(ms, 1) for label, ms in totals.items()}


def per_notification(cpu_ms: dict[str, float], notifications: int) -> dict[str, float]:
    """``cpu_ms_per_notification``: each label's CPU divided by what was delivered, and the
    total."""
    if notifications <= 0:
        return {}
    shares = {label: round(ms / notifications, 3) for label, ms in cpu_ms.items()}
    shares["total"] = round(sum(cpu_ms.values()) / notifications, 3)
    return shares
