"""``notifier services``: create, list, show and change services, and their allow-lists.

Per-lane options take ``LANE=VALUE`` and change only that lane (``--chain sms.promotional=``
returns the lane to the platform's chain); every change is checked against the platform's
configuration exactly as the admin API checks it (notifier/services/registry.py).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from notifier.cli_common import console, load_settings, make_typer, open_sessions
from notifier.db.session import transaction
from notifier.errors import NotifierError
from notifier.keys import callback_sealer
from notifier.services import registry
from notifier.services.models import Service
from notifier.services.platform import load_platform
from notifier.services.schemas import ServiceChanges
from providers.interface import Channel

services_app = make_typer("Services: the teams that share this notifier")

LaneOption = Annotated[
    list[str] | None,
    typer.Option(metavar="LANE=VALUE", help="repeatable; an empty VALUE clears that lane"),
]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(2)


def _settle(settings: Any, work: Any) -> Any:
    """Run ``work(session)`` in one transaction; refusals print their message and exit 2."""
    try:
        with transaction(open_sessions(settings)) as session:
            return work(session)
    except NotifierError as e:
        raise _fail(e.message) from e
    except ValidationError as e:
        raise _fail(
            "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        ) from e


def _print_secret(name: str, secret: str | None) -> None:
    if secret is not None:
        console.print(f"status webhooks of {name}: signing secret (shown once):")
        print(secret)


@services_app.command("create")
def services_create(
    name: Annotated[str, typer.Option(metavar="NAME", help="a slug, e.g. billing")],
    trial: Annotated[
        bool, typer.Option("--trial/--no-trial", help="trial mode: send only to the allow-list")
    ] = True,
    callback_url: Annotated[
        str | None, typer.Option(metavar="URL", help="status webhooks of this service")
    ] = None,
) -> None:
    """Create a service (in trial mode unless --no-trial)."""
    settings = load_settings()
    given: dict[str, Any] = {"trial": trial}
    if callback_url is not None:
        given["callback_url"] = callback_url

    def work(session: Any) -> tuple[Service, str | None]:
        changes = ServiceChanges.model_validate(given)
        return registry.create(
            session, name, changes, load_platform(settings), callback_sealer(settings.secret_key)
        )

    row, secret = _settle(settings, work)
    console.print(f"created service {row.name} ({row.id}){' in trial mode' if row.trial else ''}")
    _print_secret(row.name, secret)


@services_app.command("list")
def services_list(
    output: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="table or json")
    ] = "table",
) -> None:
    """List services."""
    if output not in ("table", "json"):
        raise _fail("--format is table or json")
    settings = load_settings()
    rows = _settle(
        settings,
        lambda s: [registry.describe(r).model_dump(mode="json") for r in registry.list_services(s)],
    )
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("name", "id", "trial", "created"):
        table.add_column(column, no_wrap=column != "name", overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["id"], "yes" if row["trial"] else "", row["created_at"][:10])
    Console().print(table)


@services_app.command("show")
def services_show(name: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """One service's settings and allow-list, as JSON."""
    settings = load_settings()

    def work(session: Any) -> dict[str, Any]:
        row = registry.get(session, name)
        shown = registry.describe(row).model_dump(mode="json")
        shown["allowed_recipients"] = [
            {"id": e.id, "channel": e.channel, "recipient": e.recipient}
            for e in registry.allowed(session, row)
        ]
        return shown

    print(json.dumps(_settle(settings, work), indent=2))


@services_app.command("update")
def services_update(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    trial: Annotated[
        bool | None, typer.Option("--trial/--no-trial", help="--no-trial lifts trial mode")
    ] = None,
    sender: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LANE:FIELD=VALUE",
            help="repeatable, e.g. email.transactional:from_address=billing@example.com; "
            "an empty VALUE removes the field",
        ),
    ] = None,
    chain: LaneOption = None,
    rate_limit: LaneOption = None,
    daily_quota: LaneOption = None,
    retention_days: Annotated[
        int | None, typer.Option(metavar="DAYS", help="0: the platform's retention")
    ] = None,
    callback_url: Annotated[
        str | None, typer.Option(metavar="URL", help="an empty URL removes status webhooks")
    ] = None,
) -> None:
    """Change the settings named; the others stay as they are."""
    settings = load_settings()

    def work(session: Any) -> tuple[Service, str | None]:
        row = registry.get(session, name)
        given: dict[str, Any] = {}
        if trial is not None:
            given["trial"] = trial
        if sender:
            given["senders"] = _senders(dict(row.senders or {}), sender)
        for setting, values, convert in (
            ("provider_chains", chain, lambda v: v.split(",")),
            ("rate_limits", rate_limit, str),
            ("daily_quotas", daily_quota, int),
        ):
            if values:
                given[setting] = _per_lane(dict(getattr(row, setting) or {}), values, convert)
        if retention_days is not None:
            given["retention_days"] = retention_days or None
        if callback_url is not None:
            given["callback_url"] = callback_url or None
        changes = ServiceChanges.model_validate(given)
        secret = registry.apply(
            row, changes, load_platform(settings), callback_sealer(settings.secret_key)
        )
        return row, secret

    row, secret = _settle(settings, work)
    console.print(f"updated service {row.name}")
    _print_secret(row.name, secret)


@services_app.command("allow")
def services_allow(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    recipient: Annotated[str, typer.Argument(metavar="RECIPIENT")],
    channel: Annotated[
        Channel | None,
        typer.Option(help="default: email for an address, sms for a number, else push"),
    ] = None,
) -> None:
    """Let the service's team keys (and the service in trial mode) send to RECIPIENT."""
    settings = load_settings()
    kind = channel or _guess_channel(recipient)
    entry = _settle(settings, lambda s: registry.allow(s, registry.get(s, name), kind, recipient))
    console.print(f"{name} may send to {entry.recipient} ({entry.channel})", highlight=False)


def _guess_channel(recipient: str) -> Channel:
    if "@" in recipient:
        return Channel.EMAIL
    if recipient.strip().startswith("+"):
        return Channel.SMS
    return Channel.PUSH


def _split(text: str, sep: str, shape: str) -> tuple[str, str]:
    head, found, tail = text.partition(sep)
    if not found or not head.strip():
        raise _fail(f"{text!r} is not {shape}")
    return head.strip(), tail.strip()


def _per_lane(current: dict[str, Any], values: list[str], convert: Any) -> dict[str, Any]:
    for text in values:
        lane, value = _split(text, "=", "LANE=VALUE")
        if value:
            try:
                current[lane] = convert(value)
            except ValueError as e:
                raise _fail(f"{text!r}: {e}") from e
        else:
            current.pop(lane, None)
    return current


def _senders(current: dict[str, Any], values: list[str]) -> dict[str, Any]:
    for text in values:
        lane, assignment = _split(text, ":", "LANE:FIELD=VALUE")
        field, value = _split(assignment, "=", "LANE:FIELD=VALUE")
        sender = dict(current.get(lane) or {})
        if value:
            sender[field] = value
        else:
            sender.pop(field, None)
        if sender:
            current[lane] = sender
        else:
            current.pop(lane, None)
    return current
