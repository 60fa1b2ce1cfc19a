"""The Kubernetes API client, configured once, and server-side apply that skips no-op writes.

Every write the operator makes goes through `apply`: it compares the desired object with the
live one first and sends nothing when the live object already holds every desired field, so a
reconcile of a converged object costs reads only. Writes use server-side apply with a field
manager per controller, so ownership of each field is visible in managedFields.

"Holds every desired field" alone would miss one change: a field the operator stops setting
(server-side apply removes it, but only if asked). Comparing whole specs instead would never
match objects the API server fills with defaults (a Deployment's pod template gains a dozen
fields), so every reconcile would write. So each applied object carries the digest of what was
applied in an annotation: a new desired object has a new digest, which the live one lacks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Protocol, cast

import kubernetes
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from vibeplane import __version__
from vibeplane.api.meta import KindInfo
from vibeplane.kube.events import EventType, event_body
from vibeplane.kube.quantities import same_value
from vibeplane.wellknown import ANNOTATION_APPLIED

Manifest = dict[str, Any]


@functools.cache
def api_client() -> ApiClient:
    """One ApiClient per process: in-cluster config inside a pod, else KUBECONFIG."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        # Read KUBECONFIG now: the library reads it once, at import time.
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG")
        )
    return ApiClient()


def identify(identity: str) -> None:
    """Name this replica in the User-Agent of every request it sends from now on, e.g.
    `vibeplane-operator/0.1.0 (vibeplane-operator-5d4f8-x2k9q)`: the API server's audit log
    records the userAgent, so it tells which replica wrote what."""
    api_client().user_agent = f"vibeplane-operator/{__version__} ({identity})"


@functools.cache
def dynamic() -> DynamicClient:
    """A discovery-backed client for any kind, ours and KServe's included."""
    return DynamicClient(api_client())  # type: ignore[no-untyped-call]


def _resource(api_version: str, kind: str) -> Any:
    return dynamic().resources.get(api_version=api_version, kind=kind)


