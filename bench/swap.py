"""Previews by swap: a new revision taken by the running sandbox, against starting the preview
runtime as a plain process, in the same run.

    .venv/bin/python -m bench.swap --runs 20                      # the runtime only
    VIBEPLANE_NODE=real .venv/bin/python -m bench.swap --runs 20 --cluster
    .venv/bin/python -m bench.swap --runs 20 --runsc           # as root: the sandboxes
    VIBEPLANE_NODE=real .venv/bin/python -m bench.swap --runs 20 --cluster --new-apps --no-swap

1. The runtime (no cluster): the preview runtime started as a plain process (fetch, verify,
   extract, serve) until its first answer: the baseline. Then, in one running runtime, a swap:
   a signed delivery (as the operator signs it) until the runtime answers the new revision.
2. With --cluster, end to end on the real node: the control plane, MinIO, the builtin model
   server, the operator (its own process) and the real node (gVisor). One app; each run appends
   a prompt and times the patch until the preview's URL answers the new revision (the
   X-Vibeplane-Revision header): generation, storage, the budget, the delivery and the swap.
   Started when not running; `vibeplane down` stops them.

3. With --runsc (root): the sandbox itself. `runsc do` of the preview runtime's import
   (`python3 -c "import vibeplane_sandbox.preview"`) and of an empty `python3 -c pass`, under
   Debian's runsc (2022, ptrace only) and under runsc built from gVisor's Go module (the real
   node's, `hack/vibeplane_dev/cluster/nodebuild.py`) on ptrace and systrap, against the same
   commands as plain processes.

4. With --new-apps (and --cluster): a new app -> its first answer (its URL answers revision
   1), 20 apps one after another in a workspace with a warm pool of 1 (each waits until an idle
   sandbox is ready: a warm hit) and 20 in one with a pool of 0 (the drained pool: the
   Deployment starts a cold sandbox), each split at the revision's storing (generation, then
   the preview).

0. Always: the operator signing one order, by hand with Python's integers (how it signed
   before) against the `cryptography` package, 2048- and 4096-bit keys.

p50, p95 and max are printed, and ratios against the plain start (signing: against by hand);
nothing asserts on time.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import free_port, wait
from vibeplane.generation.format import apply_output, parse_output
from vibeplane.storage.bundles import build
from vibeplane.vibeapp.delivery import DeliveryKey, Order, signed
from vibeplane_modelserver.builtin import generate

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / "runtime" / "sandbox"
REVISION_HEADER = "X-Vibeplane-Revision"


def summary(
    name: str, seconds: list[float], baseline: float | None = None, against: str = "the plain start"
) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    p50 = statistics.median(ordered)
    text = (
        f"{name}: p50 {_ms(p50)}, p95 {_ms(p95)}, max {_ms(ordered[-1])} over {len(ordered)} runs"
    )
    if baseline:
        text += f" ({p50 / baseline:.3g}x {against}'s p50)"
    return text


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"


def _serve_directory(root: Path) -> str:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

    handler = lambda *a: Handler(*a, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _revision_answering(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.headers.get(REVISION_HEADER)) if response.status == 200 else None
    except OSError:
        return None


def _bundles(count: int, root: Path) -> list[tuple[str, str]]:
    """`count` revisions of a generated app, each with its own mark: (file name, sha256)."""
    files = apply_output(
        {}, parse_output(generate(["a todo list with title and due date"], None).text)
    )
    made = []
    for number in range(1, count + 1):
        bundle = build({**files, "revision.txt": f"revision {number}\n"})
        name = f"r{number}.tar.gz"
        (root / name).write_bytes(bundle.data)
        made.append((name, bundle.sha256))
    return made


def _runtime(port: int, dest: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = dict(os.environ, PYTHONPATH=str(SANDBOX), PORT=str(port), **env)
    return subprocess.Popen(
        ["/usr/bin/python3", "-m", "vibeplane_sandbox.preview", "--dest", str(dest)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def runtime_level(runs: int) -> float:
    """Part 1; returns the plain start's p50 (seconds)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    served = scratch / "served"
    served.mkdir()
    base = _serve_directory(served)
    bundles = _bundles(runs + 1, served)
    plain = []
    for index in range(runs):
        name, sha = bundles[0]
        port = free_port()
        started = time.monotonic()
        process = _runtime(
            port, scratch / f"plain-{index}", BUNDLE_URL=f"{base}/{name}", BUNDLE_SHA256=sha
        )
        try:
            first = f"http://127.0.0.1:{port}/"
            wait(lambda first=first: _revision_answering(first), 60, "plain", 0.005)
            plain.append(time.monotonic() - started)
        finally:
            process.terminate()
            process.wait()
    key = DeliveryKey.generate()
    port = free_port()
    process = _runtime(
        port, scratch / "swapping", VIBEPLANE_DELIVERY_KEY=key.public, POD_NAMESPACE="bench"
    )
    url = f"http://127.0.0.1:{port}/"
    swaps = []
    try:
        wait(lambda: _ready(url), 60, "runtime", 0.01)
        for number, (name, sha) in enumerate(bundles, start=1):
            order = Order(
                "bench", "app", "uid", number, sha, f"{base}/{name}", time.time_ns() // 10**6
            )
            body, signature = signed(key, order)
            started = time.monotonic()
            _post(url, body, signature)
            wait(lambda n=number: _revision_answering(url) == str(n), 30, "swap", 0.002)
            if number > 1:  # the first delivery fills an empty sandbox
                swaps.append(time.monotonic() - started)
    finally:
        process.terminate()
        process.wait()
    baseline = statistics.median(plain)
    print(summary("runtime, plain process start -> first answer", plain))
    print(summary("runtime, swap: signed delivery -> new revision answers", swaps, baseline))
    return baseline


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _sign_by_hand(key: DeliveryKey, message: bytes) -> str:
    """PKCS#1 v1.5 by Python's integers, by the Chinese remainder theorem: how the operator
    signed before it used the `cryptography` package (the baseline of `signing`)."""
    import hashlib

    size = (key.n.bit_length() + 7) // 8
    suffix = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    block = b"\x00\x01" + b"\xff" * (size - len(suffix) - 3) + b"\x00" + suffix
    m = int.from_bytes(block, "big")
    p, q = key.p, key.q
    mp, mq = pow(m, key.d % (p - 1), p), pow(m, key.d % (q - 1), q)
    value = mq + q * ((pow(q, -1, p) * (mp - mq)) % p)
    return f"{value:0{2 * size}x}"


