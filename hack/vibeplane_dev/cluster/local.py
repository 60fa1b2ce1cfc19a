"""Bring the local control plane up and down.

`up` is idempotent: a cluster whose processes all run and whose API server is ready is left
alone. Each component runs as its own process of the one control-plane binary; state (etcd's
data, certificates, logs, pid files) lives under VIBEPLANE_HOME, so `down` then `up` resumes
the same cluster, and `down --purge` forgets it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from vibeplane_dev.cluster.build import (
    cert_manager_crds,
    ensure_binary,
    ensure_tool,
    gateway_api_crds,
    kserve_crds,
    trainer_crds,
)
from vibeplane_dev.cluster.config import TOOLS, ClusterConfig, controlplane_source, repository_root
from vibeplane_dev.cluster.node import NODE_NAME, NodeNetwork
from vibeplane_dev.cluster.nodecerts import STANDIN_SERVING, write_node_certificates
from vibeplane_dev.cluster.processes import ManagedProcess

Progress = Callable[[str], None]
COMPONENTS = ("etcd", "apiserver", "controller-manager", "scheduler")
# Client identities with a certificate and kubeconfig each; the operator has its own so that
# the API server's audit log tells its requests apart from the admin's (tests, kubectl).
IDENTITIES = ("admin", "operator", "controller-manager", "scheduler")
OPERATOR_USER = "vibeplane-operator"

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# At Metadata level: every request of the operator (its reads too, so benchmarks count requests
# per verb from the API server's side) and everyone's writes (idempotency and zero-write checks);
# cheap enough to leave on: the operator reads through watches, and watches log once.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "None",
            "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            "users": ["system:kube-controller-manager", "system:kube-scheduler"],
        },
        {"level": "Metadata", "users": [OPERATOR_USER]},
        {"level": "Metadata", "verbs": sorted(WRITE_VERBS)},
        {"level": "None"},
    ],
}


class ClusterError(RuntimeError):
    """The control plane could not be brought up; the message says what failed and why."""


def _noop(_: str) -> None:
    return None


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    log: Path


class LocalCluster:
    """One local control plane, described by a ClusterConfig."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig.from_env()

    def process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.config.run, self.config.logs)

    # ---- queries -------------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        return [
            ComponentStatus(name, self.process(name).pid(), self.process(name).log_file)
            for name in COMPONENTS
        ]

    def running(self) -> bool:
        return all(component.pid is not None for component in self.status()) and self.ready()

    def ready(self) -> bool:
        """Whether the API server answers /readyz with ok."""
        try:
            return self.get("/readyz", timeout=3) == b"ok"
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False

    def get(self, path: str, timeout: float = 10) -> bytes:
        """GET a path from the API server as the admin."""
        context = ssl.create_default_context(cafile=str(self.config.pki / "ca.crt"))
        context.load_cert_chain(self.config.pki / "admin.crt", self.config.pki / "admin.key")
        with urllib.request.urlopen(
            self.config.server + path, context=context, timeout=timeout
        ) as response:
            body: bytes = response.read()
            return body

    # ---- up ------------------------------------------------------------------------------

    def build(self, progress: Progress = _noop) -> Path:
        """Build (or find cached) the control-plane binary, fetch KServe's CRDs, and build
        MinIO (the embedded object store) and Helm."""
        binary = ensure_binary(controlplane_source(), self.config.cache, progress)
        kserve_crds(self.config.cache)
        trainer_crds(self.config.cache)
        gateway_api_crds(self.config.cache)
        cert_manager_crds(self.config.cache)
        ensure_tool("minio", self.config.cache, progress)
        ensure_tool("helm", self.config.cache, progress)  # the chart's tests install with it
        return binary

    def up(self, progress: Progress = _noop) -> Path:
        """Start whatever is not running; return the admin kubeconfig path."""
        root = repository_root()
        binary = self.build(progress)
        if self.running():
            self._install_manifests(binary, root, progress)
            return self.config.admin_kubeconfig
        for directory in (self.config.home, self.config.logs, self.config.run):
            directory.mkdir(parents=True, exist_ok=True)
        self._certificates(binary)
        self._kubeconfigs()

        self._start_once("etcd", self._etcd_args(binary), progress)
        self._wait(lambda: self._etcd_healthy(), "etcd", 60)
        self._start_once("apiserver", self._apiserver_args(binary), progress)
        self._wait(self.ready, "apiserver", 120)
        self._start_once("controller-manager", self._controller_manager_args(binary), progress)
        self._start_once("scheduler", self._scheduler_args(binary), progress)
        progress("waiting for the default ServiceAccount (controller-manager is working)")
        self._wait(self._default_service_account_exists, "controller-manager", 120)
        self._install_manifests(binary, root, progress)
        return self.config.admin_kubeconfig

    def restart(self, component: str, grace: float = 15.0, progress: Progress = _noop) -> int:
        """Stop one component (SIGTERM, SIGKILL after `grace` seconds) and start it again with
        the same arguments and state, waiting until it is healthy; returns its new pid. The chaos
        tests restart the API server under a running operator this way."""
        binary = ensure_binary(controlplane_source(), self.config.cache)
        components: dict[str, tuple[list[str], Callable[[], bool] | None]] = {
            "etcd": (self._etcd_args(binary), self._etcd_healthy),
            "apiserver": (self._apiserver_args(binary), self.ready),
            "controller-manager": (self._controller_manager_args(binary), None),
            "scheduler": (self._scheduler_args(binary), None),
        }
        if component not in components:
            raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
        argv, healthy = components[component]
        process = self.process(component)
        if process.stop(grace):
            progress(f"stopped {component}")
        self._start_once(component, argv, progress)
        if healthy is not None:
            self._wait(healthy, component, 120)
        pid = process.pid()
        if pid is None:
            raise ClusterError(f"{component} exited after a restart:\n{process.log_tail()}")
        return pid

    def _start_once(self, name: str, argv: Sequence[str], progress: Progress) -> None:
        process = self.process(name)
        if process.running():
            return
        progress(f"starting {name}")
        process.start(argv)
        if process.exited_early(timeout=1.0):
            raise ClusterError(f"{name} exited at once; its log ends:\n{process.log_tail()}")

    def _wait(self, check: Callable[[], bool], component: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.process(component)
        while time.monotonic() < deadline:
            if check():
                return
            if not process.running():
                raise ClusterError(f"{component} exited; its log ends:\n{process.log_tail()}")
            time.sleep(0.25)
        raise ClusterError(
            f"{component} not ready after {timeout:.0f}s; its log ends:\n{process.log_tail()}"
        )

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.config.etcd_client_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _default_service_account_exists(self) -> bool:
        try:
            self.get("/api/v1/namespaces/default/serviceaccounts/default", timeout=3)
            return True
        except (OSError, urllib.error.URLError):
            return False

    # ---- files ---------------------------------------------------------------------------

    def _certificates(self, binary: Path) -> None:
        subprocess.run(
            [str(binary), "certs", "--dir", str(self.config.pki)],
            check=True,
            capture_output=True,
        )
        # The API server's client certificate towards the kubelet of the real node.
        write_node_certificates(
            self.config.pki, self.node_pki, NODE_NAME, self.node_network.node_ip
        )

    @property
    def node_network(self) -> NodeNetwork:
        return NodeNetwork.for_home(self.config.home.parent)

    @property
    def node_pki(self) -> Path:
        return self.config.home.parent / "node" / "pki"

    def standin_tls_args(self) -> list[str]:
        """`vibeplane-node run` flags for the stand-in preview node: it serves with a
        certificate of the cluster CA (the API server verifies kubelets) and takes only
        clients the CA signed (the API server's kubelet client certificate)."""
        write_node_certificates(
            self.config.pki, self.node_pki, NODE_NAME, self.node_network.node_ip
        )
        return [
            f"--tls-cert-file={self.node_pki / f'{STANDIN_SERVING}.crt'}",
            f"--tls-private-key-file={self.node_pki / f'{STANDIN_SERVING}.key'}",
            f"--client-ca={self.config.pki / 'ca.crt'}",
        ]

    def _kubeconfigs(self) -> None:
        pki = self.config.pki
        for identity in IDENTITIES:
            document = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "vibeplane",
                        "cluster": {
                            "server": self.config.server,
                            "certificate-authority": str(pki / "ca.crt"),
                        },
                    }
                ],
                "users": [
                    {
                        "name": identity,
                        "user": {
                            "client-certificate": str(pki / f"{identity}.crt"),
                            "client-key": str(pki / f"{identity}.key"),
                        },
                    }
                ],
                "contexts": [
                    {"name": "vibeplane", "context": {"cluster": "vibeplane", "user": identity}}
                ],
                "current-context": "vibeplane",
            }
            self.config.kubeconfig(identity).write_text(yaml.safe_dump(document, sort_keys=False))
        (self.config.home / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))

    # ---- arguments -----------------------------------------------------------------------

    def _etcd_args(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "etcd",
            f"--data-dir={self.config.etcd_data}",
            f"--client-url=http://127.0.0.1:{self.config.etcd_client_port}",
            f"--peer-url=http://127.0.0.1:{self.config.etcd_peer_port}",
        ]

    def _apiserver_args(self, binary: Path) -> list[str]:
        pki = self.config.pki
        return [
            str(binary),
            "apiserver",
            f"--etcd-servers=http://127.0.0.1:{self.config.etcd_client_port}",
            "--bind-address=127.0.0.1",
            # Pods reach the API server through the real node's veth (a relay forwards that
            # address to 127.0.0.1): the `kubernetes` Service's endpoint must be routable.
            f"--advertise-address={self.node_network.host_ip}",
            # Logs and exec reach the node's kubelet at its address, whose serving certificate
            # the API server verifies; the kubelet authenticates the API server in turn.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={self.node_pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={self.node_pki / 'apiserver-kubelet-client.key'}",
            f"--secure-port={self.config.apiserver_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            # Room for thousands of preview Services (benchmarks run 1,000 apps and more).
            "--service-cluster-ip-range=10.0.0.0/16",
            "--allow-privileged=true",
            # The first apply of KServe's 2 MB CRDs (server-side apply) took longer than the
            # default 60 s on a loaded 2-core machine and `up` failed with a Timeout.
            "--request-timeout=3m",
            "--profiling=false",
            f"--audit-policy-file={self.config.home / 'audit-policy.yaml'}",
            f"--audit-log-path={self.config.audit_log}",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
            "--audit-log-format=json",
        ]

    def _controller_manager_args(self, binary: Path) -> list[str]:
        pki = self.config.pki
        kubeconfig = self.config.kubeconfig("controller-manager")
        return [
            str(binary),
            "controller-manager",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
        ]

    def _scheduler_args(self, binary: Path) -> list[str]:
        kubeconfig = self.config.kubeconfig("scheduler")
        return [
            str(binary),
            "scheduler",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
        ]

    # ---- CRDs ----------------------------------------------------------------------------

    def kubectl(self, *args: str, binary: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the bundled kubectl (same version as the API server) as the admin."""
        binary = binary or ensure_binary(controlplane_source(), self.config.cache)
        return subprocess.run(
            [str(binary), "kubectl", f"--kubeconfig={self.config.admin_kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    def _install_manifests(self, binary: Path, root: Path, progress: Progress) -> None:
        files = [
            *sorted((root / "crds").glob("*.yaml")),
            root / "charts" / "vibeplane" / "templates" / "workspace-clusterroles.yaml",
            *kserve_crds(self.config.cache),
            *trainer_crds(self.config.cache),
            *gateway_api_crds(self.config.cache),
            *cert_manager_crds(self.config.cache),
        ]
        digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()
        stamp = self.config.run / "crds.sha256"
        if stamp.is_file() and stamp.read_text() == digest:
            return
        progress(
            "installing CRDs (vibeplane, KServe, Trainer, Gateway API, cert-manager)"
            " and the workspace ClusterRoles"
        )
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=vibeplane-cluster"]
        for path in files:
            args += ["-f", str(path)]
        result = self.kubectl(*args, binary=binary)
        if result.returncode != 0:
            raise ClusterError(f"installing CRDs failed:\n{result.stderr}")
        names = [
            f"crd/{document['metadata']['name']}"
            for path in files
            # libyaml's loader where PyYAML has it: KServe's CRDs are 2.2 MB each, tens of
            # seconds of CPU for the pure-Python one on a busy machine.
            for document in yaml.load_all(
                path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            )
            if document and document["kind"] == "CustomResourceDefinition"
        ]
        result = self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *names, binary=binary
        )
        if result.returncode != 0:
            raise ClusterError(f"CRDs not established:\n{result.stderr}")
        stamp.write_text(digest)

    # ---- down ----------------------------------------------------------------------------

    def forget_objects(self, progress: Progress = _noop) -> None:
        """Stop whatever of this cluster runs and drop etcd's data, so the next `up` starts
        with no objects; the certificates stay, so a node that joined before joins again."""
        self.down(progress=progress)
        if self.config.etcd_data.exists():
            shutil.rmtree(self.config.etcd_data)
            progress("forgot the cluster's objects (etcd data)")

    def down(self, purge: bool = False, progress: Progress = _noop) -> list[str]:
        """Stop every component this cluster started, in reverse order; return their names."""
        stopped = []
        for name in reversed(COMPONENTS):
            if self.process(name).stop():
                progress(f"stopped {name}")
                stopped.append(name)
        (self.config.run / "crds.sha256").unlink(missing_ok=True)
        if purge and self.config.home.exists():
            shutil.rmtree(self.config.home)
        return stopped


def install_tools(config: ClusterConfig, progress: Progress = _noop) -> dict[str, Path]:
    """KWOK and Helm from the Go module proxy, for scale tests and the chart."""
    return {name: ensure_tool(name, config.cache, progress) for name in TOOLS}
