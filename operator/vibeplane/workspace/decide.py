"""The Workspace controller's decisions, as pure functions of one gathered input.

The reconcile (`vibeplane.workspace.handlers`) has three parts, like the VibeApp's
(`vibeplane.vibeapp.decide`): gather everything a decision reads into one `WorkspaceInput`
(the spec, the live namespace, the ledger, the smallest generation, the counts, the time),
`decide` here, and apply what was decided (the namespace and its children, wake the waiting
generations that fit, post the budget Events, export the metrics, write the status). Nothing
in this module reads a clock, the API server or the cache (tests/unit/workspace/test_decide.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Ask, Ledger, admittable
from vibeplane.budget.limits import budget_limits
from vibeplane.kube.conditions import ConditionSpec, find, is_true
from vibeplane.settings import OperatorSettings
from vibeplane.workspace import desired

ChildKey = tuple[str, str]
"""(kind, name) of a child in the workspace's namespace."""

RESERVED_BY_GENERATIONS = "ReservedByGenerations"


@dataclass(frozen=True)
class WorkspaceInput:
    """Everything one reconcile of a workspace decides from, read once."""

    name: str
    uid: str
    spec: WorkspaceSpec
    live_namespace: Mapping[str, Any] | None
    """The namespace as it is (None: absent); one we do not manage is refused."""
    ledger: Ledger
    """The workspace's ledger, rolled over to the current period."""
    floor: Ask | None
    """The smallest generation on the default model (None: no budget or no model)."""
    apps: int
    previews_running: int
    previous_conditions: Sequence[Mapping[str, Any]] | None
    now: datetime


@dataclass(frozen=True)
class Wake:
    """A waiting generation that fits the budget now."""

    key: str
    app: str
    """namespace/name of its app."""


@dataclass(frozen=True)
class WorkspaceDecision:
    """What to apply, whom to wake and tell, and the status to write."""

    conditions: list[ConditionSpec]
    status: dict[str, Any] = field(default_factory=dict)
    namespace: dict[str, Any] | None = None
    """The namespace to apply; None: a conflict, nothing is applied."""
    children: dict[ChildKey, Mapping[str, Any] | None] = field(default_factory=dict)
    """Each child's manifest; None: it must not exist (deleted if it does)."""
    wake: list[Wake] = field(default_factory=list)
    events: list[ConditionSpec] = field(default_factory=list)
    """Budget conditions that turned True: one Warning Event each."""
    requeue_after: float | None = None


def decide(observed: WorkspaceInput, settings: OperatorSettings) -> WorkspaceDecision:
    """The whole decision: a conflict changes nothing; otherwise children, budget, status."""
    namespace = desired.namespace(observed.name, observed.uid, observed.spec)
    namespace_name = namespace["metadata"]["name"]
    conflict = desired.namespace_conflict(
        observed.live_namespace, observed.name
    ) or desired.reserved_namespace(namespace_name, settings)
    if conflict is not None:
        return WorkspaceDecision(
            [ConditionSpec("Ready", "False", "NamespaceConflict", f"{conflict}; nothing changed")]
        )
    spec, ledger, now = observed.spec, observed.ledger, observed.now
    fields, budget_conditions = desired.budget_status(spec, ledger, now, observed.floor)
    fields.update(
        {
            "namespace": namespace_name,
            "apps": observed.apps,
            "previewsRunning": observed.previews_running,
            "defaultModel": (spec.models.default if spec.models else None)
            or settings.default_model,
        }
    )
    ready = ConditionSpec(
        "Ready",
        "True",
        "Reconciled",
        f"namespace {namespace_name} with its roles, quota, limits and network policies",
    )
    # A new period frees the budget: look at the line again when it starts.
    period_end = (ledger.period.end - now).total_seconds() + 1 if ledger.waiting else None
    return WorkspaceDecision(
        [ready, *budget_conditions, suspended_condition(spec)],
        fields,
        namespace=namespace,
        children=children(observed.name, observed.uid, spec, settings),
        wake=to_wake(ledger, spec, now),
        events=budget_events(observed.previous_conditions, budget_conditions),
        requeue_after=period_end,
    )


def children(
    workspace: str, uid: str, spec: WorkspaceSpec, settings: OperatorSettings
) -> dict[ChildKey, Mapping[str, Any] | None]:
    """The children in the workspace's namespace, in the order they are applied."""
    wanted: dict[ChildKey, Mapping[str, Any] | None] = {}
    for binding_name, binding in desired.role_bindings(workspace, uid, spec).items():
        wanted[("RoleBinding", binding_name)] = binding
    wanted[("ResourceQuota", "vibeplane-quota")] = desired.resource_quota(workspace, uid, spec)
    wanted[("LimitRange", "vibeplane-limits")] = desired.limit_range(workspace, uid, spec)
    policies = desired.network_policies(
        workspace,
        uid,
        spec,
        settings.gateway_namespace,
        settings.platform_namespace,
        settings.preview_ingress_cidrs,
        settings.object_store_egress,
    )
    for policy_name, policy in policies.items():
        wanted[("NetworkPolicy", policy_name)] = policy
    return wanted


def to_wake(ledger: Ledger, spec: WorkspaceSpec, now: datetime) -> list[Wake]:
    """Waiting apps that fit now, oldest first, and only those (see ledger.py)."""
    return [Wake(key, waiter.app) for key, waiter in admittable(ledger, budget_limits(spec), now)]


def budget_events(
    previous: Sequence[Mapping[str, Any]] | None, conditions: Sequence[ConditionSpec]
) -> list[ConditionSpec]:
    """The budget conditions that turned True since `previous` (one Event per transition);
    never for generations in flight holding the budget (that comes and goes with each one),
    and a condition that was True only for that reason counts as turning True now."""
    events = []
    for condition in conditions:
        if condition.reason == RESERVED_BY_GENERATIONS:
            continue
        before = find(previous, condition.type) or {}
        if condition.status == "True" and (
            not is_true(previous, condition.type) or before.get("reason") == RESERVED_BY_GENERATIONS
        ):
            events.append(condition)
    return events


def suspended_condition(spec: WorkspaceSpec) -> ConditionSpec:
    if spec.suspended:
        return ConditionSpec(
            "Suspended",
            "True",
            "Suspended",
            "previews are scaled to zero and generations are refused",
        )
    return ConditionSpec("Suspended", "False", "Active", "the workspace is active")
