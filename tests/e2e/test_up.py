"""The README's first command, end to end: `vibeplane up` on its own cluster ends with a URL,
and headless Chromium loads the generated app from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import _free_port
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.node import NodeNetwork, existing_real_node, real_node_selected

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def platform_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A platform of its own (state, ports), so it never meets the suite's cluster."""
    home = tmp_path_factory.mktemp("platform")
    env = dict(
        os.environ,
        VIBEPLANE_HOME=str(home),
        VIBEPLANE_APISERVER_PORT=str(_free_port()),
        VIBEPLANE_ETCD_PORT=str(_free_port()),
        VIBEPLANE_ETCD_PEER_PORT=str(_free_port()),
        VIBEPLANE_S3_PORT=str(_free_port()),
        VIBEPLANE_MODELSERVER_PORT=str(_free_port()),
        VIBEPLANE_METRICS_PORT=str(_free_port()),
        VIBEPLANE_LIVENESS_PORT=str(_free_port()),
    )
    yield env
    subprocess.run(
        [sys.executable, "-m", "vibeplane", "down"],
        env=env,
        check=False,
        capture_output=True,
        timeout=120,
    )


def _vibeplane(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibeplane", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_up_serves_the_app_in_a_browser_under_gvisor(
    platform_environment: dict[str, str], artifacts: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    # Without the examples the platform still has its default model: a new app has a model.
    bare = _vibeplane(platform_environment, "up", "--no-examples")
    assert bare.returncode == 0, bare.stderr[-3000:]
    model = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "wait",
        "-n",
        "vibeplane-system",
        "--for=condition=Ready",
        "modeldeployment/builtin",
        "--timeout=60s",
    )
    assert model.returncode == 0, model.stderr
    assert _vibeplane(platform_environment, "cluster", "kubectl", "get", "va", "-A").stdout == ""

    result = _vibeplane(platform_environment, "up")
    assert result.returncode == 0, result.stderr[-3000:]
    url = result.stdout.strip().splitlines()[-1]
    if real_node_selected():
        # A NodePort on the node's address, inside the network namespace `up` made.
        node_ip = NodeNetwork.for_home(Path(platform_environment["VIBEPLANE_HOME"])).node_ip
        assert url.startswith(f"http://{node_ip}:")
    else:
        assert url.startswith("http://127.0.0.1:")

    profile = artifacts / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    browser = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
    )
    assert "<title>Todo List</title>" in dom.stdout, dom.stderr[-2000:]
    screenshot = artifacts / "vibeplane-up.png"
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True
    )
    assert screenshot.stat().st_size > 1000

    # `up` again over a platform someone used (the README's own patch): it leaves their app
    # alone, says so, and succeeds.
    patch = '[{"op":"add","path":"/spec/prompts/-","value":"add a priority field"}]'
    patched = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "patch",
        "va",
        "todo",
        "-n",
        "ws-demo",
        "--type=json",
        "-p",
        patch,
    )
    assert patched.returncode == 0, patched.stderr
    again = _vibeplane(platform_environment, "up")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "vibeapp ws-demo/todo exists: left alone" in again.stderr
    prompts = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "get",
        "va",
        "todo",
        "-n",
        "ws-demo",
        "-o",
        "jsonpath={.spec.prompts[*]}",
    )
    assert prompts.stdout.endswith("add a priority field")

    # The preview process runs under gVisor: runsc lists it, and it saw gVisor's kernel.
    logs = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "logs",
        "-n",
        "ws-demo",
        "deployment/todo-preview",
    )
    assert logs.returncode == 0, logs.stderr
    kernel = next(line for line in logs.stdout.splitlines() if "kernel" in line)
    host = os.uname()
    assert host.version not in kernel, f"the preview saw the host's kernel: {kernel}"
    home = Path(platform_environment["VIBEPLANE_HOME"])
    if real_node_selected():
        # containerd's gVisor shim keeps its sandboxes under the node's runsc root.
        state = home / "node" / "runsc" / "root" / "k8s.io"
        runsc = str(existing_real_node(ClusterConfig.from_env()).binaries.runsc)  # shared cache
    else:
        state, runsc = home / "platform" / "node" / "runsc", "runsc"
    listed = subprocess.run(
        [runsc, f"--root={state}", "list"], capture_output=True, text=True, check=True
    )
    assert "running" in listed.stdout

    # down leaves no platform process behind: none still carries this platform's environment.
    assert _vibeplane(platform_environment, "down").returncode == 0
    marker = f"VIBEPLANE_HOME={platform_environment['VIBEPLANE_HOME']}".encode()
    leftovers = [pid for pid in _processes_with(marker) if pid != os.getpid()]
    assert leftovers == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in leftovers]


def _processes_with(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
