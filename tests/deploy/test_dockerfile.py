"""deploy/Dockerfile and its ignore file: multi-stage, wheels only, non-root, health-checked.

No Docker engine runs here, so the Dockerfile is read, not built.
"""

from __future__ import annotations

import fnmatch
import json
import re

from ._files import DEPLOY, DOCKERFILE, REPO

TEXT = DOCKERFILE.read_text()
LOGICAL = [
    line.strip()
    for line in TEXT.replace("\\\n", " ").splitlines()
    if line.strip() and not line.strip().startswith("#")
]


def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in LOGICAL:
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, flags=re.IGNORECASE)
        if match:
            current = match.group(2) or match.group(1)
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


STAGES = _stages()
FINAL = list(STAGES.values())[-1]


def test_multi_stage_on_python_311_slim() -> None:
    assert list(STAGES) == ["builder", "runtime"]
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", TEXT)
    assert all(stage[0].split()[1] == "${PYTHON_IMAGE}" for stage in STAGES.values())


def test_builder_makes_wheels_and_final_installs_only_them() -> None:
    builder = " ".join(STAGES["builder"])
    assert "pip wheel --wheel-dir /wheels ." in builder
    final = " ".join(FINAL)
    assert "--no-index" in final and "--find-links=/wheels" in final
    assert "from=builder" in final
    # no build tools, no copies of the sources or of anything secret in the final image
    assert not re.search(r"build-essential|gcc|apt-get install", final)
    assert not any(line.startswith(("COPY", "ADD")) for line in FINAL)


def test_runs_as_a_non_root_user() -> None:
    users = [line.split()[1] for line in FINAL if line.startswith("USER")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_no_secret_in_the_image() -> None:
    for line in LOGICAL:
        if line.startswith(("ENV", "ARG")):
            assert not re.search(r"(SECRET|PASSWORD|TOKEN)[A-Z_]*=(?!\s)", line), line


def test_healthcheck_uses_python_not_curl() -> None:
    (healthcheck,) = [line for line in FINAL if line.startswith("HEALTHCHECK")]
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    assert "curl" not in TEXT.lower().replace("no curl", "")


def test_entrypoint_and_default_command() -> None:
    entrypoint = [line for line in FINAL if line.startswith("ENTRYPOINT")]
    cmd = [line for line in FINAL if line.startswith("CMD")]
    assert json.loads(entrypoint[-1].split(None, 1)[1]) == ["notifier"]
    assert json.loads(cmd[-1].split(None, 1)[1])[:5] == [
        "api",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        hit = fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*")
        hit = hit or (
            pattern.startswith("**/") and fnmatch.fnmatch(path.split("/")[-1], pattern[3:])
        )
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_context() -> None:
    ignore = DEPLOY / "Dockerfile.dockerignore"  # BuildKit: <Dockerfile>.dockerignore
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".git", ".venv", "deploy/secrets/notifier_secret_key", "tests", "bench", "x.db"):
        assert _ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "notifier/cli.py", "notifier/tasks.py",
                 "providers/interface.py"):  # fmt: skip
        assert not _ignored(path, patterns), path
    # everything the builder stage COPYs is in the context
    for line in STAGES["builder"]:
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
                assert not _ignored(source, patterns), source
