"""Kubernetes Events about our objects: only for what a person should notice."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from vibeplane.kube.conditions import now_rfc3339

COMPONENT = "vibeplane-operator"


EventType = Literal["Normal", "Warning"]


def event_body(
    involved: Mapping[str, Any], type_: EventType, reason: str, message: str
) -> dict[str, Any]:
    """An Event about `involved` (events of cluster-scoped objects go to "default")."""
    metadata = involved["metadata"]
    namespace = metadata.get("namespace") or "default"
    name = f"{metadata['name']}.{uuid.uuid4().hex[:12]}"
    timestamp = now_rfc3339()
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": metadata["name"],
            "namespace": metadata.get("namespace"),
            "uid": metadata["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }
    return body
