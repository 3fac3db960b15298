"""Sent once under process and infrastructure faults, measured where the recipient would see it.

Each scenario starts its own stack (``bench/stack.py``: private PostgreSQL, broker and Redis; the
README's production processes; the counting SMTP sink ``bench/smtp_sink.py``), posts ``--n``
notifications at ``--rate`` per second (``bench/chaos_load.py``: single idempotent POSTs, retried
as a careful client would), injects its faults while the load runs, waits until every accepted
notification has arrived at the sink (or ``--timeout``), then ``--settle`` seconds more so late
re-sends are counted too, and prints one JSON line (figures: ``bench/chaos_report.py``).

Scenarios (``--scenario``, default ``all`` = the first four, one line each):

* ``worker-kill``: SIGKILL a worker every ``--kill-every`` seconds while posting (round robin),
  started again ``--restart-delay`` seconds later;
* ``broker-restart``: the broker (``--broker rabbitmq|redis``) stopped, down ``--down-seconds``,
  started again, at 40 % of the load;
* ``postgres-restart``: PostgreSQL stopped (fast shutdown), down ``--postgres-down-seconds``;
* ``api-kill``: SIGKILL of ``notifier api`` under load, started again ``--restart-delay`` later;
* ``combined``: worker kills throughout, then a broker restart, a PostgreSQL restart and an API
  kill.

``--hard`` kills the broker and PostgreSQL (SIGKILL) instead of stopping them. A process that
exits by itself is counted (``unexpected_exits``) and started again after ``--restart-delay``.
The product re-sends rows left ``sending`` after ``NOTIFIER_SENDING_TIMEOUT_SECONDS`` (default
300 s); the benchmark sets it to ``--sending-timeout`` (15 s) and prints the value it used.

    python -m bench.chaos [--scenario all] [--broker rabbitmq|redis] [--n 1500] [--rate 100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import chaos_report
from bench.chaos_load import Load
from bench.chaos_report import Fault
from bench.common import emit
from bench.cpu import CpuMeter, groups, per_notification, pids
from bench.smtp_sink import read_sends
from bench.stack import External, Stack
from tests.private_services import PrivateService

SCENARIOS = ("worker-kill", "broker-restart", "postgres-restart", "api-kill", "combined")


def _kill_worker(stack: Stack, args: argparse.Namespace, count: list[int]) -> Fault:
    victim = stack.workers[count[0] % len(stack.workers)]
    count[0] += 1
    fault = Fault("worker_sigkill", time.time(), detail=victim.name)
    victim.kill()
    time.sleep(args.restart_delay)
    victim.start()
    fault.back = time.time()
    return fault


def _restart(
    kind: str,
    service_of: Callable[[Stack], PrivateService | External],
    down: Callable[[argparse.Namespace], float],
):
    def inject(stack: Stack, args: argparse.Namespace, count: list[int]) -> Fault:
        service = service_of(stack)
        fault = Fault(
            kind, time.time(), detail=f"{'SIGKILL' if args.hard else 'stop'}, down {down(args):g} s"
        )
        service.restart(down(args), kill=args.hard)
        fault.back = time.time()
        return fault

    return inject


def _kill_api(stack: Stack, args: argparse.Namespace, count: list[int]) -> Fault:
    fault = Fault("api_sigkill", time.time())
    stack.api.kill()
    time.sleep(args.restart_delay)
    stack.api.start()
    stack.wait_api()
    fault.back = time.time()
    return fault


restart_broker = _restart("broker_restart", lambda s: s.broker, lambda a: a.down_seconds)
restart_postgres = _restart(
    "postgres_restart", lambda s: s.postgres, lambda a: a.postgres_down_seconds
)


def plan(scenario: str, duration: float, kill_every: float) -> list[tuple[float, Callable]]:
    """(seconds after the load started, fault) pairs, in order."""
    kills = [(t, _kill_worker) for t in _every(kill_every, duration)]
    steps: dict[str, list[tuple[float, Callable]]] = {
        "worker-kill": kills,
        "broker-restart": [(0.4 * duration, restart_broker)],
        "postgres-restart": [(0.4 * duration, restart_postgres)],
        "api-kill": [(0.4 * duration, _kill_api)],
        "combined": [
            *kills,
            (0.3 * duration, restart_broker),
            (0.55 * duration, restart_postgres),
            (0.8 * duration, _kill_api),
        ],
    }
    return sorted(steps[scenario], key=lambda step: step[0])


def _every(interval: float, duration: float) -> list[float]:
    times, t = [], interval
    while t < duration:
        times.append(t)
        t += interval
    return times or [duration / 2]


def run(scenario: str, args: argparse.Namespace) -> dict:
    directory = Path(tempfile.mkdtemp(prefix=f"chaos-{scenario}-"))
    urls = {"database": args.database_url, "broker": args.broker_url, "redis": args.redis_url}
    ports = {"postgres": args.postgres_port, "broker": args.broker_port, "redis": args.redis_port}
    stack = Stack(
        directory,
        args.broker,
        workers=args.workers,
        concurrency=args.concurrency,
        api_workers=args.api_workers,
        sink_latency_ms=args.sink_latency_ms,
        sending_timeout=args.sending_timeout,
        redis_appendonly=args.redis_appendonly,
        api_port=args.api_port,
        sink_port=args.sink_port,
        restart_delay=args.restart_delay,
        urls=urls,
        ports=ports,
    )
    with stack:

        def server(service) -> Callable[[], list[int]]:
            return (
                service.pids if hasattr(service, "pids") else list
            )  # an External one: not ours to count

        meter = CpuMeter(
            {
                "api": groups(lambda: stack.api.pgid),
                "worker": groups(*[lambda w=w: w.pgid for w in stack.workers]),
                "beat": groups(lambda: stack.beat.pgid),
                "postgres": pids(server(stack.postgres)),
                "broker": pids(server(stack.broker)),
                "redis": pids(server(stack.redis)),
                "sink": groups(lambda: stack.sink.pgid),
            }
        ).start()
        time.sleep(args.warmup)  # workers connected, beat scheduled
        load = Load(stack.base_url, stack.key, args.n, args.rate, args.clients).start()
        faults, count = [], [0]
        for offset, inject in plan(scenario, load.duration, args.kill_every):
            time.sleep(max(0.0, load.started + offset - time.time()))
            faults.append(inject(stack, args, count))
        load.join()
        deadline = time.time() + args.timeout
        while time.time() < deadline and set(load.accepted) - set(
            read_sends(stack.sink_file).first_seen()
        ):
            time.sleep(0.5)
        time.sleep(args.settle if args.settle is not None else args.sending_timeout + 10)
        observed_until = time.time()
        cpu = meter.stop()
        sink = read_sends(stack.sink_file)
        arrivals = sink.first_seen()
        all_arrived = set(load.accepted) <= set(arrivals)
        figures = chaos_report.sink_figures(load.accepted, sink)
        records = chaos_report.records(stack.database_url, set(load.accepted), sink)
        exits = stack.unexpected_exits()
    result = {
        "benchmark": "chaos",
        "scenario": scenario,
        "broker": args.broker if not args.broker_url else "given",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": args.n,
        "rate": args.rate,
        "accepted": len(load.accepted),
        "rejected": dict(load.rejected),
        "given_up": load.given_up,
        **{
            k: figures[k]
            for k in (
                "lost",
                "duplicates_at_sink",
                "extra_sends_at_sink",
                "duplicates_same_message_id",
            )
        },
        "duplicates_recorded": records["duplicates_recorded"],
        "duplicates_not_in_records": records["duplicates_not_in_records"],
        "unconfirmed": records["unconfirmed"],
        "longest_stall_s": chaos_report.longest_stall(load.accepted, sink, observed_until),
        "faults": [f.figures(load.started, load.accepted, sink) for f in faults],
        "unexpected_exits": exits,
        "client_failed_tries": dict(load.failed_tries),
        "statuses": records["statuses"],
        "lost_by_status": records["lost_by_status"],
        "events": records["events"],
        "sends_of_unknown_ids": figures["sends_of_unknown_ids"],
        "sending_timeout_s": args.sending_timeout,
        "hard": args.hard,
        **(
            {"redis_appendonly": args.redis_appendonly}
            if args.broker == "redis" and not args.broker_url
            else {}
        ),
        "seconds_to_last_arrival": round(
            max(arrivals[nid] for nid in load.accepted) - load.started, 1
        )
        if all_arrived and load.accepted
        else None,
        "posting_s": round(max(load.accepted.values(), default=load.started) - load.started, 1),
        "observed_s": round(observed_until - load.started, 1),
        "cpu_ms_by_process": cpu,
        "cpu_ms_per_notification": per_notification(cpu, len(load.accepted)),
        "logs": str(directory / "logs") if args.keep else None,
    }
    if not args.keep:
        shutil.rmtree(directory, ignore_errors=True)
    return result


def _exit_cleanly(*_: object) -> None:
    """SIGTERM ends the run through the context managers, so no private server outlives it."""
    raise SystemExit(143)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("all", *SCENARIOS), default="all")
    parser.add_argument("--broker", choices=("rabbitmq", "redis"), default="rabbitmq")
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0, help="notifications posted per second")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--sink-latency-ms", type=float, default=20.0)
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--down-seconds", type=float, default=3.0, help="broker down time")
    parser.add_argument("--postgres-down-seconds", type=float, default=5.0)
    parser.add_argument(
        "--restart-delay", type=float, default=2.0, help="a killed or exited process's restart"
    )
    parser.add_argument(
        "--hard", action="store_true", help="SIGKILL the broker and PostgreSQL instead of a stop"
    )
    parser.add_argument(
        "--redis-appendonly", action="store_true", help="the Redis broker with appendonly yes"
    )
    parser.add_argument("--sending-timeout", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--timeout", type=float, default=400.0, help="wait for the last arrival after posting"
    )
    parser.add_argument(
        "--settle", type=float, default=None, help="then wait (default: sending timeout + 10 s)"
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL server instead of a private one (not restarted)"
    )
    parser.add_argument(
        "--broker-url", help="a broker instead of a private one (not restarted, not purged)"
    )
    parser.add_argument("--redis-url", help="a Redis for rate limits instead of a private one")
    for name in ("postgres", "broker", "redis", "api", "sink"):
        parser.add_argument(
            f"--{name}-port", type=int, default=0, help=f"{name} port (default: a free one)"
        )
    parser.add_argument("--keep", action="store_true", help="keep the logs and the sink's file")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    for scenario in SCENARIOS[:4] if args.scenario == "all" else (args.scenario,):
        result = run(scenario, args)
        emit(result)
        if args.out:
            with args.out.open("a") as out:
                out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
