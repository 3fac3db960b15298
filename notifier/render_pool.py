"""Worker processes that render non-plain templates under hard CPU-time and memory bounds.

Why processes and not threads: a thread cannot be stopped, and one Python operation such as
``9 ** (9 ** 8)`` or ``'a'.ljust(10 ** 9)`` runs in C without ever returning to a check. A worker
process can be killed, and its address space is capped with ``RLIMIT_AS``, so ``MemoryError``
(a 422) comes instead of the machine swapping. The deadline is enforced twice: inside the worker
a timer signal interrupts Python-level work (a loop, a recursion) and the worker answers the
422 and lives on; a worker stuck in C past the deadline plus a grace period is killed and
replaced. Workers run at a lower CPU
priority (``nice 19``) than the API, so a caller sending expensive templates slows its own
requests first, and one API key may hold at most half of the workers at a time (more is a 429
``rate_limited``), so it cannot take every renderer from the other callers. Workers are forked
from the API process (``fork``): a new worker costs a few milliseconds and
starts with the renderer imported. (The ``forkserver`` and ``spawn`` methods re-run the main
script in every new worker: 600 ms of CPU each for the ``notifier`` command.) A worker only
reads its pipe and renders; should it inherit a lock held by another thread at fork time and
hang, the deadline kills it like any other.

A request waits for a free worker at most ``queue_seconds``; if none frees up, it is answered
503 ``service_unavailable`` (retry) rather than queued without bound behind someone else's
expensive templates. The cost of the detour (a pipe round trip, ~0.1 ms) is why plain templates
never take it (see :mod:`notifier.rendering`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from notifier.errors import ErrorCode, ErrorDetail, NotifierError, field_error
from notifier.rendering import Job, run_job

log = logging.getLogger("notifier.rendering")

_context = multiprocessing.get_context("fork")
# past the deadline, before a worker that did not answer is killed (a loaded machine is slow)
GRACE_SECONDS = 0.5


class _Deadline(BaseException):
    """Raised by the timer signal; a BaseException, so no ``except Exception`` swallows it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Deadline


def _serve(conn: Connection, memory_bytes: int) -> None:
    """A worker: render jobs from ``conn`` until it closes."""
    try:
        os.nice(19)
    except OSError:  # pragma: no cover - not allowed here: run at the normal priority
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the API process's to handle
    signal.signal(signal.SIGALRM, _on_alarm)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (in_use + memory_bytes, in_use + memory_bytes))
    while True:
        try:
            job, seconds = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, seconds)
                answer: tuple[str, Any] = ("ok", run_job(job))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Deadline:
            answer = (
                "error",
                (
                    ErrorCode.TEMPLATE_ERROR.value,
                    _late(next(iter(job.fields), "body"), seconds),
                    [],
                ),
            )
        except NotifierError as e:  # sent as plain data: the dataclass exception does not pickle
            answer = ("error", (e.code.value, e.message, [d.as_dict() for d in e.details]))
        except MemoryError:
            answer = (
                "error",
                (ErrorCode.TEMPLATE_ERROR.value, "a template needs too much memory", []),
            )
        try:
            conn.send(answer)
        except _Deadline:  # the timer fired just as the job ended: send the answer anyway
            conn.send(answer)


def _late(field: str, seconds: float) -> str:
    return f"{field}: rendering took longer than {int(seconds * 1000)} ms"


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        self.conn, child = _context.Pipe()
        self.process = _context.Process(target=_serve, args=(child, memory_bytes), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class RenderPool:
    def __init__(
        self,
        size: int = 2,
        timeout: float = 0.25,
        memory_bytes: int = 256 * 1024 * 1024,
        queue_seconds: float = 2.0,
    ) -> None:
        self.size = size
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.queue_seconds = queue_seconds
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}  # workers in use per owner (API key)
        self.killed = 0  # workers killed at their deadline (for tests and metrics)

    def run(
        self, job: Job, timeout: float | None = None, owner: str | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Render ``job`` in a worker within ``timeout`` seconds (default: the pool's); ``owner``
        (an API key id) may hold at most half of the workers at once."""
        if owner is None:
            return self._run(job, timeout)
        with self._lock:
            self.check_share(owner)
            self._held[owner] = self._held.get(owner, 0) + 1
        try:
            return self._run(job, timeout)
        finally:
            with self._lock:
                self._held[owner] -= 1
                if not self._held[owner]:
                    del self._held[owner]

    def check_share(self, owner: str) -> None:
        """429 when ``owner`` already holds its share of the workers (cheap: the API asks before
        it hands a request to a thread)."""
        if self._held.get(owner, 0) >= max(1, self.size // 2):
            raise NotifierError(
                ErrorCode.RATE_LIMITED,
                "this API key already has its share of template renderers busy; retry shortly",
                retry_after=1,
            )

    def _run(self, job: Job, timeout: float | None) -> tuple[dict[str, str], dict[str, str]]:
        deadline = self.timeout if timeout is None else min(timeout, self.timeout)
        field = next(iter(job.fields), "body")
        if deadline <= 0:
            raise field_error(
                ErrorCode.TEMPLATE_ERROR,
                field,
                "this request has spent its rendering time; send fewer or simpler templates",
            )
        worker = self._acquire()
        held = True  # False once the worker is replaced: it must not go back to the idle queue
        try:
            worker.conn.send((job, deadline))
            if not worker.conn.poll(deadline + GRACE_SECONDS):
                self._replace(worker)
                held = False
                raise field_error(ErrorCode.TEMPLATE_ERROR, field, _late(field, deadline))
            kind, value = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as e:  # the worker died (out of memory?)
            if held:
                self._replace(worker)
                held = False
            raise field_error(
                ErrorCode.TEMPLATE_ERROR,
                field,
                "rendering failed: the template needs too much memory",
            ) from e
        finally:
            if held:
                self._idle.put(worker)
        if kind == "error":
            code, message, details = value
            if not details:  # the worker's own errors (deadline, memory): name the field
                raise field_error(ErrorCode(code), field, message)
            raise NotifierError(ErrorCode(code), message, [ErrorDetail(**d) for d in details])
        rendered: tuple[dict[str, str], dict[str, str]] = value
        return rendered

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._started < self.size:
                self._started += 1
                return _Worker(self.memory_bytes)
        try:
            return self._idle.get(timeout=self.queue_seconds)
        except queue.Empty:
            raise NotifierError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "every template renderer is busy; retry shortly",
                retry_after=1,
            ) from None

    def _replace(self, worker: _Worker) -> None:
        self.killed += 1
        started = time.perf_counter()
        worker.kill()
        self._idle.put(_Worker(self.memory_bytes))
        log.warning(
            "rendering.worker_replaced",
            extra={"ms": round((time.perf_counter() - started) * 1000, 1)},
        )

    def close(self) -> None:
        with self._lock:
            while True:
                try:
                    self._idle.get_nowait().kill()
                except queue.Empty:
                    break
            self._started = 0


_default: RenderPool | None = None
_default_lock = threading.Lock()


def default_pool() -> RenderPool:
    """The process-wide pool for callers that do not bring their own (campaign fan-out)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = RenderPool()
    return _default


def configure_default(**options: Any) -> RenderPool:
    """Replace the process-wide pool (the API does this once, from its settings)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = RenderPool(**options)
    return _default
