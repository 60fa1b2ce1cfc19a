"""The one object cache: per-namespace reads, counting in place, deletions, and the bodies
of the kinds controllers reconcile beside their children."""

from __future__ import annotations

from typing import Any

from tests.fakes.kube import FakeKube
from vibeplane.api import vibeapp
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome
from vibeplane.settings import OperatorSettings

DEPLOYMENTS = WatchedKind("apps", "v1", "deployments", "Deployment", {"app": "x"})


def deployment(namespace: str, name: str, ready: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "name": name},
        "status": {"readyReplicas": ready},
    }


def filled() -> tuple[ObjectCache, list[dict[str, Any]]]:
    changes: list[dict[str, Any]] = []
    cache = ObjectCache(FakeKube(), on_change=changes.append)
    cache.watch(DEPLOYMENTS)
    for namespace in ("a", "b"):
        for index in range(3):
            event = {"type": "ADDED", "object": deployment(namespace, f"d{index}", index % 2)}
            cache._on_event(event)
    return cache, changes


def test_items_and_counts_are_per_namespace() -> None:
    cache, changes = filled()
    assert len(changes) == 6
    assert sorted(d["metadata"]["name"] for d in cache.items("Deployment", "a")) == [
        "d0",
        "d1",
        "d2",
    ]
    assert len(cache.items("Deployment")) == 6
    assert cache.items("Deployment", "c") == []
    ready = lambda d: bool(d["status"]["readyReplicas"])  # noqa: E731
    assert cache.count("Deployment", "b", ready) == 1
    assert cache.count("Deployment", None, ready) == 2


def test_items_are_copies_and_deletions_go() -> None:
    cache, _ = filled()
    cache.items("Deployment", "a")[0]["status"]["readyReplicas"] = 99
    assert all(d["status"]["readyReplicas"] < 99 for d in cache.items("Deployment", "a"))
    cache._on_event({"type": "DELETED", "object": deployment("a", "d1", 1)})
    cache.forget("Deployment", "d0", "a")
    assert [d["metadata"]["name"] for d in cache.items("Deployment", "a")] == ["d2"]
    assert cache.lookup("Deployment", "d1", "b") is not None


def app(name: str, generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "vibeplane.io/v1alpha1",
        "kind": "VibeApp",
        "metadata": {"namespace": "a", "name": name, "uid": f"u-{name}", "generation": generation},
        "spec": {"prompts": ["a page"]},
    }


def test_a_controller_keeps_its_bodies_in_the_shared_cache() -> None:
    kube = FakeKube()
    kube.add(app("listed"))
    cache, _ = filled()
    cache._kube = kube
    reconciled: list[str] = []

    def reconcile(context: Context) -> Outcome:
        reconciled.append(context.name)
        return Outcome([])

    controller = Controller(vibeapp.INFO, reconcile, OperatorSettings(), cache, kube, workers=1)
    try:
        controller.prime()
        controller._on_event({"type": "ADDED", "object": app("watched")})
        assert sorted(key.name for key in controller.known_keys()) == ["listed", "watched"]
        assert cache.get("VibeApp", "watched", "a") == controller.body(ObjectKey("a", "watched"))
        assert controller.count("a") == 2
        assert cache.count("Deployment", "a", lambda _: True) == 3  # the children stay apart
        controller._on_event({"type": "DELETED", "object": app("watched")})
        assert controller.body(ObjectKey("a", "watched")) is None
        assert [key.name for key in controller.known_keys()] == ["listed"]
    finally:
        controller.queue.shutdown()


def test_a_status_write_is_kept_only_for_an_object_still_known() -> None:
    kube = FakeKube()
    cache = ObjectCache(kube, on_change=lambda body: None)
    cache.put("VibeApp", app("x"))
    cache.replace("VibeApp", {**app("x"), "status": {"phase": "Running"}})
    assert (cache.get("VibeApp", "x", "a") or {})["status"] == {"phase": "Running"}
    cache.pop("VibeApp", "x", "a")
    cache.replace("VibeApp", {**app("x"), "status": {"phase": "Running"}})
    assert cache.get("VibeApp", "x", "a") is None
