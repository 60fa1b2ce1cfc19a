"""The Workspace controller: the only place it talks to the API server.

Inputs that re-queue a workspace: the Workspace itself, its children (namespace, role
bindings, quota, limits, network policies: any edit or deletion is repaired), its ledger
(usage changed), and its VibeApps appearing or going (counts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from vibeplane.api import workspace as api
from vibeplane.budget.ledger import Ask, admittable
from vibeplane.budget.limits import budget_limits
from vibeplane.budget.store import LABEL_LEDGER, LedgerStore, ledger_name, parse
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec, find, is_true
from vibeplane.metrics import WORKSPACE_REMAINING, WORKSPACE_SPEND, WRITES
from vibeplane.settings import (
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGER_NAME,
    OperatorSettings,
    field_manager,
)
from vibeplane.workspace import desired

FIELD_MANAGER = field_manager("workspace")
# The smallest generation on a workspace's default model (None: no model to price it by).
GenerationFloor = Callable[[api.WorkspaceSpec, str], Ask | None]
# Wake a waiting generation (ledger key, "namespace/app") that fits the budget now.
Wake = Callable[[str, str], None]
MANAGED = {LABEL_MANAGED_BY: MANAGER_NAME}

# Children, watched by label so that edits and deletions re-queue their workspace.
CHILD_KINDS = (
    WatchedKind("", "v1", "namespaces", "Namespace", MANAGED),
    WatchedKind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", MANAGED),
    WatchedKind("", "v1", "resourcequotas", "ResourceQuota", MANAGED),
    WatchedKind("", "v1", "limitranges", "LimitRange", MANAGED),
    WatchedKind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", MANAGED),
    WatchedKind("", "v1", "configmaps", "ConfigMap", {LABEL_LEDGER: "true"}),
)


class WorkspaceReconciler:
    """Computes a workspace's children and status, and applies what differs."""

    def __init__(
        self,
        settings: OperatorSettings,
        cache: ObjectCache,
        kube: KubeClient,
        ledgers: LedgerStore,
        count_apps: Callable[[str], int],
        clock: Callable[[], datetime] | None = None,
        generation_floor: GenerationFloor | None = None,
        wake: Wake | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.kube = kube
        self.ledgers = ledgers
        self.count_apps = count_apps
        self.clock = clock or (lambda: datetime.now(UTC))
        self.generation_floor = generation_floor or (lambda _spec, _namespace: None)
        self.wake = wake or (lambda _key, _app: None)

    def __call__(self, context: Context) -> Outcome:
        spec: api.WorkspaceSpec = context.spec
        name, uid = context.name, context.uid
        namespace = desired.namespace(name, uid, spec)
        namespace_name = namespace["metadata"]["name"]
        # The cache holds only namespaces we manage: one we do not must be read to be refused.
        live = self.cache.lookup("Namespace", namespace_name) or self.kube.get(
            "v1", "Namespace", namespace_name
        )
        conflict = desired.namespace_conflict(live, name) or desired.reserved_namespace(
            namespace_name, self.settings
        )
        if conflict is not None:
            return Outcome(
                [
                    ConditionSpec(
                        "Ready", "False", "NamespaceConflict", f"{conflict}; nothing changed"
                    )
                ]
            )
        self._apply(namespace, live)

        children: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        for binding_name, binding in desired.role_bindings(name, uid, spec).items():
            children[("RoleBinding", binding_name)] = binding
        children[("ResourceQuota", "vibeplane-quota")] = desired.resource_quota(name, uid, spec)
        children[("LimitRange", "vibeplane-limits")] = desired.limit_range(name, uid, spec)
        policies = desired.network_policies(
            name,
            uid,
            spec,
            self.settings.gateway_namespace,
            self.settings.platform_namespace,
            self.settings.preview_ingress_cidrs,
            self.settings.object_store_egress,
        )
        for policy_name, policy in policies.items():
            children[("NetworkPolicy", policy_name)] = policy
        for (kind, child_name), manifest in children.items():
            current = self.cache.lookup(kind, child_name, namespace_name)
            if manifest is None:
                if current is not None:
                    self.kube.delete(current["apiVersion"], kind, child_name, namespace_name)
                    self.cache.forget(kind, child_name, namespace_name)
                    WRITES.labels("Workspace", kind).inc()
            else:
                self._apply(dict(manifest), current)

        now = self.clock()
        period = spec.budget_period
        ledger_body = self.cache.lookup(
            "ConfigMap", ledger_name(name, uid), self.settings.platform_namespace
        )
        state = parse(ledger_body, name, period, now)
        floor = self.generation_floor(spec, namespace_name) if spec.budget else None
        fields, budget_conditions = desired.budget_status(spec, state, now, floor)
        # Waiting apps that fit now are woken, oldest first, and only those (see ledger.py).
        for key, waiter in admittable(state, budget_limits(spec), now):
            self.wake(key, waiter.app)
        self._notify_budget(context, budget_conditions)
        self._export_metrics(name, fields)

        fields.update(
            {
                "namespace": namespace_name,
                "apps": self.count_apps(namespace_name),
                "previewsRunning": self._previews_running(namespace_name),
                "defaultModel": (spec.models.default if spec.models else None)
                or self.settings.default_model,
            }
        )
        suspended = (
            ConditionSpec(
                "Suspended",
                "True",
                "Suspended",
                "previews are scaled to zero and generations are refused",
            )
            if spec.suspended
            else ConditionSpec("Suspended", "False", "Active", "the workspace is active")
        )
        ready = ConditionSpec(
            "Ready",
            "True",
            "Reconciled",
            f"namespace {namespace_name} with its roles, quota, limits and network policies",
        )
        # A new period frees the budget: look at the line again when it starts.
        period_end = (state.period.end - now).total_seconds() + 1 if state.waiting else None
        return Outcome([ready, *budget_conditions, suspended], fields, requeue_after=period_end)

    def _apply(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        apply_and_remember(self.kube, self.cache, manifest, FIELD_MANAGER, "Workspace", live)

    def _previews_running(self, namespace: str) -> int:
        return self.cache.count(
            "Deployment",
            namespace,
            lambda deployment: bool((deployment.get("status") or {}).get("readyReplicas")),
        )

    def _notify_budget(self, context: Context, conditions: list[ConditionSpec]) -> None:
        """An Event when a budget condition turns True (once per transition); not while it is
        only generations in flight that hold the budget (that comes and goes with each one)."""
        previous = context.status.get("conditions")
        for condition in conditions:
            if condition.reason == "ReservedByGenerations":
                continue
            before = find(previous, condition.type) or {}
            if condition.status == "True" and (
                not is_true(previous, condition.type)
                or before.get("reason") == "ReservedByGenerations"
            ):
                self.kube.post_event(context.body, "Warning", condition.reason, condition.message)

    @staticmethod
    def _export_metrics(workspace: str, fields: Mapping[str, Any]) -> None:
        usage = fields["usage"]
        for resource, key in (("tokens", "tokens"), ("money", "money"), ("gpu_hours", "gpuHours")):
            WORKSPACE_SPEND.labels(workspace, resource).set(float(usage[key]))
            remaining = (fields.get("remaining") or {}).get(key)
            if remaining is not None:
                WORKSPACE_REMAINING.labels(workspace, resource).set(float(remaining))


def workspace_of(body: Mapping[str, Any]) -> ObjectKey | None:
    """The workspace a labelled child belongs to."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    name = labels.get(LABEL_WORKSPACE)
    return ObjectKey(None, name) if name else None


def setup(
    settings: OperatorSettings,
    cache: ObjectCache,
    kube: KubeClient,
    ledgers: LedgerStore,
    count_apps: Callable[[str], int],
    generation_floor: GenerationFloor | None = None,
    wake: Wake | None = None,
) -> Controller:
    """Build the Workspace controller and register its watches."""
    reconciler = WorkspaceReconciler(
        settings,
        cache,
        kube,
        ledgers,
        count_apps,
        generation_floor=generation_floor,
        wake=wake,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    for kind in CHILD_KINDS:
        cache.watch(kind)
    return controller
