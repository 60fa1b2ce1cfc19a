"""The operator process: Kopf configured for vibeplane, the controllers, metrics and liveness.

Kopf's defaults are tuned for a generic operator; the choices here are vibeplane's:
- Kopf only watches: reconciles run in vibeplane's work queues (see `vibeplane.kube.reconcile`),
  so Kopf writes no annotations and adds no finalizers of its own; the finalizer and annotation
  prefix are still set to vibeplane's (vibeplane.io/...) so nothing reads as another operator's;
- Kubernetes Events only for warnings and errors: an info Event per reconcile would double the
  write load on the API server for no reader;
- watches the server ends every 5 minutes (with a client-side margin), so a silently dead
  connection is noticed, and a request timeout well under Kopf's default 5 minutes;
- standalone: Kopf's peering is not leader election, and runs without its peering CRDs.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from vibeplane.budget.store import LedgerStore
from vibeplane.kube import client
from vibeplane.kube.cache import ObjectCache
from vibeplane.kube.reconcile import Controller, ObjectKey, Resyncer
from vibeplane.modeldeployment import handlers as modeldeployment
from vibeplane.settings import (
    ANNOTATION_PREFIX,
    KOPF_FINALIZER,
    LABEL_WORKSPACE,
    OperatorSettings,
    field_manager,
)
from vibeplane.storage.s3 import ObjectStore, S3Settings
from vibeplane.vibeapp import handlers as vibeapp
from vibeplane.vibeapp.desired import LABEL_APP
from vibeplane.vibeapp.models import ModelResolver
from vibeplane.workspace import handlers as workspace


def configure_kopf(kopf_settings: kopf.OperatorSettings) -> None:
    """Apply vibeplane's Kopf settings (see the module docstring for why)."""
    kopf_settings.persistence.finalizer = KOPF_FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.posting.reporting_component = "vibeplane-operator"
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.watching.connect_timeout = 10
    kopf_settings.networking.request_timeout = 60
    kopf_settings.networking.connect_timeout = 10


def ensure_platform_namespace(settings: OperatorSettings) -> None:
    """Shared models and budget ledgers live in the platform namespace."""
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": settings.platform_namespace},
        },
        field_manager("platform"),
    )


class Operator:
    """The controllers and what feeds them."""

    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.cache = ObjectCache(on_change=self._child_changed)
        self.store = ObjectStore(S3Settings.from_env())
        ledgers = LedgerStore(settings.platform_namespace)
        self.workspaces = workspace.setup(settings, self.cache, lambda ns: self.vibeapps.count(ns))
        self.models = modeldeployment.setup(
            settings,
            self.cache,
            workspace_lookup=lambda name: self.workspaces.body(ObjectKey(None, name)),
        )
        self.vibeapps = vibeapp.setup(
            settings,
            self.cache,
            workspace_body=lambda name: self.workspaces.body(ObjectKey(None, name)),
            resolve_models=ModelResolver(settings, self._model_bodies),
            store=self.store,
            ledgers=ledgers,
        )
        self.controllers: list[Controller] = [self.workspaces, self.models, self.vibeapps]
        self.vibeapps.subscribe(lambda _, body: self._requeue_workspace_of(body))
        self.resyncer = Resyncer(self.controllers, settings.resync_seconds)

    def _model_bodies(self) -> list[dict[str, Any]]:
        bodies = (self.models.body(key) for key in self.models.known_keys())
        return [body for body in bodies if body is not None]

    def _child_changed(self, body: dict[str, Any]) -> None:
        model = modeldeployment.model_of(body)
        if model is not None:
            self.models.enqueue(model)
            return
        metadata = body.get("metadata") or {}
        app = (metadata.get("labels") or {}).get(LABEL_APP)
        if app is not None:
            self.vibeapps.enqueue(ObjectKey(metadata.get("namespace"), app))
            # The workspace counts running previews: it follows its apps' Deployments too.
            self._requeue_workspace_of(body)
            return
        owner = workspace.workspace_of(body)
        if owner is not None:
            self.workspaces.enqueue(owner)

    def _requeue_workspace_of(self, body: dict[str, Any]) -> None:
        """The workspace whose namespace holds `body` counts it (apps, running previews)."""
        namespace = self.cache.lookup("Namespace", body["metadata"].get("namespace", ""))
        owner = workspace.workspace_of(namespace) if namespace else None
        if owner is not None:
            self.workspaces.enqueue(owner)

    def start(self) -> None:
        ensure_platform_namespace(self.settings)
        self.cache.prime()
        # Every controller knows every object before the first reconcile runs.
        for controller in self.controllers:
            controller.prime()
        for controller in self.controllers:
            controller.resync()
        self.resyncer.start()

    def stop(self) -> None:
        self.resyncer.stop()
        for controller in self.controllers:
            controller.queue.shutdown()


def setup(settings: OperatorSettings) -> Operator:
    """Build the controllers and register Kopf's startup and cleanup."""
    operator = Operator(settings)

    @kopf.on.startup()
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings)
        operator.start()

    @kopf.on.cleanup()
    def _cleanup(**_: Any) -> None:
        operator.stop()

    return operator


def run(settings: OperatorSettings | None = None, verbose: bool = False) -> None:
    """Run the operator until it is signalled to stop."""
    settings = settings or OperatorSettings.from_env()
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    start_http_server(settings.metrics_port, addr=settings.bind_address)
    setup(settings)
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=f"http://{settings.bind_address}:{settings.liveness_port}/healthz",
    )


__all__ = ["LABEL_WORKSPACE", "ObjectKey", "Operator", "run", "setup"]
