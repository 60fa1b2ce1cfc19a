"""The operator process: Kopf configured for vibeplane, the controllers, metrics and liveness.

Kopf's defaults are tuned for a generic operator; the choices here are vibeplane's:
- Kopf only watches: reconciles run in vibeplane's work queues (see
  `vibeplane.controller.reconcile`), so Kopf writes no annotations and adds no finalizers of
  its own; the finalizer and annotation prefix are still set to vibeplane's (vibeplane.io/...)
  so nothing reads as another operator's;
- Kubernetes Events only for warnings and errors: an info Event per reconcile would double the
  write load on the API server for no reader;
- watches the server ends every 5 minutes (with a client-side margin), so a silently dead
  connection is noticed, and a request timeout well under Kopf's default 5 minutes;
- standalone: Kopf's peering is not leader election, and runs without its peering CRDs.

With leader election on (the chart's default), `run` first campaigns for a Lease
(`vibeplane.controller.leader`) and starts Kopf only once this replica leads. A standby builds no
controller, watches nothing and writes nothing (not even the platform namespace); it serves
its own /healthz on the liveness port so that its liveness probe passes, and hands the port to
Kopf when it starts leading. A leader that cannot renew exits at once; one that is stopped
(SIGTERM) releases the Lease once its work is done, so a standby takes over within a retry
period instead of a lease duration.
"""

from __future__ import annotations

import atexit
import http.server
import json
import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import kopf
from kopf._core.engines.peering import Identity  # the type kopf.run takes; not re-exported
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from vibeplane.api.common import API_VERSION
from vibeplane.budget.store import LedgerStore
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.leader import ElectionTiming, LeaderElector, LeaseLock
from vibeplane.controller.reconcile import Controller, ObjectKey, Resyncer
from vibeplane.generation import outcome_store
from vibeplane.generation.checks import FileLimits
from vibeplane.generation.outcome_store import OutcomeStore
from vibeplane.kube import client
from vibeplane.kube.client import ApiServerClient, KubeClient
from vibeplane.metrics import LEADER
from vibeplane.modeldeployment import handlers as modeldeployment
from vibeplane.modeltraining import handlers as modeltraining
from vibeplane.settings import (
    ANNOTATION_PREFIX,
    KOPF_FINALIZER,
    LABEL_WORKSPACE,
    OperatorSettings,
    field_manager,
)
from vibeplane.storage.s3 import ObjectStore, S3Settings
from vibeplane.vibeapp import handlers as vibeapp
from vibeplane.vibeapp.decide.routes import routes_enabled
from vibeplane.vibeapp.desired import LABEL_APP
from vibeplane.vibeapp.generate import Generator
from vibeplane.vibeapp.models import ModelResolver
from vibeplane.vibeapp.pool import WarmPool
from vibeplane.workspace import handlers as workspace

log = logging.getLogger(__name__)
# How long a workspace gathers changes of its apps before it counts them again.
COUNTS_WINDOW = 1.0
# How long a stopping leader waits for in-flight reconciles before it gives the Lease up.
DRAIN_SECONDS = 30.0


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


def ensure_platform_namespace(settings: OperatorSettings, kube: KubeClient) -> None:
    """Shared models and budget ledgers live in the platform namespace; hostname claims, when
    routes are on, in a namespace of their own (settings.claims_namespace)."""
    names = [settings.platform_namespace]
    if routes_enabled(settings):
        names.append(settings.claims_namespace)
    for name in names:
        kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            field_manager("platform"),
        )


