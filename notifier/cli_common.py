"""What every ``notifier`` sub-command shares: the typer factory, stderr console, settings and
sessions (so command groups can live in modules of their own without importing the root)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from notifier.config import Settings
from notifier.db.migrate import upgrade
from notifier.db.session import make_engine, make_sessionmaker

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


# plain click help: option value labels read HOST, PORT, N (typer's rich help printed <str>,
# <int> and <bool>, even for --help), and every default is shown
def make_typer(help: str, add_completion: bool = True) -> typer.Typer:
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        add_completion=add_completion,
        rich_markup_mode=None,
        context_settings={"show_default": True},
    )


console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as e:
        console.print(f"[red]configuration error:[/red] {e}")
        raise typer.Exit(2) from e


def open_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database, said on stderr (found as notifier/home.py says)."""
    from sqlalchemy.engine import make_url

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    console.print(f"database {shown}", highlight=False, soft_wrap=True)
    upgrade(settings.database_url, pooler=settings.database_pooler)
    return make_sessionmaker(make_engine(settings.database_url, pooler=settings.database_pooler))
