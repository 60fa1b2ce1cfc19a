"""Which models an app generates with, in the order to try them.

The policy (preference, fallbacks, downgrade past the soft limit) is the router's
(`vibeplane.modeldeployment.router`); this module turns its choices into call targets: the
endpoint from the ModelDeployment's status, the API key read from its Secret at call time
(never stored, never logged).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from vibeplane.api import vibeapp as api
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.kube import client
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp.generate import ModelTarget


def _ready(body: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )


def read_api_key(namespace: str, ref: Mapping[str, Any] | None) -> str | None:
    """The API key from a Secret reference (None without one or when it cannot be read)."""
    if not ref:
        return None
    core = kubernetes.client.CoreV1Api(client.api_client())
    try:
        secret = core.read_namespaced_secret(ref["name"], namespace)
    except ApiException:
        return None
    value = (secret.data or {}).get(ref["key"])
    return base64.b64decode(value).decode() if value else None


class ModelResolver:
    """Resolve model names to call targets from the ModelDeployments the operator watches."""

    def __init__(
        self,
        settings: OperatorSettings,
        bodies: Callable[[], Iterable[Mapping[str, Any]]],
    ) -> None:
        self.settings = settings
        self.bodies = bodies

    def _find(self, name: str, namespace: str) -> Mapping[str, Any] | None:
        found = {(b["metadata"].get("namespace"), b["metadata"]["name"]): b for b in self.bodies()}
        return found.get((namespace, name)) or found.get((self.settings.platform_namespace, name))

    def __call__(
        self, spec: api.VibeAppSpec, namespace: str, workspace: WorkspaceSpec, soft: bool
    ) -> tuple[list[ModelTarget], str]:
        allowed = list(workspace.models.allowed) if workspace.models else []
        preferred = (
            spec.model
            if spec.model and (not allowed or spec.model in allowed)
            else (workspace.models.default if workspace.models else None)
            or self.settings.default_model
        )
        reason = "app model" if spec.model == preferred else "workspace or platform default"
        order: list[tuple[str, str]] = [(preferred, reason)]
        body = self._find(preferred, namespace)
        fallbacks = ((body or {}).get("spec") or {}).get("routing", {}).get("fallbacks", [])
        order += [(name, f"fallback of {preferred}") for name in fallbacks]
        targets: list[ModelTarget] = []
        for name, why in order:
            model = self._find(name, namespace)
            if (
                model is None
                or not _ready(model)
                or (allowed and name not in allowed and name != self.settings.default_model)
            ):
                continue
            status, mspec = model.get("status") or {}, model.get("spec") or {}
            external = mspec.get("serving", {}).get("external")
            targets.append(
                ModelTarget(
                    name=name,
                    url=str(status.get("url")),
                    served_model=str(
                        (external or {}).get("model") or mspec.get("model", {}).get("name")
                    ),
                    api_key=read_api_key(
                        model["metadata"]["namespace"], (external or {}).get("apiKeySecretRef")
                    ),
                    pricing=dict(mspec.get("pricing") or {}),
                    output_tokens=int((mspec.get("limits") or {}).get("outputTokens", 8192)),
                    reason=why,
                )
            )
        return targets, "" if targets else "no allowed model is Ready"
