"""A preview pod's start on the real node (create -> Ready under gVisor) against the stand-in's
runsc start of the same preview runtime, with the same bundle, in the same run (while the
stand-in lasts; `bench.preview` measures the real node against a plain process).

    .venv/bin/python -m bench.node [--runs 5]

Starts the local control plane and the real node when they are not running (`vibeplane down`
stops them). The bundle is served on the host end of the node's veth, the only address both
sandboxes reach. The real node's figure includes what the stand-in skips: the API server, the
scheduler, the kubelet's sync, the pod sandbox (pause) and its network, and a readiness probe
every second.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench.common import free_port, wait
from bench.preview import PREVIEW, _answers
from vibeplane.generation.format import apply_output, parse_output
from vibeplane.storage.bundles import build
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import PREVIEW_IMAGE, NodeNetwork, start_real_node
from vibeplane_modelserver.builtin import generate


def serve_on_node_network(data: bytes, cluster: LocalCluster) -> str:
    """The bundle served on the host end of the real node's veth: pods and this machine both
    reach it."""
    return _serve(data, NodeNetwork.for_home(cluster.config.home.parent).host_ip)


def _serve(data: bytes, address: str) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://{address}:{server.server_address[1]}/bundle.tgz"


def _pod(name: str, url: str, sha: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "runtimeClassName": "gvisor",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "app",
                    "image": PREVIEW_IMAGE,
                    "imagePullPolicy": "Never",
                    "env": [
                        {"name": "BUNDLE_URL", "value": url},
                        {"name": "BUNDLE_SHA256", "value": sha},
                        {"name": "PORT", "value": "8080"},
                    ],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": "http"},
                        "periodSeconds": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


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


def pod_start(cluster: LocalCluster, url: str, sha: str, scratch: Path) -> float:
    name = f"bench-start-{uuid.uuid4().hex[:6]}"
    manifest = scratch / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump(_pod(name, url, sha)))
    started = time.monotonic()
    for args in (
        ("apply", "-f", str(manifest)),
        ("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=180s"),
    ):
        result = cluster.kubectl(*args)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
    elapsed = time.monotonic() - started
    cluster.kubectl("delete", "pod", name, "--wait=false")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster = LocalCluster()
    cluster.up()
    start_real_node(cluster.config)
    files = apply_output(
        {}, parse_output(generate(["a todo list with title and due date"], None).text)
    )
    bundle = build(files)
    url = serve_on_node_network(bundle.data, cluster)
    scratch = Path(tempfile.mkdtemp(prefix="bench-node-"))
    standin = [sandboxed_start(url, bundle.sha256, scratch) for _ in range(args.runs)]
    real = [pod_start(cluster, url, bundle.sha256, scratch) for _ in range(args.runs)]
    p50_standin, p50_real = statistics.median(standin), statistics.median(real)
    print(
        f"preview start, p50 of {args.runs}: stand-in runsc {p50_standin * 1000:.0f} ms, "
        f"real node pod create -> Ready {p50_real * 1000:.0f} ms, "
        f"ratio {p50_real / p50_standin:.1f}x"
    )


if __name__ == "__main__":
    main()
