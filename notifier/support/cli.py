"""``notifier staff ...``: support console accounts.

notifier staff create --email ada@example.com --role admin --service billing  # prompts
notifier staff create --email pat@example.com --role platform_admin          # every service
printf '%s\\n' "$PASSWORD" | notifier staff create --email ... --role support   # from stdin

``--service`` takes a service's name or id; support and admin accounts without it belong to the
default service. A platform admin belongs to no service, so naming one is refused.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from notifier.config import Settings
from notifier.db.migrate import upgrade
from notifier.db.models import utcnow
from notifier.db.session import make_engine, make_sessionmaker, transaction
from notifier.services import registry
from notifier.services.models import DEFAULT_SERVICE_NAME, Service
from notifier.support import staff as staff_store
from notifier.support.models import StaffRole

staff_app = typer.Typer(help="Support console staff accounts", no_args_is_help=True)
console = Console(stderr=True)


def _sessions() -> sessionmaker[Session]:
    try:
        settings = Settings()
    except Exception as e:
        console.print(f"[red]configuration error:[/red] {e}")
        raise typer.Exit(2) from e
    upgrade(settings.database_url, pooler=settings.database_pooler)
    return make_sessionmaker(make_engine(settings.database_url, pooler=settings.database_pooler))


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@staff_app.command("create")
def create(
    email: Annotated[str, typer.Option(help="the person's email; they sign in with it")],
    role: Annotated[
        StaffRole,
        typer.Option(
            help="support (read-only, one service), admin (also acts, one service) or "
            "platform_admin (every service)"
        ),
    ] = StaffRole.SUPPORT,
    service: Annotated[
        str | None,
        typer.Option(help="the service's name or id (default: the default service)"),
    ] = None,
) -> None:
    """Create a staff account. The password is prompted for, or read from stdin when piped."""
    if role == StaffRole.PLATFORM_ADMIN and service is not None:
        console.print("[red]a platform admin belongs to no service: leave out --service[/red]")
        raise typer.Exit(2)
    password = _read_password()
    try:
        with transaction(_sessions()) as session:
            service_id, service_name = _service(session, service)
            account = staff_store.create_staff(session, email, role, password, service_id)
            created = (account.id, account.email, account.role)
    except staff_store.StaffAccountError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    where = "every service" if role == StaffRole.PLATFORM_ADMIN else f"the service {service_name}"
    console.print(
        f"created staff account {created[0]} for {created[1]} with the role {created[2]} ({where})"
    )


def _service(session: Session, given: str | None) -> tuple[str, str]:
    """The id and name of the service named (by name or id), the default one if none is."""
    text = (given or DEFAULT_SERVICE_NAME).strip()
    row = registry.find_named(session, text)
    if row is None:
        raise staff_store.StaffAccountError(f"no service {text[:70]!r}")
    return row.id, row.name


@staff_app.command("password")
def password(email: Annotated[str, typer.Option(help="the account's email")]) -> None:
    """Set a new password (prompted, or read from stdin when piped)."""
    new_password = _read_password()
    try:
        with transaction(_sessions()) as session:
            staff_store.set_password(session, email, new_password)
    except staff_store.StaffAccountError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    console.print(f"password changed for {email}")


@staff_app.command("disable")
def disable(email: Annotated[str, typer.Option(help="the account's email")]) -> None:
    """Disable an account: its sessions stop working at the next request."""
    with transaction(_sessions()) as session:
        account = staff_store.find_by_email(session, email.strip().lower())
        if account is None:
            console.print(f"[red]no staff account for {email}[/red]")
            raise typer.Exit(1)
        account.disabled_at = account.disabled_at or utcnow()
    console.print(f"disabled {email}")


@staff_app.command("list")
def list_accounts() -> None:
    """List staff accounts (never their password hashes)."""
    table = Table("id", "email", "role", "service", "created", "last sign-in", "disabled")
    with transaction(_sessions()) as session:
        names = dict(session.execute(select(Service.id, Service.name)).tuples().all())
        for row in staff_store.list_staff(session):
            table.add_row(
                row.id,
                row.email,
                row.role,
                names.get(row.service_id, row.service_id) if row.service_id else "(every service)",
                row.created_at.isoformat(timespec="seconds"),
                row.last_sign_in_at.isoformat(timespec="seconds") if row.last_sign_in_at else "",
                row.disabled_at.isoformat(timespec="seconds") if row.disabled_at else "",
            )
    Console().print(table)
