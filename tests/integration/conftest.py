"""The real control plane, started once per test session, and the operator against it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar, cast

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.conftest import TEST_HOME
from tests.integration.support import AuditLog, wait_for
from vibeplane.storage.s3 import ObjectStore, S3Settings
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import (
    NODE_NAME,
    real_node_operator_environment,
    real_node_selected,
    start_real_node,
    stop_real_node,
)
from vibeplane_dev.cluster.s3server import LocalS3
from vibeplane_dev.platform import preview_command

ROOT = Path(__file__).resolve().parents[2]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
T = TypeVar("T")

# pytest keeps one instance of a session fixture per conftest that defines or imports it
# (tests/security imports these). What must be one per cluster (the operator, the preview
# node: two would fight over the same objects and the same node name) and what is costly to
# start twice (the model server) is started by the first instance and shared by the others.
_SHARED: dict[str, object] = {}


@contextlib.contextmanager
def _one_per_session(name: str, value: T) -> Iterator[T]:
    """Offer `value` to the other instances of fixture `name` while it lives."""
    _SHARED[name] = value
    try:
        yield value
    finally:
        del _SHARED[name]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The local control plane: reused when already up, else started and stopped after."""
    cluster = LocalCluster()
    was_running = cluster.running()
    if not was_running and cluster.config.home.parent == TEST_HOME:
        # The suite's own home starts each session empty: an earlier run's namespaces, warm
        # pools and platform pods would otherwise crowd the node and reconcile beside the tests.
        cluster.forget_objects()
    cluster.up()
    # Code under test that builds its own client (the budget store) finds the cluster here.
    os.environ["KUBECONFIG"] = str(cluster.config.admin_kubeconfig)
    yield cluster
    if not was_running and not os.environ.get("VIBEPLANE_KEEP_CLUSTER"):
        cluster.down()


@pytest.fixture(scope="session")
def api(cluster: LocalCluster) -> ApiClient:
    """A client authenticated as the cluster admin."""
    return kubernetes.config.new_client_from_config(
        config_file=str(cluster.config.admin_kubeconfig)
    )


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    """The bundled kubectl as the admin: kubectl("get", "ns")."""
    return cluster.kubectl


@pytest.fixture(scope="session")
def audit(cluster: LocalCluster) -> AuditLog:
    return AuditLog(cluster.config.audit_log)


@pytest.fixture
def namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) after it."""
    core = kubernetes.client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"vibeplane.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


def _namespace_exists(api: ApiClient, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(api).read_namespace(name)
    except kubernetes.client.exceptions.ApiException:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class S3:
    """MinIO on loopback, and a client of the operator's bucket."""

    server: LocalS3
    store: ObjectStore
    environment: dict[str, str]


@pytest.fixture(scope="session")
def s3(cluster: LocalCluster) -> Iterator[S3]:
    """The embedded object store: reused when running, else started and stopped after."""
    server = LocalS3(cluster.config)
    was_running = server.process.running()
    server.up()
    environment = server.client_environment()
    os.environ.update(environment)  # boto3 in this process finds the credentials here
    store = ObjectStore(S3Settings(endpoint=server.endpoint, bucket="vibeplane"))
    yield S3(server, store, environment)
    if not was_running and not os.environ.get("VIBEPLANE_KEEP_CLUSTER"):
        server.down()


@dataclass
class ModelServer:
    """The builtin model served by the real modelserver process."""

    openai_base: str
    metrics_url: str

    def requests(self) -> float:
        """Chat requests the server has seen, counted by the server itself."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("vibeplane_modelserver_requests_total")
        )


@pytest.fixture(scope="session")
def model_server(artifacts: Path) -> Iterator[ModelServer]:
    from tests.runtime.modelserver.modelserver_support import running_modelserver

    if "model_server" in _SHARED:
        yield cast(ModelServer, _SHARED["model_server"])
        return
    with (
        running_modelserver("builtin", artifacts / "modelserver-builtin.log") as server,
        _one_per_session(
            "model_server", ModelServer(server.openai_base, f"{server.url}/metrics")
        ) as shared,
    ):
        yield shared


PREVIEW_NODE = "vibeplane-local"


@contextlib.contextmanager
def running_preview_node(
    cluster: LocalCluster, api: ApiClient, log: Path, state: Path
) -> Iterator[str]:
    """`vibeplane-node` (runtime/sandbox) against the cluster until the block ends: pods with
    runtimeClassName gvisor run under runsc on this machine, on loopback ports."""
    if shutil.which("runsc") is None:
        pytest.fail("runsc is not installed: `make test` installs it (apt-get install runsc)")
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "vibeplane-node"),
                "run",
                "--kubeconfig",
                str(cluster.config.admin_kubeconfig),
                "--state-dir",
                str(state),
                "--kubelet-port",
                "0",
                *cluster.standin_tls_args(),
                "--stop-sandboxes-on-exit",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    core = kubernetes.client.CoreV1Api(api)

    def node_ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"vibeplane-node exited: {log.read_text()[-3000:]}")
        try:
            node = core.read_node(PREVIEW_NODE)
        except kubernetes.client.exceptions.ApiException:
            return False
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    try:
        wait_for(node_ready, timeout=60, what=f"node {PREVIEW_NODE} Ready")
        yield PREVIEW_NODE
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_real_node(cluster: LocalCluster) -> Iterator[str]:
    """The real node (containerd, kubelet, gVisor, a pod network in its own namespace) until
    the block ends; removed entirely after, unless VIBEPLANE_KEEP_CLUSTER is set."""
    start_real_node(cluster.config)
    try:
        yield NODE_NAME
    finally:
        if not os.environ.get("VIBEPLANE_KEEP_CLUSTER"):
            stop_real_node(cluster.config)


@pytest.fixture(scope="session")
def preview_node(
    cluster: LocalCluster, api: ApiClient, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The node previews run on, one per session: the real node with VIBEPLANE_NODE=real,
    else the stand-in (see `running_preview_node`)."""
    if "preview_node" in _SHARED:
        yield cast(str, _SHARED["preview_node"])
        return
    if real_node_selected():
        with running_real_node(cluster) as name, _one_per_session("preview_node", name) as node:
            yield node
        return
    state = tmp_path_factory.mktemp("node")
    with (
        running_preview_node(cluster, api, artifacts / "preview-node.log", state) as name,
        _one_per_session("preview_node", name) as node,
    ):
        yield node


