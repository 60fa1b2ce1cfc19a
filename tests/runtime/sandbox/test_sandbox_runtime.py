"""Sandboxes through the shim and runsc, without a cluster: exits, OOM, the gVisor kernel."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from vibeplane_sandbox.bundle import DEFAULT_MASKED_PATHS, oci_config
from vibeplane_sandbox.cgroups import is_v1
from vibeplane_sandbox.podstatus import Attempt
from vibeplane_sandbox.runtime import Runsc, SandboxRuntime, existing_directories


@pytest.fixture
def runtime(runsc: Runsc, tmp_path: Path) -> SandboxRuntime:
    return SandboxRuntime(tmp_path / "state", runsc)


def _pod(command: list[str], memory: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "none", "command": command}
    if memory:
        container["resources"] = {"limits": {"memory": memory}}
    return {
        "metadata": {"name": "p", "namespace": "n", "uid": f"rt-{uuid.uuid4().hex[:12]}"},
        "spec": {"securityContext": {"runAsUser": 65532}, "containers": [container]},
    }


def _start(runtime: SandboxRuntime, pod: dict[str, Any], port: int = 0) -> str:
    uid = pod["metadata"]["uid"]
    config = oci_config(
        pod,
        "c",
        port,
        masked_paths=existing_directories(DEFAULT_MASKED_PATHS),
        cgroups_path=f"/vibeplane/{uid}-c-0",
    )
    runtime.start(uid, "c", 0, config)
    return uid


def _finished(runtime: SandboxRuntime, uid: str, timeout: float = 60) -> Attempt:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempt = runtime.attempt(uid, "c", 0)
        if attempt.terminated:
            return attempt
        time.sleep(0.1)
    raise AssertionError(f"attempt never finished: {runtime.attempt(uid, 'c', 0)}")


def test_exit_code_is_recorded(runtime: SandboxRuntime) -> None:
    uid = _start(runtime, _pod(["/bin/sh", "-c", "echo bye; exit 3"]))
    attempt = _finished(runtime, uid)
    assert (attempt.exit_code, attempt.reason) == (3, "Error")
    assert runtime.log_path(uid, "c", 0).read_text() == "bye\n"
    assert not list(runtime.sandboxes_of(uid)), "the shim deletes the finished sandbox"


def test_the_process_sees_the_gvisor_kernel(runtime: SandboxRuntime, sandbox_python: str) -> None:
    script = "import os; print(os.uname().version); print(os.getuid())"
    uid = _start(runtime, _pod([sandbox_python, "-c", script]))
    attempt = _finished(runtime, uid)
    version, user = runtime.log_path(uid, "c", 0).read_text().splitlines()
    assert attempt.exit_code == 0, version
    assert version != os.uname().version, "the sandbox must not see the host's kernel"
    assert user == "65532"


def test_a_server_binds_loopback_on_the_host_and_stops_on_signal(
    runtime: SandboxRuntime, sandbox_python: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        "import http.server, os\n"
        "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])),"
        " http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    uid = _start(runtime, _pod([sandbox_python, "-c", script]), port)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                assert response.status == 200
                break
        except OSError:
            assert time.monotonic() < deadline, runtime.log_path(uid, "c", 0).read_text()
            time.sleep(0.1)
    sandbox = runtime.attempt(uid, "c", 0).sandbox_id
    assert sandbox in list(runtime.sandboxes_of(uid))
    runtime.stop(sandbox, signal.SIGTERM)
    attempt = _finished(runtime, uid)
    assert attempt.exit_code == 128 + signal.SIGTERM


@pytest.mark.skipif(not is_v1(), reason="OOM kills are read from cgroup v1's memory.oom_control")
def test_an_oom_kill_is_reported(runtime: SandboxRuntime, sandbox_python: str) -> None:
    script = "chunks = [bytearray(8 << 20) for _ in range(64)]"
    uid = _start(runtime, _pod([sandbox_python, "-c", script], memory="64Mi"))
    attempt = _finished(runtime, uid)
    assert (attempt.exit_code, attempt.reason) == (137, "OOMKilled")
