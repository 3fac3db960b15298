"""The shipped compose and Kubernetes files trust X-Forwarded-* only from the proxy in front of
the API, never from everyone (the spoof itself is proven in tests/support/test_forwarded_for.py)."""

from __future__ import annotations

import ipaddress

import yaml

from ._files import COMPOSE_FILE, KUBERNETES, REPO


def test_nothing_shipped_trusts_every_forwarding_address() -> None:
    for path in [COMPOSE_FILE, *KUBERNETES.rglob("*.yaml")]:
        text = path.read_text()
        assert "FORWARDED_ALLOW_IPS" not in text, path.relative_to(REPO)
        for document in yaml.safe_load_all(text):
            data = (document or {}).get("data") or {}
            assert "*" not in str(data.get("NOTIFIER_TRUSTED_PROXIES", "")), path.name


def test_compose_trusts_exactly_nginx_at_its_fixed_address() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    trusted = compose["services"]["api"]["environment"]["NOTIFIER_TRUSTED_PROXIES"]
    nginx = compose["services"]["nginx"]["networks"]["frontend"]["ipv4_address"]
    assert trusted == nginx
    subnet = compose["networks"]["frontend"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx) in ipaddress.ip_network(subnet)


def test_kubernetes_names_the_ingress_range() -> None:
    config = yaml.safe_load((KUBERNETES / "configmap.yaml").read_text())
    for network in config["data"]["NOTIFIER_TRUSTED_PROXIES"].split(","):
        assert ipaddress.ip_network(network.strip()).is_private