def signing(runs: int) -> None:
    """Part 0: the operator signing one order, by hand (the old way) and with `cryptography`,
    for a 2048-bit key (the operator's own) and a 4096-bit one (Helm's genPrivateKey)."""
    order = Order("bench", "todo", "uid", 1, "ab" * 32, "http://127.0.0.1:9/x", 0)
    body = order.body()
    for bits in (2048, 4096):
        key = DeliveryKey.generate(bits)
        assert _sign_by_hand(key, body) == key.sign(body)  # the same signature, byte for byte
        by_hand, library = [], []
        for _ in range(runs):
            started = time.perf_counter()
            _sign_by_hand(key, body)
            by_hand.append(time.perf_counter() - started)
            started = time.perf_counter()
            key.sign(body)
            library.append(time.perf_counter() - started)
        baseline = statistics.median(by_hand)
        print(summary(f"signing an order, {bits}-bit key, by hand (before)", by_hand))
        print(
            summary(f"signing an order, {bits}-bit key, cryptography", library, baseline, "by hand")
        )


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "__vibeplane/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _post(url: str, body: bytes, signature: str) -> None:
    request = urllib.request.Request(
        url + "__vibeplane/revision",
        data=body,
        method="POST",
        headers={"X-Vibeplane-Signature": signature, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def end_to_end(runs: int, baseline: float, swap: bool = True, new_apps: bool = False) -> None:
    """Part 2: a prompt appended -> the preview answering the new revision, on the real node;
    with `new_apps`, part 4: a new app -> its first answer, warm hit and drained pool."""
    import kubernetes

    from bench.apps import apply_platform, create_retrying, model_server
    from bench.common import Operator, api, cluster
    from vibeplane_dev.cluster.node import real_node_operator_environment, start_real_node
    from vibeplane_dev.cluster.s3server import LocalS3

    local = cluster()
    s3 = LocalS3(local.config)
    s3.up()
    os.environ.update(s3.client_environment())
    start_real_node(local.config)
    client = api(local)
    custom = kubernetes.client.CustomObjectsApi(client)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    with model_server(log_dir / "modelserver.log") as port:
        env = {
            **s3.client_environment(),
            **real_node_operator_environment(local.config),
            "VIBEPLANE_BUILTIN_MODEL_URL": f"http://127.0.0.1:{port}/openai/v1",
            "VIBEPLANE_MODEL_EGRESS_ALLOW": json.dumps(["127.0.0.1"]),
        }
        operator = Operator.start(local, log_dir / "operator.log", **env)
        try:
            apply_platform(client)
            if swap:
                timings = _prompts(custom, create_retrying, runs)
                print(
                    summary(
                        "end to end, prompt -> new revision answering (swap)", timings, baseline
                    )
                )
            if new_apps:
                core = kubernetes.client.CoreV1Api(client)
                for pool in (1, 0):
                    found = _new_apps(custom, core, create_retrying, runs, pool)
                    what = "warm hit (pool 1)" if pool else "drained pool (pool 0, cold start)"
                    print(
                        summary(
                            f"end to end, new app -> first answer, {what}", found.total, baseline
                        )
                    )
                    print(
                        summary(
                            "  of which generation (created -> revision stored)", found.generation
                        )
                    )
                    print(
                        summary(
                            "  of which the preview (revision stored -> answering)", found.preview
                        )
                    )
                    if pool:
                        print(f"  adopted a warm sandbox: {found.adopted} of {len(found.total)}")
        finally:
            operator.stop()
    print(f"  logs: {log_dir}")


PROMPTS_PER_APP = 10


def _apps_left(custom: Any, namespace: str) -> bool:
    items = custom.list_namespaced_custom_object("vibeplane.io", "v1alpha1", namespace, "vibeapps")
    return bool(items["items"])


def _prompt_app(
    custom: Any,
    create_retrying: Callable[..., None],
    namespace: str,
    name: str,
    count: int,
    timings: list[float],
    failed: list[str],
) -> None:
    """One app, then `count` prompts appended to it, each timed until its revision answers."""
    group, version = "vibeplane.io", "v1alpha1"
    prompts = ["a todo list with title and due date"]
    body = {
        "apiVersion": f"{group}/{version}",
        "kind": "VibeApp",
        "metadata": {"name": name},
        "spec": {"prompts": prompts},
    }
    create_retrying(
        lambda: custom.create_namespaced_custom_object(group, version, namespace, "vibeapps", body)
    )

    def status() -> dict[str, Any]:
        app = custom.get_namespaced_custom_object(group, version, namespace, "vibeapps", name)
        found: dict[str, Any] = app.get("status") or {}
        return found

    wait(lambda: status().get("phase") == "Running", 300, "the first revision", 0.2)
    url = str(status()["url"])
    for run in range(count):
        prompts.append(f"add a field called note{run}")
        number = len(prompts)
        started = time.monotonic()
        custom.patch_namespaced_custom_object(
            group, version, namespace, "vibeapps", name, {"spec": {"prompts": prompts}}
        )

        def done(n: int = number) -> str | None:
            if _revision_answering(url) == str(n):
                return "answers"
            revisions = status().get("revisions") or []
            mine = [r for r in revisions if r.get("number") == n]
            if mine and (mine[0].get("validation") == "Failed" or "sha256" not in mine[0]):
                return f"{name} revision {n} failed: {json.dumps(mine[0])[:300]}"
            return None

        outcome = wait(done, 120, "revision", 0.005)
        if outcome == "answers":
            timings.append(time.monotonic() - started)
        else:
            failed.append(outcome)


def _prompts(custom: Any, create_retrying: Callable[..., None], runs: int) -> list[float]:
    group, version = "vibeplane.io", "v1alpha1"
    name = f"swap{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(
        group,
        version,
        "workspaces",
        {
            "apiVersion": f"{group}/{version}",
            "kind": "Workspace",
            "metadata": {"name": name},
            "spec": {"budget": {"tokens": 100_000_000, "money": "10000"}},
        },
    )
    namespace = f"ws-{name}"
    timings: list[float] = []
    failed: list[str] = []
    try:
        # Ten prompts per app: the builtin model's context fills up past about fifteen.
        for batch in range(0, runs, PROMPTS_PER_APP):
            app = f"todo{batch // PROMPTS_PER_APP}"
            count = min(PROMPTS_PER_APP, runs - batch)
            _prompt_app(custom, create_retrying, namespace, app, count, timings, failed)
    finally:
        custom.delete_cluster_custom_object(group, version, "workspaces", name)
        # The operator (stopped after this) empties the apps' storage and lets them go.
        wait(lambda: not _apps_left(custom, namespace), 120, "the apps deleted", 0.5)
    for failure in failed:
        print(f"  not timed: {failure}")
    return timings


class NewApps:
    """Timings of new apps' first answers, split at the revision's storing."""

    def __init__(self) -> None:
        self.total: list[float] = []
        self.generation: list[float] = []
        self.preview: list[float] = []
        self.adopted = 0


def _idle_ready(core: Any, namespace: str) -> bool:
    pods = core.list_namespaced_pod(namespace, label_selector="vibeplane.io/pool=idle").items
    return any(
        not pod.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        for pod in pods
    )


def _new_apps(
    custom: Any, core: Any, create_retrying: Callable[..., None], runs: int, pool: int
) -> NewApps:
    """Part 4: `runs` new apps, one at a time, each timed from its creation until its URL
    answers revision 1; with a pool of 1, each waits for an idle sandbox to be ready first (a
    warm hit), with 0 every preview starts cold. Each app is deleted after (with its sandbox)."""
    group, version = "vibeplane.io", "v1alpha1"
    name = f"new{pool}{uuid.uuid4().hex[:5]}"
    custom.create_cluster_custom_object(
        group,
        version,
        "workspaces",
        {
            "apiVersion": f"{group}/{version}",
            "kind": "Workspace",
            "metadata": {"name": name},
            "spec": {"budget": {"tokens": 100_000_000, "money": "10000"}, "warmPool": pool},
        },
    )
    namespace = f"ws-{name}"
    found = NewApps()
    try:
        for run in range(runs):
            if pool:
                wait(lambda: _idle_ready(core, namespace), 300, "an idle sandbox", 0.1)
            app = f"app{run}"
            body = {
                "apiVersion": f"{group}/{version}",
                "kind": "VibeApp",
                "metadata": {"name": app},
                "spec": {"prompts": ["a todo list with title and due date"]},
            }
            started = time.monotonic()
            create_retrying(
                lambda body=body: custom.create_namespaced_custom_object(
                    group, version, namespace, "vibeapps", body
                )
            )
            stored: list[float] = []

            def answers(app: str = app, stored: list[float] = stored) -> bool:
                status = (
                    custom.get_namespaced_custom_object(
                        group, version, namespace, "vibeapps", app
                    ).get("status")
                    or {}
                )
                if not stored and any(r.get("sha256") for r in status.get("revisions") or []):
                    stored.append(time.monotonic())
                url = status.get("url")
                return bool(url) and _revision_answering(str(url)) == "1"

            wait(answers, 300, f"{app}'s first answer", 0.02)
            ended = time.monotonic()
            found.total.append(ended - started)
            if stored:
                found.generation.append(stored[0] - started)
                found.preview.append(ended - stored[0])
            delivered = (
                custom.get_namespaced_custom_object(group, version, namespace, "vibeapps", app)
                .get("status", {})
                .get("delivered")
                or {}
            )
            found.adopted += str(delivered.get("sandbox", "")).startswith("preview-warm-")
            custom.delete_namespaced_custom_object(group, version, namespace, "vibeapps", app)
    finally:
        custom.delete_cluster_custom_object(group, version, "workspaces", name)
        wait(lambda: not _apps_left(custom, namespace), 300, "the apps deleted", 0.5)
    return found


SANDBOX_COMMANDS = {
    "python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
    "import of the preview runtime": [
        "/usr/bin/python3",
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); import vibeplane_sandbox.preview",
        str(SANDBOX),
    ],
}


