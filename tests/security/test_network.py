"""Isolation proven by traffic, from inside a tenant's preview on the real node.

A program run in tenant A's preview pod (through `kubectl exec`: the API server reaches the
kubelet with a client certificate and verifies the kubelet's serving certificate) tries each
forbidden destination several times and counts the connections that fail: tenant B's preview
(pod address, Service and NodePort), the model server, the API server (its Service and the
address the node reaches it on), the kubelet, and the machine's other ports. DNS must work
(B's Service name resolves, to nothing A can reach) and so must the one allowed egress: the
object store, for A's own presigned bundle only. The pod sees gVisor's kernel, not the host's.

Only with VIBEPLANE_NODE=real: the stand-in node runs previews on the host's network, where
none of this can hold (which is why it goes).
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import S3, Kubectl, ModelServer
from tests.integration.support import wait_for
from tests.security.support import Platform, Tenant
from vibeplane.settings import OperatorSettings
from vibeplane.storage.s3 import ObjectStore, S3Settings
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import (
    CLUSTER_DNS,
    PREVIEW_IMAGE,
    NodeNetwork,
    real_node_selected,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real_node_selected(), reason="previews on the real node only"),
]

ATTEMPTS = 3

PROBE = """
import json, os, socket, sys, urllib.request, urllib.error
targets, name = json.loads(sys.argv[1]), sys.argv[2]
result = {"connections": {}, "dns": None, "proc_version": open("/proc/version").read()}
for label, host, port in targets:
    failed = 0
    for _ in range(ATTEMPTS):
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError:
            failed += 1
    result["connections"][label] = failed
try:
    result["dns"] = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)[0][4][0]
except OSError as error:
    result["dns"] = f"error: {error}"
def status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return str(error)
result["own_bundle"] = status(sys.argv[4])
result["bucket_listing"] = status(sys.argv[3])
print(json.dumps(result))
""".replace("ATTEMPTS", str(ATTEMPTS))


def _own_bundle_url(tenant: Tenant, endpoint: str, s3: S3) -> str:
    """A presigned URL of the tenant's bundle, as the operator delivers it to the preview (the
    object store's relay is the address pods reach)."""
    key = str(tenant.app["status"]["revisions"][0]["artifactUri"]).split("/", 3)[3]
    store = ObjectStore(S3Settings(endpoint=endpoint, bucket=s3.store.settings.bucket))
    return store.presigned_get(key, 600)


def _preview_pod(api: ApiClient, tenant: Tenant) -> Any:
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        tenant.namespace, label_selector=f"vibeplane.io/app={tenant.app_name}"
    )
    running = [p for p in pods.items if p.status.phase == "Running" and p.status.pod_ip]
    assert running, f"no running preview pod in {tenant.namespace}"
    return running[0]


def _service(api: ApiClient, tenant: Tenant) -> Any:
    return kubernetes.client.CoreV1Api(api).read_namespaced_service(
        f"{tenant.app_name}-preview", tenant.namespace
    )


