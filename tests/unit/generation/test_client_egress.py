"""The chat client with the egress rule of a tenant model, against a listener on 127.0.0.1
that counts connections and requests: a refused destination gets neither."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.unit.generation.listener import Listener
from vibeplane.generation import client as model_client
from vibeplane.generation.client import ModelCallError, chat, probe
from vibeplane.generation.egress import EgressPolicy


class Resolver:
    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.table.get(host, [])


def refused(call: Any) -> ModelCallError:
    with pytest.raises(ModelCallError) as info:
        call()
    assert info.value.reason == "EgressRefused"
    assert info.value.retryable is False
    return info.value


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "vibeplane-modelserver.vibeplane-system.svc"],
)
def test_a_tenant_model_on_loopback_or_a_cluster_name_is_refused_unsent(
    listener: Listener, host: str
) -> None:
    # The resolver would send the cluster name to the listener: it is never asked.
    resolver = Resolver({"vibeplane-modelserver.vibeplane-system.svc": ["127.0.0.1"]})
    rule = EgressPolicy.from_settings([], [], resolver)
    url = f"http://{host}:{listener.port}/v1"
    refused(lambda: probe(url, "sk-key", 5, egress=rule))
    refused(lambda: chat(url, "m", [{"role": "user", "content": "x"}], None, 5, egress=rule))
    assert (listener.connections, listener.requests, resolver.lookups) == (0, [], [])


def test_metadata_and_private_names_are_refused_before_any_connect(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[object] = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    resolver = Resolver({"models.example.test": ["10.0.0.7"]})
    rule = EgressPolicy.from_settings([], ["10.96.0.0/12"], resolver)
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://models.example.test/v1",
        "https://10.96.0.1/v1",
    ):
        error = refused(lambda url=url: probe(url, None, 5, egress=rule))
        assert "169.254.169.254" in error.message or "10." in error.message
    assert connects == []
    assert resolver.lookups == ["models.example.test"]


def test_the_allowlist_admits_a_name_and_the_call_goes_to_the_address_checked(
    listener: Listener,
) -> None:
    # A name the system resolver does not know: the call reaches the listener only because
    # it connects to the one address the rule's lookup returned.
    resolver = Resolver({"gateway.example.test": ["127.0.0.1"]})
    rule = EgressPolicy.from_settings(["gateway.example.test"], [], resolver)
    base = f"http://gateway.example.test:{listener.port}/v1"
    probe(base, None, 5, "m", egress=rule)
    answer = chat(base, "m", [{"role": "user", "content": "x"}], None, 5, egress=rule)
    assert answer.text == "hi"
    assert listener.requests == [
        ("/v1/models", f"gateway.example.test:{listener.port}"),
        ("/v1/chat/completions", f"gateway.example.test:{listener.port}"),
    ]
    assert resolver.lookups == ["gateway.example.test", "gateway.example.test"]  # one per call


def test_the_connected_peer_is_checked_before_anything_is_sent(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that lands somewhere else than the address checked (a fault injected at
    the socket boundary) is closed before the request is written."""
    resolver = Resolver({"gateway.example.test": ["127.0.0.2"]})
    rule = EgressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),), resolver=resolver)
    real = socket.create_connection

    def elsewhere(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        assert address[0] == "127.0.0.2"
        return real(("127.0.0.1", address[1]), *args, **kwargs)

    monkeypatch.setattr(model_client.socket, "create_connection", elsewhere)
    error = refused(
        lambda: probe(f"http://gateway.example.test:{listener.port}/v1", None, 5, egress=rule)
    )
    assert "127.0.0.1" in error.message
    assert listener.requests == []


def test_without_a_rule_the_platforms_own_loopback_model_is_called(listener: Listener) -> None:
    probe(f"http://127.0.0.1:{listener.port}/v1", None, 5, "m")
    assert len(listener.requests) == 1