def runsc_platforms(runs: int) -> None:
    """Part 3: sandbox start and the runtime's import, per runsc build and platform."""
    from vibeplane_dev.cluster.config import ClusterConfig
    from vibeplane_dev.cluster.nodebuild import gvisor

    module_runsc = gvisor(ClusterConfig.from_env().cache) / "runsc"
    candidates = [
        ("Debian runsc, ptrace", "/usr/bin/runsc", "ptrace"),
        ("Go-module runsc, ptrace", str(module_runsc), "ptrace"),
        ("Go-module runsc, systrap", str(module_runsc), "systrap"),
    ]
    root = Path(tempfile.mkdtemp(prefix="bench-runsc-"))
    for what, command in SANDBOX_COMMANDS.items():
        plain = [_timed(command) for _ in range(runs)]
        baseline = statistics.median(plain)
        print(summary(f"{what}, plain process", plain))
        for name, binary, platform in candidates:
            if not Path(binary).exists():
                print(f"{what}, {name}: skipped ({binary} is missing)")
                continue
            sandbox = [binary, "--root", str(root), f"--platform={platform}", "--network=none"]
            sandbox += ["--ignore-cgroups", "do", *command]
            print(summary(f"{what}, {name}", [_timed(sandbox) for _ in range(runs)], baseline))


def _timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cluster", action="store_true", help="also end to end on the real node")
    parser.add_argument("--runsc", action="store_true", help="also the sandboxes (root)")
    parser.add_argument(
        "--new-apps",
        action="store_true",
        help="with --cluster: new app -> first answer, warm hit and drained pool",
    )
    parser.add_argument("--no-swap", action="store_true", help="with --cluster: skip the swap")
    args = parser.parse_args()
    if args.runsc:
        runsc_platforms(args.runs)
    signing(args.runs)
    baseline = runtime_level(args.runs)
    if args.cluster:
        end_to_end(args.runs, baseline, swap=not args.no_swap, new_apps=args.new_apps)


if __name__ == "__main__":
    sys.exit(main())
