"""The group-commit writer's own CPU per row: ``Intake.store_group`` alone, on fixed groups.

``bench.intake_cpu`` measures the whole API process, whose group sizes (and so the writer's CPU
per notification) move with the event loop's speed on a busy machine. This one prepares
``--groups`` groups of ``--size`` notifications (the intake benchmark's body; ``--distinct``: a
recipient of its own each, as real groups have) and times only their writes (suppression check,
COPY of rows and events, commit) on the calling thread's CPU clock. Publishing is left out.

    python -m bench.store_group [--size 64] [--groups 300] [--distinct]
                                [--database-url ...] [--broker-url ...] [--redis-url ...]

Prints one JSON line: ``store_cpu_us_per_row``, ``wall_s``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

from bench.common import add_service_options, emit, keyed_stack
from bench.intake import BODY


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64, help="notifications per group")
    parser.add_argument("--groups", type=int, default=300, help="groups measured")
    parser.add_argument("--distinct", action="store_true", help="a recipient of its own each")
    add_service_options(parser, broker_default="rabbitmq")
    args = parser.parse_args()
    with keyed_stack(args) as (env, key):
        os.environ.update(env)
        from notifier.config import Settings
        from notifier.notifications.schemas import EmailRequest
        from notifier.runtime import Runtime

        runtime = Runtime.build(Settings())
        with runtime.sessions() as session:
            caller = runtime.authenticator.authenticate(session, f"Bearer {key}")
        request = EmailRequest.model_validate(BODY)
        intake = runtime.intake
        numbers = itertools.count()

        def group() -> list:
            return [
                intake.prepare(
                    caller,
                    request.model_copy(update={"to": f"u{next(numbers)}@example.com"})
                    if args.distinct
                    else request,
                )
                for _ in range(args.size)
            ]

        for _ in range(20):  # warm-up: connections, compiled and prepared statements
            intake.store_group(group())
        groups = [group() for _ in range(args.groups)]
        cpu, wall = time.thread_time(), time.perf_counter()
        for prepared in groups:
            intake.store_group(prepared)
        cpu = time.thread_time() - cpu
        wall = time.perf_counter() - wall
        runtime.close()
    emit(
        {
            "benchmark": "store_group",
            "size": args.size,
            "groups": args.groups,
            "distinct": args.distinct,
            "store_cpu_us_per_row": round(cpu * 1e6 / (args.size * args.groups), 2),
            "wall_s": round(wall, 2),
        }
    )


if __name__ == "__main__":
    main()
