"""Preview start under gVisor against the same app as a plain process, and the time from a new
prompt to the preview answering.

    .venv/bin/python -m bench.preview [--runs 10]

1. Start-up: the preview runtime (fetch the bundle from a local HTTP server, verify, extract,
   serve) started (a) as a plain process and (b) as a runsc sandbox built from a pod spec the
   way the preview node does; time from start to the first HTTP 200. Ratio printed.
2. Prompt -> preview answering (needs `vibeplane up` running, default home): append a prompt to
   the example app and time until its URL serves the new revision, p50 over --runs.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.common import free_port, wait
from vibeplane.generation.format import apply_output, parse_output
from vibeplane.storage.bundles import build
from vibeplane_modelserver.builtin import generate

ROOT = Path(__file__).resolve().parents[1]
PREVIEW = ROOT / "runtime" / "sandbox" / "vibeplane_sandbox" / "preview.py"


def _serve_bundle(data: bytes) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/bundle.tar.gz"


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def plain_start(url: str, sha: str) -> float:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            "/usr/bin/python3",
            str(PREVIEW),
            "--bundle-url",
            url,
            "--sha256",
            sha,
            "--dest",
            tempfile.mkdtemp(),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(lambda: _answers(port), 60, "plain preview", interval=0.02)
        return time.monotonic() - started
    finally:
        process.terminate()
        process.wait()


def sandboxed_start(url: str, sha: str, state: Path, preview: Path = PREVIEW) -> float:
    """Seconds from starting the preview runtime under gVisor to its first answer. The runtime
    is mounted at the preview image's path, as the local node does: the sandbox masks /tmp,
    /root and more, where a checkout may live."""
    from vibeplane_sandbox.bundle import DEFAULT_MASKED_PATHS, RUNTIME_MOUNT, oci_config
    from vibeplane_sandbox.runtime import Runsc, SandboxRuntime, existing_directories

    runtime = SandboxRuntime(state, Runsc(root=state / "runsc"))
    uid = f"bench-{uuid.uuid4().hex[:10]}"
    pod = {
        "metadata": {"name": "p", "namespace": "bench", "uid": uid},
        "spec": {
            "securityContext": {"runAsUser": 65532},
            "containers": [
                {
                    "name": "app",
                    "image": "none",
                    "command": ["/usr/bin/python3", f"{RUNTIME_MOUNT}/{preview.name}"],
                    "env": [
                        {"name": "BUNDLE_URL", "value": url},
                        {"name": "BUNDLE_SHA256", "value": sha},
                    ],
                }
            ],
        },
    }
    port = free_port()
    config = oci_config(
        pod,
        "app",
        port,
        masked_paths=existing_directories(DEFAULT_MASKED_PATHS),
        cgroups_path=f"/vibeplane/{uid}-app-0",
        runtime_source=str(preview.parent),
    )
    started = time.monotonic()
    runtime.start(uid, "app", 0, config)
    try:
        wait(lambda: _answers(port), 60, "sandboxed preview", interval=0.02)
        return time.monotonic() - started
    finally:
        runtime.remove_pod(uid)


def startup(runs: int) -> None:
    files = apply_output(
        {}, parse_output(generate(["a todo list with title and due date"], None).text)
    )
    bundle = build(files)
    url = _serve_bundle(bundle.data)
    state = Path(tempfile.mkdtemp(prefix="bench-runsc-"))
    plain = [plain_start(url, bundle.sha256) for _ in range(runs)]
    sandboxed = [sandboxed_start(url, bundle.sha256, state) for _ in range(runs)]
    p50_plain, p50_sandboxed = statistics.median(plain), statistics.median(sandboxed)
    print(
        f"preview start, p50 of {runs}: plain process {p50_plain * 1000:.0f} ms, "
        f"runsc sandbox {p50_sandboxed * 1000:.0f} ms, ratio {p50_sandboxed / p50_plain:.1f}x"
    )


def prompt_to_preview(runs: int) -> None:
    from vibeplane_dev.cluster.local import LocalCluster

    cluster = LocalCluster()

    def status() -> dict[str, Any]:
        result = cluster.kubectl("get", "va", "todo", "-n", "ws-demo", "-o", "json")
        if result.returncode != 0:
            return {}
        data: dict[str, Any] = json.loads(result.stdout).get("status") or {}
        return data

    if not cluster.running() or not status():
        print("prompt -> preview: skipped (run `vibeplane up` first; it creates ws-demo/todo)")
        return
    timings = []
    for run in range(runs):
        before = int(status().get("revision") or 0)
        patch = json.dumps(
            [{"op": "add", "path": "/spec/prompts/-", "value": f"add a field called note{run}"}]
        )
        started = time.monotonic()
        cluster.kubectl("patch", "va", "todo", "-n", "ws-demo", "--type=json", "-p", patch)
        while True:
            current = status()
            if current.get("phase") == "Running" and int(current.get("revision") or 0) > before:
                break
            if time.monotonic() - started > 120:
                raise TimeoutError("the new revision did not start")
            time.sleep(0.1)
        port = int(str(current["url"]).rstrip("/").rsplit(":", 1)[1])
        wait(lambda port=port: _answers(port), 30, "answers", interval=0.05)
        timings.append(time.monotonic() - started)
    print(
        f"prompt -> preview answering, p50 of {runs}: {statistics.median(timings):.2f}s "
        f"(min {min(timings):.2f}s, max {max(timings):.2f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("runsc needs root here")
    startup(args.runs)
    prompt_to_preview(args.runs)


if __name__ == "__main__":
    main()
