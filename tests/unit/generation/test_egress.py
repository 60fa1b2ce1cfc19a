"""The egress rule for tenant models: which names and addresses are refused, before any lookup
or connection, and what the platform's allowlist admits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from vibeplane.generation.egress import EgressPolicy, EgressRefused


class Resolver:
    """Answers from a table and counts lookups (nothing leaves the process)."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        return self.table.get(host, [])


def policy(table: Mapping[str, Sequence[str]] | None = None, **kwargs: object) -> EgressPolicy:
    allow = kwargs.pop("allow", ())
    cidrs = kwargs.pop("cidrs", ())
    return EgressPolicy.from_settings(allow, cidrs, Resolver(table or {}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local"),
        ("10.96.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.10", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared address space"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_an_address_that_is_not_public_is_refused(host: str, why: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        policy().pin(host, 80)
    assert why in refused.value.message
    assert "models.egress.allow" in refused.value.message


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "kubernetes.default.svc",
        "vibeplane-modelserver.vibeplane-system.svc",
        "b-preview.ws-b.svc.cluster.local",
        "modelserver",
        "metadata.google.internal",
        "printer.local",
    ],
)
def test_a_cluster_or_host_name_is_refused_without_a_lookup(host: str) -> None:
    rule = policy({host: ["93.184.216.34"]})
    with pytest.raises(EgressRefused, match="cluster-internal or host-local"):
        rule.pin(host, 80)
    assert rule.resolver.lookups == []  # type: ignore[attr-defined]


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    rule = policy({"models.example.test": ["10.0.0.7"]})
    with pytest.raises(EgressRefused, match=r"models.example.test resolves to 10.0.0.7, a private"):
        rule.pin("models.example.test", 443)


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    rule = policy({"rebind.example.test": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(EgressRefused, match="loopback"):
        rule.pin("rebind.example.test", 443)


def test_the_clusters_ranges_are_refused_even_when_public() -> None:
    rule = policy({"svc.example.test": ["34.118.224.10"]}, cidrs=["34.118.224.0/20"])
    with pytest.raises(EgressRefused, match=r"in the cluster's range 34\.118\.224\.0/20"):
        rule.pin("svc.example.test", 443)


def test_a_public_address_is_pinned_from_one_lookup() -> None:
    rule = policy({"api.example.test": ["93.184.216.34", "2606:2800:220:1::1"]})
    assert rule.pin("api.example.test", 443) == "93.184.216.34"
    assert rule.resolver.lookups == ["api.example.test"]  # type: ignore[attr-defined]


def test_the_allowlist_admits_a_named_host_and_a_range() -> None:
    rule = policy(
        {"llm-gateway.example.test": ["10.20.0.5"], "other.example.test": ["10.30.0.9"]},
        allow=["LLM-Gateway.example.test", "10.30.0.0/24"],
    )
    assert rule.pin("llm-gateway.example.test", 80) == "10.20.0.5"
    assert rule.pin("other.example.test", 80) == "10.30.0.9"
    with pytest.raises(EgressRefused):
        rule.pin("10.40.0.1", 80)


def test_an_allowed_name_may_even_be_cluster_internal() -> None:
    rule = policy({"gateway.llm.svc": ["10.96.3.3"]}, allow=["gateway.llm.svc"])
    assert rule.pin("gateway.llm.svc", 80) == "10.96.3.3"


def test_a_name_without_addresses_is_a_connection_failure_not_a_pass() -> None:
    with pytest.raises(OSError, match="no addresses"):
        policy().pin("nothing.example.test", 80)


def test_bad_cidrs_in_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"not a CIDR: '10\.0\.0\.0/99'"):
        EgressPolicy.from_settings([], ["10.0.0.0/99"])
