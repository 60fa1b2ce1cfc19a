"""Outcomes counted on the API server: once per generation key, by compare-and-swap, owned by
their ModelDeployment (or, for a tenant's model, its Namespace), and readable by a process that
never saw the posts (a restart)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.kube import FakeKube
from vibeplane.generation import outcome_store, outcomes
from vibeplane.generation.outcome_store import OutcomeStore
from vibeplane.generation.outcomes import KEEP_KEYS, Totals
from vibeplane.wellknown import ANNOTATION_MODELDEPLOYMENT

NAMESPACE = "ws-acme"
PLATFORM = "vibeplane-system"


def _record(key: str, served: str = "cand", cost: str = "0.5") -> dict[str, Any]:
    return {
        "key": key,
        "model": "m",
        "modelNamespace": NAMESPACE,
        "servedModel": served,
        "fixUp": False,
        "tokensIn": 100,
        "tokensOut": 200,
        "cost": cost,
        "latencySeconds": 2.5,
    }


def _kube() -> FakeKube:
    return FakeKube()


def _uid(namespace: str, name: str) -> str | None:
    return "u-1" if (namespace, name) == (NAMESPACE, "m") else None


def _store(kube: FakeKube, **kwargs: Any) -> OutcomeStore:
    return OutcomeStore(kube, PLATFORM, _uid, **kwargs)


def test_a_generation_is_counted_once_even_when_posted_again() -> None:
    kube = _kube()
    posted: list[tuple[str, str]] = []
    store = _store(kube, on_post=posted.append)
    store.post(_record("app-1:1:0"), True)
    store.post(_record("app-1:1:0"), True)  # the VibeApp path after a crash, again
    store.post(_record("app-2:1:0"), False)
    store.post(_record("app-3:1:0", served="m", cost="0.25"), True)
    # A process that never saw the posts (a restarted operator) reads the same totals.
    totals = outcome_store.totals_of(kube, PLATFORM, "u-1")
    assert totals["cand"] == Totals(2, 1, 200, 400, Decimal("1.0"), 5.0)
    assert totals["m"].generations == 1
    assert len(kube.writes) == 3  # the repeat wrote nothing
    config_map = kube.get("v1", "ConfigMap", "outcomes-u-1", PLATFORM)
    assert config_map is not None
    assert config_map["metadata"]["annotations"] == {ANNOTATION_MODELDEPLOYMENT: f"{NAMESPACE}/m"}
    assert posted == [(NAMESPACE, "m")] * 4


def test_a_lost_compare_and_swap_is_recomputed_on_the_fresh_copy() -> None:
    kube = _kube()
    store = _store(kube)
    store.post(_record("app-1:1:0"), True)
    other = _store(kube)
    read = kube.get
    raced = []

    def get_then_race(api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        found = read(api_version, kind, name, namespace)
        if kind == "ConfigMap" and not raced:
            raced.append(True)
            other.post(_record("app-9:1:0"), False)  # another replica writes in between
        return found

    kube.get = get_then_race  # type: ignore[method-assign]
    store.post(_record("app-2:1:0"), True)
    totals = outcome_store.totals_of(kube, PLATFORM, "u-1")
    assert (totals["cand"].generations, totals["cand"].successes) == (3, 2)


def test_the_remembered_keys_are_bounded_and_a_gone_model_counts_nothing() -> None:
    kube = _kube()
    store = _store(kube)
    for n in range(KEEP_KEYS + 20):
        store.post(_record(f"app-{n}:1:0"), True)
    _, keys = outcomes.parse(kube.get("v1", "ConfigMap", "outcomes-u-1", PLATFORM))
    assert len(keys) == KEEP_KEYS
    assert outcome_store.totals_of(kube, PLATFORM, "u-1")["cand"].generations == KEEP_KEYS + 20
    gone = FakeKube()
    OutcomeStore(gone, PLATFORM, lambda namespace, name: None).post(_record("a:1:0"), True)
    assert gone.writes == []


def test_the_configmap_is_owned_by_what_the_garbage_collector_may_follow() -> None:
    kube = _kube()
    OutcomeStore(kube, PLATFORM, _uid, namespace_uid=lambda ns: "ns-uid").post(
        _record("a:1:0"), True
    )
    config_map = kube.get("v1", "ConfigMap", "outcomes-u-1", PLATFORM)
    assert config_map is not None
    # A tenant's model is in another namespace: an owner there would be treated as absent
    # (and the counts collected at once), so its cluster-scoped Namespace owns them.
    assert config_map["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Namespace", "name": NAMESPACE, "uid": "ns-uid"}
    ]
    (platform_model,) = outcome_store.owners(PLATFORM, PLATFORM, "shared", "u-9", None)
    assert (platform_model["kind"], platform_model["name"], platform_model["uid"]) == (
        "ModelDeployment",
        "shared",
        "u-9",
    )
    assert platform_model["blockOwnerDeletion"] is False
    assert outcome_store.owners(PLATFORM, NAMESPACE, "m", "u-1", None) == []


def test_a_start_sweeps_the_outcomes_of_models_gone_and_keeps_the_others() -> None:
    kube = _kube()
    _store(kube).post(_record("a:1:0"), True)  # u-1's
    OutcomeStore(kube, PLATFORM, lambda namespace, name: "u-gone").post(_record("b:1:0"), True)
    kube.add({"kind": "ConfigMap", "metadata": {"name": "ledger-x", "namespace": PLATFORM}})
    models = [{"metadata": {"name": "m", "namespace": NAMESPACE, "uid": "u-1"}}]
    assert outcome_store.sweep(kube, PLATFORM, lambda: models) == ["outcomes-u-gone"]
    assert kube.get("v1", "ConfigMap", "outcomes-u-1", PLATFORM) is not None
    assert kube.get("v1", "ConfigMap", "ledger-x", PLATFORM) is not None  # not an outcomes one
    assert outcome_store.sweep(kube, PLATFORM, lambda: models) == []