def get(api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
    """The live object as a plain dict, or None when it does not exist."""
    try:
        obj = _resource(api_version, kind).get(name=name, namespace=namespace)
    except NotFoundError:
        return None
    result: Manifest = obj.to_dict()
    return result


def apply(
    desired: Manifest,
    field_manager: str,
    live: Manifest | None = None,
    lookup: bool = True,
) -> Manifest | None:
    """Server-side apply `desired` unless the live object already matches (see `matches`).

    Returns the object as the API server stored it, or None when nothing was sent. Pass `live`
    when the caller has it (from a watch cache); with `lookup=False` a missing `live` means the
    object does not exist.
    """
    metadata = desired["metadata"]
    if live is None and lookup:
        live = get(
            desired["apiVersion"], desired["kind"], metadata["name"], metadata.get("namespace")
        )
    body = stamped(desired)
    if live is not None and contains(live, body):
        return None
    result = _resource(desired["apiVersion"], desired["kind"]).server_side_apply(
        body=body,
        name=metadata["name"],
        namespace=metadata.get("namespace"),
        field_manager=field_manager,
        force_conflicts=True,
    )
    stored: Manifest = result.to_dict()
    return stored


def create(desired: Manifest) -> Manifest | None:
    """Create `desired` only if no object of its name exists (a POST: the API server decides
    atomically which of two racing creators wins); None when one exists already."""
    metadata = desired["metadata"]
    try:
        result = _resource(desired["apiVersion"], desired["kind"]).create(
            body=desired, namespace=metadata.get("namespace")
        )
    except ConflictError:
        return None
    stored: Manifest = result.to_dict()
    return stored


APPLIED_ANNOTATION = ANNOTATION_APPLIED


def stamped(desired: Manifest) -> Manifest:
    """`desired` with the digest of its own content in the applied annotation."""
    canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    metadata = dict(desired["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), APPLIED_ANNOTATION: digest}
    return {**desired, "metadata": metadata}


def matches(live: Mapping[str, Any], desired: Manifest) -> bool:
    """Whether `live` already is what `desired` asks for: the same desired object was applied
    last (its digest) and every desired field still holds (nobody changed one since).
    Fields the server or others add are allowed."""
    return contains(live, stamped(desired))


def _merge_patch(
    info: KindInfo, name: str, namespace: str | None, body: Mapping[str, Any], status: bool
) -> Manifest:
    """A JSON merge patch of one of our objects (or its status); the updated object."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    suffix = "_status" if status else ""
    scope = "cluster" if namespace is None else "namespaced"
    method = getattr(custom, f"patch_{scope}_custom_object{suffix}")
    where = (info.group, info.version) + ((namespace,) if namespace is not None else ())
    result = method(
        *where, info.plural, name, dict(body), _content_type="application/merge-patch+json"
    )
    return cast(Manifest, result)


def patch_status(
    info: KindInfo, name: str, namespace: str | None, patch: Mapping[str, Any]
) -> Manifest:
    """Merge-patch the status subresource of one of our objects; return the updated object."""
    return _merge_patch(info, name, namespace, {"status": dict(patch)}, status=True)


def patch_metadata(
    info: KindInfo, name: str, namespace: str | None, metadata: Mapping[str, Any]
) -> Manifest:
    """Merge-patch metadata (finalizers, annotations) of one of our objects."""
    return _merge_patch(info, name, namespace, {"metadata": dict(metadata)}, status=False)


def delete(api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
    """Delete an object if it exists. True if a delete was sent and accepted."""
    try:
        _resource(api_version, kind).delete(name=name, namespace=namespace)
    except NotFoundError:
        return False
    return True


class Conflict(RuntimeError):
    """A compare-and-swap write lost: the object changed, or appeared, since it was read."""


def write(manifest: Manifest) -> Manifest:
    """Create `manifest` (without metadata.resourceVersion) or replace it only if it is
    unchanged since it was read (with the resourceVersion read): `Conflict` otherwise."""
    resource = _resource(manifest["apiVersion"], manifest["kind"])
    namespace = (manifest.get("metadata") or {}).get("namespace")
    try:
        if (manifest.get("metadata") or {}).get("resourceVersion"):
            result = resource.replace(body=dict(manifest), namespace=namespace)
        else:
            result = resource.create(body=dict(manifest), namespace=namespace)
    except ConflictError as error:
        raise Conflict(str(error)) from error
    return cast(Manifest, result.to_dict())


def list_objects(
    api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
) -> list[Manifest]:
    """Objects of a kind as plain dicts."""
    result = _resource(api_version, kind).get(namespace=namespace, label_selector=label_selector)
    items: list[Manifest] = result.to_dict().get("items", [])
    return items


def contains(live: object, desired: object) -> bool:
    """Whether every field of `desired` is present in `live` with the same value.

    Lists must match element by element: our manifests own the lists they set.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and contains(live[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(a, b) for a, b in zip(live, desired, strict=True))
    return same_value(live, desired)


def post_event(involved: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
    """Record an Event about `involved` (see `vibeplane.kube.events`)."""
    body = event_body(involved, type_, reason, message)
    namespace = body["metadata"]["namespace"]
    # The client accepts plain dicts for any model.
    kubernetes.client.CoreV1Api(api_client()).create_namespaced_event(namespace, cast(Any, body))


def read_pod_log(name: str, namespace: str, container: str, tail_lines: int) -> str:
    """The last lines a pod's container wrote."""
    core = kubernetes.client.CoreV1Api(api_client())
    text: str = core.read_namespaced_pod_log(
        name, namespace, container=container, tail_lines=tail_lines
    )
    return text


class KubeClient(Protocol):
    """What reconcilers and the controller runtime ask of the API server. Injected: the
    operator passes one `ApiServerClient`; unit tests pass an in-memory fake
    (tests/fakes/kube.py)."""

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None: ...

    def apply(
        self,
        desired: Manifest,
        field_manager: str,
        live: Manifest | None = None,
        lookup: bool = True,
    ) -> Manifest | None: ...

    def create(self, desired: Manifest) -> Manifest | None: ...

    def patch_status(
        self, info: KindInfo, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> Manifest: ...

    def patch_metadata(
        self, info: KindInfo, name: str, namespace: str | None, metadata: Mapping[str, Any]
    ) -> Manifest: ...

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool: ...

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Manifest]: ...

    def write(self, manifest: Manifest) -> Manifest:
        """Create, or replace by compare-and-swap (`Conflict` when it lost)."""
        ...

    def post_event(
        self, involved: Mapping[str, Any], type_: EventType, reason: str, message: str
    ) -> None: ...

    def read_pod_log(self, name: str, namespace: str, container: str, tail_lines: int) -> str: ...


class ApiServerClient:
    """The real API server, through this module's functions (one ApiClient per process)."""

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        return get(api_version, kind, name, namespace)

    def apply(
        self,
        desired: Manifest,
        field_manager: str,
        live: Manifest | None = None,
        lookup: bool = True,
    ) -> Manifest | None:
        return apply(desired, field_manager, live=live, lookup=lookup)

    def patch_status(
        self, info: KindInfo, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> Manifest:
        return patch_status(info, name, namespace, patch)

    def patch_metadata(
        self, info: KindInfo, name: str, namespace: str | None, metadata: Mapping[str, Any]
    ) -> Manifest:
        return patch_metadata(info, name, namespace, metadata)

    def create(self, desired: Manifest) -> Manifest | None:
        return create(desired)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        return delete(api_version, kind, name, namespace)

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Manifest]:
        return list_objects(api_version, kind, namespace, label_selector)

    def write(self, manifest: Manifest) -> Manifest:
        return write(manifest)

    def post_event(
        self, involved: Mapping[str, Any], type_: EventType, reason: str, message: str
    ) -> None:
        post_event(involved, type_, reason, message)

    def read_pod_log(self, name: str, namespace: str, container: str, tail_lines: int) -> str:
        return read_pod_log(name, namespace, container, tail_lines)
