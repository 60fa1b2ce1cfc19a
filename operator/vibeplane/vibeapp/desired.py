"""Pure builders of the VibeApp controller: which revision comes next, what the preview looks
like, what it costs, and how the app's state reads as phase and conditions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from vibeplane.api.common import owner_reference as common_owner_reference
from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.budget.ledger import Ask, token_cost
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME
from vibeplane.wellknown import (
    ANNOTATION_TEMPLATE,
    ENV_DELIVERY_KEY,
    ENV_POD_NAME,
    ENV_POD_NAMESPACE,
    ENV_POD_UID,
    ENV_PORT,
    LABEL_LOCAL_NODE,
    LABEL_POOL,
    LABEL_WORKSPACE,
    READY_PATH,
    SANDBOX_TAINT_EFFECT,
    SANDBOX_TAINT_KEY,
    SANDBOX_TAINT_VALUE,
)

# LABEL_APP and LABEL_COMPONENT are read as desired.LABEL_* by the handlers and the manager.
from vibeplane.wellknown import LABEL_APP as LABEL_APP
from vibeplane.wellknown import LABEL_COMPONENT as LABEL_COMPONENT

Manifest = dict[str, Any]
PREVIEW_PORT = 8080
MILLION = Decimal(1_000_000)


def generation_key(app_uid: str, revision: int, attempt: int) -> str:
    """The idempotency key of one generation attempt (budget ledger, storage, records)."""
    return f"{app_uid}:{revision}:{attempt}"


def prompt_digest(prompt: str) -> str:
    return "sha256:" + hashlib.sha256(prompt.encode()).hexdigest()


def next_revision(spec: VibeAppSpec, revisions: Sequence[Mapping[str, Any]]) -> int | None:
    """The revision to generate next: one per prompt, in order; None when all exist."""
    done = max((int(r["number"]) for r in revisions), default=0)
    return done + 1 if done < len(spec.prompts) else None


def served_revision(
    spec: VibeAppSpec, revisions: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """The revision to serve: the pinned one, else the newest that has a bundle."""
    with_bundle = [r for r in revisions if r.get("sha256")]
    if spec.pinned_revision is not None:
        return next((r for r in with_bundle if r["number"] == spec.pinned_revision), None)
    return max(with_bundle, key=lambda r: int(r["number"]), default=None)


def generation_cost(tokens_in: int, tokens_out: int, pricing: Mapping[str, str]) -> Decimal:
    """Money for one generation at the model's prices (per million tokens), to 6 places."""
    return token_cost(
        tokens_in,
        tokens_out,
        Decimal(pricing.get("inputPerMillion", "0")),
        Decimal(pricing.get("outputPerMillion", "0")),
    )


class ModelLimits(Protocol):
    """What a reservation needs to know of a model (a routed `ModelTarget`)."""

    @property
    def name(self) -> str: ...
    @property
    def pricing(self) -> Mapping[str, str]: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def min_output_tokens(self) -> int: ...


def generation_ask(prompt_tokens: int, models: Sequence[ModelLimits]) -> Ask:
    """What a generation asks of the budget: its prompt plus up to the largest output limit
    of the models it may fall through to, at their highest prices (whichever answers costs
    no more), boundable down to the first model's floor."""
    return Ask(
        prompt_tokens=prompt_tokens,
        max_output=max(m.output_tokens for m in models),
        min_output=models[0].min_output_tokens,
        input_per_million=max(Decimal(m.pricing.get("inputPerMillion", "0")) for m in models),
        output_per_million=max(Decimal(m.pricing.get("outputPerMillion", "0")) for m in models),
        model=models[0].name,
    )


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for reservations: a token per 3 characters, where
    English text averages about 4 characters per token, so the reservation errs high."""
    return len(text) // 3 + 1


# ---- the preview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewSettings:
    """How previews run: the operator's settings, resolved."""

    runtime_class: str
    image: str
    command: tuple[str, ...]
    local_node: bool
    delivery_key: str = ""
    """The platform's public delivery key: the only one whose orders the pod takes."""
    cpu: str = "250m"
    memory: str = "128Mi"


def labels(app: str) -> dict[str, str]:
    return {
        LABEL_APP: app,
        LABEL_COMPONENT: "preview",
        LABEL_MANAGED_BY: MANAGER_NAME,
    }


def preview_name(app: str) -> str:
    return f"{app}-preview"


def owner_reference(app: str, uid: str) -> Manifest:
    return dict(common_owner_reference("VibeApp", app, uid))


