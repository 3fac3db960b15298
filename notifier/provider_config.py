"""Provider chains per lane, from the providers file, found by entry point.

``NOTIFIER_PROVIDERS_FILE`` names a TOML file (documented in README "Providers")::

    [providers.ses-main]
    type = "ses"
    region = "eu-west-1"
    access_key_id_env = "AWS_ACCESS_KEY_ID"          # option from an environment variable
    secret_access_key_file = "/run/secrets/aws_key"  # option from a secret file

    [lanes]
    "email.transactional" = ["ses-main", "smtp-backup"]

An option named ``X_env`` becomes ``X`` read from that environment variable; ``X_file`` becomes
``X`` read from that file, unless the type's option schema declares ``X_file`` itself (a path the
adapter opens: ``ca_file``, ``key_file``, ``service_account_file``). A secret option written
literally in the file is refused: one the type's schema marks secret, or whose name the one list
of secret names (``notifier/redaction.py``) covers, for types that declare no schema. Without a
providers file every lane uses the outbox provider (the embedded default).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from notifier.redaction import is_secret
from providers.interface import ConfigurationError, Lane, Provider
from providers.options import ProviderOptions

ENTRY_POINT_GROUP = "notifier.providers"


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


def provider_classes(kinds: set[str] | None = None) -> dict[str, type[Provider]]:
    """Provider classes by type name, from the entry points; only ``kinds`` are imported (a
    worker that sends through SMTP need not import boto3)."""
    classes: dict[str, type[Provider]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if kinds is not None and ep.name not in kinds:
            continue
        try:
            classes[ep.name] = ep.load()
        except TypeError as e:  # e.g. a plug-in still overriding send(): said at class creation
            raise ConfigurationError(f"provider type {ep.name!r} cannot be used: {e}") from e
    return classes


def default_chains(outbox_dir: Path, latency_ms: float = 0) -> dict[Lane, list[ProviderSpec]]:
    spec = ProviderSpec(
        name="outbox", kind="outbox", options={"path": str(outbox_dir), "latency_ms": latency_ms}
    )
    return {lane: [spec] for lane in Lane}


def simulator_chains(outbox_dir: Path) -> dict[Lane, list[ProviderSpec]]:
    """The chain of test notifications on every lane: an outbox provider named ``simulator``
    (so a test's provider says where it went), whatever the providers file configures."""
    spec = ProviderSpec(name="simulator", kind="outbox", options={"path": str(outbox_dir)})
    return {lane: [spec] for lane in Lane}


def load_chains(path: Path | None, outbox_dir: Path) -> dict[Lane, list[ProviderSpec]]:
    if path is None:
        return default_chains(outbox_dir)
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError(f"cannot read providers file {path}: {e}") from e
    blocks = document.get("providers", {})
    classes = provider_classes({str(block.get("type")) for block in blocks.values()})
    specs = {name: _spec(name, block, classes) for name, block in blocks.items()}
    chains: dict[Lane, list[ProviderSpec]] = {}
    for lane_name, names in document.get("lanes", {}).items():
        try:
            lane = Lane(lane_name)
        except ValueError as e:
            raise ConfigurationError(f"unknown lane {lane_name!r} in {path}") from e
        missing = [n for n in names if n not in specs]
        if missing:
            raise ConfigurationError(f"lane {lane_name} names undefined providers {missing}")
        chains[lane] = [specs[n] for n in names]
    return chains


def _spec(name: str, block: dict[str, Any], classes: dict[str, type[Provider]]) -> ProviderSpec:
    if "type" not in block:
        raise ConfigurationError(f"provider {name!r} has no type")
    kind = classes.get(block["type"])  # an unknown type is refused when it is built
    schema = kind.options_schema if kind is not None else ProviderOptions
    declared, secrets = set(schema.model_fields), schema.secret_names()
    options: dict[str, Any] = {}
    for key, value in block.items():
        if key == "type":
            continue
        if key.endswith("_env") and key not in declared:
            options[key[:-4]] = _from_env(name, str(value))
        elif key.endswith("_file") and key not in declared:
            options[key[:-5]] = _from_file(name, str(value))
        elif key in secrets or (key not in declared and is_secret(key)):
            raise ConfigurationError(
                f"provider {name!r}: {key} is a secret; use {key}_env or {key}_file "
                "instead of writing it in the file"
            )
        else:
            options[key] = value
    return ProviderSpec(name=name, kind=block["type"], options=options)


def _from_env(provider: str, variable: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise ConfigurationError(
            f"provider {provider!r}: environment variable {variable} is not set"
        )
    return value


def _from_file(provider: str, path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise ConfigurationError(
            f"provider {provider!r}: cannot read secret file {path}: {e.strerror}"
        ) from e


def build_chains(chains: dict[Lane, list[ProviderSpec]]) -> dict[Lane, list[Provider]]:
    """Instantiate one provider object per (spec, lane)."""
    classes = provider_classes({spec.kind for specs in chains.values() for spec in specs})
    built: dict[Lane, list[Provider]] = {}
    for lane, specs in chains.items():
        built[lane] = []
        for spec in specs:
            if spec.kind not in classes:
                raise ConfigurationError(
                    f"provider {spec.name!r}: no provider type {spec.kind!r} "
                    f"(known: {sorted(classes)})"
                )
            built[lane].append(classes[spec.kind](spec.name, lane, spec.options))
    return built


def check_lanes(chains: dict[Lane, list[ProviderSpec]], lanes: list[Lane]) -> list[Provider]:
    """Build (and close again) every provider of ``lanes``: a worker refuses to start when one
    cannot be built (a missing secret, a bad option), instead of claiming messages it can never
    send. A lane with no provider at all is allowed (a deployment that sends only email runs the
    generic worker command): its messages wait, and the caller warns about it."""
    import asyncio

    built = build_chains({lane: chains[lane] for lane in lanes if chains.get(lane)})

    async def close_all() -> None:
        for providers in built.values():
            for provider in providers:
                await provider.close()

    asyncio.run(close_all())
    return [provider for providers in built.values() for provider in providers]
