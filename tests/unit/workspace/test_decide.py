"""The Workspace controller's pure decisions (vibeplane.workspace.decide)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Amount, Ask, Ledger, Waiter
from vibeplane.budget.periods import period_of
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import LABEL_WORKSPACE, OperatorSettings
from vibeplane.workspace.decide import Wake, WorkspaceInput, budget_events, decide

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC)
UID = "1b2c3d4e-0000-4000-8000-000000000001"
SETTINGS = OperatorSettings()
BUDGET = WorkspaceSpec.model_validate({"budget": {"tokens": 1_000_000}})


def observed(spec: WorkspaceSpec = BUDGET, **changes: Any) -> WorkspaceInput:
    base = WorkspaceInput(
        name="team-a",
        uid=UID,
        spec=spec,
        live_namespace=None,
        ledger=Ledger("team-a", period_of(spec.budget_period, NOW)),
        floor=None,
        apps=3,
        previews_running=1,
        previous_conditions=None,
        now=NOW,
    )
    return replace(base, **changes)


def by_type(conditions: list[ConditionSpec]) -> dict[str, ConditionSpec]:
    return {c.type: c for c in conditions}


def test_a_namespace_of_someone_else_is_refused_and_nothing_is_applied() -> None:
    other = {"metadata": {"name": "ws-team-a", "labels": {LABEL_WORKSPACE: "team-b"}}}
    decision = decide(observed(live_namespace=other), SETTINGS)
    assert decision.namespace is None
    assert decision.children == {}
    assert decision.wake == []
    assert decision.events == []
    ready = by_type(decision.conditions)["Ready"]
    assert (ready.status, ready.reason) == ("False", "NamespaceConflict")
    assert ready.message.endswith("; nothing changed")
    assert decision.status == {}


def test_a_reserved_namespace_is_refused() -> None:
    spec = WorkspaceSpec.model_validate({"namespace": "kube-system"})
    decision = decide(observed(spec), SETTINGS)
    assert decision.namespace is None
    assert by_type(decision.conditions)["Ready"].reason == "NamespaceConflict"


def test_a_free_namespace_is_taken_with_its_children_and_status() -> None:
    decision = decide(observed(), SETTINGS)
    assert decision.namespace is not None
    assert decision.namespace["metadata"]["name"] == "ws-team-a"
    kinds = {kind for kind, _ in decision.children}
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy"} <= kinds
    assert decision.status["namespace"] == "ws-team-a"
    assert decision.status["apps"] == 3
    assert decision.status["previewsRunning"] == 1
    assert decision.status["defaultModel"] == SETTINGS.default_model
    conditions = by_type(decision.conditions)
    assert conditions["Ready"].status == "True"
    assert (conditions["Suspended"].status, conditions["Suspended"].reason) == ("False", "Active")
    assert {"BudgetWarning", "BudgetExceeded"} <= set(conditions)
    assert decision.requeue_after is None  # nobody waits: no need to look at the period's end


def test_a_suspended_workspace_says_so() -> None:
    spec = WorkspaceSpec.model_validate({"suspended": True})
    suspended = by_type(decide(observed(spec), SETTINGS).conditions)["Suspended"]
    assert (suspended.status, suspended.reason) == ("True", "Suspended")


def test_waiting_generations_that_fit_are_woken_and_the_period_end_is_looked_at() -> None:
    ask = Ask(1000, 2000, 1000, Decimal("0"), Decimal("0"), "builtin")
    waiter = Waiter(NOW - timedelta(minutes=5), NOW, "ws-team-a/app", ask)
    ledger = replace(observed().ledger, waiting={"uid:1:0": waiter})
    decision = decide(observed(ledger=ledger), SETTINGS)
    assert decision.wake == [Wake("uid:1:0", "ws-team-a/app")]
    assert decision.requeue_after == (ledger.period.end - NOW).total_seconds() + 1


def test_a_waiting_generation_that_does_not_fit_is_not_woken() -> None:
    ask = Ask(1000, 2000, 1000, Decimal("0"), Decimal("0"), "builtin")
    waiter = Waiter(NOW - timedelta(minutes=5), NOW, "ws-team-a/app", ask)
    ledger = replace(observed().ledger, settled=Amount(1_000_000), waiting={"uid:1:0": waiter})
    decision = decide(observed(ledger=ledger), SETTINGS)
    assert decision.wake == []
    assert decision.requeue_after is not None
    assert [e.type for e in decision.events] == ["BudgetWarning", "BudgetExceeded"]


def test_a_budget_event_once_per_transition_and_never_for_reservations() -> None:
    exceeded = ConditionSpec("BudgetExceeded", "True", "BudgetExceeded", "spent")
    held = ConditionSpec("BudgetExceeded", "True", "ReservedByGenerations", "held")
    assert budget_events(None, [exceeded]) == [exceeded]
    was_true = [{"type": "BudgetExceeded", "status": "True", "reason": "BudgetExceeded"}]
    assert budget_events(was_true, [exceeded]) == []
    assert budget_events(None, [held]) == []
    was_held = [{"type": "BudgetExceeded", "status": "True", "reason": "ReservedByGenerations"}]
    assert budget_events(was_held, [exceeded]) == [exceeded]
    assert budget_events(None, [ConditionSpec("BudgetWarning", "False", "WithinBudget", "")]) == []