def test_a_preview_reaches_nothing_but_dns_and_its_own_bundle(
    api: ApiClient,
    cluster: LocalCluster,
    kubectl: Kubectl,
    model_server: ModelServer,
    platform: Platform,
    s3: S3,
) -> None:
    network = NodeNetwork.for_home(cluster.config.home.parent)
    pod_a, pod_b = _preview_pod(api, platform.a), _preview_pod(api, platform.b)
    service_b = _service(api, platform.b)
    assert pod_a.status.pod_ip != "127.0.0.1"
    assert pod_a.spec.runtime_class_name == "gvisor"
    model_port = urllib.parse.urlsplit(model_server.openai_base).port
    forbidden = [
        ("preview B (pod)", pod_b.status.pod_ip, 8080),
        ("preview B (Service)", service_b.spec.cluster_ip, 80),
        ("preview B (NodePort)", network.node_ip, service_b.spec.ports[0].node_port),
        ("model server (host)", network.host_ip, model_port),
        ("API server (Service)", "10.0.0.1", 443),
        ("API server (relay)", network.host_ip, cluster.config.apiserver_port),
        ("kubelet", network.node_ip, 10250),
        ("kubelet (bridge)", "10.88.0.1", 10250),
        ("etcd (relay address)", network.host_ip, cluster.config.etcd_client_port),
        ("machine ssh", network.host_ip, 22),
    ]
    bucket = f"http://{network.host_ip}:{cluster.config.s3_port}/vibeplane/"
    result = kubectl(
        "exec",
        "-n",
        platform.a.namespace,
        pod_a.metadata.name,
        "-c",
        "app",
        "--",
        "python3",
        "-c",
        PROBE,
        json.dumps(forbidden),
        f"{service_b.metadata.name}.{platform.b.namespace}.svc.cluster.local",
        bucket,
        _own_bundle_url(platform.a, f"http://{network.host_ip}:{cluster.config.s3_port}", s3),
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    failed = probe["connections"]
    assert failed == {label: ATTEMPTS for label, _, _ in forbidden}, failed
    # DNS works (the name resolves to B's Service), though nothing behind it answers A.
    assert probe["dns"] == service_b.spec.cluster_ip
    # The one egress allowed: the object store, with A's own presigned URL only.
    assert probe["own_bundle"] == 200
    assert probe["bucket_listing"] == 403
    assert "gvisor" in probe["proc_version"].lower()
    assert probe["proc_version"] != Path("/proc/version").read_text()


def test_logs_and_exec_go_through_the_api_server_to_a_verified_kubelet(
    api: ApiClient, kubectl: Kubectl, platform: Platform
) -> None:
    pod = _preview_pod(api, platform.b)
    logs = kubectl("logs", "-n", platform.b.namespace, pod.metadata.name, "-c", "app")
    assert logs.returncode == 0, logs.stderr
    assert "preview:" in logs.stdout
    uid = kubectl(
        "exec",
        "-n",
        platform.b.namespace,
        pod.metadata.name,
        "-c",
        "app",
        "--",
        "python3",
        "-c",
        "import os; print(os.getuid())",
    )
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() == "65532"


def test_the_api_server_verifies_the_kubelet_it_talks_to(cluster: LocalCluster) -> None:
    """Logs and exec above went through this: the API server checks the kubelet's serving
    certificate against the cluster's CA (no more unverified log endpoint)."""
    pid = cluster.process("apiserver").pid()
    assert pid is not None
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert f"--kubelet-certificate-authority={cluster.config.pki / 'ca.crt'}" in arguments


INGRESS_PROBE = """
import json, socket, sys, time
result = {}
patience = float(sys.argv[2])  # for an expected success: the firewall learns new pods late
for label, host, port in json.loads(sys.argv[1]):
    failed, deadline = 0, time.monotonic() + patience
    for attempt in range(10_000):
        try:
            socket.create_connection((host, port), timeout=2).close()
            failed = 0 if patience else failed
            if patience:
                break
        except OSError:
            failed += 1
            if patience and time.monotonic() < deadline:
                time.sleep(1)
                continue
        if patience or attempt + 1 >= ATTEMPTS:
            break
    result[label] = failed
print(json.dumps(result))
""".replace("ATTEMPTS", str(ATTEMPTS))


def _probe_from(
    api: ApiClient, namespace: str, targets: list[tuple[str, str, int]], patience: float = 0
) -> dict[str, int]:
    """Failed connections per target, from a one-off pod (gVisor, restricted) in namespace."""
    core = kubernetes.client.CoreV1Api(api)
    name = f"probe-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "runtimeClassName": "gvisor",
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "probe",
                        "image": PREVIEW_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": [
                            "python3",
                            "-c",
                            INGRESS_PROBE,
                            json.dumps(targets),
                            str(patience),
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    )
    try:

        def finished() -> bool:
            phase = core.read_namespaced_pod(name, namespace).status.phase
            assert phase != "Failed", core.read_namespaced_pod_log(name, namespace)
            return bool(phase == "Succeeded")

        wait_for(finished, timeout=120, what=f"probe pod {namespace}/{name}")
        result: dict[str, int] = json.loads(core.read_namespaced_pod_log(name, namespace))
        return result
    finally:
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def test_only_the_gateway_namespace_reaches_a_preview(
    api: ApiClient, namespace: str, platform: Platform
) -> None:
    """Ingress by traffic: from a namespace without any policy of its own (so only B's
    ingress policy can refuse), B's preview is unreachable while CoreDNS answers; from the
    gateway namespace it is reachable."""
    pod_b = _preview_pod(api, platform.b)
    targets = [("preview B", pod_b.status.pod_ip, 8080), ("cluster DNS", CLUSTER_DNS, 53)]
    assert _probe_from(api, namespace, targets) == {"preview B": ATTEMPTS, "cluster DNS": 0}
    gateway = OperatorSettings().gateway_namespace
    core = kubernetes.client.CoreV1Api(api)
    created = False
    try:
        core.read_namespace(gateway)
    except kubernetes.client.exceptions.ApiException:
        core.create_namespace({"metadata": {"name": gateway}})
        created = True
    try:
        # The firewall learns a new pod's address late: the probe tries for up to a minute.
        assert _probe_from(api, gateway, targets[:1], patience=60) == {"preview B": 0}
    finally:
        if created:
            core.delete_namespace(gateway)
