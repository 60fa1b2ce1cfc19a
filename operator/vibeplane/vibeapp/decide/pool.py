"""The warm pool's decisions: how many idle sandboxes a workspace keeps, which go, and which
one a new app takes.

A workspace's namespace keeps a few preview pods started without any app
(`desired.pool_deployment`: the same pod spec as every app's Deployment, owned by the
Workspace, labelled pool=idle). An app that needs a sandbox and has none takes the oldest ready
idle one (`desired.adopted`: its labels say the app, the app owns it, the pool label is gone for
good) and gets its revision by delivery, as any running preview does; while it holds a current
adopted sandbox its Deployment stays at 0 replicas. The pool's ReplicaSet lets the relabelled
pod go and starts another (the pool refills in the background); a changed pod spec rolls the
idle members over, and an adopted sandbox started from an older spec is deleted (its app's
Deployment starts a current one). A sandbox that took an app's order serves that app only (the
runtime binds to the first app uid it is ordered for, and to its namespace), nothing puts the
pool label back, and members are adopted only in their own namespace by an app of their
workspace. Pure: tests/unit/vibeapp/test_pool.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.vibeapp.decide.preview import pod_ready
from vibeplane.wellknown import ANNOTATION_TEMPLATE, LABEL_POOL, LABEL_WORKSPACE

POOL_IDLE = "idle"
ENDED_PHASES = ("Failed", "Succeeded")


@dataclass(frozen=True)
class PoolPlan:
    """The pool Deployment's replicas (None: there is none and none is needed) and how the
    pool stands."""

    replicas: int | None
    condition: ConditionSpec


def pool_size(spec: WorkspaceSpec, default: int, previews_running: int) -> tuple[int, str]:
    """The idle sandboxes to keep, and why that many."""
    wanted = default if spec.warm_pool is None else spec.warm_pool
    source = "the platform's default" if spec.warm_pool is None else "spec.warmPool"
    if spec.suspended:
        return 0, "the workspace is suspended"
    if wanted == 0:
        return 0, f"{source} is 0: new previews start cold"
    previews = spec.quota.previews if spec.quota is not None else None
    if previews is not None and wanted > previews - previews_running:
        room = max(0, previews - previews_running)
        return room, (
            f"{source} asks {wanted}, quota.previews {previews} leaves room for {room} beside "
            f"the {previews_running} running"
        )
    return wanted, f"{source}: {wanted}"


def _live(pod: Mapping[str, Any]) -> bool:
    metadata = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    return not metadata.get("deletionTimestamp") and phase not in ENDED_PHASES


def current(pod: Mapping[str, Any], digest: str) -> bool:
    """Started from today's preview pod spec."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ANNOTATION_TEMPLATE) == digest


def idle(pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(LABEL_POOL) == POOL_IDLE


def _created(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


def plan_pool(size: int, why: str, live: Mapping[str, Any] | None) -> PoolPlan:
    """The pool's Deployment at `size` (a pool of 0 that never existed is not created), and
    WarmPool: True while members are kept, False with the ReplicaSet's refusal (the quota)."""
    replicas = size if size or live is not None else None
    if size == 0:
        return PoolPlan(replicas, ConditionSpec("WarmPool", "False", "NoPool", why))
    conditions = ((live or {}).get("status") or {}).get("conditions") or []
    failure = next(
        (c for c in conditions if c.get("type") == "ReplicaFailure" and c.get("status") == "True"),
        None,
    )
    if failure is not None:
        message = f"idle preview sandboxes are not started: {failure.get('message') or ''}"
        return PoolPlan(replicas, ConditionSpec("WarmPool", "False", "Refused", message[:1000]))
    noun = "sandbox" if size == 1 else "sandboxes"
    message = f"{size} idle preview {noun} kept started for new apps ({why})"
    return PoolPlan(replicas, ConditionSpec("WarmPool", "True", "Kept", message))


def adoptable(
    members: Sequence[Mapping[str, Any]], workspace: str, digest: str
) -> list[Mapping[str, Any]]:
    """Idle members a new app of this workspace may take, the longest waiting first: ready,
    current, never restarted, started by the workspace's pool (a ReplicaSet: tenants create
    none) for this workspace (a namespace belongs to one; checked all the same)."""
    found = []
    for pod in members:
        metadata = pod.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if (
            idle(pod)
            and (metadata.get("labels") or {}).get(LABEL_WORKSPACE) == workspace
            and _live(pod)
            and pod_ready(pod)
            and current(pod, digest)
            and not any(int(s.get("restartCount") or 0) for s in statuses)
            and any(o.get("kind") == "ReplicaSet" and o.get("controller") for o in owners)
        ):
            found.append(pod)
    return sorted(found, key=_created)


@dataclass(frozen=True)
class SandboxPlan:
    """An app's sandbox: its Deployment's replicas, whether to adopt a warm one, and which of
    its adopted sandboxes to delete."""

    replicas: int
    adopt: bool = False
    delete: tuple[str, ...] = ()


def adopted_by_app(pod: Mapping[str, Any]) -> bool:
    """A sandbox the app took from its pool (owned by the app itself, not a ReplicaSet)."""
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == "VibeApp" and o.get("controller") for o in owners)


def plan_sandbox(
    pods: Sequence[Mapping[str, Any]],
    replicas: int,
    digest: str,
    candidates: int,
) -> SandboxPlan:
    """`pods`: the app's preview pods; `replicas`: what the preview asks (0 hibernated or
    suspended); `candidates`: adoptable pool members.

    An adopted sandbox that is current and live serves (the Deployment stays at 0); one that is
    stale or ended goes, and so does every adopted one when the preview scales to zero. An app
    with no live sandbox at all adopts when the pool has one; else its Deployment starts one."""
    adopted = [pod for pod in pods if adopted_by_app(pod)]
    present = [pod for pod in adopted if not pod["metadata"].get("deletionTimestamp")]
    if replicas == 0:
        return SandboxPlan(0, delete=tuple(p["metadata"]["name"] for p in present))
    serving = [pod for pod in present if _live(pod) and current(pod, digest)]
    delete = tuple(p["metadata"]["name"] for p in present if p not in serving)
    if serving:
        return SandboxPlan(0, delete=delete)
    others = [pod for pod in pods if pod not in adopted and _live(pod)]
    if not others and candidates:
        return SandboxPlan(0, adopt=True, delete=delete)
    return SandboxPlan(replicas, delete=delete)
