"""The settings the deployment files rely on exist in `notifier.config.Settings`.

Compose and Kubernetes pass every credential as a file (`NOTIFIER_<NAME>_FILE`). This reads
each such variable through the real Settings class, so a deployment can never point at a
`*_FILE` variable the application ignores (it would silently fall back to a default).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ._files import compose, kubernetes_objects

config = pytest.importorskip("notifier.config", reason="notifier.config is not importable yet")


def _file_settings() -> set[str]:
    names: set[str] = set()
    for service in compose()["services"].values():
        for key in service.get("environment") or {}:
            if key.startswith("NOTIFIER_") and key.endswith("_FILE"):
                names.add(key)
    for _path, doc in kubernetes_objects():
        if doc["kind"] == "ConfigMap":
            names |= {k for k in doc["data"] if k.startswith("NOTIFIER_") and k.endswith("_FILE")}
    return names


FILE_SETTINGS = sorted(_file_settings())


def test_the_deployment_passes_its_credentials_as_files() -> None:
    assert {
        "NOTIFIER_SECRET_KEY_FILE",
        "NOTIFIER_DATABASE_URL_FILE",
        "NOTIFIER_BROKER_URL_FILE",
        "NOTIFIER_REDIS_URL_FILE",
    } <= set(FILE_SETTINGS)


@pytest.mark.parametrize("variable", FILE_SETTINGS)
def test_settings_read_the_file_variant(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("NOTIFIER_"):
            monkeypatch.delenv(key)
    field = variable.removeprefix("NOTIFIER_").removesuffix("_FILE").lower()
    assert field in config.Settings.model_fields, f"Settings has no field {field!r}"
    value = {
        "secret_key": "s" * 48,
        "database_url": "postgresql+psycopg://notifier:pw@postgres:5432/notifier",
        "broker_url": "amqp://notifier:pw@rabbitmq:5672/notifier",
        "redis_url": "redis://:pw@redis:6379/0",
    }.get(field, "value-from-file")
    secret = tmp_path / field
    secret.write_text(value + "\n")
    monkeypatch.setenv(variable, str(secret))
    settings = config.Settings()
    assert str(getattr(settings, field)) == value, f"{variable} is not read by Settings"
