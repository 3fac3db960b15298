"""``notifier status``: what an operator or a monitor's probe asks of the whole deployment.

Reachability of the database and the broker, queue depths, beat's last tick, circuits, lanes held
back by their provider's rate, live workers and delivery health (``notifier.operations`` collects
them), and with ``--service`` one service's day. The exit code is the probe's answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from notifier.cli_common import console, load_settings

if TYPE_CHECKING:
    from notifier.operations import ServiceView


def status(
    dependencies_only: Annotated[
        bool,
        typer.Option(
            help="exit 1 only when the database or broker is unreachable (a worker's readiness)"
        ),
    ] = False,
    service: Annotated[
        str | None,
        typer.Option(
            help="also show this service's day (name or id; 'all' for every service): volume "
            "and failures per lane today (UTC), daily quota used, providers per lane"
        ),
    ] = None,
) -> None:
    """Reachability, queue depths, beat's last tick, circuits, live workers and delivery health.

    Exits 1 when the database or the broker is unreachable, or when delivery has stopped (a lane
    with due work and no live worker, a notification queued too long, beat's tick stale: see
    ``notifier.delivery_health``), so it can be a monitor's probe. ``--dependencies-only`` keeps
    the exit code to reachability: a worker pod's readiness must not fail because another lane
    or beat is down (unready pods would also block node drains through their disruption budget).
    """
    from notifier.operations import UnknownService, collect_service_views, collect_status

    settings = load_settings()
    views = None
    if service is not None:
        try:
            views = collect_service_views(settings, service.strip())
        except UnknownService as e:
            console.print(f"[red]no service {service!r}[/red]")
            raise typer.Exit(2) from e
    report = collect_status(settings)
    table = Table("what", "value")
    table.add_row("database", "ok" if report.database_ok else "UNREACHABLE")
    table.add_row("broker", "ok" if report.broker_ok else "UNREACHABLE")
    table.add_row(
        "beat last tick",
        report.beat_last_tick.isoformat(timespec="seconds") if report.beat_last_tick else "never",
    )
    for queue, depth in report.queue_depths.items():
        table.add_row(f"queue {queue}", "?" if depth is None else str(depth))
    for provider, state in sorted(report.circuits.items()):
        table.add_row(f"circuit {provider}", state)
    for provider, wait in sorted(report.held_back.items()):
        table.add_row(
            f"held back {provider}",
            f"{wait.get('lane')}: waited {wait.get('waited_seconds', 0):.1f} s over "
            f"{wait.get('over_seconds', 0):.1f} s for its send rate {wait.get('rate')}",
        )
    for partitioned, rows in sorted(report.partition_default_rows.items()):
        table.add_row(
            f"default partition {partitioned}", f"{rows} rows" + (" (LATE)" if rows else "")
        )
    health = report.delivery
    if health is not None:
        for queue, backlog in sorted(health.backlog.items()):
            table.add_row(
                f"due {queue}",
                f"{backlog.due}, oldest waiting {backlog.oldest_due_age_seconds:.0f} s",
            )
        for queue, count in health.live_workers.items():
            table.add_row(f"live workers {queue}", str(count))
        for worker_name, worker_queues in report.workers.items():
            table.add_row(f"worker {worker_name}", ",".join(worker_queues))
        table.add_row("delivery", "delivering" if health.delivering else "STOPPED")
        for problem in health.problems:
            table.add_row(f"problem {problem.code}", problem.message)
    else:
        table.add_row("delivery", "UNKNOWN (no database)")
    Console().print(table)
    for view in views or ():
        Console().print(_service_table(view))
    reachable = report.database_ok and report.broker_ok
    raise typer.Exit(0 if (reachable if dependencies_only else report.healthy) else 1)


def _service_table(view: ServiceView) -> Table:
    """One service's day as ``notifier status --service`` prints it."""
    table = Table(
        "lane",
        "today",
        "test",
        "not delivered, by reason",
        "quota used",
        "providers",
        title=f"service {view.name}{' (trial)' if view.trial else ''}: "
        f"{view.total} today ({view.day.isoformat()} UTC), {view.failed} not delivered",
    )
    for lane in view.lanes:
        failures = ", ".join(
            f"{f.status}{f' {f.code}' if f.code else ''}: {n}"
            for f, n in sorted(lane.usage.failures.items(), key=lambda item: -item[1])
        )
        if lane.quota is None:
            quota = "no quota"
        elif lane.quota_used is None:
            quota = f"? / {lane.quota} (not shared)"
        else:
            quota = f"{lane.quota_used} / {lane.quota}"
        if lane.providers is None:
            providers = "unknown"
        else:
            source = "service" if lane.own_chain else "platform"
            providers = f"{', '.join(lane.providers) or 'none'} ({source})"
        table.add_row(
            lane.lane.value, str(lane.usage.total), str(lane.usage.test), failures, quota, providers
        )
    return table
