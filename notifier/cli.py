"""The ``notifier`` command: the embedded default, production processes, keys, database."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from notifier import logs
from notifier.cli_common import console, load_settings, make_typer, open_sessions
from notifier.cli_keys import keys_app
from notifier.cli_status import status
from notifier.config import Settings
from notifier.db.migrate import upgrade
from notifier.db.session import postgres_connect_args
from notifier.services.cli import services_app
from notifier.support.cli import staff_app

if TYPE_CHECKING:  # the commands import what they use when they run (a fast --help)
    from notifier.campaigns.models import ContactImport
    from providers.interface import Lane, Provider


app = make_typer("notifier: notification delivery service", add_completion=False)
db_app = make_typer("Database schema")
providers_app = make_typer("Provider configuration")
audiences_app = make_typer("Campaign audiences")
app.add_typer(keys_app, name="keys")
app.add_typer(services_app, name="services")
app.add_typer(db_app, name="db")
app.add_typer(providers_app, name="providers")
app.add_typer(audiences_app, name="audiences")
app.add_typer(staff_app, name="staff")
app.command()(status)


def _serve_process_metrics(settings: Settings) -> None:
    """Workers and beat serve their own /metrics; a second process on one host skips it."""
    from notifier import metrics, sentry

    sentry.init(settings.sentry_dsn, settings.env.value)
    try:
        metrics.serve(settings.metrics_port)
    except OSError:
        console.print(
            f"metrics port {settings.metrics_port} is taken: this process serves no /metrics"
        )


@app.command()
def dev() -> None:
    """Run everything in one process: API, worker, beat, SQLite, in-process broker, outbox."""
    from notifier.dev import run_dev

    run_dev(load_settings())


@app.command()
def api(
    host: Annotated[
        str | None,
        typer.Option(
            metavar="HOST", help="address to listen on", show_default="NOTIFIER_HOST, 127.0.0.1"
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            min=1,
            max=65535,
            help="port to listen on",
            show_default="NOTIFIER_PORT, 8000",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(metavar="N", min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the intake API (production: uvicorn with uvloop and httptools)."""
    import uvicorn

    from notifier.api.serving import uvicorn_options

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    uvicorn.run(
        "notifier.api.app:create_served_app",  # configures logging in each worker process
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        **uvicorn_options(settings),
    )


