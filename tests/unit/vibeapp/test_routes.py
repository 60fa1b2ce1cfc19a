"""The front door's pure builders: hostnames, the HTTPRoute, the ReferenceGrant, hostname
claims (UPDATE_GOLDEN=1 rewrites the golden files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from vibeplane.vibeapp import routes

GOLDEN = Path(__file__).parent / "golden"
UID = "00000000-0000-4000-8000-00000000a991"
WORKSPACE_UID = "00000000-0000-4000-8000-0000000000ee"
GATEWAY = routes.GatewayRef("vibeplane", "vibeplane-gateway", "http")
FRONT = routes.Backend("vibeplane-frontdoor", "vibeplane-system", 80)


def _golden(name: str, document: object) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump(document, sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; UPDATE_GOLDEN=1 to accept"


def test_preview_route_grant_and_claim_match_golden() -> None:
    host = routes.preview_hosts("todo", "ws-demo", "apps.example.com")[0]
    route = routes.http_route("todo-preview", "todo", "ws-demo", UID, [host], GATEWAY, FRONT)
    _golden("preview-httproute", route)
    _golden("reference-grant", routes.reference_grant("ws-demo", FRONT, "demo", WORKSPACE_UID))
    claim = routes.hostname_claim(host, "vibeplane-system", "todo", "ws-demo", UID)
    _golden("hostname-claim", claim)


def test_the_preview_host_is_readable_first_then_hashed() -> None:
    hosts = routes.preview_hosts("todo", "ws-demo", "Apps.Example.com.")
    assert hosts[0] == "todo-ws-demo.apps.example.com"
    assert hosts[1].startswith("todo-ws-demo-")
    assert all(routes.valid_hostname(h) for h in hosts)


def test_two_apps_with_the_same_readable_host_differ_in_the_hashed_one() -> None:
    first = routes.preview_hosts("a-b", "c", "d.io")
    second = routes.preview_hosts("a", "b-c", "d.io")
    assert first[0] == second[0] == "a-b-c.d.io"
    assert first[1] != second[1]


@pytest.mark.parametrize(
    ("app", "namespace"),
    [("x" * 60, "ws-demo"), ("web.v2", "ws-demo"), ("a" * 253, "n" * 63)],
)
def test_names_that_make_no_readable_label_get_only_a_hashed_one(app: str, namespace: str) -> None:
    hosts = routes.preview_hosts(app, namespace, "apps.example.com")
    assert len(hosts) == 1
    label = hosts[0].split(".")[0]
    assert len(label) <= 63
    assert routes.valid_hostname(hosts[0])


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("shop.example.com", True),
        ("a.b", True),
        ("Shop.example.com", False),
        ("*.example.com", False),
        ("example", False),
        ("-a.example.com", False),
        ("a..example.com", False),
        ("example.com.", False),
        ("10.0.0.1", False),
        ("a" * 64 + ".com", False),
        ("", False),
    ],
)
def test_valid_hostname(host: str, valid: bool) -> None:
    assert routes.valid_hostname(host) is valid


def test_under_a_domain() -> None:
    assert routes.under("a.apps.example.com", "apps.example.com")
    assert routes.under("apps.example.com", "apps.example.com.")
    assert not routes.under("evilapps.example.com", "apps.example.com")
    assert not routes.under("a.example.com", "")


def test_the_claim_names_its_holder() -> None:
    claim = routes.hostname_claim("h.example.com", "vibeplane-system", "todo", "ws-demo", UID)
    assert routes.claim_holder(claim) == ("ws-demo", "todo")
    assert routes.claim_holder(None) is None


def test_a_route_in_the_backend_namespace_names_no_namespace() -> None:
    backend = routes.Backend("todo-published", "ws-demo", 80)
    route = routes.http_route("todo", "todo", "ws-demo", UID, ["a.b"], GATEWAY, backend)
    assert "namespace" not in route["spec"]["rules"][0]["backendRefs"][0]
