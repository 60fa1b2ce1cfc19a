"""Workspaces on the real control plane: isolation, quota, drift repair, idempotency, budgets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import OperatorProcess
from tests.integration.support import (
    GROUP,
    VERSION,
    AuditLog,
    create_object,
    find_condition,
    or_none,
    wait_for,
)
from vibeplane.budget.ledger import Amount, Limits
from vibeplane.budget.store import LedgerStore, ledger_name
from vibeplane.settings import OperatorSettings
from vibeplane_dev.cluster.local import OPERATOR_USER
from vibeplane_dev.cluster.node import real_node_selected

pytestmark = pytest.mark.integration
PLATFORM = OperatorSettings().platform_namespace

MakeWorkspace = Callable[..., dict[str, Any]]


@pytest.fixture
def make_workspace(api: ApiClient, operator: OperatorProcess) -> Iterator[MakeWorkspace]:
    """Create workspaces and wait until they are Ready; deleted after the test."""
    custom = kubernetes.client.CustomObjectsApi(api)
    created: list[str] = []

    def make(spec: dict[str, Any], ready: bool = True) -> dict[str, Any]:
        name = f"w{uuid.uuid4().hex[:8]}"
        create_object(api, "Workspace", name, spec)
        created.append(name)
        if not ready:
            return dict(custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name))

        def is_ready() -> dict[str, Any] | None:
            obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
            condition = find_condition(obj, "Ready")
            return dict(obj) if condition and condition["status"] == "True" else None

        return wait_for(is_ready, timeout=30, what=f"workspace {name} Ready")

    yield make
    for name in created:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


def _get_workspace(api: ApiClient, name: str) -> dict[str, Any]:
    return dict(
        kubernetes.client.CustomObjectsApi(api).get_cluster_custom_object(
            GROUP, VERSION, "workspaces", name
        )
    )


def _can(
    api: ApiClient,
    user: str,
    verb: str,
    resource: str,
    namespace: str | None,
    group: str = "",
    groups: list[str] | None = None,
) -> bool:
    review = kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": groups or [],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                },
            },
        }
    )
    return bool(review.status.allowed)


def _wait_default_service_account(api: ApiClient, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    wait_for(
        lambda: core.list_namespaced_service_account(namespace).items,
        timeout=30,
        what=f"default service account in {namespace}",
    )


RESTRICTED = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod(name: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "c",
        "image": "example.invalid/app",
        "securityContext": CONTAINER_SECURITY,
    }
    if resources is not None:
        container["resources"] = resources
    return {"metadata": {"name": name}, "spec": {**RESTRICTED, "containers": [container]}}


# ---- isolation -----------------------------------------------------------------------------


def test_rbac_isolates_tenants(api: ApiClient, make_workspace: MakeWorkspace) -> None:
    a = make_workspace(
        {
            "members": [
                {"kind": "User", "name": "alice", "role": "editor"},
                {"kind": "User", "name": "victor", "role": "viewer"},
                {"kind": "Group", "name": "a-admins", "role": "admin"},
            ]
        }
    )
    b = make_workspace({"members": [{"kind": "User", "name": "bob", "role": "editor"}]})
    ns_a, ns_b = a["status"]["namespace"], b["status"]["namespace"]
    wait_for(
        lambda: _can(api, "alice", "create", "vibeapps", ns_a, GROUP),
        timeout=15,
        what="alice's role binding",
    )

    # An editor of A creates VibeApps in A, for real, through impersonation.
    alice = kubernetes.client.ApiClient(api.configuration)
    alice.set_default_header("Impersonate-User", "alice")
    create_object(api, "VibeApp", "mine", {"prompts": ["a todo list"]}, namespace=ns_a)
    # ...and cannot get, list or watch anything in B.
    for resource, group in [
        ("vibeapps", GROUP),
        ("pods", ""),
        ("secrets", ""),
        ("configmaps", ""),
        ("services", ""),
        ("deployments", "apps"),
        ("modeldeployments", GROUP),
    ]:
        for verb in ("get", "list", "watch"):
            assert not _can(api, "alice", verb, resource, ns_b, group), (
                f"alice {verb} {resource} in B"
            )
    with pytest.raises(ApiException) as forbidden:
        kubernetes.client.CustomObjectsApi(alice).list_namespaced_custom_object(
            GROUP, VERSION, ns_b, "vibeapps"
        )
    assert forbidden.value.status == 403

    # A viewer reads apps but no Secrets; an admin reads Secrets.
    assert _can(api, "victor", "list", "vibeapps", ns_a, GROUP)
    assert not _can(api, "victor", "get", "secrets", ns_a)
    assert not _can(api, "victor", "list", "secrets", ns_a)
    assert not _can(api, "victor", "create", "vibeapps", ns_a, GROUP)
    assert _can(api, "carol", "get", "secrets", ns_a, groups=["a-admins"])

    # No tenant role changes the quota, limits, network policies, role bindings, or its Workspace.
    for user, groups in (("alice", []), ("victor", []), ("carol", ["a-admins"])):
        for resource, group in [
            ("resourcequotas", ""),
            ("limitranges", ""),
            ("networkpolicies", "networking.k8s.io"),
            ("rolebindings", "rbac.authorization.k8s.io"),
            ("roles", "rbac.authorization.k8s.io"),
        ]:
            for verb in ("create", "update", "patch", "delete"):
                assert not _can(api, user, verb, resource, ns_a, group, groups), (
                    f"{user} may {verb} {resource}"
                )
        for verb in ("update", "patch", "delete"):
            assert not _can(api, user, verb, "workspaces", None, GROUP, groups)
            assert not _can(api, user, verb, "workspaces/status", None, GROUP, groups)


def test_network_policies_deny_by_default(api: ApiClient, make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(
        {"network": {"allowInternetEgress": False, "allowedEgressCIDRs": ["203.0.113.0/24"]}}
    )
    namespace = ws["status"]["namespace"]
    net = kubernetes.client.NetworkingV1Api(api)

    def names() -> set[str]:
        return {p.metadata.name for p in net.list_namespaced_network_policy(namespace).items}

    wait_for(lambda: "vibeplane-allow-egress-cidrs" in names(), timeout=15, what="policies")
    # On the real node previews fetch their bundle from the object store's relay: one more.
    store = {"vibeplane-allow-object-store"} if real_node_selected() else set()
    assert names() == {
        "vibeplane-default-deny",
        "vibeplane-allow-dns",
        "vibeplane-allow-gateway",
        "vibeplane-allow-egress-cidrs",
        *store,
    }
    deny = net.read_namespaced_network_policy("vibeplane-default-deny", namespace)
    assert deny.spec.pod_selector.match_labels is None
    assert sorted(deny.spec.policy_types) == ["Egress", "Ingress"]
    assert not deny.spec.ingress
    assert not deny.spec.egress
    gateway = net.read_namespaced_network_policy("vibeplane-allow-gateway", namespace)
    source = gateway.spec.ingress[0]._from[0].namespace_selector.match_labels
    assert source == {"kubernetes.io/metadata.name": OperatorSettings().gateway_namespace}

    # Turning internet egress on adds its policy; the CIDR allowance goes when emptied.
    kubernetes.client.CustomObjectsApi(api).patch_cluster_custom_object(
        GROUP,
        VERSION,
        "workspaces",
        ws["metadata"]["name"],
        {"spec": {"network": {"allowInternetEgress": True, "allowedEgressCIDRs": []}}},
    )
    wait_for(
        lambda: (
            names()
            == {
                "vibeplane-default-deny",
                "vibeplane-allow-dns",
                "vibeplane-allow-gateway",
                "vibeplane-allow-internet",
                *store,
            }
        ),
        timeout=15,
        what="policies after the edit",
    )
    internet = net.read_namespaced_network_policy("vibeplane-allow-internet", namespace)
    block = internet.spec.egress[0].to[0].ip_block
    assert block.cidr == "0.0.0.0/0"
    assert "10.0.0.0/8" in block._except


def _refused(api: ApiClient, name: str) -> dict[str, Any]:
    def refused() -> dict[str, Any] | None:
        condition = find_condition(_get_workspace(api, name), "Ready")
        return condition if condition and condition["reason"] == "NamespaceConflict" else None

    condition = wait_for(refused, timeout=20, what=f"NamespaceConflict on {name}")
    assert condition["status"] == "False"
    return condition


def test_a_namespace_of_someone_else_is_refused(
    api: ApiClient, make_workspace: MakeWorkspace, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    managed = "app.kubernetes.io/managed-by=vibeplane"
    before = core.read_namespace("kube-system").metadata

    system = make_workspace({"namespace": "kube-system"}, ready=False)
    assert "kube-system" in _refused(api, system["metadata"]["name"])["message"]

    unmanaged = make_workspace({"namespace": namespace}, ready=False)
    message = _refused(api, unmanaged["metadata"]["name"])["message"]
    assert f"namespace {namespace} already exists and is not managed by a workspace" in message

    owner = make_workspace({})
    taken = owner["status"]["namespace"]
    thief = make_workspace({"namespace": taken}, ready=False)
    message = _refused(api, thief["metadata"]["name"])["message"]
    assert f"namespace {taken} belongs to workspace {owner['metadata']['name']}" in message

    # Nothing changed in the namespaces that were refused.
    after = core.read_namespace("kube-system").metadata
    assert (after.labels, after.owner_references) == (before.labels, before.owner_references)
    for name in ("kube-system", namespace):
        assert not rbac.list_namespaced_role_binding(name, label_selector=managed).items
        assert (
            not kubernetes.client.NetworkingV1Api(api)
            .list_namespaced_network_policy(name, label_selector=managed)
            .items
        )
        assert not core.list_namespaced_limit_range(name, label_selector=managed).items
    assert core.read_namespace(namespace).metadata.owner_references is None
    assert (
        core.read_namespace(taken).metadata.labels["vibeplane.io/workspace"]
        == (owner["metadata"]["name"])
    )


# ---- quota -----------------------------------------------------------------------------------


def test_quota_refuses_and_limit_range_defaults(
    api: ApiClient, make_workspace: MakeWorkspace
) -> None:
    ws = make_workspace(
        {
            "quota": {"cpu": "1", "memory": "1Gi", "pods": 3},
            "limits": {"defaultCpu": "200m", "defaultMemory": "128Mi"},
        }
    )
    namespace = ws["status"]["namespace"]
    core = kubernetes.client.CoreV1Api(api)
    _wait_default_service_account(api, namespace)
    wait_for(
        lambda: core.read_namespaced_resource_quota("vibeplane-quota", namespace).status.hard,
        timeout=30,
        what="quota status",
    )

    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(
            namespace, _pod("big", {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}})
        )
    assert refused.value.status == 403
    assert "exceeded quota: vibeplane-quota" in json.loads(refused.value.body)["message"]

    pod = core.create_namespaced_pod(namespace, _pod("plain"))
    resources = pod.spec.containers[0].resources
    assert resources.requests == {"cpu": "200m", "memory": "128Mi"}
    assert resources.limits == {"cpu": "200m", "memory": "128Mi"}


def test_namespace_enforces_the_restricted_level(
    api: ApiClient, make_workspace: MakeWorkspace
) -> None:
    namespace = make_workspace({})["status"]["namespace"]
    _wait_default_service_account(api, namespace)
    privileged = {
        "metadata": {"name": "root"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "example.invalid/app",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CoreV1Api(api).create_namespaced_pod(namespace, privileged)
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refused.value.body)["message"]


# ---- drift and idempotency -------------------------------------------------------------------


def test_drift_is_repaired(api: ApiClient, make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(
        {
            "quota": {"cpu": "4", "pods": 10},
            "members": [{"kind": "User", "name": "dana", "role": "editor"}],
        }
    )
    namespace = ws["status"]["namespace"]
    core = kubernetes.client.CoreV1Api(api)
    net = kubernetes.client.NetworkingV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    wait_for(
        lambda: or_none(rbac.read_namespaced_role_binding, "vibeplane-editor", namespace),
        timeout=15,
        what="role binding",
    )

    started = time.monotonic()
    core.delete_namespaced_resource_quota("vibeplane-quota", namespace)
    wait_for(
        lambda: or_none(core.read_namespaced_resource_quota, "vibeplane-quota", namespace),
        timeout=10,
        what="quota recreated",
    )
    core.patch_namespaced_resource_quota(
        "vibeplane-quota", namespace, {"spec": {"hard": {"pods": "1000"}}}
    )
    wait_for(
        lambda: (
            core.read_namespaced_resource_quota("vibeplane-quota", namespace).spec.hard["pods"]
            == "10"
        ),
        timeout=10,
        what="quota edit reverted",
    )
    net.patch_namespaced_network_policy(
        "vibeplane-default-deny", namespace, {"spec": {"policyTypes": ["Ingress"]}}
    )
    wait_for(
        lambda: (
            sorted(
                net.read_namespaced_network_policy(
                    "vibeplane-default-deny", namespace
                ).spec.policy_types
            )
            == ["Egress", "Ingress"]
        ),
        timeout=10,
        what="policy edit reverted",
    )
    rbac.delete_namespaced_role_binding("vibeplane-editor", namespace)
    binding = wait_for(
        lambda: or_none(rbac.read_namespaced_role_binding, "vibeplane-editor", namespace),
        timeout=10,
        what="role binding recreated",
    )
    assert [s.name for s in binding.subjects] == ["dana"]
    assert time.monotonic() - started < 30


def _operator_writes(
    audit: AuditLog, mark: int, namespaces: set[str], names: set[str]
) -> list[str]:
    return [
        f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('name')}"
        for e in audit.writes(mark, OPERATOR_USER)
        if e["objectRef"].get("namespace") in namespaces or e["objectRef"].get("name") in names
    ]


def test_converged_workspaces_cost_no_writes(
    api: ApiClient, make_workspace: MakeWorkspace, operator: OperatorProcess, audit: AuditLog
) -> None:
    spec = {
        "members": [{"kind": "User", "name": "erin", "role": "admin"}],
        "quota": {"cpu": "2", "memory": "2Gi", "pods": 5, "apps": 3},
        "network": {"allowInternetEgress": True},
        "budget": {"tokens": 1000},
    }
    workspaces = [make_workspace(spec) for _ in range(3)]
    names = {ws["metadata"]["name"] for ws in workspaces}
    namespaces = {ws["status"]["namespace"] for ws in workspaces}
    time.sleep(3)
    mark = audit.mark()
    time.sleep(10)  # three resyncs at 3 s
    assert _operator_writes(audit, mark, namespaces, names) == []

    mark = audit.mark()
    operator.restart()
    time.sleep(8)  # startup lists and reconciles everything, then two resyncs
    assert _operator_writes(audit, mark, namespaces, names) == []


# ---- budget ----------------------------------------------------------------------------------


def _store() -> LedgerStore:
    return LedgerStore(PLATFORM)


def test_soft_and_hard_limits_set_their_conditions(
    api: ApiClient, make_workspace: MakeWorkspace, operator: OperatorProcess
) -> None:
    ws = make_workspace({"budget": {"tokens": 100_000, "money": "10", "softLimitPercent": 80}})
    name, uid = ws["metadata"]["name"], ws["metadata"]["uid"]
    assert find_condition(ws, "BudgetWarning")["status"] == "False"  # type: ignore[index]
    store = _store()
    store.settle(name, uid, "Monthly", "gen-1", Amount(85_000, Decimal("1.5")))

    def status_is(type_: str, value: str, reason: str | None = None) -> dict[str, Any] | None:
        obj = _get_workspace(api, name)
        condition = find_condition(obj, type_)
        if not condition or condition["status"] != value:
            return None
        return obj if reason is None or condition["reason"] == reason else None

    obj = wait_for(lambda: status_is("BudgetWarning", "True"), timeout=15, what="BudgetWarning")
    assert obj["status"]["usedPercent"] == 85
    assert obj["status"]["usage"] == {"tokens": 85_000, "money": "1.5", "gpuHours": "0"}
    assert obj["status"]["remaining"]["tokens"] == 15_000
    assert find_condition(obj, "BudgetExceeded")["status"] == "False"  # type: ignore[index]
    events = (
        kubernetes.client.CoreV1Api(api)
        .list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
        .items
    )
    assert any(e.reason == "SoftLimitReached" for e in events)

    # 500 tokens left: below the smallest generation on the default model (its floor of
    # output tokens and the instructions), so no app can generate, and the workspace says so.
    store.settle(name, uid, "Monthly", "gen-2", Amount(14_500, Decimal("1")))
    obj = wait_for(
        lambda: status_is("BudgetExceeded", "True", "CannotCoverGeneration"),
        timeout=15,
        what="CannotCoverGeneration",
    )
    message = find_condition(obj, "BudgetExceeded")["message"]  # type: ignore[index]
    assert "default model builtin: needs at least" in message
    assert "500 tokens remain of 100,000" in message

    store.settle(name, uid, "Monthly", "gen-3", Amount(600))
    obj = wait_for(
        lambda: status_is("BudgetExceeded", "True", "HardLimitReached"),
        timeout=15,
        what="HardLimitReached",
    )
    assert "tokens" in find_condition(obj, "BudgetExceeded")["message"]  # type: ignore[index]
    refused = store.reserve(name, uid, "Monthly", "gen-4", Amount(10), Limits(tokens=100_000))
    assert refused.decision == "refused"
    assert "vibeplane_workspace_spend" in operator.metrics()


def test_concurrent_reservations_cannot_overspend(
    api: ApiClient, make_workspace: MakeWorkspace
) -> None:
    ws = make_workspace({"budget": {"tokens": 10_000}})
    name, uid = ws["metadata"]["name"], ws["metadata"]["uid"]
    store, limits = _store(), Limits(tokens=10_000)

    def reserve(index: int) -> bool:
        return store.reserve(name, uid, "Monthly", f"gen-{index}", Amount(1000), limits).admitted

    with ThreadPoolExecutor(max_workers=20) as pool:
        admitted = sum(pool.map(reserve, range(20)))
    assert admitted == 10
    state = store.read(name, uid, "Monthly")
    assert state.reserved(datetime.now(UTC)).tokens == 10_000
    # Settling one with less than reserved frees headroom for exactly that much.
    assert store.settle(name, uid, "Monthly", "gen-0", Amount(400))
    assert store.reserve(name, uid, "Monthly", "late", Amount(600), limits).admitted
    assert not store.reserve(name, uid, "Monthly", "later", Amount(1), limits).admitted


CRASHING_GENERATION = """
import os, sys, time
from decimal import Decimal
from vibeplane.budget.ledger import Amount, Limits
from vibeplane.budget.store import LedgerStore
store = LedgerStore(sys.argv[1])
result = store.reserve(sys.argv[2], sys.argv[3], "Monthly", "app-uid:1:0", Amount(500),
                       Limits(tokens=10_000))
