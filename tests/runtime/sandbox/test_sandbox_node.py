"""The node agent as a real process on the real control plane, running pods under runsc."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.support import or_none, wait_for
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_sandbox.manifests import TOLERATION

pytestmark = pytest.mark.integration

PAGE = b"<!doctype html><h1>todo app, revision 7</h1>"


@dataclass
class Agent:
    """`vibeplane-node run` as a process; stop() and start() again to test adoption."""

    name: str
    state: Path
    kubeconfig: Path
    log: Path
    tls_args: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def runsc_root(self) -> Path:
        return self.state / "runsc"

    def start(self) -> None:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vibeplane_sandbox",
                    "run",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--state-dir={self.state}",
                    f"--node-name={self.name}",
                    "--kubelet-port=0",
                    "--backoff-seconds=1",
                    "--heartbeat-seconds=2",
                    *self.tls_args,
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def sandboxes(self) -> list[str]:
        result = subprocess.run(
            ["runsc", f"--root={self.runsc_root}", "list", "--quiet"],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()


def _node_ready(core: Any, name: str) -> bool:
    try:
        node = core.read_node(name)
    except ApiException:
        return False
    conditions = {c.type: c.status for c in node.status.conditions or []}
    return conditions.get("Ready") == "True"


@pytest.fixture(scope="module")
def agent(
    runsc: Any,
    cluster: LocalCluster,
    api: ApiClient,
    artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Agent]:
    """A node of this module's own (unique name, so it never fights another agent)."""
    core = kubernetes.client.CoreV1Api(api)
    home = tmp_path_factory.mktemp("node")
    node = Agent(
        name=f"vibeplane-test-{uuid.uuid4().hex[:6]}",
        state=home / "state",
        kubeconfig=cluster.config.admin_kubeconfig,
        log=home / "vibeplane-node.log",
        tls_args=cluster.standin_tls_args(),
    )
    node.start()
    try:
        wait_for(lambda: _node_ready(core, node.name), timeout=60, what=f"node {node.name} Ready")
        yield node
    finally:
        # Let the agent finish pods still terminating (namespaces being deleted) first.
        def drained() -> bool:
            pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node.name}")
            return not pods.items

        if node.process is not None:
            with contextlib.suppress(AssertionError):
                wait_for(drained, timeout=60, what="the node's pods to be gone")
        node.stop()
        for delete in (
            lambda: core.delete_node(node.name),
            lambda: kubernetes.client.CoordinationV1Api(api).delete_namespaced_lease(
                node.name, "kube-node-lease"
            ),
        ):
            try:
                delete()
            except ApiException as error:
                if error.status != 404:
                    raise
        shutil.copyfile(node.log, artifacts / "vibeplane-node.log")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An app bundle (tar.gz) served on 127.0.0.1, as S3 would with a presigned URL."""
    root = tmp_path_factory.mktemp("bundles")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("index.html")
        info.size = len(PAGE)
        archive.addfile(info, io.BytesIO(PAGE))
    (root / "app.tar.gz").write_bytes(buffer.getvalue())
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/app.tar.gz?X-Amz-Signature=s3cr3t"
    yield url, hashlib.sha256(buffer.getvalue()).hexdigest()
    server.shutdown()
    server.server_close()


@pytest.fixture
def ns(api: ApiClient) -> Iterator[str]:
    """A namespace whose pods are deleted (through the agent) before the namespace is."""
    core = kubernetes.client.CoreV1Api(api)
    name = f"t-node-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"vibeplane.io/test": "true"}}})
    wait_for(
        lambda: core.list_namespaced_service_account(name).items, timeout=60, what="default SA"
    )
    yield name
    for pod in core.list_namespaced_pod(name).items:
        core.delete_namespaced_pod(pod.metadata.name, name)
    wait_for(lambda: not core.list_namespaced_pod(name).items, timeout=60, what="pods gone")
    core.delete_namespace(name)


def _pod(name: str, node: str, command: list[str], **extra: Any) -> dict[str, Any]:
    """A pod as the operator builds previews: restricted, gvisor, placed on the local node."""
    container: dict[str, Any] = {
        "name": "app",
        "image": "ghcr.io/vibeplane/preview:dev",
        "command": command,
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        **extra.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "runtimeClassName": "gvisor",
            "automountServiceAccountToken": False,
            "nodeSelector": {"vibeplane.io/local-node": "true", "kubernetes.io/hostname": node},
            "tolerations": [dict(TOLERATION)],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            **extra,
        },
    }


def _preview_pod(
    name: str, node: str, bundle: tuple[str, str], python: str, pythonpath: str, path: str = "/"
) -> dict[str, Any]:
    url, digest = bundle
    return _pod(
        name,
        node,
        [python, "-m", "vibeplane_sandbox.preview"],
        container={
            "env": [
                {"name": "PYTHONPATH", "value": pythonpath},
                {"name": "BUNDLE_URL", "value": url},
                {"name": "BUNDLE_SHA256", "value": digest},
            ],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {
                "httpGet": {"path": path, "port": "http"},
                "periodSeconds": 1,
                "failureThreshold": 1,
            },
        },
    )


def _condition(pod: Any, kind: str) -> str | None:
    for condition in pod.status.conditions or []:
        if condition.type == kind:
            return str(condition.status)
    return None


def _ready(core: Any, namespace: str, name: str) -> Any:
    pod = core.read_namespaced_pod(name, namespace)
    return pod if _condition(pod, "Ready") == "True" else None


def _get(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        body: bytes = response.read()
        return body


def _served(port: int) -> bytes | None:
    """The page, or None while nothing listens yet (the container runs before its app does)."""
    try:
        return _get(port)
    except OSError:
        return None


def _gone(core: Any, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as error:
        return error.status == 404
    return False


def test_node_registers_with_the_contract(agent: Agent, api: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    node = core.read_node(agent.name)
    assert node.metadata.labels["vibeplane.io/local-node"] == "true"
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert any(
        (t.key, t.value, t.effect) == ("vibeplane.io/sandbox", "gvisor", "NoSchedule")
        for t in node.spec.taints
    )
    assert [(a.type, a.address) for a in node.status.addresses] == [("InternalIP", "127.0.0.1")]
    assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    assert node.status.node_info.container_runtime_version.startswith("runsc://")
    leases = kubernetes.client.CoordinationV1Api(api)
    # The node reports Ready before its first heartbeat writes the Lease.
    lease = wait_for(
        lambda: or_none(leases.read_namespaced_lease, agent.name, "kube-node-lease"),
        timeout=30,
        what="the node's Lease",
    )
    assert lease.spec.holder_identity == agent.name
    first = lease.spec.renew_time
    wait_for(
        lambda: (
            kubernetes.client.CoordinationV1Api(api)
            .read_namespaced_lease(agent.name, "kube-node-lease")
            .spec.renew_time
            > first
        ),
        timeout=15,
        what="the lease to be renewed",
    )
    runtime_class = kubernetes.client.NodeV1Api(api).read_runtime_class("gvisor")
    assert runtime_class.handler == "runsc"


def test_preview_runs_in_gvisor_serves_and_stops_on_delete(
    agent: Agent,
    api: ApiClient,
    ns: str,
    bundle: tuple[str, str],
    sandbox_python: str,
    sandbox_pythonpath: str,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    manifest = _preview_pod("preview", agent.name, bundle, sandbox_python, sandbox_pythonpath)
    core.create_namespaced_pod(ns, manifest)
    pod = wait_for(lambda: _ready(core, ns, "preview"), timeout=60, what="preview pod Ready")

    assert pod.spec.node_name == agent.name
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip == pod.status.host_ip == "127.0.0.1"
    status = pod.status.container_statuses[0]
    assert (status.ready, status.started, status.restart_count) == (True, True, 0)
    assert status.state.running.started_at is not None
    port = int(pod.metadata.annotations["vibeplane.io/local-port"])
    assert _get(port) == PAGE

    # Really under gVisor: runsc (with the node's own root) runs it, and the process sees
    # gVisor's kernel, not the host's (read through `kubectl logs`, proxied to the node).
    sandbox = status.container_id.removeprefix("runsc://")
    assert sandbox in agent.sandboxes()
    logs = core.read_namespaced_pod_log("preview", ns, container="app")
    kernel = next(line for line in logs.splitlines() if line.startswith("preview: kernel"))
    assert os.uname().version not in kernel
    assert "s3cr3t" not in logs, "the presigned URL's signature must never be logged"
    assert core.read_namespaced_pod_log("preview", ns, tail_lines=1).count("\n") == 1

    core.delete_namespaced_pod("preview", ns)
    wait_for(lambda: _gone(core, ns, "preview"), timeout=60, what="the pod to be removed")
    assert sandbox not in agent.sandboxes()
    with pytest.raises(OSError, match="refused"):
        _get(port)


def test_a_failing_readiness_probe_keeps_the_pod_unready(
    agent: Agent,
    api: ApiClient,
    ns: str,
    bundle: tuple[str, str],
    sandbox_python: str,
    sandbox_pythonpath: str,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    manifest = _preview_pod(
        "unready", agent.name, bundle, sandbox_python, sandbox_pythonpath, path="/missing"
    )
    core.create_namespaced_pod(ns, manifest)

    def running() -> Any:
        pod = core.read_namespaced_pod("unready", ns)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].state.running else None

    pod = wait_for(running, timeout=60, what="the container to run")
    port = int(pod.metadata.annotations["vibeplane.io/local-port"])
    wait_for(lambda: _served(port) == PAGE, timeout=30, what="the app to serve")
    time.sleep(3)  # several probe periods
    pod = core.read_namespaced_pod("unready", ns)
    assert pod.status.phase == "Running"
    assert _condition(pod, "Ready") == "False"
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=unready")
    assert any(e.reason == "Unhealthy" and "404" in e.message for e in events.items)


def test_exit_code_is_reported(agent: Agent, api: ApiClient, ns: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    manifest = _pod("exits", agent.name, ["/bin/sh", "-c", "echo failing; exit 3"])
    manifest["spec"]["restartPolicy"] = "Never"
    core.create_namespaced_pod(ns, manifest)

    def terminated() -> Any:
        pod = core.read_namespaced_pod("exits", ns)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].state.terminated else None

    pod = wait_for(terminated, timeout=60, what="the container to terminate")
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (3, "Error")
    assert pod.status.phase == "Failed"
    assert core.read_namespaced_pod_log("exits", ns) == "failing\n"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "vibeplane_sandbox",
            "logs",
            f"{ns}/exits",
            f"--state-dir={agent.state}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (cli.returncode, cli.stdout) == (0, "failing\n")


def test_restart_policy_always_restarts_with_backoff(agent: Agent, api: ApiClient, ns: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_pod(ns, _pod("crashes", agent.name, ["/bin/sh", "-c", "exit 1"]))

    def restarted() -> Any:
        pod = core.read_namespaced_pod("crashes", ns)
        statuses = pod.status.container_statuses or []
        return pod if statuses and statuses[0].restart_count >= 2 else None

    pod = wait_for(restarted, timeout=60, what="two restarts")
    status = pod.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 1
    assert pod.status.phase == "Running"  # restartPolicy Always: kubelet's phase while looping


def test_unsupported_pods_fail_with_a_reason(agent: Agent, api: ApiClient, ns: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    manifest = _pod("hostpath", agent.name, ["/bin/true"])
    manifest["spec"]["volumes"] = [{"name": "etc", "hostPath": {"path": "/etc"}}]
    manifest["spec"]["containers"][0]["volumeMounts"] = [{"name": "etc", "mountPath": "/h"}]
    core.create_namespaced_pod(ns, manifest)
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("hostpath", ns)).status.phase == "Failed" and p,
        timeout=60,
        what="the pod to be refused",
    )
    assert pod.status.reason == "UnsupportedPodSpec"
    assert "hostPath" in pod.status.message


def test_sandboxes_outlive_an_agent_restart_are_adopted_or_cleaned_up(
    agent: Agent,
    api: ApiClient,
    ns: str,
    bundle: tuple[str, str],
    sandbox_python: str,
    sandbox_pythonpath: str,
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    manifest = _preview_pod("adopted", agent.name, bundle, sandbox_python, sandbox_pythonpath)
    core.create_namespaced_pod(ns, manifest)
    pod = wait_for(lambda: _ready(core, ns, "adopted"), timeout=60, what="pod Ready")
    port = int(pod.metadata.annotations["vibeplane.io/local-port"])
    sandbox = pod.status.container_statuses[0].container_id.removeprefix("runsc://")

    agent.stop()
    assert _get(port) == PAGE, "the sandbox keeps serving while the agent is down"
    agent.start()
    wait_for(lambda: _node_ready(core, agent.name), timeout=60, what="node Ready again")
    time.sleep(3)  # a few sync periods of the new agent
    pod = core.read_namespaced_pod("adopted", ns)
    assert _condition(pod, "Ready") == "True"
    status = pod.status.container_statuses[0]
    assert status.restart_count == 0
    assert status.container_id == f"runsc://{sandbox}"

    # A pod force-deleted while the agent is down: the restarted agent kills what it left.
    agent.stop()
    core.delete_namespaced_pod("adopted", ns, grace_period_seconds=0)
    assert sandbox in agent.sandboxes()
    agent.start()
    wait_for(lambda: sandbox not in agent.sandboxes(), timeout=60, what="the sandbox cleaned up")
    with pytest.raises(OSError, match="refused"):
        _get(port)
