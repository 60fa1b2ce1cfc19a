"""The embedded platform: everything `vibeplane up` runs on one machine, and its examples.

Parts, in start order (each is skipped when already running, so `up` is idempotent):
control plane -> object store (MinIO) -> model server (builtin backend) -> local preview node
(gVisor) -> operator. `down` stops them in reverse order, each through its pid file and
exact command line, so nothing else is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vibeplane.wellknown import PREVIEW_RUNTIME_DIR
from vibeplane_dev.cluster import gateway
from vibeplane_dev.cluster.config import repository_root
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import COMPONENTS as NODE_COMPONENTS
from vibeplane_dev.cluster.node import RELAYS as NODE_RELAYS
from vibeplane_dev.cluster.node import (
    LocalNode,
    existing_real_node,
    real_node_selected,
    start_real_node,
    stop_real_node,
)
from vibeplane_dev.cluster.processes import ManagedProcess
from vibeplane_dev.cluster.s3server import LocalS3
from vibeplane_dev.objects import create_missing
from vibeplane_dev.steps import Steps

MODELSERVER_PORT = int(os.environ.get("VIBEPLANE_MODELSERVER_PORT", "18080"))
EXAMPLE_APP = ("ws-demo", "todo")
# The platform's own objects, applied with or without the examples: its default model belongs
# to the platform (as the chart's modelserver.enabled makes it), not to the examples.
PLATFORM_MANIFESTS = Path(__file__).parent / "manifests"


@dataclass(frozen=True)
class Platform:
    cluster: LocalCluster
    s3: LocalS3

    @classmethod
    def local(cls) -> Platform:
        cluster = LocalCluster()
        return cls(cluster, LocalS3(cluster.config))

    @property
    def home(self) -> Path:
        return self.cluster.config.home.parent / "platform"

    def process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.home / "run", self.home / "logs")

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{MODELSERVER_PORT}/openai/v1"

    def command(self, name: str) -> list[str]:
        """A console script of this environment, run by its interpreter explicitly: so the
        process's command line is exactly what was started (a shebang would rewrite it, and
        the pid file could no longer prove the process is ours)."""
        path = Path(sys.executable).parent / name
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: run `make up` (it installs the runtime packages)"
            )
        return [sys.executable, str(path)]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(
    check: Callable[[], bool], what: str, process: ManagedProcess | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and not process.running():
            raise RuntimeError(f"{what}: the process exited; its log ends:\n{process.log_tail()}")
        time.sleep(0.5)
    tail = f"; its log ends:\n{process.log_tail()}" if process else ""
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s{tail}")


def _start(
    process: ManagedProcess, argv: list[str], steps: Steps, env: dict[str, str] | None = None
) -> bool:
    if process.running():
        steps.note(f"{process.name} already running")
        return False
    process.start(argv, env=env)
    steps.note(f"{process.name} log: {process.log_file}")
    return True


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (lingering closed connections do not count)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_modelserver(platform: Platform, steps: Steps) -> None:
    process = platform.process("modelserver")
    if not process.running() and not _port_free(MODELSERVER_PORT):
        raise RuntimeError(
            f"port {MODELSERVER_PORT} is taken by a process vibeplane did not start: stop it, "
            "or choose another port with VIBEPLANE_MODELSERVER_PORT"
        )
    _start(
        process,
        [
            *platform.command("vibeplane-modelserver"),
            "--backend",
            "builtin",
            "--model-name",
            "builtin",
            "--http-port",
            str(MODELSERVER_PORT),
        ],
        steps,
    )
    _wait(
        lambda: (
            process.running() and _http_ok(f"http://127.0.0.1:{MODELSERVER_PORT}/v2/health/ready")
        ),
        "the model server",
        process,
        90,
    )


def install_runsc(steps: Steps) -> None:
    """gVisor from Debian's packages, when this machine can install it (root, apt-get)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "runsc (gVisor) is not installed and cannot be installed from here: "
            "run `apt-get install runsc` as root (`make up` does it)"
        )
    steps.note("installing runsc (gVisor) from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "runsc"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def start_preview_node(platform: Platform, steps: Steps) -> None:
    if shutil.which("runsc") is None:
        install_runsc(steps)
    process = platform.process("preview-node")
    _start(
        process,
        [
            *platform.command("vibeplane-node"),
            "run",
            "--kubeconfig",
            str(platform.cluster.config.admin_kubeconfig),
            "--state-dir",
            str(platform.home / "node"),
            "--kubelet-port",
            "0",
            *platform.cluster.standin_tls_args(),
            "--stop-sandboxes-on-exit",
        ],
        steps,
    )

    def node_ready() -> bool:
        result = platform.cluster.kubectl("get", "node", "vibeplane-local", "-o", "json")
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _wait(node_ready, "the preview node", process, 60)


def preview_command() -> list[str]:
    """Previews on the local node run the stdlib-only preview runtime with the host's python:
    the sandbox's root filesystem is the host's (read-only), and the node mounts its preview
    runtime at the path the preview image uses (the checkout itself may be hidden there)."""
    return ["/usr/bin/python3", f"{PREVIEW_RUNTIME_DIR}/preview.py"]


def operator_environment(platform: Platform, node: LocalNode | None = None) -> dict[str, str]:
    base = {
        **platform.s3.client_environment(),
        "KUBECONFIG": str(platform.cluster.config.kubeconfig("operator")),
        "VIBEPLANE_BUILTIN_MODEL_URL": platform.model_url,
    }
    if node is not None:
        routes = gateway.operator_environment() if gateway.enabled() else {}
        return {**base, **node.operator_environment(), **routes}
    return {
        **base,
        "VIBEPLANE_PREVIEW_LOCAL_NODE": "true",
        "VIBEPLANE_PREVIEW_COMMAND": json.dumps(preview_command()),
    }


def start_operator(platform: Platform, steps: Steps, node: LocalNode | None = None) -> None:
    process = platform.process("operator")
    env = dict(os.environ, **operator_environment(platform, node))
    _start(process, [sys.executable, "-m", "vibeplane", "operator"], steps, env=env)
    if process.exited_early(timeout=3.0):
        raise RuntimeError(f"the operator exited at once; its log ends:\n{process.log_tail()}")


def start_gateway(platform: Platform, node: LocalNode, steps: Steps) -> None:
    """Traefik in the node's namespace, the front service, the relay; then wait until Traefik
    has programmed the Gateway."""
    local = gateway.LocalGateway(platform.cluster.config, node, platform.home)
    local.up(platform.cluster.kubectl, platform.command("vibeplane-frontdoor"), steps.note)
    _wait(
        lambda: local.programmed(platform.cluster.kubectl),
        "the Gateway (Programmed by Traefik)",
        local.traefik,
        120,
    )
    steps.note(f"gateway on 127.0.0.1:{gateway.gateway_port()} (hosts *.{gateway.DOMAIN})")


def _app_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, object]:
    result = cluster.kubectl("get", "vibeapp", name, "-n", namespace, "-o", "json")
    if result.returncode != 0:
        return {}
    status: dict[str, object] = json.loads(result.stdout).get("status") or {}
    return status


