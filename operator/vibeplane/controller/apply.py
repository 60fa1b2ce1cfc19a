"""Apply a child and remember what the API server stored: the one way a controller writes.

Server-side apply skips writes that would change nothing (`KubeClient.apply` compares with
`live`); what it does write goes into the object cache at once, so the next reconcile, which
may run before the watch event arrives, compares with it and does not write again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vibeplane.controller.cache import ObjectCache
from vibeplane.kube.client import KubeClient
from vibeplane.metrics import WRITES


def apply_and_remember(
    kube: KubeClient,
    cache: ObjectCache,
    manifest: dict[str, Any],
    field_manager: str,
    controller: str,
    live: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """Apply `manifest` unless `live` already says it; return what was stored, if written.
    `controller` is the kind whose reconcile writes (the WRITES metric's label)."""
    stored = kube.apply(manifest, field_manager, live=dict(live) if live else None, lookup=False)
    if stored is not None:
        stored.setdefault("kind", manifest["kind"])
        cache.remember(stored)
        WRITES.labels(controller, manifest["kind"]).inc()
    return stored
