"""Intake throughput: single POSTs (or --batch N) at 64 connections against PostgreSQL and a broker.

Prints one JSON line: rps, p50/p99, and the ceiling — a bare FastAPI endpoint validating the same
body, served with the same uvicorn settings — measured in the same run.

    python -m bench.intake [--broker redis|rabbitmq] [--seconds 10] [--connections 64]
        [--batch 1000]
                           [--database-url ...] [--broker-url ...] [--redis-url ...]
    python -m bench.intake --services 100 --keys 1000 [--rounds 2]
    python -m bench.intake --hostile [--hostile-connections 4]

Also prints the CPU each part used during the measured run (``cpu_ms_by_process``,
``cpu_ms_per_notification``: ``bench/cpu.py``).

``--services N --keys M`` (both > 1): M keys spread round-robin over N services (each a row of
its own with a sender, as a real service has), and wrk picks a key at random per request (a Lua
script). The same API processes are measured in alternating rounds with the one key of the
default service and with the M keys; the JSON line gives both and their ``ratio`` (the issue's
rule: the many-services figure within 5 % of the one-key figure).

``--hostile``: the valid key's requests/s and p99 alone, then again while a second key sends
expensive templates (killed at the render deadline, refused by the operator bounds, or over the
memory cap) and unstorable rows (NUL) on its own connections, in one run. Prints solo and
contended figures and the ratios the issue targets (throughput kept >= 0.8, p99 < 2x solo, no
errors for the valid key).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile

from bench.common import (
    BIN,
    add_service_options,
    api_command,
    combined_rounds,
    emit,
    free_port,
    keyed_stack,
    parse_wrk,
    process,
    wrk,
    wrk_command,
)
from bench.cpu import CpuMeter, groups, per_notification, shared_labels

BODY = {
    "channel": "email",
    "category": "transactional",
    "to": "ada@example.com",
    "subject": "Your receipt",
    "body": "Thanks, {{ name }}",
    "data": {"name": "Ada"},
    "reference": "order-42",
}


def populate(env: dict[str, str], services: int, keys: int) -> list[str]:
    """``services`` services and ``keys`` live keys spread over them, straight into the bench's
    database (a thousand ``notifier keys create`` would take minutes): the keys' plaintexts."""
    from notifier import keys as key_store
    from notifier.db.session import make_engine, make_sessionmaker, transaction
    from notifier.services.models import Service

    engine = make_engine(env["NOTIFIER_DATABASE_URL"])
    try:
        with transaction(make_sessionmaker(engine)) as session:
            rows = [
                Service(
                    name=f"bench-{i}",
                    trial=False,
                    senders={"email.transactional": {"from_address": f"s{i}@example.com"}},
                    provider_chains={},
                    rate_limits={},
                    daily_quotas={},
                )
                for i in range(services)
            ]
            session.add_all(rows)
            session.flush()
            return [
                key_store.create_key(
                    session, f"bench-{i}", ["notifications:send"], None, None, rows[i % services].id
                )[1]
                for i in range(keys)
            ]
    finally:
        engine.dispose()


