"""The Workspace's pure builders, against golden files (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Amount, Ask, Ledger, Reservation
from vibeplane.budget.periods import period_of
from vibeplane.settings import OperatorSettings
from vibeplane.workspace import desired

GOLDEN = Path(__file__).parent / "golden"
UID = "1b2c3d4e-0000-4000-8000-000000000001"
FULL = WorkspaceSpec.model_validate(
    {
        "displayName": "Team A",
        "members": [
            {"kind": "User", "name": "alice@example.com", "role": "admin"},
            {"kind": "Group", "name": "devs", "role": "editor"},
            {"kind": "User", "name": "bob@example.com", "role": "editor"},
        ],
        "quota": {
            "cpu": "8",
            "memory": "16Gi",
            "gpu": 1,
            "pods": 40,
            "storage": "20Gi",
            "apps": 25,
        },
        "limits": {"defaultCpu": "250m", "defaultMemory": "256Mi"},
        "network": {"allowInternetEgress": True, "allowedEgressCIDRs": ["203.0.113.0/24"]},
        "budget": {
            "tokens": 1000000,
            "money": "100",
            "softLimitPercent": 75,
            "onExceeded": "Downgrade",
        },
    }
)
MINIMAL = WorkspaceSpec.model_validate({})


def _check(name: str, documents: Any) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump_all(
        documents if isinstance(documents, list) else [documents], sort_keys=False
    )
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize(("case", "spec"), [("full", FULL), ("minimal", MINIMAL)])
def test_children_match_golden(case: str, spec: WorkspaceSpec) -> None:
    children = [desired.namespace("team-a", UID, spec)]
    children += [b for b in desired.role_bindings("team-a", UID, spec).values() if b]
    quota = desired.resource_quota("team-a", UID, spec)
    children += [quota] if quota else []
    children.append(desired.limit_range("team-a", UID, spec))
    policies = desired.network_policies(
        "team-a", UID, spec, "vibeplane-gateway", "vibeplane-system"
    )
    children += [p for p in policies.values() if p]
    _check(f"children-{case}", children)


def test_cluster_roles_match_golden() -> None:
    _check("cluster-roles", desired.cluster_roles())


def test_roles_never_grant_what_tenants_must_not_change() -> None:
    forbidden = {
        "resourcequotas",
        "limitranges",
        "networkpolicies",
        "rolebindings",
        "roles",
        "workspaces",
        "clusterroles",
        "clusterrolebindings",
        "namespaces",
    }
    for role in desired.cluster_roles():
        name = role["metadata"]["name"]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"], name
            assert "*" not in rule["resources"], name
            writes = set(rule["verbs"]) & {
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection",
                "escalate",
                "bind",
            }
            if writes:
                assert not forbidden & set(rule["resources"]), (name, rule)
            if name.endswith("viewer"):
                assert "secrets" not in rule["resources"]


def test_role_without_members_is_removed() -> None:
    bindings = desired.role_bindings("w", UID, FULL)
    assert bindings["vibeplane-viewer"] is None
    assert [s["name"] for s in bindings["vibeplane-editor"]["subjects"]] == [  # type: ignore[index]
        "devs",
        "bob@example.com",
    ]


def test_namespace_conflicts() -> None:
    ours = {"metadata": {"name": "ws-a", "labels": {"vibeplane.io/workspace": "a"}}}
    theirs = {"metadata": {"name": "ws-a", "labels": {"vibeplane.io/workspace": "b"}}}
    bare = {"metadata": {"name": "ws-a"}}
    assert desired.namespace_conflict(None, "a") is None
    assert desired.namespace_conflict(ours, "a") is None
    assert desired.namespace_conflict(theirs, "a") == "namespace ws-a belongs to workspace b"
    assert "not managed by a workspace" in str(desired.namespace_conflict(bare, "a"))
    settings = OperatorSettings()
    assert desired.reserved_namespace("kube-system", settings)
    assert desired.reserved_namespace(settings.platform_namespace, settings)
    # Hostname claims: a tenant owning that namespace could take any host over.
    assert desired.reserved_namespace(settings.claims_namespace, settings)
    assert desired.reserved_namespace("ws-a", settings) is None


def test_budget_status_and_conditions() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    ledger = Ledger("w", period_of("Monthly", now), settled=Amount(800_000, Decimal("20")))
    fields, conditions = desired.budget_status(FULL, ledger, now)
    assert fields["usedPercent"] == 80
    assert fields["remaining"] == {"tokens": 200_000, "money": "80"}
    by_type = {c.type: c for c in conditions}
    assert by_type["BudgetWarning"].status == "True"
    assert "cheaper model" in by_type["BudgetWarning"].message
    assert by_type["BudgetExceeded"].status == "False"
    spent = Ledger("w", ledger.period, settled=Amount(1_000_000))
    _, conditions = desired.budget_status(FULL, spent, now)
    assert {c.type: c.status for c in conditions}["BudgetExceeded"] == "True"
    _, conditions = desired.budget_status(MINIMAL, spent, now)
    assert {c.type: c.reason for c in conditions} == {
        "BudgetWarning": "NoBudget",
        "BudgetExceeded": "NoBudget",
    }


def test_the_workspace_says_when_no_generation_fits_in_an_apps_words() -> None:
    """BudgetExceeded turns True as soon as what settled and what is reserved leave less than
    the smallest generation on the default model, in the figures a refused app gives."""
    now = datetime(2026, 12, 3, tzinfo=UTC)
    spec = WorkspaceSpec.model_validate({"budget": {"money": "0.005"}})
    floor = Ask(793, 8192, 1024, Decimal("0.10"), Decimal("0.40"), "builtin")
    settled = Amount(11_000, Decimal("0.00408"))
    ledger = Ledger("w", period_of("Monthly", now), settled=settled)
    _, conditions = desired.budget_status(spec, ledger, now, floor)
    assert {c.type: c.status for c in conditions}["BudgetExceeded"] == "False"  # 0.00092 left
    ledger = replace(
        ledger,
        reservations={"app:1:0": Reservation(Amount(2000, Decimal("0.0005")), now, "2026-12")},
    )
    fields, conditions = desired.budget_status(spec, ledger, now, floor)
    assert fields["reserved"] == {"tokens": 2000, "money": "0.0005", "gpuHours": "0"}
    exceeded = {c.type: c for c in conditions}["BudgetExceeded"]
    # Held by a generation in flight: what it does not use comes back.
    assert (exceeded.status, exceeded.reason) == ("True", "ReservedByGenerations")
    assert "default model builtin: needs at least 0.00049 (1,024 output tokens" in (
        exceeded.message
    )
    assert "0.00042 remains of 0.005 for 2026-12 (0.00408 settled, 0.00050 reserved" in (
        exceeded.message
    )
    spent = replace(ledger, settled=Amount(12_000, Decimal("0.0046")), reservations={})
    _, conditions = desired.budget_status(spec, spent, now, floor)
    exceeded = {c.type: c for c in conditions}["BudgetExceeded"]
    assert (exceeded.status, exceeded.reason) == ("True", "CannotCoverGeneration")


def test_previews_may_be_reached_from_and_reach_only_what_the_platform_names() -> None:
    policies = desired.network_policies(
        "team-a",
        UID,
        MINIMAL,
        "vibeplane-gateway",
        "vibeplane-system",
        preview_ingress_cidrs=("10.250.0.1/32",),
        object_store_egress="10.250.0.1/32:19000",
    )
    gateway = policies["vibeplane-allow-gateway"]
    assert gateway is not None
    sources = gateway["spec"]["ingress"][0]["from"]
    assert {"ipBlock": {"cidr": "10.250.0.1/32"}} in sources
    # The gateway, and the front service beside the operator in the platform namespace.
    for source in ("vibeplane-gateway", "vibeplane-system"):
        selector = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": source}}}
        assert selector in sources
    # Previews and published apps alike (both reached through the gateway), nothing else.
    assert gateway["spec"]["podSelector"] == {
        "matchExpressions": [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": ["preview", "published"],
            }
        ]
    }
    store = policies["vibeplane-allow-object-store"]
    assert store is not None
    assert store["spec"]["podSelector"] == desired.SANDBOX_SELECTOR
    assert store["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "10.250.0.1/32"}}],
            "ports": [{"protocol": "TCP", "port": 19000}],
        }
    ]
    # Without them: no allowance at all (and an existing one is removed).
    plain = desired.network_policies(
        "team-a", UID, MINIMAL, "vibeplane-gateway", "vibeplane-system"
    )
    assert plain["vibeplane-allow-object-store"] is None
    assert plain["vibeplane-allow-gateway"] is not None
    assert len(plain["vibeplane-allow-gateway"]["spec"]["ingress"][0]["from"]) == 2
