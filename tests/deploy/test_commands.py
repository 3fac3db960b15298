"""Every command a deployment file runs is a real `notifier` subcommand.

Commands come from the Dockerfile's ENTRYPOINT/CMD, every Compose service built from
deploy/Dockerfile, every Kubernetes container running the notifier image and its exec probes.
They are checked against the fixed list of subcommands the deployment may use and, when the
CLI (`notifier.cli`, a typer app) is importable, parsed by the real command tree, so a
renamed command or option fails here rather than in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from ._files import (
    ALLOWED_COMMANDS,
    DOCKERFILE,
    command_list,
    compose,
    is_notifier_image,
    notifier_containers,
    readme_processes,
)


def _dockerfile_instruction(name: str) -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.+)$", text, flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    value = json.loads(found[-1])  # exec form only: a shell form would break signals
    assert isinstance(value, list)
    return value


def deployment_commands() -> Iterator[tuple[str, list[str]]]:
    """(where, argv after `notifier`) for every command the deployment files and the README's
    production process list run."""
    assert _dockerfile_instruction("ENTRYPOINT") == ["notifier"]
    yield "Dockerfile CMD", _dockerfile_instruction("CMD")
    for name, service in compose()["services"].items():
        if is_notifier_image(service):
            assert "entrypoint" not in service, f"{name} must keep the image's entry point"
            yield f"compose {name}", command_list(service.get("command"))
    for number, argv in enumerate(readme_processes()):
        yield f"README process {number + 1}", argv
    for name, container in notifier_containers():
        command = container.get("command")
        if command:
            assert command[0] == "notifier", (name, command)
        yield f"kubernetes {name}", list((command or [])[1:]) + list(container.get("args", []))
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            exec_command = container.get(probe, {}).get("exec", {}).get("command")
            if exec_command:
                assert exec_command[0] == "notifier", (name, probe, exec_command)
                yield f"kubernetes {name} {probe}", exec_command[1:]


def _subcommand(argv: list[str]) -> tuple[str, ...]:
    words = []
    for arg in argv:
        if arg.startswith("-"):
            break
        words.append(arg)
    for size in (2, 1):
        if tuple(words[:size]) in ALLOWED_COMMANDS:
            return tuple(words[:size])
    return tuple(words)


COMMANDS = list(deployment_commands())


def test_every_role_is_present() -> None:
    used = {_subcommand(argv) for _where, argv in COMMANDS}
    assert {("api",), ("worker",), ("beat",), ("db", "upgrade")} <= used


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_is_an_allowed_subcommand(where: str, argv: list[str]) -> None:
    assert argv, f"{where}: no command (the image default would run)"
    assert _subcommand(argv) in ALLOWED_COMMANDS, f"{where}: `notifier {' '.join(argv)}`"


def _cli_root():
    try:
        from notifier.cli import app
    except ImportError as e:
        pytest.skip(f"notifier.cli is not importable yet ({e}); checked against the fixed list")
    import typer.main

    return typer.main.get_command(app)


def _is_group(command: object) -> bool:
    # typer ships its own copy of click, so no isinstance check against `click.Group`
    return isinstance(getattr(command, "commands", None), dict)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_parses_with_the_real_cli(where: str, argv: list[str]) -> None:
    command = _cli_root()
    remaining = list(argv)
    path = ["notifier"]
    while _is_group(command):
        assert remaining, f"{where}: `{' '.join(path)}` needs a subcommand"
        name = remaining.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, (
            f"{where}: `{' '.join(path)}` has no command {name!r} "
            f"(it has {sorted(command.commands)})"
        )
        path.append(name)
        command = sub
    assert len(path) > 1, f"{where}: no subcommand"
    try:
        command.make_context(" ".join(path), remaining)
    except Exception as e:  # click's UsageError/BadParameter, from typer's copy
        message = e.format_message() if hasattr(e, "format_message") else repr(e)
        pytest.fail(f"{where}: `{' '.join(path + remaining)}` does not parse: {message}")


def test_fixed_list_matches_the_real_cli() -> None:
    root = _cli_root()
    for words in sorted(ALLOWED_COMMANDS):
        command = root
        for word in words:
            assert _is_group(command), words
            assert word in command.commands, f"`notifier {' '.join(words)}` is not registered"
            command = command.commands[word]
