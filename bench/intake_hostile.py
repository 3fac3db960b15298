"""Intake under a hostile caller: ``python -m bench.intake --hostile`` (see ``bench.intake``).

The valid key's requests/s and p99 alone, then again while a second key sends expensive
templates (killed at the render deadline, refused by the operator bounds, or over the memory cap)
and unstorable rows (NUL) on its own connections, in alternating rounds of one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile

from bench.common import (
    api_command,
    combined_rounds,
    emit,
    free_port,
    keyed_stack,
    notifier,
    parse_wrk,
    process,
    wrk,
    wrk_command,
)
from bench.intake import BODY

HOSTILE = [
    {
        **BODY,
        "body": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    },
    {**BODY, "body": "{{ (9**(9**8)) % 7 }}"},
    {**BODY, "body": "{{ 'a' * 10**9 }}"},
    {
        **BODY,
        "body": "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    },
    {**BODY, "reference": "order-\u0000"},
    {**BODY, "data": {"name": "Ada\u0000"}},
]


def hostile_wrk(
    url: str, key: str, seconds: int, connections: int, kinds: list[dict]
) -> subprocess.Popen:
    """wrk cycling through the hostile bodies on its own connections (started, not awaited)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # wrk reads it later
    bodies = ", ".join(json.dumps(json.dumps(b)) for b in kinds)
    script.write(
        f"local bodies = {{{bodies}}}\nlocal n = 0\n"
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        "request = function()\n  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\nend\n"
    )
    script.close()
    return subprocess.Popen(
        wrk_command(url, script.name, seconds, connections, threads=1),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def hostile(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    with keyed_stack(args) as (env, key):
        # the second key has production's default per-key limit (the valid key's is lifted so
        # that it measures throughput); --attacker-rate-limit none lifts it too
        limit = (
            [] if args.attacker_rate_limit == "none" else ["--rate-limit", args.attacker_rate_limit]
        )
        attacker = notifier(env, "keys", "create", "--name", "attacker", *limit)
        attacker = attacker.strip().splitlines()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1/notifications"
        api = api_command(port, args.api_workers)
        auth = {"Authorization": f"Bearer {key}"}
        with process(api, env, ready_url=f"http://127.0.0.1:{port}/healthz"):
            wrk(url, json.dumps(BODY), auth, 2, args.connections)  # warm-up: pools, caches
            kinds = {
                "all": HOSTILE,
                "templates": HOSTILE[:4],
                "rows": HOSTILE[4:],
                "valid": [BODY],
            }[args.hostile_kind]
            # alternate solo and contended rounds: the machine is shared, and its load drifts
            # more between minutes than between adjacent rounds
            solos, contendeds, attacks = [], [], []
            for _ in range(args.rounds):
                solos.append(wrk(url, json.dumps(BODY), auth, args.seconds, args.connections))
                attack = hostile_wrk(
                    url, attacker, args.seconds + 2, args.hostile_connections, kinds
                )
                contendeds.append(wrk(url, json.dumps(BODY), auth, args.seconds, args.connections))
                attacks.append(parse_wrk(attack.communicate(timeout=args.seconds + 60)[0]))
    solo, contended, attacked = (
        combined_rounds(solos),
        combined_rounds(contendeds),
        combined_rounds(attacks),
    )
    emit(
        {
            "benchmark": "intake_hostile",
            "broker": args.broker,
            "connections": args.connections,
            "hostile_connections": args.hostile_connections,
            "attacker_rate_limit": args.attacker_rate_limit,
            "hostile_kind": args.hostile_kind,
            "seconds": args.seconds,
            "api_workers": args.api_workers,
            "solo_rps": solo["rps"],
            "solo_p99_ms": solo["p99_ms"],
            "solo_non_2xx": solo["non_2xx"],
            "contended_rps": contended["rps"],
            "contended_p99_ms": contended["p99_ms"],
            "contended_non_2xx": contended["non_2xx"],
            "contended_socket_errors": contended["socket_errors"],
            "throughput_kept": round(contended["rps"] / solo["rps"], 3),
            "p99_ratio": round(contended["p99_ms"] / solo["p99_ms"], 2),
            "attacker_rps": attacked["rps"],
            "attacker_non_2xx": attacked["non_2xx"],
            "solo_rounds": solo["rounds"],
            "contended_rounds": contended["rounds"],
        }
    )
