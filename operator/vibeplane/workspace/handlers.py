"""Kopf wiring of the Workspace controller: the only place it talks to the API server."""

from __future__ import annotations

from vibeplane.api import workspace as api
from vibeplane.kube import client
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.kube.reconcile import Context, Outcome, register
from vibeplane.metrics import WRITES
from vibeplane.settings import OperatorSettings, field_manager
from vibeplane.workspace import desired

FIELD_MANAGER = field_manager("workspace")


def reconcile(context: Context) -> Outcome:
    spec: api.WorkspaceSpec = context.spec
    namespace = desired.namespace(context.name, context.uid, spec)
    name = namespace["metadata"]["name"]
    live = client.get("v1", "Namespace", name)
    conflict = desired.namespace_conflict(live, context.name)
    if conflict is not None:
        return Outcome(
            [ConditionSpec("Ready", "False", "NamespaceConflict", f"{conflict}; nothing changed")],
        )
    if client.apply(namespace, FIELD_MANAGER, live=live):
        WRITES.labels("Workspace", "Namespace").inc()
    return Outcome(
        [ConditionSpec("Ready", "True", "NamespaceReady", f"namespace {name} is ready")],
        {"namespace": name},
    )


def setup(settings: OperatorSettings) -> None:
    register(api.INFO, reconcile, settings)
