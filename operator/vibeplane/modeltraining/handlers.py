"""The ModelTraining controller: gathers the records, stores the dataset, runs the TrainJob.

One level-based reconcile per ModelTraining (pure parts in `dataset.py` and `desired.py`):

1. scope: in the platform namespace, every workspace that allows training now; in a
   workspace's namespace (labelled and owned by it), that workspace's records only, and only
   while it allows training;
2. the dataset, built once per run and recorded in status (its digest is the run's identity):
   the training records in object storage, each joined with its app's revision index (the
   settled validation, the next revision's time, the bundles) and its VibeApp's pinned
   revision; train.jsonl, eval.jsonl and manifest.json written under an address of their
   digest;
3. the TrainJob (server-side apply, skipped when unchanged); status follows what Trainer
   reports; once Complete, the adapter URI and the lineage are recorded.

Inputs that re-queue a ModelTraining: the object itself and its TrainJob (a watch through the
object cache, selected by label).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from vibeplane.api import modeltraining as api
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome
from vibeplane.kube import client
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.modeltraining import dataset, desired
from vibeplane.settings import LABEL_WORKSPACE, OperatorSettings, field_manager
from vibeplane.storage import bundles
from vibeplane.storage.s3 import ObjectStore, StorageError, bundle_key
from vibeplane.timestamps import parse_time
from vibeplane.wellknown import LABEL_COMPONENT

log = logging.getLogger(__name__)

FIELD_MANAGER = field_manager("modeltraining")
TRAINJOB_WATCH = WatchedKind(
    "trainer.kubeflow.org",
    "v1alpha1",
    "trainjobs",
    desired.TRAINJOB_KIND,
    {LABEL_COMPONENT: desired.COMPONENT_TRAINING},
)
RECORDS_PREFIX = "datasets/interactions/"

Lister = Callable[[], Iterable[Mapping[str, Any]]]


class Gatherer:
    """Reads what the dataset build joins: records, revision indexes, bundles, pins."""

    def __init__(self, store: ObjectStore, vibeapps: Lister) -> None:
        self.store = store
        self.vibeapps = vibeapps

    def interactions(self, since: datetime | None) -> list[dataset.Interaction]:
        pins: dict[str, int] = {}
        stacks: dict[str, str] = {}
        for app in self.vibeapps():
            uid = str((app.get("metadata") or {}).get("uid") or "")
            spec = app.get("spec") or {}
            if isinstance(spec.get("pinnedRevision"), int):
                pins[uid] = spec["pinnedRevision"]
            if isinstance(spec.get("stack"), str):
                stacks[uid] = spec["stack"]
        indexes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        found: list[dataset.Interaction] = []
        for key in self.store.keys(RECORDS_PREFIX):
            day = key.removeprefix(RECORDS_PREFIX).split("/", 1)[0].removeprefix("date=")
            if since is not None and day < since.strftime("%Y-%m-%d"):
                continue
            data = self.store.get(key)
            if not data:
                continue
            for line in data.decode("utf-8", errors="replace").splitlines():
                record = json.loads(line) if line.strip() else None
                if isinstance(record, dict):
                    found.append(self._join(key, record, indexes, pins, stacks))
        return found

    def _join(
        self,
        key: str,
        record: Mapping[str, Any],
        indexes: dict[tuple[str, str], list[dict[str, Any]]],
        pins: Mapping[str, int],
        stacks: Mapping[str, str],
    ) -> dataset.Interaction:
        workspace, app = str(record.get("workspace") or ""), str(record.get("app") or "")
        revision = int(record.get("revision") or 0)
        if (workspace, app) not in indexes:
            indexes[(workspace, app)] = self.store.read_index(workspace, app)
        by_number = {int(e.get("number") or 0): e for e in indexes[(workspace, app)]}
        entry = by_number.get(revision) or {}
        following = by_number.get(revision + 1)
        # Only the revision the record is about: a later attempt that replaced it is another.
        same = entry.get("attempt", record.get("attempt")) == record.get("attempt")
        return dataset.Interaction(
            key=key,
            workspace=workspace,
            app=app,
            revision=revision,
            prompt=str(record.get("prompt") or ""),
            time=parse_time(record.get("time")) or datetime.min.replace(tzinfo=UTC),
            validation=str(entry.get("validation") or "Pending") if same else "Replaced",
            fix_up=bool(entry.get("fixUp")),
            next_revision_time=parse_time((following or {}).get("time")),
            pinned_revision=pins.get(app),
            files=self._files(workspace, app, entry),
            previous_files=self._files(workspace, app, by_number.get(revision - 1) or {}),
            stack=stacks.get(app, "static"),
        )

    def _files(self, workspace: str, app: str, entry: Mapping[str, Any]) -> dict[str, str] | None:
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not sha:
            return None
        data = self.store.get(bundle_key(workspace, app, sha))
        return bundles.extract(data) if data else None


class ModelTrainingReconciler:
    """Builds a run's dataset once, then keeps its TrainJob and status in step."""

    def __init__(
        self,
        settings: OperatorSettings,
        cache: ObjectCache,
        kube: KubeClient,
        store: ObjectStore,
        workspaces: Lister,
        gatherer: Gatherer,
        trainer_available: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.kube = kube
        self.store = store
        self.workspaces = workspaces
        self.gatherer = gatherer
        self.trainer_available = trainer_available
        self.clock = clock or (lambda: datetime.now(UTC))

    def __call__(self, context: Context) -> Outcome:
        spec: api.ModelTrainingSpec = context.spec
        recorded: Mapping[str, Any] = context.status.get("dataset") or {}
        if not recorded.get("digest"):
            built = self._build(context, spec)
            if isinstance(built, Outcome):
                return built
            recorded = built
        fields: dict[str, Any] = {
            "adapterName": spec.output.adapter_name,
            "dataset": dict(recorded),
        }
        built_condition = desired.dataset_condition(recorded)
        stop = desired.blocked(recorded, self.trainer_available)
        if stop is not None:
            phase, ready = stop
            return Outcome([built_condition, ready], {**fields, "phase": phase})
        try:
            live = self._apply_train_job(context, spec, recorded)
        except ApiException as error:
            if error.status not in (400, 403, 422):
                raise
            refused = ConditionSpec(
                "Ready",
                "False",
                "TrainJobRefused",
                f"the API server refused the TrainJob: {error.reason}",
            )
            return Outcome([built_condition, refused], {**fields, "phase": "Failed"})
        namespace = context.namespace or ""
        run_fields, conditions = desired.run_status(
            spec,
            live,
            str(recorded.get("digest")),
            namespace,
            context.name,
            self._adapter_uri(context, spec),
        )
        return Outcome([built_condition, *conditions], {**fields, **run_fields})

    def _adapter_uri(self, context: Context, spec: api.ModelTrainingSpec) -> str:
        bucket = self.store.settings.bucket
        return desired.output_uri(spec, bucket, context.namespace or "", context.name)

    def _apply_train_job(
        self, context: Context, spec: api.ModelTrainingSpec, recorded: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """Server-side apply the run's TrainJob (no write when unchanged); the live object."""
        namespace = context.namespace or ""
        secret = self.settings.model_storage_secret
        has_secret = self.kube.get("v1", "Secret", secret, namespace) is not None
        manifest = desired.train_job(
            context.name,
            namespace,
            context.uid,
            spec,
            str(recorded.get("uri")),
            self._adapter_uri(context, spec),
            secret if has_secret else None,
        )
        live = self.cache.lookup(desired.TRAINJOB_KIND, context.name, namespace)
        stored = apply_and_remember(
            self.kube, self.cache, manifest, FIELD_MANAGER, "ModelTraining", live
        )
        return stored if stored is not None else live

    # ---- the dataset -------------------------------------------------------------------

    def _scope(self, namespace: str) -> tuple[frozenset[str], str | None] | str:
        """(consenting workspaces, own workspace) or why the namespace may not train."""
        consenting = frozenset(
            str((ws.get("metadata") or {}).get("name"))
            for ws in self.workspaces()
            if ((ws.get("spec") or {}).get("dataSharing") or {}).get("allowTraining") is True
        )
        if namespace == self.settings.platform_namespace:
            return consenting, None
        body = self.cache.lookup("Namespace", namespace) or {}
        metadata = body.get("metadata") or {}
        workspace = (metadata.get("labels") or {}).get(LABEL_WORKSPACE)
        owners = {o.get("name") for o in metadata.get("ownerReferences") or []}
        if not workspace or workspace not in owners:
            return (
                f"namespace {namespace} is neither the platform's nor a workspace's: a "
                "ModelTraining lives in one of those"
            )
        return consenting, str(workspace)

    def _build(self, context: Context, spec: api.ModelTrainingSpec) -> dict[str, Any] | Outcome:
        namespace = context.namespace or ""
        scope = self._scope(namespace)
        if isinstance(scope, str):
            return Outcome([ConditionSpec("Ready", "False", "NotAllowedHere", scope)], {})
        consenting, own = scope
        if own is not None and own not in consenting:
            return Outcome(
                [
                    ConditionSpec(
                        "Ready",
                        "False",
                        "ConsentNotGiven",
                        f"workspace {own} does not allow training on its records "
                        "(spec.dataSharing.allowTraining)",
                    )
                ],
                {"phase": "Pending"},
            )
        selection = dataset.Selection(
            consenting=consenting,
            only_workspace=own,
            since=spec.dataset.since,
            holdout_percent=spec.dataset.holdout_percent,
            reask_window=timedelta(seconds=spec.dataset.reask_window_seconds),
            max_examples=spec.dataset.max_examples,
        )
        try:
            built = dataset.build(
                self.gatherer.interactions(spec.dataset.since),
                selection,
                f"{spec.base_model.name} ({spec.base_model.uri})",
            )
            prefix = desired.dataset_prefix(namespace, context.name, built.digest)
            self.store.put(prefix + "train.jsonl", built.train_bytes, "application/x-ndjson")
            self.store.put(prefix + "eval.jsonl", built.eval_bytes, "application/x-ndjson")
            self.store.put(prefix + "manifest.json", built.manifest_bytes, "application/json")
        except StorageError as error:
            return Outcome(
                [ConditionSpec("Ready", "False", "StorageFailed", str(error))],
                {"phase": "Pending"},
                requeue_after=30,
            )
        return api.DatasetStatus(
            uri=f"s3://{self.store.settings.bucket}/{prefix}",
            digest=built.digest,
            counts=api.DatasetCounts.model_validate(built.counts),
        ).to_wire()


def training_of(body: Mapping[str, Any]) -> ObjectKey | None:
    """The ModelTraining a TrainJob (from the cache's watch) belongs to."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(LABEL_COMPONENT) != desired.COMPONENT_TRAINING:
        return None
    name, namespace = labels.get(desired.LABEL_MODELTRAINING), metadata.get("namespace")
    return ObjectKey(namespace, name) if name and namespace else None


def offered_to(body: Mapping[str, Any]) -> ObjectKey | None:
    """The ModelDeployment a ModelTraining offers its adapter to (spec.output.modelDeployment,
    in the run's namespace)."""
    namespace = (body.get("metadata") or {}).get("namespace")
    deployment = ((body.get("spec") or {}).get("output") or {}).get("modelDeployment")
    return ObjectKey(namespace, deployment) if namespace and deployment else None


def trainer_installed() -> bool:
    """Whether the API server serves Trainer's TrainJob (discovery; no object read)."""
    try:
        client.dynamic().resources.get(
            api_version=desired.TRAINJOB_API_VERSION, kind=desired.TRAINJOB_KIND
        )
    except ResourceNotFoundError:
        log.warning("Kubeflow Trainer's TrainJob CRD is not installed: trainings wait")
        return False
    return True


def setup(
    settings: OperatorSettings,
    cache: ObjectCache,
    kube: KubeClient,
    store: ObjectStore,
    workspaces: Lister,
    vibeapps: Lister,
    trainer: bool | None = None,
) -> Controller:
    """Build the ModelTraining controller; the operator routes TrainJob changes to it
    (`training_of`)."""
    available = trainer_installed() if trainer is None else trainer
    reconciler = ModelTrainingReconciler(
        settings,
        cache,
        kube,
        store,
        workspaces,
        Gatherer(store, vibeapps),
        trainer_available=available,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    if available:
        cache.watch(TRAINJOB_WATCH)
    return controller


__all__ = [
    "FIELD_MANAGER",
    "Gatherer",
    "ModelTrainingReconciler",
    "offered_to",
    "setup",
    "trainer_installed",
    "training_of",
]