def preview_pod_spec(preview: PreviewSettings) -> Manifest:
    """The preview sandbox's pod spec, the same for every app (nothing of an app is in it: a
    warm pool's sandbox is started from it before any app exists)."""
    spec: Manifest = {
        "runtimeClassName": preview.runtime_class,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "app",
                "image": preview.image,
                "command": list(preview.command),
                "env": [
                    {"name": ENV_PORT, "value": str(PREVIEW_PORT)},
                    {"name": ENV_DELIVERY_KEY, "value": preview.delivery_key},
                    _field_env(ENV_POD_NAMESPACE, "metadata.namespace"),
                    _field_env(ENV_POD_NAME, "metadata.name"),
                    _field_env(ENV_POD_UID, "metadata.uid"),
                ],
                "ports": [{"name": "http", "containerPort": PREVIEW_PORT, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"path": READY_PATH, "port": "http"},
                    "periodSeconds": 1,
                    "failureThreshold": 3,
                },
                "resources": {
                    "requests": {"cpu": preview.cpu, "memory": preview.memory},
                    "limits": {"cpu": preview.cpu, "memory": preview.memory},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if preview.local_node:
        spec["nodeSelector"] = {LABEL_LOCAL_NODE: "true"}
        spec["tolerations"] = [
            {
                "key": SANDBOX_TAINT_KEY,
                "operator": "Equal",
                "value": SANDBOX_TAINT_VALUE,
                "effect": SANDBOX_TAINT_EFFECT,
            }
        ]
    return spec


def template_digest(pod_spec: Mapping[str, Any]) -> str:
    """A short digest of a preview pod spec: a warm sandbox started from another is stale."""
    canonical = json.dumps(pod_spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def preview_deployment(
    app: str,
    namespace: str,
    uid: str,
    replicas: int,
    preview: PreviewSettings,
) -> Manifest:
    """The preview sandbox: restricted pod security, gVisor, no API credentials.

    No revision is in the template: the operator delivers each revision to the running
    sandbox (a signed order the pod verifies with the public key here), so the template, and
    the pod, change only when the sandbox itself must (image, resources, key). Ready means the
    runtime answers; the revision's own validation is its delivery.
    """
    pod_labels = labels(app)
    spec = preview_pod_spec(preview)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": preview_name(app),
            "namespace": namespace,
            "labels": labels(app),
            "ownerReferences": [owner_reference(app, uid)],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {LABEL_APP: app, LABEL_COMPONENT: "preview"}},
            "strategy": {"type": "Recreate"},
            "template": {
                # Every preview pod names the spec it started from (a warm pool's too), so
                # the one serving is told from a stale one.
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {ANNOTATION_TEMPLATE: template_digest(spec)},
                },
                "spec": spec,
            },
        },
    }


POOL_IDLE = "idle"
POOL_NAME = "preview-warm"


def pool_labels(workspace: str) -> dict[str, str]:
    """A warm pool's idle sandbox: a preview without an app (no app's Service selects it)."""
    return {
        LABEL_COMPONENT: "preview",
        LABEL_MANAGED_BY: MANAGER_NAME,
        LABEL_POOL: POOL_IDLE,
        LABEL_WORKSPACE: workspace,
    }


def pool_deployment(
    namespace: str, workspace: str, workspace_uid: str, replicas: int, preview: PreviewSettings
) -> Manifest:
    """A workspace's warm pool: idle sandboxes started from the pod spec every app's
    Deployment has, before any app exists, owned by the Workspace.

    A Deployment, so that Kubernetes does the rest: an app adopts a member by relabelling it
    (`adopted`: out of the selector, the ReplicaSet lets it go and starts another, the pool
    refills), and a changed pod spec (image, key, resources) rolls the idle members over. The
    operator never creates a pod itself."""
    spec = preview_pod_spec(preview)
    selector = {key: value for key, value in pool_labels(workspace).items()}
    selector.pop(LABEL_MANAGED_BY)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": POOL_NAME,
            "namespace": namespace,
            "labels": {
                LABEL_COMPONENT: "preview",
                LABEL_MANAGED_BY: MANAGER_NAME,
                LABEL_WORKSPACE: workspace,
            },
            "ownerReferences": [
                dict(common_owner_reference("Workspace", workspace, workspace_uid))
            ],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            # Idle members have nothing to keep serving: no surge beyond the quota.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": pool_labels(workspace),
                    "annotations": {ANNOTATION_TEMPLATE: template_digest(spec)},
                },
                "spec": spec,
            },
        },
    }


def adopted(pod: Mapping[str, Any], app: str, uid: str) -> Manifest:
    """`pod` (an idle pool member, as read) handed to app `app`: its labels now say the app
    (its Service selects it) and no pool (out of the pool's selector: its ReplicaSet starts
    another; nothing hands this one on again), the app owns it. Written with the
    resourceVersion read, so two apps cannot both take it."""
    metadata = dict(pod["metadata"])
    kept = {k: v for k, v in (metadata.get("labels") or {}).items() if k != LABEL_POOL}
    metadata["labels"] = {**kept, **labels(app)}
    metadata["ownerReferences"] = [owner_reference(app, uid)]
    body = {key: value for key, value in pod.items() if key != "status"}
    return {**body, "apiVersion": "v1", "kind": "Pod", "metadata": metadata}


def _field_env(name: str, path: str) -> Manifest:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def preview_service(app: str, namespace: str, uid: str, node_port: bool = False) -> Manifest:
    """The preview's Service; a NodePort where the machine reaches previews through the node
    (the local platform's real node), so the port is allocated by the API server."""
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": preview_name(app),
            "namespace": namespace,
            "labels": labels(app),
            "ownerReferences": [owner_reference(app, uid)],
        },
        "spec": {
            "selector": {LABEL_APP: app, LABEL_COMPONENT: "preview"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    if node_port:
        service["spec"]["type"] = "NodePort"
    return service


# ---- status --------------------------------------------------------------------------------


READY_MESSAGES = {
    "Running": "the preview serves the current revision",
    "Hibernated": "the preview is hibernated; a new prompt or the wake annotation wakes it",
}


def conditions_for(
    phase: str,
    generated: ConditionSpec,
    preview_ready: ConditionSpec,
    budget_ok: ConditionSpec,
) -> list[ConditionSpec]:
    """The summary Ready follows the phase: Running (or Hibernated, by choice) is ready;
    otherwise it repeats the first condition that is not True, so kstatus and Argo CD show why."""
    parts = (generated, preview_ready, budget_ok)
    if phase in READY_MESSAGES:
        summary = ConditionSpec("Ready", "True", phase, READY_MESSAGES[phase])
    else:
        blocking = next((c for c in parts if c.status != "True"), None)
        summary = ConditionSpec("Ready", "False", phase, blocking.message if blocking else phase)
    return [*parts, summary]
