from __future__ import annotations

from typing import Any

import pytest

from vibeplane_frontdoor.hosts import AppRef, index_apps, normalize_host, url_host

WAKE = "vibeplane.io/wake"


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Todo-WS-Demo.vibeplane.localhost:8443", "todo-ws-demo.vibeplane.localhost"),
        ("todo-ws-demo.vibeplane.localhost.", "todo-ws-demo.vibeplane.localhost"),
        ("10.250.0.2:30080", "10.250.0.2"),
        ("", None),
        (None, None),
        ("[::1]:80", None),
        ("evil.com/path", None),
        ("a..b", None),
        ("-a.b", None),
        ("x" * 254, None),
    ],
)
def test_the_host_header_is_normalized_or_refused(header: str | None, host: str | None) -> None:
    assert normalize_host(header) == host


def test_url_host() -> None:
    assert url_host("http://todo-ws-demo.apps.example.com/") == "todo-ws-demo.apps.example.com"
    assert url_host("https://user@A.example.com:443/x") == "a.example.com"
    assert url_host(None) is None


def _app(name: str, namespace: str, url: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": extra.get("ann", {})},
        "status": {"url": url, "phase": extra.get("phase", "Running")},
    }


def test_apps_are_indexed_by_their_url_and_by_the_platform_name() -> None:
    index = index_apps(
        [
            _app("todo", "ws-demo", "http://10.250.0.2:30001/", ann={WAKE: "2026-01-01T00:00:00Z"}),
            _app("notes", "ws-b", None, phase="Hibernated"),
        ],
        "vibeplane.localhost",
        WAKE,
    )
    todo = AppRef("ws-demo", "todo", "Running", "2026-01-01T00:00:00Z")
    assert index == {
        "10.250.0.2": todo,
        "todo-ws-demo.vibeplane.localhost": todo,
        "notes-ws-b.vibeplane.localhost": AppRef("ws-b", "notes", "Hibernated", ""),
    }


def test_a_host_two_apps_claim_serves_neither() -> None:
    index = index_apps(
        [
            _app("a", "ns1", "http://same.example.com/"),
            _app("b", "ns2", "http://same.example.com/"),
        ],
        None,
        WAKE,
    )
    assert "same.example.com" not in index
