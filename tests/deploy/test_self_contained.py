"""The repository documents itself: every document a file names is a file of the repository.

A markdown link, or a ``*.md`` name in a document, a docstring or a comment, must resolve to a
file here (relative to the naming file, or to the repository's root); nothing points upwards out
of the checkout. So a reader never meets a reference to a document they cannot open.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ._files import REPO

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAMED_DOCUMENT = re.compile(r"(?<![\w/.-])((?:\.\./|[\w.-]+/)*[\w-]+\.md)\b")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return [REPO / line for line in out.splitlines() if line]


_TRACKED_NAMES = {path.name for path in _tracked("*.md")}


def _resolves(source: Path, target: str) -> bool:
    if target.startswith(("http://", "https://", "mailto:")):
        return True
    if target.startswith("../") and not (source.parent / target).resolve().is_relative_to(REPO):
        return False
    if "/" not in target:  # a bare name: a document of that name somewhere in the repository
        return target in _TRACKED_NAMES
    candidates = [source.parent / target, REPO / target]
    return any(c.resolve().is_relative_to(REPO) and c.exists() for c in candidates)


def _references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = NAMED_DOCUMENT.findall(text)
    if path.suffix == ".md":
        found += LINK.findall(text)
    return found


def test_every_document_named_in_the_repository_is_in_it() -> None:
    files = _tracked("*.md", "*.py", "*.toml", "*.yml", "*.yaml", "Makefile", ".ci/*")
    assert len(files) > 100  # the scan sees the repository, not an empty list
    missing = [
        f"{path.relative_to(REPO)}: {target}"
        for path in files
        if path != Path(__file__).resolve()  # its own examples below are meant not to resolve
        for target in _references(path)
        if not _resolves(path, target)
    ]
    assert missing == []


def test_a_reference_outside_the_checkout_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a name of a document that is not here is reported."""
    doc = REPO / "README.md"
    assert _resolves(doc, "ARCHITECTURE.md")
    assert not _resolves(doc, "../elsewhere/NOTES.md")
    assert not _resolves(doc, "NO_SUCH_DOCUMENT.md")
    (tmp_path / "x.md").write_text("see [the notes](../outside/PLAN.md) and OTHER.md")
    assert set(_references(tmp_path / "x.md")) == {"OTHER.md", "../outside/PLAN.md"}
    assert not any(_resolves(tmp_path / "x.md", t) for t in _references(tmp_path / "x.md"))
