"""Generated code runs only in previews that pass the restricted pod security level, in gVisor.

The preview Deployment's template is checked by golden files (tests/unit/vibeapp) and its
runtimeClassName by tests/integration/test_vibeapp.py. Here, the real pods the platform ran
for two tenants' apps:
- their namespaces enforce the restricted level, and the API server's own Pod Security
  admission admits each pod's spec as it stands (a dry run), while refusing the same spec
  with one protection taken away: the pods pass the restricted level, not only the label;
- each pod asks for the gvisor RuntimeClass and ran under runsc on the node;
- no service-account token, no host namespaces or paths, every capability dropped, a
  read-only root file system, a non-root user, seccomp, and resource limits.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.security.support import Platform, Tenant
from vibeplane.settings import OperatorSettings
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import existing_real_node, real_node_selected

pytestmark = pytest.mark.integration


def _pods(api: ApiClient, tenant: Tenant) -> list[dict[str, Any]]:
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        tenant.namespace, label_selector=f"vibeplane.io/app={tenant.app_name}"
    )
    assert pods.items, f"no preview pod in {tenant.namespace}"
    return [api.sanitize_for_serialization(pod) for pod in pods.items]


def _dry_run(api: ApiClient, namespace: str, spec: dict[str, Any]) -> str | None:
    """None when the API server admits a pod with `spec`, else its refusal."""
    pod = {"metadata": {"generateName": "restricted-check-"}, "spec": spec}
    try:
        kubernetes.client.CoreV1Api(api).create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as error:
        return str(json.loads(error.body)["message"])
    return None


def _resubmittable(spec: dict[str, Any]) -> dict[str, Any]:
    """The live pod's spec as a new pod would carry it (scheduling results removed)."""
    fresh = copy.deepcopy(spec)
    fresh.pop("nodeName", None)
    return fresh


def test_previews_pass_the_restricted_level_and_run_in_gvisor(
    api: ApiClient, platform: Platform
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    for tenant in (platform.a, platform.b):
        labels = core.read_namespace(tenant.namespace).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
        for pod in _pods(api, tenant):
            spec = pod["spec"]
            assert spec["runtimeClassName"] == OperatorSettings().runtime_class == "gvisor"
            statuses = pod["status"].get("containerStatuses") or []
            assert statuses
            if real_node_selected():
                # containerd ran each container with gVisor's runtime (runsc's shim).
                node = existing_real_node(LocalCluster().config)
                for status in statuses:
                    container_id = status["containerID"].removeprefix("containerd://")
                    runtime = node.container_info(container_id)["Runtime"]["Name"]
                    assert runtime == "io.containerd.runsc.v1"
            else:
                assert all(s["containerID"].startswith("runsc://") for s in statuses)

            assert _dry_run(api, tenant.namespace, _resubmittable(spec)) is None
            for weaken in (_root, _no_seccomp, _privilege_escalation, _capabilities):
                weakened = _resubmittable(spec)
                weaken(weakened)
                refusal = _dry_run(api, tenant.namespace, weakened)
                assert refusal is not None, weaken.__name__
                assert 'violates PodSecurity "restricted:latest"' in refusal


def _root(spec: dict[str, Any]) -> None:
    spec["securityContext"].pop("runAsNonRoot")
    spec["securityContext"]["runAsUser"] = 0


def _no_seccomp(spec: dict[str, Any]) -> None:
    spec["securityContext"].pop("seccompProfile")


def _privilege_escalation(spec: dict[str, Any]) -> None:
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True


def _capabilities(spec: dict[str, Any]) -> None:
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_RAW"]}


def test_previews_hold_no_token_and_nothing_of_the_host(api: ApiClient, platform: Platform) -> None:
    for tenant in (platform.a, platform.b):
        for pod in _pods(api, tenant):
            spec = pod["spec"]
            assert spec["automountServiceAccountToken"] is False
            assert spec.get("enableServiceLinks") is False  # no other services' addresses
            for host in ("hostNetwork", "hostPID", "hostIPC"):
                assert not spec.get(host), host
            for volume in spec.get("volumes") or []:
                assert set(volume) == {"name", "emptyDir"}, volume
            context = spec["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] != 0
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in spec["containers"]:
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False
                assert security["readOnlyRootFilesystem"] is True
                assert security["capabilities"] == {"drop": ["ALL"]}
                assert not security.get("privileged")
                assert not container.get("ports") or all(
                    "hostPort" not in port for port in container["ports"]
                )
                limits = container["resources"]["limits"]
                assert limits["cpu"]
                assert limits["memory"]
                for mount in container.get("volumeMounts") or []:
                    assert "serviceaccount" not in mount["mountPath"]
