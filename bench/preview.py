"""A preview's start on the real node against the same app as a plain process, and the time from
a new prompt to the preview answering.

    .venv/bin/python -m bench.preview [--runs 10]

1. Start-up: the preview runtime (fetch the bundle, verify, extract, serve) started (a) as a
   plain process on this machine, time to its first HTTP 200, and (b) as a preview pod on the
   real node (the preview image under gVisor, `bench.node`'s pod), create -> Ready. The same
   bundle is served on the host end of the node's veth, which both reach. Ratio printed. Starts
   the local control plane and the real node when they are not running.
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
import urllib.parse
import urllib.request
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
    return answers(f"http://127.0.0.1:{port}/")


def answers(url: str) -> bool:
    """Whether `url` serves a page; a `*.localhost` host (the local gateway's) is asked on
    127.0.0.1 with its name in the Host header, as a browser would resolve it."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    headers = {}
    if host.endswith(".localhost"):
        headers["Host"] = parts.netloc
        url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port or 80}"))
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=1) as response:
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


def startup(runs: int) -> None:
    from bench.node import pod_start, serve_on_node_network
    from vibeplane_dev.cluster.local import LocalCluster
    from vibeplane_dev.cluster.node import start_real_node

    cluster = LocalCluster()
    cluster.up()
    start_real_node(cluster.config)
    files = apply_output(
        {}, parse_output(generate(["a todo list with title and due date"], None).text)
    )
    bundle = build(files)
    url = serve_on_node_network(bundle.data, cluster)
    scratch = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    plain = [plain_start(url, bundle.sha256) for _ in range(runs)]
    real = [pod_start(cluster, url, bundle.sha256, scratch) for _ in range(runs)]
    p50_plain, p50_real = statistics.median(plain), statistics.median(real)
    print(
        f"preview start, p50 of {runs}: plain process {p50_plain * 1000:.0f} ms, "
        f"real node pod (gVisor) create -> Ready {p50_real * 1000:.0f} ms, "
        f"ratio {p50_real / p50_plain:.1f}x"
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
        url = str(current["url"])
        wait(lambda url=url: answers(url), 30, "answers", interval=0.05)
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
        raise SystemExit("the real node needs root here")
    startup(args.runs)
    prompt_to_preview(args.runs)


if __name__ == "__main__":
    main()