class OperatorProcess:
    """`vibeplane operator` as a real process under its own identity; restartable."""

    running: ClassVar[set[OperatorProcess]] = set()
    """The operators this session has running. pytest keeps one instance of a session fixture
    per conftest that defines or imports it, so a test that needs the cluster to itself
    (tests/chaos) finds the others here, to stop them and start them again after."""

    def __init__(self, cluster: LocalCluster, log: Path, environment: dict[str, str]) -> None:
        self.log = log
        self.metrics_port, self.liveness_port = _free_port(), _free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.env = dict(
            os.environ,
            KUBECONFIG=str(cluster.config.kubeconfig("operator")),
            VIBEPLANE_METRICS_PORT=str(self.metrics_port),
            VIBEPLANE_LIVENESS_PORT=str(self.liveness_port),
            VIBEPLANE_RESYNC_SECONDS="3",
            VIBEPLANE_PREVIEW_LOCAL_NODE="true",
            VIBEPLANE_PREVIEW_COMMAND=json.dumps(preview_command()),
            VIBEPLANE_PREVIEW_READY_TIMEOUT="30",
            # No warm pools unless a test's Workspace asks (spec.warmPool): the cold path stays
            # what the suite covers, and no idle sandbox per workspace loads the node.
            VIBEPLANE_PREVIEW_WARM_POOL="0",
        )
        self.env.update(environment)  # the real node's settings replace the stand-in's
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vibeplane", "operator"],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        OperatorProcess.running.add(self)
        wait_for(self._healthy, timeout=60, what="operator /healthz")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited: {self.log.read_text()[-3000:]}")
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        OperatorProcess.running.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
            return text


@pytest.fixture
def without_other_operators() -> Iterator[None]:
    """The session's running operators stopped for one test, started again after it: for a test
    whose subject the operator would otherwise race (a status the test sets by hand)."""
    others = list(OperatorProcess.running)
    for process in others:
        process.stop()
    try:
        yield
    finally:
        for process in others:
            process.start()


def apply_builtin_model(api: ApiClient) -> None:
    """The builtin ModelDeployment in the platform namespace (once the operator has made it),
    as `vibeplane up` has it: the platform's default model."""
    platform_namespace = "vibeplane-system"
    wait_for(
        lambda: _namespace_exists(api, platform_namespace), timeout=30, what="platform namespace"
    )
    kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object(
        "vibeplane.io",
        "v1alpha1",
        platform_namespace,
        "modeldeployments",
        "builtin",
        {
            "apiVersion": "vibeplane.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "builtin"},
            "spec": {
                "model": {"name": "builtin"},
                "serving": {"builtin": {}},
                "pricing": {"inputPerMillion": "0.10", "outputPerMillion": "0.40"},
                "tier": "small",
            },
        },
        field_manager="tests",
        force=True,
        _content_type="application/apply-patch+yaml",
    )


TEST_EGRESS_ALLOW = ["127.0.0.1"]
"""The test providers and model servers of tenants' models listen on 127.0.0.1 (tests talk to
nothing else), so the session's operator allows that one address the way a platform allows its
LLM gateway (models.egress.allow). Every other loopback address and name, link-local,
private and cluster destinations stay refused (tests/security/test_model_egress.py)."""


def operator_environment(s3: S3, model_server: ModelServer) -> dict[str, str]:
    """The session operator's environment (the leader-election tests start more like it).
    Only while the preview node runs: on the real node it names the node's relays."""
    return {
        **s3.environment,
        "VIBEPLANE_BUILTIN_MODEL_URL": model_server.openai_base,
        "VIBEPLANE_MODEL_EGRESS_ALLOW": json.dumps(TEST_EGRESS_ALLOW),
        # One delivery key across the session's operators and their restarts, as the chart's
        # Secret keeps it: a new key would change every preview pod's template.
        "VIBEPLANE_DELIVERY_KEY_FILE": str(s3.server.config.home / "delivery-key.json"),
        # Previews on the real node: NodePort URLs, bundles through the object store's relay.
        **(real_node_operator_environment(s3.server.config) if real_node_selected() else {}),
    }


@pytest.fixture(scope="session")
def operator(
    cluster: LocalCluster,
    api: ApiClient,
    s3: S3,
    model_server: ModelServer,
    preview_node: str,
    artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator for the whole session, resyncing every 3 s, with the embedded object
    store, the builtin model (a ModelDeployment in the platform namespace) and previews
    scheduled on the local preview node. The node comes first: on the real node the operator
    reaches the object store through the node's relay, which only exists while the node runs
    (without it the relay's address is routed off the machine)."""
    if "operator" in _SHARED:
        yield cast(OperatorProcess, _SHARED["operator"])
        return
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster, log, operator_environment(s3, model_server))
    process.start()
    apply_builtin_model(api)
    with _one_per_session("operator", process):
        yield process
    process.stop()
    shutil.copyfile(log, artifacts / "operator.log")