def keys_wrk(url: str, body: str, keys: list[str], seconds: int, connections: int) -> dict:
    """wrk posting ``body`` with a key picked at random per request."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # wrk reads it later
    script.write(
        "local keys = {" + ", ".join(json.dumps(f"Bearer {k}") for k in keys) + "}\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
        "setup = function(thread) thread:set('seed', math.random(1, 1000000)) end\n"
        "init = function() math.randomseed(seed or os.time()) end\n"
        "request = function()\n"
        '  wrk.headers["Authorization"] = keys[math.random(#keys)]\n'
        "  return wrk.format()\nend\n"
    )
    script.close()
    out = subprocess.run(
        wrk_command(url, script.name, seconds, connections, min(2, connections)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def many_services(args: argparse.Namespace) -> None:
    """One key against ``--keys`` keys over ``--services`` services, alternating rounds on the
    same API processes."""
    with keyed_stack(args) as (env, key):
        population = populate(env, args.services, args.keys)
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1/notifications"
        api = api_command(port, args.api_workers)
        body = json.dumps(BODY)
        runs: dict[str, list[dict]] = {"one": [], "many": []}
        with process(api, env, ready_url=f"http://127.0.0.1:{port}/healthz") as api_process:
            wrk(url, body, {"Authorization": f"Bearer {key}"}, 2, args.connections)  # warm-up
            keys_wrk(url, body, population, 2, args.connections)
            for _ in range(args.rounds):
                for kind in ("one", "many"):
                    meter = CpuMeter(
                        shared_labels(args.broker, api=groups(lambda: api_process.pid))
                    ).start()
                    if kind == "one":
                        measured = wrk(
                            url,
                            body,
                            {"Authorization": f"Bearer {key}"},
                            args.seconds,
                            args.connections,
                        )
                    else:
                        measured = keys_wrk(url, body, population, args.seconds, args.connections)
                    measured["cpu"] = per_notification(meter.stop(), measured["requests"])
                    runs[kind].append(measured)
    one, many = combined_rounds(runs["one"]), combined_rounds(runs["many"])
    cpu = {k: _mean_cpu(runs[k]) for k in runs}
    emit(
        {
            "benchmark": "intake_services",
            "broker": args.broker if not args.broker_url else "given",
            "connections": args.connections,
            "seconds": args.seconds,
            "api_workers": args.api_workers,
            "services": args.services,
            "keys": args.keys,
            "one_key_rps": one["rps"],
            "one_key_p99_ms": one["p99_ms"],
            "many_keys_rps": many["rps"],
            "many_keys_p99_ms": many["p99_ms"],
            "non_2xx": one["non_2xx"] + many["non_2xx"],
            "ratio": round(many["rps"] / one["rps"], 3),
            "one_key_cpu_ms_per_notification": cpu["one"],
            "many_keys_cpu_ms_per_notification": cpu["many"],
            "rounds": {"one": one["rounds"], "many": many["rounds"]},
        }
    )


def _mean_cpu(runs: list[dict]) -> dict[str, float]:
    labels = {label for r in runs for label in r["cpu"]}
    return {
        label: round(sum(r["cpu"].get(label, 0.0) for r in runs) / len(runs), 3)
        for label in sorted(labels)
    }


def batch_of(n: int) -> dict:
    """A batch request of ``n`` copies of BODY, each to its own recipient."""
    return {"notifications": [{**BODY, "to": f"user{i}@example.com"} for i in range(n)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument(
        "--batch", type=int, default=0, help="notifications per batch request (0: single)"
    )
    parser.add_argument(
        "--hostile", action="store_true", help="solo vs. alongside a hostile second key"
    )
    parser.add_argument("--hostile-connections", type=int, default=4)
    parser.add_argument(
        "--attacker-rate-limit",
        default="3000/minute",
        help="the second key's per-key limit: production's default, or none",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="--hostile, --keys: alternating rounds of each"
    )
    parser.add_argument(
        "--hostile-kind",
        choices=["all", "templates", "rows", "valid"],
        default="all",
        help="what the second key sends (valid: a baseline of plain load)",
    )
    parser.add_argument("--services", type=int, default=1, help="services the keys spread over")
    parser.add_argument("--keys", type=int, default=1, help="keys, picked at random per request")
    add_service_options(parser)
    args = parser.parse_args()
    if args.hostile:
        from bench.intake_hostile import hostile

        hostile(args)
        return
    if args.keys > 1 or args.services > 1:
        many_services(args)
        return

    with keyed_stack(args) as (env, key):
        uvicorn_args = [
            "--workers",
            str(args.api_workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        single = json.dumps(BODY)
        path = "/v1/notifications"
        body = single
        if args.batch:
            path = "/v1/notifications/batch"
            body = json.dumps(batch_of(args.batch))

        port = free_port()
        with process(
            [str(BIN / "uvicorn"), "bench.bare_app:app", "--port", str(port), *uvicorn_args],
            env,
            ready_url=f"http://127.0.0.1:{port}/docs",
        ):
            ceiling = wrk(
                f"http://127.0.0.1:{port}/v1/notifications",
                single,
                {},
                args.seconds,
                args.connections,
            )

        port = free_port()
        api = api_command(port, args.api_workers)
        with process(api, env, ready_url=f"http://127.0.0.1:{port}/healthz") as api_process:
            connections = (
                min(args.connections, args.api_workers * 2) if args.batch else args.connections
            )
            meter = CpuMeter(
                shared_labels(args.broker, api=groups(lambda: api_process.pid))
            ).start()
            measured = wrk(
                f"http://127.0.0.1:{port}{path}",
                body,
                {"Authorization": f"Bearer {key}"},
                args.seconds,
                connections,
            )
            cpu = meter.stop()

    result = {
        "benchmark": "intake_batch" if args.batch else "intake",
        "broker": args.broker if not args.broker_url else "given",
        "connections": min(args.connections, args.api_workers * 2)
        if args.batch
        else args.connections,
        "seconds": args.seconds,
        "api_workers": args.api_workers,
        "rps": measured["rps"],
        "p50_ms": measured["p50_ms"],
        "p99_ms": measured["p99_ms"],
        "non_2xx": measured["non_2xx"],
        "ceiling_rps": ceiling["rps"],
        "ratio": round(measured["rps"] / ceiling["rps"], 3),
    }
    if args.batch:
        result["batch"] = args.batch
        result["notifications_per_s"] = round(measured["rps"] * args.batch, 1)
    result["cpu_ms_by_process"] = cpu
    result["cpu_ms_per_notification"] = per_notification(
        cpu, measured["requests"] * (args.batch or 1)
    )
    emit(result)


if __name__ == "__main__":
    main()