def up(examples: bool, steps: Steps) -> int:
    platform = Platform.local()
    with steps.step("control plane"):
        platform.cluster.up(progress=steps.note)
    with steps.step("object store (MinIO on 127.0.0.1)"):
        platform.s3.up(progress=steps.note)
    with steps.step("model server (builtin backend)"):
        start_modelserver(platform, steps)
    node: LocalNode | None = None
    if real_node_selected():
        with steps.step("node (containerd, kubelet, gVisor, pod network in its own namespace)"):
            node = start_real_node(platform.cluster.config, progress=steps.note)
    else:
        with steps.step("preview node (gVisor, stand-in)"):
            start_preview_node(platform, steps)
    with steps.step("operator"):
        start_operator(platform, steps, node)
    through_gateway = node is not None and gateway.enabled()
    if through_gateway and node is not None:
        with steps.step(f"gateway (Traefik {gateway.TRAEFIK[1]}, the front service)"):
            start_gateway(platform, node, steps)
    kubeconfig = platform.cluster.config.admin_kubeconfig
    kubectl = platform.cluster.kubectl
    with steps.step("the platform's default model (builtin ModelDeployment)"):
        create_missing(kubectl, sorted(PLATFORM_MANIFESTS.glob("*.yaml")), steps.note)
    if examples:
        with steps.step("examples (created where missing; existing ones left alone)"):
            create_missing(
                kubectl, sorted((repository_root() / "examples").glob("*.yaml")), steps.note
            )
        namespace, name = EXAMPLE_APP
        with steps.step(f"VibeApp {name} generated and running"):
            status: dict[str, object] = {}

            def running() -> bool:
                nonlocal status
                status = _app_status(platform.cluster, namespace, name)
                return status.get("phase") == "Running" and bool(status.get("url"))

            try:
                _wait(running, f"VibeApp {namespace}/{name}", platform.process("operator"), 300)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\nlast status: {json.dumps(status)[:2000]}") from error
        url = status.get("url")
        if through_gateway and url:
            url = gateway.through_relay(str(url))
        print(f"export KUBECONFIG={kubeconfig}")
        print(f"{name}: revision {status.get('revision')}, {url}")
        if through_gateway:
            print(
                f"(a private preview: sign in at {url}__vibeplane/signin with a token of a "
                f"workspace member, e.g. `kubectl create token <serviceaccount> -n {namespace}`)"
            )
        print(url)
    else:
        print(f"export KUBECONFIG={kubeconfig}")
    return 0


PARTS = ("operator", "preview-node", "modelserver")


def down(steps: Steps) -> int:
    platform = Platform.local()
    for name in PARTS:
        if platform.process(name).stop():
            steps.note(f"stopped {name}")
    if real_node_selected():
        local = gateway.LocalGateway(
            platform.cluster.config, existing_real_node(platform.cluster.config), platform.home
        )
        for name in local.down():
            steps.note(f"stopped {name}")
    stop_real_node(platform.cluster.config, progress=steps.note)
    if platform.s3.down():
        steps.note("stopped minio")
    platform.cluster.down(progress=steps.note)
    return 0


def status() -> int:
    platform = Platform.local()
    healthy = True
    rows: list[tuple[str, bool, str]] = []
    for component in platform.cluster.status():
        rows.append((component.name, component.pid is not None, f"pid {component.pid}"))
    rows.append(("minio", platform.s3.ready(), platform.s3.endpoint))
    processes = [platform.process(name) for name in reversed(PARTS)]
    if real_node_selected():
        node = existing_real_node(platform.cluster.config)
        processes = [p for p in processes if p.name != "preview-node"]
        processes += [node.process(name) for name in NODE_COMPONENTS]
        processes += [node.relay(name) for name in NODE_RELAYS]
    for process in processes:
        pid = process.pid()
        rows.append((process.name, pid is not None, f"pid {pid}" if pid else str(process.log_file)))
    rows.append(("apiserver /readyz", platform.cluster.ready(), platform.cluster.config.server))
    rows.append(
        (
            "model server ready",
            _http_ok(f"http://127.0.0.1:{MODELSERVER_PORT}/v2/health/ready"),
            platform.model_url,
        )
    )
    for name, ok, detail in rows:
        healthy &= ok
        print(f"{name:20} {'ok' if ok else 'DOWN':6} {detail}")
    return 0 if healthy else 1
