"""Pure builders of a published app: its Deployment and Service (never hibernated), its public
HTTPRoute, and for custom hostnames with TLS by cert-manager a Certificate per hostname and a
ListenerSet that terminates TLS with them on the platform's Gateway.

The published Deployment rolls over with `maxUnavailable: 0`: new pods must pass the readiness
probe (the revision answers) before an old one goes, and an old one drains (preStop sleep)
before it stops, so switching revisions (and rolling back by setting an earlier one) drops no
request.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from vibeplane.api.common import owner_reference
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME
from vibeplane.vibeapp import desired, routes
from vibeplane.wellknown import (
    ENV_BUNDLE_SHA256,
    ENV_BUNDLE_URL,
    ENV_DELIVERY_KEY,
    LABEL_APP,
    LABEL_COMPONENT,
)

Manifest = dict[str, Any]
COMPONENT = "published"
COMPONENT_CERTIFICATE = "certificate"
COMPONENT_LISTENERS = "listeners"
CERT_MANAGER_API = "cert-manager.io/v1"
LISTENERSET_API = f"{routes.GATEWAY_GROUP}/v1"
HTTPS_PORT = 443
ANNOTATION_REVISION = "vibeplane.io/published-revision"
ANNOTATION_BUNDLE_URL_EXPIRES = "vibeplane.io/bundle-url-expires"
DRAIN_SECONDS = 5
"""Seconds a replaced published pod goes on serving (preStop sleep) so no request that was
already on its way to it fails during a rollout."""


def published_name(app: str) -> str:
    return f"{app}-published"


def labels(app: str, component: str = COMPONENT) -> dict[str, str]:
    return {LABEL_APP: app, LABEL_COMPONENT: component, LABEL_MANAGED_BY: MANAGER_NAME}


def published_deployment(
    app: str,
    namespace: str,
    uid: str,
    revision: Mapping[str, Any],
    bundle_url: str,
    url_expires: str,
    replicas: int,
    preview: desired.PreviewSettings,
) -> Manifest:
    """The preview's sandboxed pod (same runtime, same restrictions) under its own name and
    labels, `replicas` of it, started with the published revision's bundle (no delivery key:
    nothing can swap another revision into production) and ready when the app answers on /.
    A new revision is a new template, rolled over readiness-gated."""
    deployment = desired.preview_deployment(app, namespace, uid, replicas, preview)
    own = labels(app)
    deployment["metadata"]["name"] = published_name(app)
    deployment["metadata"]["labels"] = own
    spec = deployment["spec"]
    spec["selector"] = {"matchLabels": {LABEL_APP: app, LABEL_COMPONENT: COMPONENT}}
    spec["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    spec["minReadySeconds"] = 2
    template = spec["template"]
    template["metadata"] = {
        "labels": dict(own),
        "annotations": {
            ANNOTATION_REVISION: str(revision["number"]),
            ANNOTATION_BUNDLE_URL_EXPIRES: url_expires,
        },
    }
    container = template["spec"]["containers"][0]
    container["env"] = [
        {"name": ENV_BUNDLE_URL, "value": bundle_url},
        {"name": ENV_BUNDLE_SHA256, "value": str(revision["sha256"])},
        *(e for e in container["env"] if e["name"] != ENV_DELIVERY_KEY),
    ]
    container["readinessProbe"] = {
        "httpGet": {"path": "/", "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 3,
    }
    # An old pod keeps serving while the gateway and the endpoints learn it is going: it is
    # removed from the Service at once, but stops only after this (the kubelet's own sleep,
    # nothing runs in the sandbox).
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}}
    template["spec"]["terminationGracePeriodSeconds"] = DRAIN_SECONDS + 10
    return deployment


def published_service(app: str, namespace: str, uid: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": published_name(app),
            "namespace": namespace,
            "labels": labels(app),
            "ownerReferences": [dict(owner_reference("VibeApp", app, uid))],
        },
        "spec": {
            "selector": {LABEL_APP: app, LABEL_COMPONENT: COMPONENT},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def published_route(
    app: str,
    namespace: str,
    uid: str,
    hostnames: Sequence[str],
    gateway: routes.GatewayRef,
    listener_set: bool,
) -> Manifest:
    """The public route: straight to the published Service (no front service); attached to
    the Gateway and, with per-hostname certificates, to the app's ListenerSet too."""
    backend = routes.Backend(published_name(app), namespace, 80)
    route = routes.http_route(published_name(app), app, namespace, uid, hostnames, gateway, backend)
    if listener_set:
        route["spec"]["parentRefs"].append(
            {"group": routes.GATEWAY_GROUP, "kind": "ListenerSet", "name": published_name(app)}
        )
    return route


def secret_name(app: str, host: str) -> str:
    """The TLS Secret of one hostname: readable app prefix, short hash of the host."""
    digest = base64.b32encode(hashlib.sha256(host.encode()).digest()).decode().lower()[:10]
    return f"{app[:40]}-tls-{digest}"


def certificate(
    app: str, namespace: str, uid: str, host: str, issuer: str, issuer_kind: str
) -> Manifest:
    """A cert-manager Certificate for one custom hostname against the platform's issuer."""
    name = secret_name(app, host)
    return {
        "apiVersion": CERT_MANAGER_API,
        "kind": "Certificate",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(app, COMPONENT_CERTIFICATE),
            "ownerReferences": [dict(owner_reference("VibeApp", app, uid))],
        },
        "spec": {
            "secretName": name,
            "dnsNames": [host],
            "issuerRef": {"group": "cert-manager.io", "kind": issuer_kind, "name": issuer},
        },
    }


def listener_set(
    app: str, namespace: str, uid: str, hosts: Sequence[str], gateway: routes.GatewayRef
) -> Manifest:
    """HTTPS listeners for the app's custom hostnames on the platform's Gateway, each
    terminating TLS with its Certificate's Secret (Gateway API ListenerSet; the Gateway must
    allow ListenerSets from workspace namespaces: spec.allowedListeners)."""
    listeners = [
        {
            "name": f"h-{secret_name('', host).split('-tls-')[1]}",
            "hostname": host,
            "port": HTTPS_PORT,
            "protocol": "HTTPS",
            "tls": {
                "mode": "Terminate",
                "certificateRefs": [
                    {"group": "", "kind": "Secret", "name": secret_name(app, host)}
                ],
            },
            "allowedRoutes": {"namespaces": {"from": "Same"}},
        }
        for host in hosts
    ]
    return {
        "apiVersion": LISTENERSET_API,
        "kind": "ListenerSet",
        "metadata": {
            "name": published_name(app),
            "namespace": namespace,
            "labels": labels(app, COMPONENT_LISTENERS),
            "ownerReferences": [dict(owner_reference("VibeApp", app, uid))],
        },
        "spec": {
            "parentRef": {
                "group": routes.GATEWAY_GROUP,
                "kind": "Gateway",
                "name": gateway.name,
                "namespace": gateway.namespace,
            },
            "listeners": listeners,
        },
    }
