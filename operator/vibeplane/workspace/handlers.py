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
from vibeplane.budget.ledger import Ask
from vibeplane.budget.store import LABEL_LEDGER, LedgerStore, ledger_name, parse
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.metrics import WORKSPACE_REMAINING, WORKSPACE_SPEND, WRITES
from vibeplane.settings import (
    LABEL_APP,
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGER_NAME,
    OperatorSettings,
    field_manager,
)
from vibeplane.workspace import desired
from vibeplane.workspace.decide import ChildKey, WorkspaceInput, decide

FIELD_MANAGER = field_manager("workspace")
# The smallest generation on a workspace's default model (None: no model to price it by).
GenerationFloor = Callable[[api.WorkspaceSpec, str], Ask | None]
# Wake a waiting generation (ledger key, "namespace/app") that fits the budget now.
Wake = Callable[[str, str], None]
# Keep the namespace's warm pool of preview sandboxes (vibeplane.vibeapp.pool.WarmPool:
# workspace, uid, spec, namespace, previews running) -> its WarmPool condition.
KeepPool = Callable[[str, str, api.WorkspaceSpec, str, int], ConditionSpec]
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
        warm_pool: KeepPool | None = None,
    ) -> None:
        self.warm_pool = warm_pool
        self.settings = settings
        self.cache = cache
        self.kube = kube
        self.ledgers = ledgers
        self.count_apps = count_apps
        self.clock = clock or (lambda: datetime.now(UTC))
        self.generation_floor = generation_floor or (lambda _spec, _namespace: None)
        self.wake = wake or (lambda _key, _app: None)

    def __call__(self, context: Context) -> Outcome:
        observed = self._gather(context)
        decision = decide(observed, self.settings)
        if decision.namespace is not None:
            self._apply_children(decision.namespace, observed.live_namespace, decision.children)
            for waiting in decision.wake:
                self.wake(waiting.key, waiting.app)
            for condition in decision.events:
                self.kube.post_event(context.body, "Warning", condition.reason, condition.message)
            self._export_metrics(context.name, decision.status)
            if self.warm_pool is not None:
                pool = self.warm_pool(
                    context.name,
                    context.uid,
                    observed.spec,
                    decision.namespace["metadata"]["name"],
                    observed.previews_running,
                )
                decision.conditions.append(pool)
        return Outcome(decision.conditions, decision.status, decision.requeue_after)

    def _gather(self, context: Context) -> WorkspaceInput:
        """Everything the decision reads, from the cache (and the API server for a namespace
        we do not manage: the cache holds only ours, and one of others must be read to be
        refused)."""
        spec: api.WorkspaceSpec = context.spec
        name, uid = context.name, context.uid
        namespace_name = desired.namespace_name(name, spec)
        live = self.cache.lookup("Namespace", namespace_name) or self.kube.get(
            "v1", "Namespace", namespace_name
        )
        now = self.clock()
        ledger_body = self.cache.lookup(
            "ConfigMap", ledger_name(name, uid), self.settings.platform_namespace
        )
        return WorkspaceInput(
            name=name,
            uid=uid,
            spec=spec,
            live_namespace=live,
            ledger=parse(ledger_body, name, spec.budget_period, now),
            floor=self.generation_floor(spec, namespace_name) if spec.budget else None,
            apps=self.count_apps(namespace_name),
            previews_running=self._previews_running(namespace_name),
            previous_conditions=context.status.get("conditions"),
            now=now,
        )

    def _apply_children(
        self,
        namespace: dict[str, Any],
        live: Mapping[str, Any] | None,
        children: Mapping[ChildKey, Mapping[str, Any] | None],
    ) -> None:
        """The namespace first, then each child: applied when it differs, deleted when it
        must not exist."""
        namespace_name = namespace["metadata"]["name"]
        self._apply(namespace, live)
        for (kind, child_name), manifest in children.items():
            current = self.cache.lookup(kind, child_name, namespace_name)
            if manifest is not None:
                self._apply(dict(manifest), current)
            elif current is not None:
                self.kube.delete(current["apiVersion"], kind, child_name, namespace_name)
                self.cache.forget(kind, child_name, namespace_name)
                WRITES.labels("Workspace", kind).inc()

    def _apply(self, manifest: dict[str, Any], live: Mapping[str, Any] | None) -> None:
        apply_and_remember(self.kube, self.cache, manifest, FIELD_MANAGER, "Workspace", live)

    def _previews_running(self, namespace: str) -> int:
        """Apps whose preview has a ready sandbox: their Deployment's, or one they adopted
        from the warm pool (their Deployment then stays at 0)."""
        apps: set[str] = set()
        for deployment in self.cache.items("Deployment", namespace):
            if (deployment.get("status") or {}).get("readyReplicas"):
                apps.add(_app_of(deployment))
        for pod in self.cache.items("Pod", namespace):
            if _ready(pod):
                apps.add(_app_of(pod))
        apps.discard("")
        return len(apps)

    @staticmethod
    def _export_metrics(workspace: str, fields: Mapping[str, Any]) -> None:
        usage = fields["usage"]
        for resource, key in (("tokens", "tokens"), ("money", "money"), ("gpu_hours", "gpuHours")):
            WORKSPACE_SPEND.labels(workspace, resource).set(float(usage[key]))
            remaining = (fields.get("remaining") or {}).get(key)
            if remaining is not None:
                WORKSPACE_REMAINING.labels(workspace, resource).set(float(remaining))


def _app_of(body: Mapping[str, Any]) -> str:
    return str(((body.get("metadata") or {}).get("labels") or {}).get(LABEL_APP) or "")


def _ready(pod: Mapping[str, Any]) -> bool:
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


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
    warm_pool: KeepPool | None = None,
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
        warm_pool=warm_pool,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    for kind in CHILD_KINDS:
        cache.watch(kind)
    return controller
