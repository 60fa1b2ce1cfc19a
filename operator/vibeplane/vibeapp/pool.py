"""The warm pool's apply side: a workspace's pool Deployment of idle preview sandboxes.

The Workspace controller calls `WarmPool.reconcile` once its namespace is applied (the manager
hands it over: the kinds do not import each other), with the spec it reconciles; the pool
Deployment carries the workspace's label, so its changes re-queue the workspace. Kubernetes
refills the pool when an app adopts a member (`vibeplane.vibeapp.handlers`); the decisions are
`vibeplane.vibeapp.decide.pool`'s; a pool at its size writes nothing.
"""

from __future__ import annotations

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import OperatorSettings, field_manager
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.decide import pool as decide

FIELD_MANAGER = field_manager("warmpool")


class WarmPool:
    def __init__(
        self,
        settings: OperatorSettings,
        cache: ObjectCache,
        kube: KubeClient,
        preview: desired.PreviewSettings,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.kube = kube
        self.preview = preview
        self.template = desired.template_digest(desired.preview_pod_spec(preview))

    def reconcile(
        self, workspace: str, uid: str, spec: WorkspaceSpec, namespace: str, running: int
    ) -> ConditionSpec:
        """The namespace's pool Deployment at its size (no write when it is); the WarmPool
        condition."""
        live = self.cache.lookup("Deployment", desired.POOL_NAME, namespace)
        size, why = decide.pool_size(spec, self.settings.preview_warm_pool, running)
        plan = decide.plan_pool(size, why, live)
        if plan.replicas is not None:
            manifest = desired.pool_deployment(
                namespace, workspace, uid, plan.replicas, self.preview
            )
            apply_and_remember(self.kube, self.cache, manifest, FIELD_MANAGER, "Workspace", live)
        return plan.condition
