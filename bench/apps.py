"""VibeApps at scale: Workspaces and apps applied at once, from apply to every app Running, with
previews on simulated (KWOK) nodes, against a plain client creating the same child objects.

    .venv/bin/python -m bench.apps --workspaces 20 --apps-per-workspace 10    # issue 5
    .venv/bin/python -m bench.apps --workspaces 100 --apps-per-workspace 10   # bench/scale
    .venv/bin/python -m bench.apps ... --profile artifacts/operator-profile.txt

What runs is real: the control plane, MinIO, the builtin model server, the operator (its own
process, its own identity). Only the nodes are simulated: KWOK marks preview pods Running and
Ready, so the operator's whole path runs (generation, budget reservation and settlement, the
bundle in S3, the preview Deployment and Service, status) except a real sandbox starting.

Measured: apply -> all Running; API requests per app by verb and resource, counted from the API
server's audit log (the operator's reads and writes); operator peak RSS and CPU seconds; writes
after convergence and an operator restart (must be 0); deletion of every app (the finalizer
empties S3). Baseline, same run: a plain client (8 threads) creating the same children: each
workspace's namespace, bindings, quota, limits and policies, each app's Deployment and Service,
until every Deployment is available. The ratio is printed; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from bench.common import Audit, Operator, api, cluster, free_port, wait
from bench.kwok import PODS_PER_NODE, kwok_nodes, nodes_ready
from bench.workspaces import children as workspace_children
from vibeplane.kube import client as kube
from vibeplane.settings import field_manager
from vibeplane.vibeapp import desired
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.s3server import LocalS3

GROUP, VERSION = "vibeplane.io", "v1alpha1"
BENCH_LABEL = "vibeplane.io/bench"
PROMPT = "a todo list with title and due date"
PLATFORM_NAMESPACE = "vibeplane-system"
WORKSPACE_SPEC = {
    "quota": {"cpu": "8", "memory": "8Gi", "pods": 40, "apps": 30},
    "budget": {"tokens": 100_000_000, "money": "10000"},
}
BUILTIN_MODEL = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ModelDeployment",
    "metadata": {"name": "builtin", "namespace": PLATFORM_NAMESPACE},
    "spec": {
        "model": {"name": "builtin"},
        "serving": {"builtin": {}},
        "pricing": {"inputPerMillion": "0.10", "outputPerMillion": "0.40"},
    },
}
RUNTIME_CLASS = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "gvisor"},
    "handler": "runsc",
}


@contextmanager
def model_server(log: Path) -> Any:
    """The builtin model server (runtime/modelserver) on a free loopback port."""
    port = free_port()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vibeplane_modelserver",
                "--backend",
                "builtin",
                "--model-name",
                "builtin",
                "--http-port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait(lambda: _ok(f"http://127.0.0.1:{port}/v2/health/ready"), 90, "model server")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def model_calls(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vibeplane_modelserver_requests_total")
    )


def create_retrying(create: Callable[[], Any], attempts: int = 400) -> None:
    """Create, retrying while the workspace's namespace does not exist yet, or its quota has
    no usage yet (the API server refuses until the quota controller has counted), as a GitOps
    tool would."""
    for _ in range(attempts):
        try:
            create()
            return
        except ApiException as error:
            body = str(error.body)
            if not (error.status == 404 or "status unknown for quota" in body):
                raise
            time.sleep(0.25)
    raise TimeoutError("the workspace's namespace never accepted the app")


def apply_platform(client: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(client)
    for create in (
        lambda: core.create_namespace({"metadata": {"name": PLATFORM_NAMESPACE}}),
        lambda: kubernetes.client.NodeV1Api(client).create_runtime_class(RUNTIME_CLASS),
        lambda: kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
            GROUP, VERSION, PLATFORM_NAMESPACE, "modeldeployments", BUILTIN_MODEL
        ),
    ):
        try:
            create()
        except ApiException as error:
            if error.status != 409:
                raise


def run_operator(
    custom: kubernetes.client.CustomObjectsApi, run: str, workspaces: int, per_workspace: int
) -> float:
    """Apply every Workspace and VibeApp (8 threads); seconds until every app is Running."""
    started = time.monotonic()
    labels = {BENCH_LABEL: run}

    def apply_workspace(index: int) -> None:
        name = f"b{run}-{index}"
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "workspaces",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Workspace",
                "metadata": {"name": name, "labels": labels},
                "spec": WORKSPACE_SPEC,
            },
        )
        for app in range(per_workspace):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "VibeApp",
                "metadata": {"name": f"app-{app}", "labels": labels},
                "spec": {"prompts": [PROMPT], "preview": {"enabled": True, "idleTimeout": "8h"}},
            }
            create_retrying(
                lambda body=body: custom.create_namespaced_custom_object(
                    GROUP, VERSION, f"ws-{name}", "vibeapps", body
                )
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(apply_workspace, range(workspaces)))

    total = workspaces * per_workspace

    def all_running() -> bool:
        items = custom.list_cluster_custom_object(
            GROUP, VERSION, "vibeapps", label_selector=f"{BENCH_LABEL}={run}"
        )["items"]
        phases = Counter((item.get("status") or {}).get("phase", "-") for item in items)
        failed = phases.get("Failed", 0) + phases.get("BudgetExceeded", 0)
        if failed:
            raise RuntimeError(f"apps failed: {dict(phases)}")
        return phases.get("Running", 0) == total

    wait(all_running, 3600, "every app Running", interval=2)
    return time.monotonic() - started


def run_baseline(
    client: kubernetes.client.ApiClient, run: str, workspaces: int, per_workspace: int
) -> tuple[float, int]:
    """The same children from a plain client: seconds until every Deployment is available."""
    owner = str(uuid.uuid4())
    preview = desired.PreviewSettings(
        runtime_class="gvisor",
        image="ghcr.io/vibeplane/preview:0.1.0",
        command=("x",),
        local_node=False,
    )
    batches: list[list[dict[str, Any]]] = []
    for index in range(workspaces):
        items = workspace_children(f"base{run}-{index}", owner)
        namespace = items[0]["metadata"]["name"]
        for app in range(per_workspace):
            name = f"app-{app}"
            items.append(desired.preview_deployment(name, namespace, owner, 1, preview))
            items.append(desired.preview_service(name, namespace, owner))
        for item in items:  # no owner exists: drop the reference so GC leaves them alone
            item["metadata"].pop("ownerReferences", None)
            item["metadata"].setdefault("labels", {})[BENCH_LABEL] = f"base{run}"
        batches.append(items)
    started = time.monotonic()

    def create(items: list[dict[str, Any]]) -> int:
        for item in items:
            kube.apply(item, field_manager("bench"), lookup=False)
        return len(items)

    with ThreadPoolExecutor(max_workers=8) as pool:
        writes = sum(pool.map(create, batches))
    apps = kubernetes.client.AppsV1Api(client)
    total = workspaces * per_workspace

    def all_available() -> bool:
        items = apps.list_deployment_for_all_namespaces(
            label_selector=f"{BENCH_LABEL}=base{run}"
        ).items
        return sum(1 for d in items if (d.status.ready_replicas or 0) >= 1) == total

    wait(all_available, 3600, "every baseline Deployment available", interval=2)
    elapsed = time.monotonic() - started
    core = kubernetes.client.CoreV1Api(client)
    for index in range(workspaces):
        core.delete_namespace(f"ws-base{run}-{index}")
    return elapsed, writes


def delete_apps(custom: kubernetes.client.CustomObjectsApi, run: str) -> float:
    """Delete every app and wait until they are gone (the finalizer empties S3 first)."""
    started = time.monotonic()
    items = custom.list_cluster_custom_object(
        GROUP, VERSION, "vibeapps", label_selector=f"{BENCH_LABEL}={run}"
    )["items"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda item: custom.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    item["metadata"]["namespace"],
                    "vibeapps",
                    item["metadata"]["name"],
                ),
                items,
            )
        )
    wait(
        lambda: (
            not custom.list_cluster_custom_object(
                GROUP, VERSION, "vibeapps", label_selector=f"{BENCH_LABEL}={run}"
            )["items"]
        ),
        1800,
        "every app deleted",
        interval=2,
    )
    return time.monotonic() - started


def delete_workspaces(custom: kubernetes.client.CustomObjectsApi, run: str) -> None:
    for item in custom.list_cluster_custom_object(
        GROUP, VERSION, "workspaces", label_selector=f"{BENCH_LABEL}={run}"
    )["items"]:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", item["metadata"]["name"])


def terminating_namespaces(core: kubernetes.client.CoreV1Api) -> list[str]:
    return [
        ns.metadata.name
        for ns in core.list_namespace().items
        if ns.metadata.deletion_timestamp is not None
    ]


def settle_namespaces(core: kubernetes.client.CoreV1Api, why: str) -> None:
    """Wait until no namespace is being deleted: a run must not pay for an earlier one's
    cleanup (while KWOK runs, since it is what lets the pods go)."""
    if terminating_namespaces(core):
        print(f"waiting for namespaces being deleted ({why})")
        wait(lambda: not terminating_namespaces(core), 900, "namespaces deleted", interval=2)


def per_app(counts: Counter[str], apps: int) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{key} {value / apps:.2f}" for key, value in ordered)


def by_verb(counts: Counter[str]) -> Counter[str]:
    verbs: Counter[str] = Counter()
    for key, value in counts.items():
        verbs[key.split(" ", 1)[0]] += value
    return verbs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--apps-per-workspace", type=int, default=10)
    parser.add_argument(
        "--warm-pool",
        type=int,
        default=1,
        help="idle sandboxes per workspace (the operator's default; the chart's is 1)",
    )
    parser.add_argument("--profile", type=Path, help="write py-spy's collapsed stacks here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    total = args.workspaces * args.apps_per_workspace
    local: LocalCluster = cluster()
    client = api(local)
    custom = kubernetes.client.CustomObjectsApi(client)
    audit = Audit(local)
    run = uuid.uuid4().hex[:5]
    scratch = Path(tempfile.mkdtemp(prefix="bench-apps-"))
    s3 = LocalS3(local.config)
    s3.up()
    s3_env = s3.client_environment()
    os.environ.update(s3_env)
    node_count = 2 * total // (PODS_PER_NODE - 10) + 1  # the baseline runs beside the apps
    figures: dict[str, Any] = {
        "workspaces": args.workspaces,
        "apps": total,
        "nodes": node_count,
        "warm_pool": args.warm_pool,
    }
    finished = False

    def scratch_done() -> None:
        """Logs are kept only when the run failed (the disk is shared)."""
        if finished:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"logs kept in {scratch}", file=sys.stderr)

    with ExitStack() as stack:
        stack.callback(scratch_done)  # last: after every process writing there has stopped
        port = stack.enter_context(model_server(scratch / "modelserver.log"))
        nodes = stack.enter_context(kwok_nodes(local, node_count, scratch / "kwok.log"))
        wait(lambda: nodes_ready(local, nodes), 60, "KWOK nodes Ready")
        core = kubernetes.client.CoreV1Api(client)
        settle_namespaces(core, "an earlier run's")
        apply_platform(client)
        environment = {
            **s3_env,
            "VIBEPLANE_BUILTIN_MODEL_URL": f"http://127.0.0.1:{port}/openai/v1",
            "VIBEPLANE_PREVIEW_ACTIVITY_POLL": "false",
            # KWOK's pods run nothing: a Ready pod counts as serving (no delivery to send).
            "VIBEPLANE_PREVIEW_DELIVERY": "false",
            "VIBEPLANE_PREVIEW_WARM_POOL": str(args.warm_pool),
        }
        operator = Operator.start(
            local, scratch / "operator.log", profile=args.profile, **environment
        )
        stack.callback(lambda: operator.stop())
        wait(lambda: _model_ready(custom), 60, "builtin ModelDeployment Ready")
        calls_before = model_calls(port)
        mark = audit.mark()
        cpu_before = operator.cpu_seconds()
        seconds = run_operator(custom, run, args.workspaces, args.apps_per_workspace)
        time.sleep(3)  # the last status writes land in the log
        requests = audit.requests(mark)
        figures.update(
            operator_seconds=round(seconds, 2),
            operator_cpu_seconds=round(operator.cpu_seconds() - cpu_before, 1),
            operator_peak_rss_mb=round(operator.peak_rss_mb()),
            model_calls=model_calls(port) - calls_before,
            requests_per_app={k: round(v / total, 3) for k, v in sorted(requests.items())},
        )
        print(
            f"{total} apps in {args.workspaces} workspaces on {node_count} KWOK nodes, "
            f"warm pool {args.warm_pool}"
        )
        print(
            f"operator: all Running in {seconds:.1f}s; CPU {figures['operator_cpu_seconds']}s; "
            f"peak RSS {figures['operator_peak_rss_mb']} MB; "
            f"model calls {figures['model_calls']:.0f}"
        )
        verbs = by_verb(requests)
        print(
            "operator requests per app by verb: "
            + ", ".join(f"{verb} {count / total:.2f}" for verb, count in sorted(verbs.items()))
        )
        print(f"  by resource: {per_app(requests, total)}")

        steady_mark = audit.mark()
        operator.stop()
        operator = Operator.start(local, scratch / "operator.log", **environment)
        time.sleep(30)  # the restarted operator lists everything and reconciles every object
        steady = audit.requests(steady_mark, writes_only=True)
        figures["writes_after_restart"] = sum(steady.values())
        print(
            f"writes after convergence and an operator restart (30 s): {sum(steady.values())}"
            + (f" {dict(steady)}" if steady else "")
        )
        for written, count in audit.written(steady_mark).most_common(20):
            print(f"  {count} x {written}")

        base_seconds, base_writes = run_baseline(
            client, run, args.workspaces, args.apps_per_workspace
        )
        operator_writes = sum(
            count for key, count in requests.items() if key.split(" ", 1)[0] not in READS
        )
        figures.update(
            baseline_seconds=round(base_seconds, 2),
            baseline_writes_per_app=round(base_writes / total, 2),
            operator_writes_per_app=round(operator_writes / total, 2),
            ratio=round(seconds / base_seconds, 2),
        )
        print(
            f"baseline (plain client, same children, 8 threads): all available in "
            f"{base_seconds:.1f}s, {base_writes / total:.2f} writes/app"
        )
        print(f"operator writes/app: {operator_writes / total:.2f}")
        print(f"ratio operator/baseline time: {seconds / base_seconds:.2f}x")

        figures["delete_seconds"] = round(delete_apps(custom, run), 1)
        print(f"every app deleted (S3 emptied by the finalizer) in {figures['delete_seconds']}s")
        delete_workspaces(custom, run)
        settle_namespaces(core, "this run's")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        finished = True


READS = {"get", "list", "watch"}


def _model_ready(custom: kubernetes.client.CustomObjectsApi) -> bool:
    body = custom.get_namespaced_custom_object(
        GROUP, VERSION, PLATFORM_NAMESPACE, "modeldeployments", "builtin"
    )
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (body.get("status") or {}).get("conditions", [])
    )


if __name__ == "__main__":
    main()
