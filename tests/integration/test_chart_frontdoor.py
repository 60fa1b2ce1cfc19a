"""The front service as a chart component (charts/vibeplane/templates/frontdoor.yaml): what it
renders, that the API server accepts it, and that its ServiceAccount may do what
runtime/frontdoor's code does and nothing beyond (SubjectAccessReviews on the real API
server, as for the operator in test_chart.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient

from tests.integration.conftest import Kubectl
from tests.integration.test_chart import (
    COMPONENTS,
    Helm,
    Manifest,
    _allowed,
    _attributes,
    find,
    helm,
    render,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
__all__ = ["helm"]  # the module's fixture, shared

ENABLED = COMPONENTS["frontDoor"]
KEY_PATH = "/etc/vibeplane/frontdoor/key"


def _front(objects: list[Manifest]) -> list[Manifest]:
    return [
        o
        for o in objects
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "frontdoor"
    ]


def test_off_by_default_and_refused_without_a_gateway(helm: Helm) -> None:
    assert _front(render(helm)) == []
    result = helm(
        "template",
        "vp",
        str(Path(__file__).parents[2] / "charts" / "vibeplane"),
        "--set",
        "frontDoor.enabled=true",
        check=False,
    )
    assert result.returncode != 0
    assert "frontDoor.enabled needs gateway.name" in result.stderr


def test_the_front_service_renders_as_the_routes_backend(helm: Helm) -> None:
    flags = [*ENABLED, "gateway.frontService.name=door", "gateway.frontService.port=8081"]
    objects = render(helm, flags, "vp", "plat")
    kinds = sorted(o["kind"] for o in _front(objects))
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    # The Service the operator's routes name, in the platform namespace.
    service = find(objects, "Service", "door")
    assert service["metadata"]["namespace"] == "plat"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8081, "targetPort": "http", "protocol": "TCP"}
    ]
    deployment = find(objects, "Deployment", "vp-vibeplane-frontdoor")
    pod = deployment["spec"]["template"]["spec"]
    selected = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= selected.items()
    assert pod["serviceAccountName"] == "vp-vibeplane-frontdoor"
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/vibeplane/frontdoor:0.1.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"VIBEPLANE_FRONTDOOR_KEY_FILE": KEY_PATH, "VIBEPLANE_DOMAIN": "apps.test"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"]
    assert security["runAsNonRoot"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/__vibeplane/healthz"
    # The cookie key: a Secret mounted into the front service only, kept across upgrades.
    secret = find(objects, "Secret", "vp-vibeplane-frontdoor-key")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (volume,) = pod["volumes"]
    assert volume["secret"]["secretName"] == "vp-vibeplane-frontdoor-key"
    for other in objects:
        if other["kind"] == "Deployment" and other is not deployment:
            mounted = yaml.safe_dump(other["spec"]["template"]["spec"].get("volumes") or [])
            assert "frontdoor-key" not in mounted, other["metadata"]["name"]


# What runtime/frontdoor does (vibeplane_frontdoor/kube.py), in a tenant namespace "ws-any".
REQUIRED = [
    ("create", "tokenreviews.authentication.k8s.io", ""),
    ("create", "subjectaccessreviews.authorization.k8s.io", ""),
    ("list", "vibeapps.vibeplane.io", ""),
    ("patch", "vibeapps.vibeplane.io", "ws-any"),
    ("get", "services", "ws-any"),
]
FORBIDDEN = [
    ("get", "secrets", "ws-any"),
    ("get", "secrets", ""),
    ("list", "secrets", ""),
    ("update", "vibeapps.vibeplane.io", "ws-any"),
    ("delete", "vibeapps.vibeplane.io", "ws-any"),
    ("create", "vibeapps.vibeplane.io", "ws-any"),
    ("patch", "vibeapps.vibeplane.io/status", "ws-any"),
    ("patch", "workspaces.vibeplane.io", ""),
    ("create", "pods", "ws-any"),
    ("create", "pods/exec", "ws-any"),
    ("patch", "services", "ws-any"),
    ("list", "services", ""),
    ("patch", "deployments.apps", "ws-any"),
    ("impersonate", "users", ""),
    ("impersonate", "serviceaccounts", "ws-any"),
    ("create", "serviceaccounts/token", "ws-any"),
    ("create", "localsubjectaccessreviews.authorization.k8s.io", "ws-any"),
    ("delete", "leases.coordination.k8s.io", "ws-any"),
]


def test_its_service_account_may_do_what_the_code_does_and_nothing_more(
    helm: Helm, api: ApiClient, kubectl: Kubectl, tmp_path: Path
) -> None:
    release = f"fd{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-plat"
    core = kubernetes.client.CoreV1Api(api)
    labels = {"vibeplane.io/test": "true"}
    meta = kubernetes.client.V1ObjectMeta(name=namespace, labels=labels)
    core.create_namespace(kubernetes.client.V1Namespace(metadata=meta))
    objects = _front(render(helm, ENABLED, release, namespace))
    manifest = tmp_path / "frontdoor.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    try:
        applied = kubectl("apply", "--server-side", "--field-manager=tests", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr
        user = f"system:serviceaccount:{namespace}:{release}-vibeplane-frontdoor"
        missing = [c for c in REQUIRED if not _allowed(api, user, _attributes(*c))]
        assert missing == [], f"the front service's RBAC does not allow {missing}"
        granted = [c for c in FORBIDDEN if _allowed(api, user, _attributes(*c))]
        assert granted == [], f"the front service's RBAC allows more than it should: {granted}"
    finally:
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(manifest))
        core.delete_namespace(namespace)