class Operator:
    """The controllers and what feeds them: every collaborator (the API client, the object
    cache, the object store, the ledger store) is built once, here, and handed to each."""

    def __init__(self, settings: OperatorSettings, kube: KubeClient | None = None) -> None:
        self.settings = settings
        self.kube = kube if kube is not None else ApiServerClient()
        self.cache = ObjectCache(self.kube, on_change=self._child_changed)
        self.store = ObjectStore(S3Settings.from_env())
        self.ledgers = LedgerStore(settings.platform_namespace)
        self.generator = Generator(
            self.ledgers,
            self.store,
            FileLimits(),
            workers=settings.generation_workers,
            per_workspace=settings.workspace_concurrency,
            timeout=settings.model_timeout,
        )
        resolver = ModelResolver(settings, self._model_bodies)
        # One delivery key for every preview sandbox: the apps' and their warm pools'.
        delivery_key = vibeapp.load_delivery_key(settings.delivery_key_file)
        self.pool = WarmPool(
            settings, self.cache, self.kube, vibeapp.preview_settings(settings, delivery_key)
        )
        self.workspaces = workspace.setup(
            settings,
            self.cache,
            self.kube,
            self.ledgers,
            lambda ns: self.vibeapps.count(ns),
            generation_floor=resolver.floor,
            wake=self._wake,
            warm_pool=self.pool.reconcile,
        )
        # Generations' measured outcomes, counted by the VibeApp path in their model's
        # outcomes ConfigMap, read by the model's rollout and economics; a post re-queues the
        # model (gathered over a second: a burst of outcomes costs one status write).
        outcomes = OutcomeStore(
            self.kube,
            settings.platform_namespace,
            uid_of=self._model_uid,
            on_post=lambda key: self.models.enqueue(ObjectKey(*key), within=COUNTS_WINDOW),
            namespace_uid=self._namespace_uid,
        )
        self.models = modeldeployment.setup(
            settings,
            self.cache,
            self.kube,
            self.ledgers,
            workspace_lookup=lambda name: self.workspaces.body(ObjectKey(None, name)),
            trainings=self._trainings_in,
        )
        self.vibeapps = vibeapp.setup(
            settings,
            self.cache,
            self.kube,
            workspace_body=lambda name: self.workspaces.body(ObjectKey(None, name)),
            resolve_models=resolver,
            generator=self.generator,
            store=self.store,
            ledgers=self.ledgers,
            outcomes=outcomes,
            delivery_key=delivery_key,
        )
        self.trainings = modeltraining.setup(
            settings,
            self.cache,
            self.kube,
            self.store,
            workspaces=lambda: self.workspaces.bodies(),
            vibeapps=lambda: self.vibeapps.bodies(),
        )
        # A run that offers its adapter to a deployment re-queues it as it progresses: the
        # deployment serves the adapter, and takes it as candidate, once the run succeeds.
        self.trainings.subscribe(self._training_changed, every_change=True)
        self.controllers: list[Controller] = [
            self.workspaces,
            self.models,
            self.vibeapps,
            self.trainings,
        ]
        self.vibeapps.subscribe(lambda _, body: self._requeue_workspace_of(body))
        self.resyncer = Resyncer(self.controllers, settings.resync_seconds)

    def _wake(self, key: str, app: str) -> None:
        """A generation waiting for the budget fits now: its app asks again at once."""
        namespace, _, name = app.partition("/")
        self.generator.wake(key)
        self.vibeapps.enqueue(ObjectKey(namespace, name))

    def _model_uid(self, namespace: str, name: str) -> str | None:
        body = self.models.body(ObjectKey(namespace, name)) or {}
        uid = (body.get("metadata") or {}).get("uid")
        return str(uid) if uid else None

    def _namespace_uid(self, namespace: str) -> str | None:
        # Workspaces' namespaces are in the cache; any other is read (once per outcome).
        body = self.cache.lookup("Namespace", namespace) or self.kube.get(
            "v1", "Namespace", namespace
        )
        uid = ((body or {}).get("metadata") or {}).get("uid")
        return str(uid) if uid else None

    def _trainings_in(self, namespace: str) -> list[dict[str, Any]]:
        return [
            body
            for body in self.trainings.bodies()
            if (body.get("metadata") or {}).get("namespace") == namespace
        ]

    def _training_changed(self, _event_type: str, body: dict[str, Any]) -> None:
        deployment = modeltraining.offered_to(body)
        if deployment is not None:
            self.models.enqueue(deployment)

    def _model_bodies(self) -> list[dict[str, Any]]:
        return self.models.bodies()

    def _child_changed(self, body: dict[str, Any]) -> None:
        model = modeldeployment.model_of(body)
        if model is not None:
            self.models.enqueue(model)
            return
        training = modeltraining.training_of(body)
        if training is not None:
            self.trainings.enqueue(training)
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
        """The workspace whose namespace holds `body` counts it (apps, running previews): its
        counts are gathered over a second, so a burst of apps costs one status write."""
        namespace = self.cache.lookup("Namespace", body["metadata"].get("namespace", ""))
        owner = workspace.workspace_of(namespace) if namespace else None
        if owner is not None:
            self.workspaces.enqueue(owner, within=COUNTS_WINDOW)

    def start(self) -> None:
        ensure_platform_namespace(self.settings, self.kube)
        self.cache.prime()
        # Every controller knows every object before the first reconcile runs.
        for controller in self.controllers:
            controller.prime()
        for controller in self.controllers:
            controller.resync()
        self.resyncer.start()
        self._sweep_outcomes()

    def _sweep_outcomes(self) -> None:
        """The outcomes of models deleted while no operator ran (see outcome_store.sweep)."""
        try:
            outcome_store.sweep(
                self.kube,
                self.settings.platform_namespace,
                lambda: self.kube.list_objects(API_VERSION, "ModelDeployment"),
            )
        except ApiException as error:
            log.warning("could not sweep models' outcomes: %s", error.reason)

    def stop(self) -> None:
        self.resyncer.stop()
        for controller in self.controllers:
            controller.queue.shutdown()

    def wait_stopped(self, timeout: float) -> bool:
        """After `stop`: wait for in-flight reconciles; whether all finished in time."""
        return all(controller.queue.join(timeout) for controller in self.controllers)


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