print(result.decision, flush=True)
time.sleep(60)  # the model call; the test kills us here
"""


def test_a_crash_between_reserve_and_settle_neither_loses_nor_doubles(
    api: ApiClient, make_workspace: MakeWorkspace, cluster: Any
) -> None:
    ws = make_workspace({"budget": {"tokens": 10_000}})
    name, uid = ws["metadata"]["name"], ws["metadata"]["uid"]
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_GENERATION, PLATFORM, name, uid],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "reserved"
    process.kill()
    process.wait()

    store = _store()
    state = store.read(name, uid, "Monthly")
    assert state.reserved(datetime.now(UTC)).tokens == 500  # held, not lost
    # The restarted generation reserves again with the same key, then settles; retries are no-ops.
    again = store.reserve(name, uid, "Monthly", "app-uid:1:0", Amount(500), Limits(tokens=10_000))
    assert again.decision == "existing"
    assert store.settle(name, uid, "Monthly", "app-uid:1:0", Amount(420, Decimal("0.42")))
    assert not store.settle(name, uid, "Monthly", "app-uid:1:0", Amount(420, Decimal("0.42")))
    state = store.read(name, uid, "Monthly")
    assert state.settled == Amount(420, Decimal("0.42"))
    assert state.reserved(datetime.now(UTC)) == Amount()


def test_rollover_resets_usage_and_keeps_history(
    api: ApiClient, make_workspace: MakeWorkspace, operator: OperatorProcess
) -> None:
    ws = make_workspace({"budget": {"period": "Monthly", "tokens": 1000}})
    name, uid = ws["metadata"]["name"], ws["metadata"]["uid"]
    # Last month's ledger, as an operator that ran then would have left it.
    last_month = {
        "workspace": name,
        "period": {
            "name": "2020-01",
            "start": "2020-01-01T00:00:00+00:00",
            "end": "2020-02-01T00:00:00+00:00",
        },
        "settled": {"tokens": 990, "money": "9.9", "gpuHours": "0"},
        "reservations": {},
        "done": {"old-key": "2020-01"},
        "history": [],
    }
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_config_map(
        PLATFORM,
        {
            "metadata": {
                "name": ledger_name(name, uid),
                "labels": {
                    "vibeplane.io/ledger": "true",
                    "vibeplane.io/workspace": name,
                    "app.kubernetes.io/managed-by": "vibeplane",
                },
            },
            "data": {"ledger.json": json.dumps(last_month)},
        },
    )

    def current_period() -> dict[str, Any] | None:
        obj = _get_workspace(api, name)
        period = (obj.get("status") or {}).get("period") or {}
        return obj if period.get("name") == datetime.now(UTC).strftime("%Y-%m") else None

    obj = wait_for(current_period, timeout=15, what="current period")
    assert obj["status"]["usage"]["tokens"] == 0
    assert find_condition(obj, "BudgetWarning")["status"] == "False"  # type: ignore[index]
    # The first write of the new period persists the rollover; the closed month is kept.
    store = _store()
    store.settle(name, uid, "Monthly", "new-key", Amount(5))
    state = store.read(name, uid, "Monthly")
    assert state.history[-1]["period"] == "2020-01"
    assert state.history[-1]["tokens"] == 990
    assert state.settled.tokens == 5


def test_deleting_a_workspace_removes_its_namespace_and_keeps_its_ledger(
    api: ApiClient, operator: OperatorProcess
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    core = kubernetes.client.CoreV1Api(api)
    name = f"w{uuid.uuid4().hex[:8]}"
    create_object(api, "Workspace", name, {"budget": {"tokens": 100}})
    obj = wait_for(
        lambda: (
            (_get_workspace(api, name).get("status") or {}).get("namespace")
            and _get_workspace(api, name)
        ),
        timeout=30,
        what="namespace",
    )
    uid = obj["metadata"]["uid"]
    _store().settle(name, uid, "Monthly", "k", Amount(7))
    custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(f"ws-{name}")
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(namespace_gone, timeout=60, what="namespace garbage-collected")
    ledger = core.read_namespaced_config_map(ledger_name(name, uid), PLATFORM)
    assert json.loads(ledger.data["ledger.json"])["settled"]["tokens"] == 7


def test_suspended_sets_itscondition(api: ApiClient, make_workspace: MakeWorkspace) -> None:
    ws = make_workspace({"suspended": True})
    condition = find_condition(ws, "Suspended")
    assert condition is not None
    assert condition["status"] == "True"
