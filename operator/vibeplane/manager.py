"""The operator process: Kopf configured for vibeplane, plus metrics and liveness endpoints.

Kopf's defaults are tuned for a generic operator; the choices here are vibeplane's:
- its own finalizer and annotation prefix (vibeplane.io/...), so nothing reads as another
  operator's state;
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

from vibeplane.modeldeployment import handlers as modeldeployment
from vibeplane.settings import ANNOTATION_PREFIX, FINALIZER, OperatorSettings
from vibeplane.vibeapp import handlers as vibeapp
from vibeplane.workspace import handlers as workspace


def configure_kopf(kopf_settings: kopf.OperatorSettings) -> None:
    """Apply vibeplane's Kopf settings (see the module docstring for why)."""
    kopf_settings.persistence.finalizer = FINALIZER
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


def setup(settings: OperatorSettings) -> None:
    """Register every controller's handlers."""

    @kopf.on.startup()
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings)

    workspace.setup(settings)
    modeldeployment.setup(settings)
    vibeapp.setup(settings)


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
