"""The operator's settings, from the environment (the Helm chart sets them on the Deployment)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

# Our one finalizer: a VibeApp's objects in S3 are removed before the app goes.
FINALIZER = "vibeplane.io/artifacts"
# Kopf's own, distinct from ours: Kopf removes its finalizer from objects that need none (we
# register no handler that does), and it must never take ours with it.
KOPF_FINALIZER = "vibeplane.io/kopf"
ANNOTATION_PREFIX = "vibeplane.io"
LABEL_WORKSPACE = "vibeplane.io/workspace"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER_NAME = "vibeplane"


def field_manager(controller: str) -> str:
    """The server-side apply field manager of one controller, e.g. vibeplane-workspace."""
    return f"{MANAGER_NAME}-{controller}"


@dataclass(frozen=True)
class OperatorSettings:
    """Operator-wide choices; each has an environment variable of the same name."""

    platform_namespace: str = "vibeplane-system"
    """Where shared ModelDeployments live."""
    default_model: str = "builtin"
    """The platform's default ModelDeployment (in platform_namespace)."""
    gateway_namespace: str = "vibeplane-gateway"
    """The only namespace allowed to reach previews."""
    runtime_class: str = "gvisor"
    """The RuntimeClass of preview pods."""
    bind_address: str = "127.0.0.1"
    """Where the metrics and liveness servers listen (the chart sets 0.0.0.0 in a pod)."""
    metrics_port: int = 9090
    """Where Prometheus metrics are served."""
    liveness_port: int = 8080
    """Where /healthz answers."""
    resync_seconds: float = 300.0
    """How often every object is reconciled even without events (drift repair)."""
    preview_image: str = "vibeplane/preview-runtime:0.1.0"
    """The image preview pods run (the preview runtime, runtime/sandbox)."""
    preview_command: tuple[str, ...] = ("python3", "-m", "vibeplane_sandbox.preview")
    """The preview container's command (JSON list in the environment)."""
    preview_local_node: bool = False
    """Schedule previews on the local preview node (vibeplane up), not on kubelets."""
    preview_domain: str = ""
    """Previews answer at http://<app>-<namespace>.<domain>/ through the gateway; empty: the
    Service's cluster address (or, on the local node, its loopback port)."""
    preview_activity_poll: bool = True
    """Ask running previews when they last served someone (hibernation by traffic). Off where
    the operator cannot reach previews (simulated nodes): then only prompts and the wake
    annotation count as activity."""
    preview_ready_timeout: float = 180.0
    """Seconds a new revision's preview has to become ready before it counts as failed."""
    generation_workers: int = 4
    """Generations running at once in this operator."""
    workspace_concurrency: int = 2
    """Generations running at once per workspace."""
    model_timeout: float = 120.0
    """Seconds one model call may take."""
    builtin_model_url: str = "http://vibeplane-modelserver.vibeplane-system.svc:8080/openai/v1"
    """The OpenAI base URL of the builtin generator (runtime/modelserver)."""
    modelserver_runtime: str = "vibeplane-modelserver"
    """The KServe ServingRuntime of ModelDeployments that name none."""
    model_service_account: str = "vibeplane-models"
    """The ServiceAccount InferenceServices run under (one per namespace, made by the operator)."""
    model_storage_secret: str = "vibeplane-model-storage"
    """The Secret with S3 credentials that ServiceAccount lists when it exists."""

    @classmethod
    def from_env(cls) -> OperatorSettings:
        def env(name: str, default: str) -> str:
            return os.environ.get(f"VIBEPLANE_{name.upper()}", default)

        return cls(
            platform_namespace=env("platform_namespace", cls.platform_namespace),
            default_model=env("default_model", cls.default_model),
            gateway_namespace=env("gateway_namespace", cls.gateway_namespace),
            runtime_class=env("runtime_class", cls.runtime_class),
            bind_address=env("bind_address", cls.bind_address),
            metrics_port=int(env("metrics_port", str(cls.metrics_port))),
            liveness_port=int(env("liveness_port", str(cls.liveness_port))),
            resync_seconds=float(env("resync_seconds", str(cls.resync_seconds))),
            preview_image=env("preview_image", cls.preview_image),
            preview_command=tuple(
                json.loads(env("preview_command", json.dumps(list(cls.preview_command))))
            ),
            preview_local_node=env("preview_local_node", "false") == "true",
            preview_domain=env("preview_domain", cls.preview_domain),
            preview_activity_poll=env("preview_activity_poll", "true") == "true",
            preview_ready_timeout=float(
                env("preview_ready_timeout", str(cls.preview_ready_timeout))
            ),
            generation_workers=int(env("generation_workers", str(cls.generation_workers))),
            workspace_concurrency=int(env("workspace_concurrency", str(cls.workspace_concurrency))),
            model_timeout=float(env("model_timeout", str(cls.model_timeout))),
            builtin_model_url=env("builtin_model_url", cls.builtin_model_url),
            modelserver_runtime=env("modelserver_runtime", cls.modelserver_runtime),
            model_service_account=env("model_service_account", cls.model_service_account),
            model_storage_secret=env("model_storage_secret", cls.model_storage_secret),
        )
