"""The warm pool's pure decisions: its size, its condition, which idle sandbox a new app may
take, and what an app does with the sandboxes it adopted."""

from __future__ import annotations

from typing import Any

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.vibeapp.decide import pool

DIGEST = "22141cffcff828e0"


def member(
    name: str,
    *,
    ready: bool = True,
    digest: str = DIGEST,
    workspace: str = "team",
    created: str = "2026-12-03T10:00:00Z",
    owner: str = "ReplicaSet",
    restarts: int = 0,
    idle: bool = True,
    deleting: bool = False,
    app: str | None = None,
) -> dict[str, Any]:
    labels = {"vibeplane.io/workspace": workspace}
    if idle:
        labels["vibeplane.io/pool"] = "idle"
    if app:
        labels["vibeplane.io/app"] = app
    metadata: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "annotations": {"vibeplane.io/template": digest},
        "creationTimestamp": created,
        "ownerReferences": [{"kind": owner, "name": "x", "uid": "o", "controller": True}],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T10:05:00Z"
    return {
        "metadata": metadata,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


def spec(**fields: Any) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(fields)


def test_the_size_follows_the_spec_then_the_default_and_fits_the_previews_quota() -> None:
    assert pool.pool_size(spec(), 1, 0)[0] == 1
    assert pool.pool_size(spec(warmPool=3), 1, 0)[0] == 3
    size, why = pool.pool_size(spec(warmPool=0), 1, 0)
    assert size == 0
    assert "spec.warmPool is 0" in why
    assert pool.pool_size(spec(suspended=True), 1, 0) == (0, "the workspace is suspended")
    # Idle sandboxes count among the previews: no room left, no pool.
    size, why = pool.pool_size(spec(warmPool=2, quota={"previews": 3}), 1, 2)
    assert size == 1
    assert "quota.previews 3" in why
    assert pool.pool_size(spec(quota={"previews": 2}), 1, 5)[0] == 0


def test_the_pool_deployment_and_its_condition() -> None:
    kept = pool.plan_pool(1, "spec.warmPool: 1", None)
    assert kept.replicas == 1
    assert (kept.condition.status, kept.condition.reason) == ("True", "Kept")
    # A pool of 0 that never existed is not created; one that exists scales to 0.
    none = pool.plan_pool(0, "spec.warmPool is 0", None)
    assert none.replicas is None
    assert none.condition.reason == "NoPool"
    assert pool.plan_pool(0, "off", {"status": {}}).replicas == 0
    # The quota refused its pods: said on the Workspace.
    refused = {
        "status": {
            "conditions": [
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "message": 'pods "preview-warm-x" is forbidden: exceeded quota',
                }
            ]
        }
    }
    plan = pool.plan_pool(1, "spec.warmPool: 1", refused)
    assert (plan.condition.status, plan.condition.reason) == ("False", "Refused")
    assert "exceeded quota" in plan.condition.message
    # The condition does not count members: it stays put while apps adopt and the pool refills.
    assert pool.plan_pool(1, "spec.warmPool: 1", {"status": {"replicas": 0}}) == kept


def test_only_ready_current_untouched_members_of_this_workspace_are_adopted() -> None:
    members = [
        member("newer", created="2026-12-03T10:01:00Z"),
        member("older"),
        member("starting", ready=False),
        member("stale", digest="0000"),
        member("elsewhere", workspace="other"),
        member("restarted", restarts=1),
        member("handmade", owner="VibeApp"),
        member("going", deleting=True),
        member("taken", idle=False, app="todo"),
    ]
    assert [m["metadata"]["name"] for m in pool.adoptable(members, "team", DIGEST)] == [
        "older",
        "newer",
    ]


def adopted(name: str, **fields: Any) -> dict[str, Any]:
    return member(name, idle=False, app="todo", owner="VibeApp", **fields)


def test_a_new_app_adopts_only_when_it_has_no_sandbox() -> None:
    assert pool.plan_sandbox([], 1, DIGEST, candidates=1) == pool.SandboxPlan(0, adopt=True)
    # A drained pool: the Deployment starts one (the cold path).
    assert pool.plan_sandbox([], 1, DIGEST, candidates=0) == pool.SandboxPlan(1)
    # Its Deployment's pod is there already: no second sandbox.
    own = member("todo-preview-abc", idle=False, app="todo")
    assert pool.plan_sandbox([own], 1, DIGEST, candidates=1) == pool.SandboxPlan(1)


def test_an_adopted_sandbox_serves_until_stale_ended_or_scaled_to_zero() -> None:
    serving = adopted("preview-warm-1")
    assert pool.plan_sandbox([serving], 1, DIGEST, 1) == pool.SandboxPlan(0)
    # Started from an older pod spec: it goes; the Deployment (or the pool) starts a current one.
    stale = adopted("preview-warm-2", digest="0000")
    assert pool.plan_sandbox([stale], 1, DIGEST, 0) == pool.SandboxPlan(
        1, delete=("preview-warm-2",)
    )
    assert pool.plan_sandbox([stale], 1, DIGEST, 1) == pool.SandboxPlan(
        0, adopt=True, delete=("preview-warm-2",)
    )
    # Hibernated or suspended: every adopted sandbox goes (the pool never takes one back).
    assert pool.plan_sandbox([serving], 0, DIGEST, 1) == pool.SandboxPlan(
        0, delete=("preview-warm-1",)
    )
    going = adopted("preview-warm-3", deleting=True)
    assert pool.plan_sandbox([going], 0, DIGEST, 1) == pool.SandboxPlan(0)
