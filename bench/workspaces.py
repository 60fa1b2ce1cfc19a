"""100 Workspaces created at once: time to all Ready and API writes per workspace, against a
plain client that creates the same child objects directly, in the same run.

    .venv/bin/python -m bench.workspaces [--count 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes

from bench.common import Audit, Operator, api, cluster, wait
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.kube import client as kube
from vibeplane.settings import field_manager
from vibeplane.workspace import desired

SPEC = {
    "members": [
        {"kind": "User", "name": "alice", "role": "admin"},
        {"kind": "Group", "name": "devs", "role": "editor"},
    ],
    "quota": {"cpu": "4", "memory": "8Gi", "pods": 20, "apps": 10},
    "network": {"allowInternetEgress": True},
    "budget": {"tokens": 1_000_000, "money": "100"},
}


def children(name: str, uid: str) -> list[dict]:  # type: ignore[type-arg]
    spec = WorkspaceSpec.model_validate(SPEC)
    items = [desired.namespace(name, uid, spec)]
    items += [b for b in desired.role_bindings(name, uid, spec).values() if b]
    quota = desired.resource_quota(name, uid, spec)
    items += [quota] if quota else []
    items.append(desired.limit_range(name, uid, spec))
    items += [
        p for p in desired.network_policies(name, uid, spec, "gw", "vibeplane-system").values() if p
    ]
    return items


def baseline(count: int, run: str) -> tuple[float, int]:
    """Create the same children with a plain client (server-side apply), 8 threads."""
    fake_owner = str(uuid.uuid4())
    manifests = [children(f"base-{run}-{i}", fake_owner) for i in range(count)]
    for items in manifests:  # no owner exists: drop the reference so GC leaves them alone
        for item in items:
            item["metadata"].pop("ownerReferences", None)
    started = time.monotonic()

    def create(items: list[dict]) -> int:  # type: ignore[type-arg]
        for item in items:
            kube.apply(item, field_manager("bench"), lookup=False)
        return len(items)

    with ThreadPoolExecutor(max_workers=8) as pool:
        writes = sum(pool.map(create, manifests))
    elapsed = time.monotonic() - started
    core = kubernetes.client.CoreV1Api(kube.api_client())
    for i in range(count):
        core.delete_namespace(f"ws-base-{run}-{i}")
    return elapsed, writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    local = cluster()
    client = api(local)
    custom = kubernetes.client.CustomObjectsApi(client)
    audit = Audit(local)
    run = uuid.uuid4().hex[:5]
    log = Path(tempfile.mkdtemp()) / "operator.log"
    operator = Operator.start(local, log)
    try:
        names = [f"bench-{run}-{i}" for i in range(args.count)]
        mark = audit.mark()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda name: custom.create_cluster_custom_object(
                        "vibeplane.io",
                        "v1alpha1",
                        "workspaces",
                        {
                            "apiVersion": "vibeplane.io/v1alpha1",
                            "kind": "Workspace",
                            "metadata": {"name": name},
                            "spec": SPEC,
                        },
                    ),
                    names,
                )
            )

        def all_ready() -> bool:
            items = custom.list_cluster_custom_object(
                "vibeplane.io", "v1alpha1", "workspaces", label_selector=None
            )["items"]
            ready = sum(
                1
                for item in items
                if item["metadata"]["name"].startswith(f"bench-{run}-")
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (item.get("status") or {}).get("conditions", [])
                )
            )
            return ready == args.count

        wait(all_ready, 600, "all workspaces Ready", interval=0.5)
        operator_seconds = time.monotonic() - started
        time.sleep(2)
        writes = audit.writes(mark)
        steady_mark = audit.mark()
        time.sleep(12)  # resyncs (VIBEPLANE_RESYNC_SECONDS defaults to 300: restart to force)
        operator.stop()
        operator = Operator.start(local, log)
        time.sleep(10)
        steady = audit.writes(steady_mark)
        rss, cpu = operator.peak_rss_mb(), operator.cpu_seconds()

        base_seconds, base_writes = baseline(args.count, run)
        total_writes = sum(writes.values())
        print(f"workspaces: {args.count}")
        print(
            f"operator: all Ready in {operator_seconds:.2f}s, "
            f"{total_writes / args.count:.1f} writes/workspace {dict(sorted(writes.items()))}"
        )
        print(
            f"baseline (plain client, same children, 8 threads): {base_seconds:.2f}s, "
            f"{base_writes / args.count:.1f} writes/workspace"
        )
        print(f"ratio operator/baseline time: {operator_seconds / base_seconds:.2f}x")
        print(f"writes after convergence and an operator restart: {sum(steady.values())}")
        print(f"restarted operator: peak RSS {rss:.0f} MB, CPU {cpu:.1f}s")
    finally:
        operator.stop()
        for name in [f"bench-{run}-{i}" for i in range(args.count)]:
            custom.delete_cluster_custom_object("vibeplane.io", "v1alpha1", "workspaces", name)


if __name__ == "__main__":
    main()
