"""An in-memory API server for unit tests: objects by (kind, namespace, name).

It keeps the properties reconcilers rely on: `apply` sends nothing when the live object
already matches (the real client's `matches`), stored objects carry the applied digest and a
generation that moves with the spec, a merge patch of the status lands on the stored object.
Refusals are injected per kind (`refuse`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from vibeplane.api.meta import KindInfo
from vibeplane.kube.client import Conflict, matches, stamped
from vibeplane.kube.events import EventType

Manifest = dict[str, Any]
Key = tuple[str, str | None, str]


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386, as the API server applies a merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _selected(body: Mapping[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (body.get("metadata") or {}).get("labels") or {}
    pairs = (term.split("=", 1) for term in selector.split(","))
    return all(labels.get(name) == value for name, value in pairs)


class FakeKube:
    """Implements `vibeplane.kube.client.KubeClient` in memory."""

    def __init__(self) -> None:
        self.objects: dict[Key, Manifest] = {}
        self.applied: list[Manifest] = []
        self.created: list[Manifest] = []
        self.status_patches: list[tuple[str, str | None, Manifest]] = []
        self.metadata_patches: list[tuple[str, str | None, Manifest]] = []
        self.deleted: list[Key] = []
        self.writes: list[Manifest] = []
        """What `write` stored (compare-and-swap writes)."""
        self.events: list[tuple[str, str]] = []
        self.pod_logs: dict[tuple[str, str], str] = {}
        self.log_reads: list[tuple[str, str]] = []
        self.refuse: dict[str, ApiException] = {}
        """Kind -> the error `apply` raises for it (a refused or failed write)."""

    # ---- setting the scene -----------------------------------------------------------------

    def add(self, body: Manifest) -> Manifest:
        metadata = body["metadata"]
        self.objects[(body["kind"], metadata.get("namespace"), metadata["name"])] = copy.deepcopy(
            body
        )
        return body

    def of_kind(self, kind: str) -> list[Manifest]:
        return [copy.deepcopy(body) for (k, _, _), body in self.objects.items() if k == kind]

    # ---- KubeClient ------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def apply(
        self,
        desired: Manifest,
        field_manager: str,
        live: Manifest | None = None,
        lookup: bool = True,
    ) -> Manifest | None:
        if desired["kind"] in self.refuse:
            raise self.refuse[desired["kind"]]
        metadata = desired["metadata"]
        key = (desired["kind"], metadata.get("namespace"), metadata["name"])
        current = self.objects.get(key)
        if live is None and lookup:
            live = current
        if live is not None and matches(live, desired):
            return None
        self.applied.append(copy.deepcopy(desired))
        stored = stamped(copy.deepcopy(desired))
        generation = 1
        if current is not None:
            generation = current["metadata"].get("generation", 1)
            if current.get("spec") != desired.get("spec"):
                generation += 1
            if "status" in current:
                stored["status"] = current["status"]
        stored["metadata"]["generation"] = generation
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def _patch(self, kind: str, name: str, namespace: str | None, patch: Manifest) -> Manifest:
        stored = self.objects.setdefault(
            (kind, namespace, name), {"kind": kind, "metadata": {"name": name}}
        )
        if namespace is not None:
            stored["metadata"].setdefault("namespace", namespace)
        _merge(stored, patch)
        return copy.deepcopy(stored)

    def patch_status(
        self, info: KindInfo, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> Manifest:
        self.status_patches.append((name, namespace, copy.deepcopy(dict(patch))))
        return self._patch(info.kind, name, namespace, {"status": dict(patch)})

    def patch_metadata(
        self, info: KindInfo, name: str, namespace: str | None, metadata: Mapping[str, Any]
    ) -> Manifest:
        self.metadata_patches.append((name, namespace, copy.deepcopy(dict(metadata))))
        return self._patch(info.kind, name, namespace, {"metadata": dict(metadata)})

    def create(self, desired: Manifest) -> Manifest | None:
        metadata = desired["metadata"]
        key = (desired["kind"], metadata.get("namespace"), metadata["name"])
        if key in self.objects:
            return None
        self.created.append(copy.deepcopy(desired))
        self.objects[key] = copy.deepcopy(desired)
        return copy.deepcopy(desired)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self.deleted.append((kind, namespace, name))
        return self.objects.pop((kind, namespace, name), None) is not None

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Manifest]:
        return [
            copy.deepcopy(body)
            for (k, ns, _), body in self.objects.items()
            if k == kind and (namespace is None or ns == namespace)
            if _selected(body, label_selector)
        ]

    def write(self, manifest: Manifest) -> Manifest:
        metadata = manifest["metadata"]
        key = (manifest["kind"], metadata.get("namespace"), metadata["name"])
        current = self.objects.get(key)
        version = metadata.get("resourceVersion")
        if (current is None) != (not version) or (
            current is not None and current["metadata"].get("resourceVersion") != version
        ):
            raise Conflict(f"{key} changed since it was read")
        self.writes.append(copy.deepcopy(manifest))
        stored = copy.deepcopy(manifest)
        stored["metadata"]["resourceVersion"] = str(int(version or 0) + 1)
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def post_event(
        self, involved: Mapping[str, Any], type_: EventType, reason: str, message: str
    ) -> None:
        self.events.append((reason, message))

    def read_pod_log(self, name: str, namespace: str, container: str, tail_lines: int) -> str:
        self.log_reads.append((namespace, name))
        if (namespace, name) not in self.pod_logs:
            raise ApiException(status=400, reason="Bad Request")
        return "\n".join(self.pod_logs[(namespace, name)].splitlines()[-tail_lines:])