@app.command()
def worker(
    lanes: Annotated[
        str,
        typer.Option(
            metavar="QUEUES", help="comma-separated queues, e.g. sms.transactional,receipts"
        ),
    ],
    concurrency: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=1,
            help="deliveries in flight per process",
            show_default="NOTIFIER_WORKER_CONCURRENCY, 64",
        ),
    ] = None,
    pool: Annotated[str, typer.Option(metavar="POOL", help="threads, prefork or solo")] = "threads",
) -> None:
    """Run a Celery worker consuming the given lanes and service queues."""
    from notifier.tasks import ALL_QUEUES
    from workers.app import create_worker_app

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    queues = [q.strip() for q in lanes.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if unknown:
        console.print(f"[red]unknown queues {unknown}[/red]; known: {', '.join(ALL_QUEUES)}")
        raise typer.Exit(2)
    _check_providers(settings, queues)
    _serve_process_metrics(settings)
    celery = create_worker_app(settings)
    celery.worker_main(
        [
            "worker",
            "-Q",
            ",".join(queues),
            "-P",
            pool,
            "-c",
            str(concurrency or settings.worker_concurrency),
            "-n",
            # unique per process: two workers on one host must not share a node name
            f"{'+'.join(queues)}.{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            settings.log_level,
        ]
    )


def _check_providers(settings: Settings, queues: list[str]) -> None:
    """Refuse to start (exit 2, naming the problem) when a provider of the worker's lanes
    cannot be built: better no worker than one that claims messages it cannot send."""
    from notifier.provider_config import check_lanes, load_chains
    from providers.interface import ConfigurationError, Lane
    from workers.throttle import describe_rate

    lanes = [Lane(q) for q in queues if q in {lane.value for lane in Lane}]
    try:
        providers = check_lanes(load_chains(settings.providers_file, settings.outbox_dir), lanes)
    except ConfigurationError as e:
        console.print(f"[red]cannot start the worker:[/red] {e}")
        raise typer.Exit(2) from e
    without = sorted({lane.value for lane in lanes} - {p.lane.value for p in providers})
    if without:  # allowed (an email-only deployment runs the generic command), but said loudly
        logging.getLogger("notifier.worker").warning(
            "worker.lanes_without_provider", extra={"lanes": without}
        )
    for provider in providers:  # every send rate said once, where an operator looks first
        logging.getLogger("notifier.worker").info(
            "provider.rate",
            extra={
                "provider": provider.name,
                "lane": provider.lane.value,
                "rate": describe_rate(provider),
            },
        )


@app.command()
def beat() -> None:
    """Run celery-beat: safety nets and campaigns, from the database-backed schedule.

    The schedule lives in the database (sqlalchemy-celery-beat), so campaigns created or changed
    through the API are picked up within seconds without a restart. Run one beat per deployment;
    a second one by mistake cannot fire a campaign run twice (guarded in the database).
    """
    from workers.app import create_worker_app

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _serve_process_metrics(settings)
    celery = create_worker_app(settings)
    logs.quiet_beat_ticks(celery.conf.beat_schedule)  # the safety nets tick silently
    celery.conf.beat_dburi = settings.database_url
    if not settings.is_sqlite:  # the scheduler's own engine, as behind PgBouncer as ours
        celery.conf.beat_engine_options = {
            "connect_args": postgres_connect_args(settings.database_pooler)
        }
    celery.conf.beat_max_loop_interval = 5
    celery.start(
        [
            "beat",
            "--scheduler",
            "sqlalchemy_celery_beat.schedulers:DatabaseScheduler",
            "-l",
            settings.log_level,
        ]
    )


@audiences_app.command("import")
def audiences_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, metavar="FILE")
    ],
    audience: Annotated[str, typer.Option(metavar="NAME", help="audience name (created if new)")],
    service: Annotated[
        str | None,
        typer.Option(
            help="the service whose audience it is (name or id; default: the default service)"
        ),
    ] = None,
) -> None:
    """Import contacts from a CSV file into a service's audience, with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from notifier.campaigns import csv_import
    from notifier.errors import NotifierError
    from notifier.services import registry
    from notifier.services.models import DEFAULT_SERVICE_ID

    settings = load_settings()
    sessions = open_sessions(settings)
    service_id = DEFAULT_SERVICE_ID
    if service is not None:
        with sessions() as session:
            row = registry.find_named(session, service)
        if row is None:
            console.print(f"[red]no service {service[:70]!r}[/red]")
            raise typer.Exit(2)
        service_id = row.id
    size = file.stat().st_size
    job = csv_import.start(sessions, audience, file.name, size, service_id)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(
            "{task.percentage:>3.0f}%  {task.fields[rows]} rows, {task.fields[errors]} errors"
        ),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar, file.open("rb") as stream:
        task = bar.add_task(f"importing {file.name}", total=size or 1, rows=0, errors=0)

        def show(state: ContactImport) -> None:
            bar.update(
                task, completed=state.bytes_read, rows=state.rows_read, errors=state.error_count
            )

        try:
            csv_import.run(sessions, job, stream, on_progress=show)
        except NotifierError as e:
            console.print(f"[red]{e.message}[/red]")
            raise typer.Exit(2) from e
    console.print(
        f"import {job.id}: {job.rows_read} rows, {job.created} created, {job.updated} updated, "
        f"{job.error_count} errors"
    )
    for error in (job.errors or [])[:50]:
        console.print(f"  line {error.get('line')}: {error.get('message')}")
    raise typer.Exit(1 if job.error_count else 0)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(metavar="REVISION", help="Alembic revision")] = "heads",
) -> None:
    """Apply schema migrations."""
    settings = load_settings()
    upgrade(settings.database_url, revision, settings.database_pooler)
    console.print(f"database at revision {revision}")


@providers_app.command("check")
def providers_check(
    connect: Annotated[bool, typer.Option(help="connect/authenticate, send nothing")] = False,
) -> None:
    """Validate the providers file; with --connect, reach each provider without sending."""
    from notifier.provider_config import build_chains, load_chains
    from providers.interface import ConfigurationError

    settings = load_settings()
    try:
        chains = build_chains(load_chains(settings.providers_file, settings.outbox_dir))
    except ConfigurationError as e:
        console.print(f"[red]invalid provider configuration:[/red] {e}")
        raise typer.Exit(2) from e
    failed = asyncio.run(_check_all(chains, connect))
    raise typer.Exit(1 if failed else 0)


async def _check_all(chains: dict[Lane, list[Provider]], connect: bool) -> bool:
    """Check every provider on one event loop, closing each afterwards; True if any failed."""
    from providers.interface import ConfigurationError, ProviderError
    from workers.throttle import describe_rate

    failed = False
    for lane, providers in chains.items():
        for provider in providers:
            try:
                description = await provider.check(connect=connect)
                console.print(
                    f"ok    {lane.value:22} {provider.name} ({provider.kind}): {description}"
                )
                console.print(f"      {'':22} send rate: {describe_rate(provider)}")
            except (ConfigurationError, ProviderError) as e:
                failed = True
                console.print(
                    f"[red]FAIL[/red]  {lane.value:22} {provider.name} ({provider.kind}): {e}"
                )
            finally:
                await provider.close()
    return failed


def main() -> None:
    app(prog_name="notifier")


if __name__ == "__main__":  # pragma: no cover
    main()
