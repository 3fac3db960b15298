"""``notifier keys``: create, list and revoke API keys, and set their status-webhook callback.

Without ``--service`` a key belongs to the default service, and without ``--type`` it is
``live``: today's command lines keep making the keys they always made."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from notifier import keys as key_store
from notifier.cli_common import console, load_settings, make_typer, open_sessions
from notifier.db.session import transaction
from notifier.services import registry
from notifier.services.models import DEFAULT_SERVICE_NAME

keys_app = make_typer("API keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(metavar="NAME", help="who the key is for")],
    scopes: Annotated[
        str,
        typer.Option(
            metavar="SCOPES",
            help=f"comma-separated, of: {', '.join(s.value for s in key_store.Scope)}",
        ),
    ] = "notifications:send,notifications:read",
    lanes: Annotated[
        str | None,
        typer.Option(
            metavar="LANES",
            help="comma-separated lanes this key may send on",
            show_default="all lanes",
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            metavar="RATE",
            help="requests allowed, e.g. 100/second or 6000/minute",
            show_default="NOTIFIER_API_RATE_LIMIT, 3000/minute",
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            metavar="SERVICE", help="the service the key belongs to", show_default="default"
        ),
    ] = None,
    key_type: Annotated[
        str,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="live (sends), test (outbox only) or team (the service's allow-list only)",
        ),
    ] = "live",
) -> None:
    """Create an API key. The key is printed once, alone on the last line; only its hash is kept."""
    settings = load_settings()
    try:
        if not name.strip():
            raise ValueError("--name must not be empty")
        scope_list, lane_list = key_store.parse_scopes(scopes), key_store.parse_lanes(lanes)
        rate_limit = key_store.parse_rate_limit(rate_limit)
        kind = key_store.parse_key_type(key_type)
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    with transaction(open_sessions(settings)) as session:
        owner = registry.find(session, service or DEFAULT_SERVICE_NAME)
        if owner is None:
            console.print(f"[red]no service {service}; see `notifier services list`[/red]")
            raise typer.Exit(2)
        row, plaintext = key_store.create_key(
            session, name, scope_list, lane_list, rate_limit, owner.id, kind
        )
    console.print(
        f"created {kind.value} key {row.id} ({name}) of service {owner.name}, "
        f"scopes {', '.join(scope_list)}. Store it now: it is not shown again."
    )
    print(plaintext)


@keys_app.command("set-callback")
def keys_set_callback(
    key_id: Annotated[str, typer.Argument(metavar="KEY", help="key id or prefix")],
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="https URL for status webhooks; omit to remove",
            show_default="none: remove",
        ),
    ] = None,
) -> None:
    """Send this key's final statuses to URL, signed; prints the new signing secret once."""
    settings = load_settings()
    try:
        url = key_store.check_callback_url(url) if url is not None else None
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    with transaction(open_sessions(settings)) as session:
        result = key_store.set_callback(
            session, key_id, url, key_store.callback_sealer(settings.secret_key)
        )
    if result is None:
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    row, secret = result
    if secret is None:
        console.print(f"status webhooks of {row.name} removed")
        return
    console.print(f"status webhooks of {row.name} go to {url}; signing secret (shown once):")
    print(secret)


@keys_app.command("list")
def keys_list(
    output: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="table or json")
    ] = "table",
) -> None:
    """List API keys (never their secrets). The table never cuts the id or the prefix that
    `keys revoke` takes; long scopes and lanes wrap instead."""
    if output not in ("table", "json"):
        console.print("[red]--format is table or json[/red]")
        raise typer.Exit(2)
    settings = load_settings()
    with transaction(open_sessions(settings)) as session:
        rows = [key_store.describe(row, service) for row, service in key_store.list_keys(session)]
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "prefix"):
        table.add_column(column, no_wrap=True, min_width=len(rows[0][column]) if rows else None)
    for column in ("name", "service", "scopes", "lanes", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            row["prefix"],
            row["name"],
            row["service"] + ("" if row["type"] == "live" else f" ({row['type']})"),
            ",".join(row["scopes"]),
            ",".join(row["lanes"] or ["all"]),
            row["created"][:10],
            (row["revoked"] or "")[:10],
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY", help="key id or prefix")],
) -> None:
    """Revoke an API key (takes effect within seconds)."""
    settings = load_settings()
    with transaction(open_sessions(settings)) as session:
        row = key_store.revoke_key(session, key_id)
    if row is None:
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {row.id} ({row.name})")
