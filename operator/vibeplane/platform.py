"""The embedded platform: the local control plane, the operator and the examples.

`vibeplane up` brings up each part that is not running, in order, and is safe to run again.
Parts that later issues add (object storage, the modelserver, the preview node) plug in here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from vibeplane.cli import Steps
from vibeplane.cluster.config import repository_root
from vibeplane.cluster.local import LocalCluster
from vibeplane.cluster.processes import ManagedProcess


def _platform_dir(cluster: LocalCluster) -> Path:
    return cluster.config.home.parent / "platform"


def operator_process(cluster: LocalCluster) -> ManagedProcess:
    directory = _platform_dir(cluster)
    return ManagedProcess("operator", directory / "run", directory / "logs")


def start_operator(cluster: LocalCluster, steps: Steps) -> None:
    process = operator_process(cluster)
    if process.running():
        steps.note("operator already running")
        return
    env = dict(os.environ, KUBECONFIG=str(cluster.config.kubeconfig("operator")))
    process.start([sys.executable, "-m", "vibeplane", "operator"], env=env)
    if process.exited_early(timeout=3.0):
        raise RuntimeError(f"the operator exited at once; its log ends:\n{process.log_tail()}")
    steps.note(f"operator log: {process.log_file}")


def _wait_ready(
    cluster: LocalCluster, kind: str, name: str, namespace: str | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    while time.monotonic() < deadline:
        result = cluster.kubectl(*args)
        if result.returncode == 0:
            status = json.loads(result.stdout).get("status") or {}
            for condition in status.get("conditions", []):
                if condition.get("type") == "Ready" and condition.get("status") == "True":
                    return
        time.sleep(0.5)
    raise RuntimeError(f"{kind}/{name} not Ready after {timeout:.0f}s; see `vibeplane status`")


def _apply_when_possible(cluster: LocalCluster, path: Path, timeout: float = 60) -> str:
    # A VibeApp's namespace exists only once its Workspace is reconciled: retry until then.
    deadline = time.monotonic() + timeout
    while True:
        result = cluster.kubectl("apply", "--server-side", "-f", str(path))
        if result.returncode == 0:
            return result.stdout.strip()
        if time.monotonic() > deadline or "not found" not in result.stderr:
            raise RuntimeError(f"kubectl apply -f {path} failed:\n{result.stderr}")
        time.sleep(0.5)


def up(examples: bool, steps: Steps) -> int:
    cluster = LocalCluster()
    with steps.step("control plane"):
        cluster.up(progress=steps.note)
    with steps.step("operator"):
        start_operator(cluster, steps)
    if examples:
        root = repository_root() / "examples"
        with steps.step("examples applied"):
            for path in sorted(root.glob("*.yaml")):
                steps.note(_apply_when_possible(cluster, path))
        with steps.step("example Workspace ready"):
            _wait_ready(cluster, "workspace", "demo", None, 60)
    print(f"KUBECONFIG={cluster.config.admin_kubeconfig}")
    print("kubectl get ws,md,va -A   # with the KUBECONFIG above")
    return 0


def down(steps: Steps) -> int:
    cluster = LocalCluster()
    if operator_process(cluster).stop():
        steps.note("stopped operator")
    cluster.down(progress=steps.note)
    return 0


def status() -> int:
    cluster = LocalCluster()
    healthy = True
    for component in cluster.status():
        state = f"running (pid {component.pid})" if component.pid else "stopped"
        healthy &= component.pid is not None
        print(f"{component.name:20} {state}")
    operator = operator_process(cluster).pid()
    healthy &= operator is not None
    print(f"{'operator':20} {f'running (pid {operator})' if operator else 'stopped'}")
    ready = cluster.ready()
    print(f"{'apiserver /readyz':20} {'ok' if ready else 'not ready'}")
    return 0 if healthy and ready else 1
