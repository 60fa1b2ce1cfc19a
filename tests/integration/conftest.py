"""The real control plane, started once per test session, and the operator against it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.support import AuditLog, wait_for
from vibeplane.cluster.local import LocalCluster

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The local control plane: reused when already up, else started and stopped after."""
    cluster = LocalCluster()
    was_running = cluster.running()
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OperatorProcess:
    """`vibeplane operator` as a real process under its own identity; restartable."""

    def __init__(self, cluster: LocalCluster, log: Path) -> None:
        self.log = log
        self.metrics_port, self.liveness_port = _free_port(), _free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.env = dict(
            os.environ,
            KUBECONFIG=str(cluster.config.kubeconfig("operator")),
            VIBEPLANE_METRICS_PORT=str(self.metrics_port),
            VIBEPLANE_LIVENESS_PORT=str(self.liveness_port),
            VIBEPLANE_RESYNC_SECONDS="3",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vibeplane", "operator"],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
            return text


@pytest.fixture(scope="session")
def operator(
    cluster: LocalCluster, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, resyncing every 3 s, for the whole session."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster, log)
    process.start()
    yield process
    process.stop()
    shutil.copyfile(log, artifacts / "operator.log")
