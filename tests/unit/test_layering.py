"""Dependencies point one way: what intake and campaigns share lives in notifier/content/,
which imports neither, and intake does not climb into campaigns; notifier does not import the
workers (only the entry points that start them do), and providers import neither; the README
names every status reason code. Imports inside functions count as much as those at the top."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from notifier.reasons import ReasonCode

ROOT = Path(__file__).resolve().parents[2]


# the command line and the embedded development stack start workers: they sit above both
ENTRY_POINTS = {"notifier/cli.py", "notifier/dev.py"}


def _imports(package: str) -> set[tuple[str, str]]:
    """(module file, imported module) for every import in a package's files, at any depth."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        if str(path.relative_to(ROOT)) in ENTRY_POINTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                found.update((path.name, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("notifier/notifications", ("notifier.campaigns",)),
        ("notifier/content", ("notifier.campaigns", "notifier.notifications")),
        ("notifier", ("workers",)),
        ("providers", ("notifier", "workers")),
    ],
)
def test_a_package_does_not_import_what_sits_above_it(
    package: str, forbidden: tuple[str, ...]
) -> None:
    wrong = sorted(
        (name, module)
        for name, module in _imports(package)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    )
    assert wrong == []


def test_the_readme_names_every_status_reason_code() -> None:
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Why a notification has its status") :].split("\n\n")[0]
    assert set(re.findall(r"`([a-z_]+)`", paragraph)) >= {code.value for code in ReasonCode}