class StandbyHealth:
    """/healthz on the liveness port while this replica stands by.

    Kopf's liveness endpoint exists only once Kopf runs, which a standby does not; without an
    answer the liveness probe would restart every standby forever. It answers 200 while the
    election keeps making attempts (`healthy`), 503 when it hangs. Closed (the port freed)
    before Kopf binds the same port: the probe sees at most Kopf's startup as a gap, well
    inside its failure threshold.
    """

    def __init__(self, address: str, port: int, healthy: Callable[[], bool]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/healthz":
                    self.send_error(404)
                    return
                ok = healthy()
                body = json.dumps({"role": "standby", "electing": ok}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer((address, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="standby-healthz", daemon=True
        )

    def __enter__(self) -> StandbyHealth:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def elect(settings: OperatorSettings) -> LeaderElector | None:
    """Block until this replica leads; None when it was signalled to stop first.

    Nothing is written while another replica's lease is valid. Once leading, the Lease is
    renewed in a thread (losing it exits the process) and released when the process exits
    normally (see `run`).
    """
    timing = ElectionTiming(
        lease_duration=settings.leader_election_lease_duration,
        renew_deadline=settings.leader_election_renew_deadline,
        retry_period=settings.leader_election_retry_period,
    )
    lock = LeaseLock(settings.leader_election_lease, settings.platform_namespace, client.api_client)
    elector = LeaderElector(lock, settings.leader_election_identity, timing)
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in signals}
    try:
        with StandbyHealth(settings.bind_address, settings.liveness_port, elector.healthy):
            leading = elector.acquire(stop)
    finally:
        # Kopf installs its own handlers when it starts; a signal in between ends the process
        # the default way, and the Lease expires (nothing has been reconciled yet).
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not leading:
        log.info("stopped while standing by: nothing was written")
        return None
    if stop.is_set():
        elector.release()
        return None
    elector.start_renewing()
    # atexit runs after the interpreter has joined its non-daemon threads, among them the
    # generation pool: a generation that was running when Kopf stopped has finished (under
    # our Lease, still renewed) before the Lease goes.
    atexit.register(elector.release)
    return elector


def run(settings: OperatorSettings | None = None, verbose: bool = False) -> None:
    """Run the operator until it is signalled to stop."""
    settings = settings or OperatorSettings.from_env()
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    start_http_server(settings.metrics_port, addr=settings.bind_address)
    client.identify(settings.leader_election_identity)
    elector: LeaderElector | None = None
    if settings.leader_election:
        elector = elect(settings)
        if elector is None:
            return
    else:
        LEADER.set(1)  # the only replica: it reconciles
    operator = setup(settings)
    try:
        kopf.run(
            clusterwide=True,
            standalone=True,
            # Kopf would otherwise ask the password database for the user's name, which an
            # image running as a bare uid (runAsUser, no /etc/passwd entry) does not have.
            identity=Identity(settings.leader_election_identity),
            liveness_endpoint=f"http://{settings.bind_address}:{settings.liveness_port}/healthz",
        )
    finally:
        # Kopf's cleanup stopped the controllers; a reconcile still running must end before
        # the Lease is released, or the next leader would write beside it.
        operator.stop()
        if not operator.wait_stopped(DRAIN_SECONDS):
            log.warning("reconciles still running after %g s", DRAIN_SECONDS)
            if elector is not None:
                # Better a standby that waits for the Lease to expire than two writers.
                atexit.unregister(elector.release)


__all__ = ["LABEL_WORKSPACE", "ObjectKey", "Operator", "run", "setup"]
