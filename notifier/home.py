"""Where the embedded default keeps its data (SQLite database, outbox, beat schedule).

The same directory must be found whichever directory a command runs from: ``notifier keys
create`` run from elsewhere used to create a fresh empty database, whose keys the running server
then answered with 401. The order:

1. ``NOTIFIER_DATA_DIR``: this directory, exactly (what deployments and tests set);
2. ``NOTIFIER_HOME``: ``$NOTIFIER_HOME/.notifier``;
3. the nearest ``.notifier`` directory in the working directory or one of its parents, or the
   root of a notifier checkout (a ``pyproject.toml`` naming the project ``notifier``) found
   the same way: ``<that directory>/.notifier``;
4. otherwise ``./.notifier`` (created on first use).

The CLI says which database it uses, on standard error, every time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DATA_DIR_NAME = ".notifier"
_PROJECT_NAME = re.compile(r'^name\s*=\s*"notifier"\s*$', re.MULTILINE)


def discover_data_dir(start: Path | None = None) -> Path:
    home = os.environ.get("NOTIFIER_HOME")
    if home:
        return Path(home).expanduser() / DATA_DIR_NAME
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / DATA_DIR_NAME).is_dir() or _is_checkout(directory):
            return directory / DATA_DIR_NAME
    return Path(DATA_DIR_NAME)


def _is_checkout(directory: Path) -> bool:
    project = directory / "pyproject.toml"
    try:
        return project.is_file() and bool(_PROJECT_NAME.search(project.read_text(errors="replace")))
    except OSError:
        return False
