"""Pure builders of the front door: hostnames, HTTPRoutes, the ReferenceGrant, hostname claims.

Hostname rule for previews (documented in the chart's README, "Front door"):

- The readable form is `<app>-<namespace>.<domain>` when `<app>-<namespace>` is one DNS label
  (at most 63 characters; app names with dots do not fit).
- Two apps can spell the same readable label (app `a-b` in `c`, app `a` in `b-c`), so every
  host the operator routes is *claimed* first: a Lease named by the host in the claims
  namespace (settings.claims_namespace, not the platform namespace: the leader's Lease is
  there), its holder the app, created only if absent (the API server makes the first claim
  win). An app whose readable host another app holds, or whose readable form does not fit,
  gets the hashed form `<first 52 characters of app-namespace, trimmed of dashes>-<10 base32
  characters of sha256(namespace/app)>.<domain>`, claimed the same way.
- A claim is never taken over; it is released when its app is deleted, and a published
  hostname's when spec.publish drops it (or publish goes) and production no longer serves it.

Nothing here talks to the API server (the no-client contract covers vibeapp.routes).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vibeplane.api.common import owner_reference
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME
from vibeplane.wellknown import LABEL_APP, LABEL_COMPONENT

Manifest = dict[str, Any]
GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_API = f"{GATEWAY_GROUP}/v1"
# v1beta1: served by every Gateway API release since v0.6 (v1 only since v1.5).
REFERENCEGRANT_API = f"{GATEWAY_GROUP}/v1beta1"
LABEL_MAX = 63
HASH_CHARACTERS = 10
COMPONENT_ROUTE = "route"
COMPONENT_GRANT = "reference-grant"
COMPONENT_CLAIM = "hostname-claim"
ANNOTATION_CLAIM_UID = "vibeplane.io/claim-uid"

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class GatewayRef:
    """The platform's Gateway (chart values `gateway.*`) routes attach to."""

    name: str
    namespace: str
    section_name: str = ""
    """The listener; empty: every listener of the Gateway that allows the route."""


@dataclass(frozen=True)
class Backend:
    """A Service a route sends to."""

    name: str
    namespace: str
    port: int


# ---- hostnames -------------------------------------------------------------------------------


def valid_hostname(host: str) -> bool:
    """A lowercase DNS name of labels (RFC 1123), at least two of them, at most 253 characters;
    no wildcard, no trailing dot, no IP address."""
    if not host or len(host) > 253 or host != host.lower():
        return False
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def under(host: str, domain: str) -> bool:
    """Whether `host` is `domain` or a name below it."""
    domain = domain.strip(".").lower()
    return bool(domain) and (host == domain or host.endswith("." + domain))


def readable_label(app: str, namespace: str) -> str | None:
    """`<app>-<namespace>` when it is one DNS label, else None."""
    label = f"{app}-{namespace}"
    return label if _LABEL.match(label) else None


def hashed_label(app: str, namespace: str) -> str:
    """A label that names this app alone: a readable prefix and a hash of namespace/app."""
    digest = hashlib.sha256(f"{namespace}/{app}".encode()).digest()
    suffix = base64.b32encode(digest).decode().lower()[:HASH_CHARACTERS]
    prefix = re.sub(r"[^a-z0-9-]", "-", f"{app}-{namespace}")
    prefix = prefix[: LABEL_MAX - HASH_CHARACTERS - 1].strip("-")
    return f"{prefix}-{suffix}" if prefix else suffix


def preview_hosts(app: str, namespace: str, domain: str) -> list[str]:
    """The preview's candidate hosts, in order: readable, then hashed (see the module doc)."""
    domain = domain.strip(".").lower()
    readable = readable_label(app, namespace)
    labels = [readable] if readable else []
    labels.append(hashed_label(app, namespace))
    return [f"{label}.{domain}" for label in labels]


def url_of(host: str, https: bool) -> str:
    return f"{'https' if https else 'http'}://{host}/"


# ---- objects ---------------------------------------------------------------------------------


def route_labels(app: str) -> dict[str, str]:
    return {LABEL_APP: app, LABEL_COMPONENT: COMPONENT_ROUTE, LABEL_MANAGED_BY: MANAGER_NAME}


def preview_route_name(app: str) -> str:
    return f"{app}-preview"


def http_route(
    name: str,
    app: str,
    namespace: str,
    uid: str,
    hostnames: Sequence[str],
    gateway: GatewayRef,
    backend: Backend,
) -> Manifest:
    """An HTTPRoute (v1) for the app's hosts, attached to the platform's Gateway, sending every
    path to `backend` (the front service for previews, the published Service for production)."""
    parent: Manifest = {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "namespace": gateway.namespace,
        "name": gateway.name,
    }
    if gateway.section_name:
        parent["sectionName"] = gateway.section_name
    backend_ref: Manifest = {
        "group": "",
        "kind": "Service",
        "name": backend.name,
        "port": backend.port,
        "weight": 1,
    }
    if backend.namespace != namespace:
        backend_ref["namespace"] = backend.namespace
    return {
        "apiVersion": HTTPROUTE_API,
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": route_labels(app),
            "ownerReferences": [dict(owner_reference("VibeApp", app, uid))],
        },
        "spec": {
            "parentRefs": [parent],
            "hostnames": list(hostnames),
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [backend_ref],
                }
            ],
        },
    }


def reference_grant_name(namespace: str) -> str:
    return f"routes-from-{namespace}"


def reference_grant(
    namespace: str, backend: Backend, workspace: str, workspace_uid: str
) -> Manifest:
    """Lets HTTPRoutes in a workspace's namespace send to the front service (in the platform
    namespace). Owned by the Workspace (cluster-scoped), so it goes with it."""
    return {
        "apiVersion": REFERENCEGRANT_API,
        "kind": "ReferenceGrant",
        "metadata": {
            "name": reference_grant_name(namespace),
            "namespace": backend.namespace,
            "labels": {LABEL_COMPONENT: COMPONENT_GRANT, LABEL_MANAGED_BY: MANAGER_NAME},
            "ownerReferences": [dict(owner_reference("Workspace", workspace, workspace_uid))],
        },
        "spec": {
            "from": [{"group": GATEWAY_GROUP, "kind": "HTTPRoute", "namespace": namespace}],
            "to": [{"group": "", "kind": "Service", "name": backend.name}],
        },
    }


def hostname_claim(
    host: str, claims_namespace: str, app: str, namespace: str, uid: str
) -> Manifest:
    """The durable claim of `host` by one app: a Lease named by the host in the claims
    namespace whose holder is the app, created only if absent (the first claim holds; it has
    no duration: it is held until its app stops using the host or is deleted)."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": host,
            "namespace": claims_namespace,
            "labels": {LABEL_COMPONENT: COMPONENT_CLAIM, LABEL_MANAGED_BY: MANAGER_NAME},
            "annotations": {ANNOTATION_CLAIM_UID: uid},
        },
        "spec": {"holderIdentity": claim_identity(namespace, app)},
    }


def claim_identity(namespace: str, app: str) -> str:
    return f"{namespace}/{app}"


def claim_holder(claim: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(namespace, app) that holds a claim, or None for no claim."""
    if claim is None:
        return None
    identity = str((claim.get("spec") or {}).get("holderIdentity") or "")
    namespace, _, app = identity.partition("/")
    return namespace, app
