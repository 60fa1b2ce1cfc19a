"""The object cache: per-namespace reads, counting in place, deletions."""

from __future__ import annotations

from typing import Any

from vibeplane.kube.cache import ObjectCache, WatchedKind

DEPLOYMENTS = WatchedKind("apps", "v1", "deployments", "Deployment", {"app": "x"})


def deployment(namespace: str, name: str, ready: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "name": name},
        "status": {"readyReplicas": ready},
    }


def filled() -> tuple[ObjectCache, list[dict[str, Any]]]:
    changes: list[dict[str, Any]] = []
    cache = ObjectCache(on_change=changes.append)
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
