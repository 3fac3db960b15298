"""What the private servers of ``tests/private_services.py`` need from the operating system:
free ports, whether one answers, and which processes make up a server (read from /proc)."""

from __future__ import annotations

import glob
import secrets
import socket
from pathlib import Path


def free_port(low: int | None = None, high: int | None = None) -> int:
    """A TCP port of 127.0.0.1 nothing listens on now; within [low, high) when given."""
    for _ in range(200):
        if low is None:
            port = 0
        else:
            assert high is not None, "a low bound needs a high one"
            port = secrets.randbelow(high - low) + low
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port found")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def server_processes(leader: int) -> list[int]:
    """The leader's process group and all its descendants, from /proc (what a kill must reach).

    Both, because PostgreSQL puts every child (backends, checkpointer...) in a session of its own,
    while Erlang's helpers stay in the group; a zombie counts as gone.
    """
    children: dict[int, list[int]] = {}
    members = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:  # exited meanwhile
            continue
        state, ppid, pgid = text[text.rindex(")") + 2 :].split()[:3]
        if state == "Z":
            continue
        pid = int(stat.split("/")[2])
        children.setdefault(int(ppid), []).append(pid)
        if int(pgid) == leader:
            members.add(pid)
    todo = list(members | ({leader} if Path(f"/proc/{leader}").exists() else set()))
    while todo:
        pid = todo.pop()
        members.add(pid)
        todo.extend(child for child in children.get(pid, []) if child not in members)
    return sorted(members)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"
