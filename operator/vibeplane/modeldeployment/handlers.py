"""The ModelDeployment controller: the only place it talks to the outside.

One level-based reconcile per ModelDeployment (pure builders in `desired.py`):
- kserve: the namespace's ServiceAccount for model storage and the InferenceService are
  applied (server-side, skipped when unchanged); status mirrors what KServe reports; running
  predictor replicas are metered into GPU-hours and charged to a budget ledger;
- external / builtin: the endpoint is checked with `GET {url}/models`, at most once per
  `PROBE_OK_TTL` while it answers and with a growing backoff while it does not, so the
  reconciles a resync or a watch event brings do not hammer a provider (or its rate limit).

Inputs that re-queue a ModelDeployment: the object itself, its InferenceService (a watch
through the object cache, selected by label), the probe backoff and the metering interval.

Secrets: the API key is read from the Secret at each check and handed to the HTTP client only;
it is never logged, never put in status, events or metric labels (the client scrubs it from
anything it quotes). Conditions name the Secret and key, never the value.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from vibeplane.api import modeldeployment as api
from vibeplane.api.common import API_VERSION, decimal_of
from vibeplane.api.workspace import DEFAULT_BUDGET_PERIOD
from vibeplane.budget.ledger import Amount
from vibeplane.budget.periods import PeriodKind
from vibeplane.budget.store import LedgerStore
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Body, Context, Controller, ObjectKey, Outcome
from vibeplane.generation import outcome_store
from vibeplane.generation.client import ModelCallError, probe
from vibeplane.generation.egress import EgressPolicy
from vibeplane.kube import client
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.kube.secrets import SecretProblem, read_secret_key
from vibeplane.metrics import MODEL_COST_PER_APP
from vibeplane.modeldeployment import adapters, desired, llmisvc, measured, metering
from vibeplane.settings import LABEL_WORKSPACE, OperatorSettings, field_manager

log = logging.getLogger(__name__)

FIELD_MANAGER = field_manager("modeldeployment")
ISVC_WATCH = WatchedKind(
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
    desired.ISVC_KIND,
    {desired.LABEL_COMPONENT: desired.COMPONENT_MODEL},
)
LLMISVC_WATCH = WatchedKind(
    "serving.kserve.io",
    "v1alpha2",
    "llminferenceservices",
    llmisvc.LLMISVC_KIND,
    {desired.LABEL_COMPONENT: desired.COMPONENT_MODEL},
)
PROBE_OK_TTL = 60.0
"""Seconds a successful check stands before the next reconcile checks again."""


class Prober(Protocol):
    """Checks an endpoint (`vibeplane.generation.client.probe`)."""

    def __call__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        model: str | None = None,
        egress: EgressPolicy | None = None,
    ) -> None: ...


Lookup = Callable[[str], Mapping[str, Any] | None]


def egress_policy(settings: OperatorSettings) -> EgressPolicy:
    """The rule for tenant models' calls, from the operator settings (the chart's
    models.egress)."""
    return EgressPolicy.from_settings(settings.model_egress_allow, settings.cluster_cidrs)


def serving_settings(settings: OperatorSettings) -> desired.ServingSettings:
    """The operator settings the serving builders need (see OperatorSettings.from_env)."""
    return desired.ServingSettings(
        builtin_url=settings.builtin_model_url,
        modelserver_runtime=settings.modelserver_runtime,
        service_account=settings.model_service_account,
        storage_secret=settings.model_storage_secret,
        llm_router=settings.llm_router,
    )


@dataclass(frozen=True)
class LedgerTarget:
    """The budget ledger GPU-hours are charged to."""

    name: str
    uid: str
    period: PeriodKind
    label: str


PLATFORM_LEDGER = LedgerTarget("platform", "platform", DEFAULT_BUDGET_PERIOD, "platform")
"""Models outside any workspace (the shared ones in the platform namespace) are charged to
the ledger `ledger-platform-platform` in the platform namespace, per calendar month: the
platform's own spend, kept beside the workspaces' ledgers and read the same way."""


@dataclass
class _Check:
    """The last endpoint check of one ModelDeployment, kept in memory between reconciles."""

    fingerprint: str
    failures: int
    next_at: float
    conditions: list[ConditionSpec] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class ModelDeploymentReconciler:
    """Computes a ModelDeployment's children and status, and applies what differs."""

    def __init__(
        self,
        settings: OperatorSettings,
        serving: desired.ServingSettings,
        cache: ObjectCache,
        kube: KubeClient,
        ledgers: LedgerStore,
        kserve_available: bool = True,
        workspace_lookup: Lookup | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        prober: Prober = probe,
        egress: EgressPolicy | None = None,
        llm_available: bool = True,
        trainings: Callable[[str], list[Body]] | None = None,
    ) -> None:
        self.settings = settings
        self.serving = serving
        self.cache = cache
        self.kube = kube
        self.ledgers = ledgers
        self.kserve_available = kserve_available
        self.llm_available = llm_available
        # The ModelTrainings of a namespace (the manager's cache; else a list call).
        self.trainings = trainings or (
            lambda namespace: kube.list_objects(API_VERSION, "ModelTraining", namespace)
        )
        self.workspace_lookup = workspace_lookup or (
            lambda name: kube.get(API_VERSION, "Workspace", name)
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.monotonic = monotonic
        self.prober = prober
        self.egress = egress if egress is not None else egress_policy(settings)
        self._checks: dict[str, _Check] = {}
        self._lock = threading.Lock()

    def __call__(self, context: Context) -> Outcome:
        spec: api.ModelDeploymentSpec = context.spec
        mode = spec.serving.mode
        resolved = adapters.resolve(
            spec,
            lambda name: self.kube.get(API_VERSION, "ModelTraining", name, context.namespace),
            adapters.offered(context.name, self.trainings(context.namespace or "")),
        )
        if mode == "kserve":
            outcome = self._kserve(context, spec, resolved)
        else:
            outcome = self._endpoint(context, spec, mode)
            outcome = Outcome(
                [
                    *outcome.conditions,
                    *desired.stale_kserve_conditions(context.status.get("conditions")),
                ],
                {**outcome.fields, **desired.KSERVE_ONLY_FIELDS},
                outcome.requeue_after,
            )
        outcome = self._measured(context, spec, outcome, resolved.candidate)
        if resolved.served or spec.adapters or context.status.get("adapters"):
            outcome.fields["adapters"] = (
                resolved.names if resolved.served or spec.adapters else None
            )
        if spec.adapters:
            outcome.conditions.append(adapters.condition(resolved))
            if resolved.pending:
                outcome.requeue_after = min(
                    outcome.requeue_after or adapters.PENDING_RECHECK_SECONDS,
                    adapters.PENDING_RECHECK_SECONDS,
                )
        outcome.fields = desired.clear_removed(
            context.status,
            {"servingMode": mode, "pricing": desired.pricing_fields(spec), **outcome.fields},
        )
        return outcome

    def _measured(
        self,
        context: Context,
        spec: api.ModelDeploymentSpec,
        outcome: Outcome,
        automatic: str | None,
    ) -> Outcome:
        """Economics and the rollout from the outcomes the VibeApp path counted (the
        model's outcomes ConfigMap)."""
        totals = outcome_store.totals_of(self.kube, self.settings.platform_namespace, context.uid)
        metering_fields = outcome.fields.get("metering") or context.status.get("metering") or {}
        economics = measured.economics(
            totals, str(metering_fields.get("gpuHours") or "0"), spec.pricing or api.Pricing()
        )
        fields = dict(outcome.fields)
        if economics["apps"] or context.status.get("economics"):
            fields["economics"] = economics
            if economics.get("costPerApp") is not None:
                MODEL_COST_PER_APP.labels(context.namespace or "", context.name).set(
                    float(economics["costPerApp"])
                )
        result = measured.rollout(
            spec, context.status.get("rollout"), totals, self.clock(), automatic
        )
        if result.status is not None or context.status.get("rollout"):
            fields["rollout"] = result.status
        conditions = list(outcome.conditions)
        if result.condition is not None:
            conditions.append(result.condition)
        if result.event is not None:
            try:
                self.kube.post_event(context.body, *result.event)
            except ApiException as error:
                log.warning("could not post an Event for %s: %s", context.name, error.reason)
        return Outcome(conditions, fields, outcome.requeue_after)

    def forget(self, event_type: str, body: Body) -> None:
        """Drop what is remembered of a deleted ModelDeployment (Controller.subscribe), and
        its outcomes ConfigMap where no owner reference can take it: a tenant's model (its
        ConfigMap in the platform namespace is owned by the tenant's Namespace; a platform
        model's is owned by the model, and the garbage collector deletes it)."""
        if event_type != "DELETED":
            return
        metadata = body.get("metadata") or {}
        uid = str(metadata.get("uid") or "")
        with self._lock:
            self._checks.pop(uid, None)
        if uid and metadata.get("namespace") != self.settings.platform_namespace:
            try:
                outcome_store.delete(self.kube, self.settings.platform_namespace, uid)
            except ApiException as error:
                log.warning(
                    "could not delete the outcomes of %s/%s: %s",
                    metadata.get("namespace"),
                    metadata.get("name"),
                    error.reason,
                )

    # ---- kserve ------------------------------------------------------------------------

    def _kserve(
        self, context: Context, spec: api.ModelDeploymentSpec, resolved: adapters.Resolved
    ) -> Outcome:
        problem = desired.kserve_problem(spec)
        if problem is not None:
            return Outcome(
                [ConditionSpec("Ready", "False", "InvalidSpec", f"{problem}; nothing changed")],
                {"probe": None},
            )
        assert spec.serving.kserve is not None
        if spec.serving.kserve.engine == "vllm":
            return self._vllm(context, spec, resolved)
        if not self.kserve_available:
            return Outcome(
                [
                    ConditionSpec(
                        "Ready",
                        "False",
                        "KServeNotInstalled",
                        "the InferenceService CRD (serving.kserve.io/v1beta1) is not installed:"
                        " install KServe and restart the operator, or use serving.external or"
                        " serving.builtin",
                    )
                ],
                {"probe": None},
            )
        name, namespace = context.name, context.namespace or ""
        live = self.cache.lookup(desired.ISVC_KIND, name, namespace)
        plan = desired.canary_plan(spec, live)
        try:
            storage_secret = self.kube.get("v1", "Secret", self.serving.storage_secret, namespace)
            account = self.kube.get("v1", "ServiceAccount", self.serving.service_account, namespace)
            self._apply(
                desired.service_account(
                    namespace, self.serving, storage_secret is not None, account
                ),
                account,
            )
            manifest = desired.inference_service(
                name, namespace, context.uid, spec, self.serving, plan
            )
            stored = self._apply(manifest, live)
        except ApiException as error:
            refused = _refusal(error)
            if refused is None:
                raise
            return Outcome([ConditionSpec("Ready", "False", *refused)], {"probe": None})
        if stored is not None:
            live = stored
        running = self._running_replicas(namespace, name)
        fields, conditions = desired.kserve_status(
            spec, plan, live, running, context.status.get("conditions")
        )
        metered, requeue = self._meter(context, spec, running)
        if metered is not None:
            fields["metering"] = metered
        return Outcome(conditions, fields, requeue)

    def _vllm(
        self, context: Context, spec: api.ModelDeploymentSpec, resolved: adapters.Resolved
    ) -> Outcome:
        """engine vllm: the ServiceAccount and an LLMInferenceService; status mirrors it."""
        if not self.llm_available:
            return Outcome(
                [
                    ConditionSpec(
                        "Ready",
                        "False",
                        "KServeNotInstalled",
                        "the LLMInferenceService CRD (serving.kserve.io/v1alpha2, KServe >= "
                        "0.16) is not installed: install KServe's LLM path and restart the "
                        "operator, or use engine modelserver",
                    )
                ],
                {"probe": None},
            )
        name, namespace = context.name, context.namespace or ""
        live = self.cache.lookup(llmisvc.LLMISVC_KIND, name, namespace)
        missing = self._missing_presets(spec, namespace)
        if missing:
            return Outcome([llmisvc.missing_presets_condition(missing, namespace)], {"probe": None})
        try:
            storage_secret = self.kube.get("v1", "Secret", self.serving.storage_secret, namespace)
            account = self.kube.get("v1", "ServiceAccount", self.serving.service_account, namespace)
            self._apply(
                desired.service_account(
                    namespace, self.serving, storage_secret is not None, account
                ),
                account,
            )
            manifest = llmisvc.llm_inference_service(
                name, namespace, context.uid, spec, self.serving, list(resolved.served)
            )
            stored = self._apply(manifest, live)
        except ApiException as error:
            refused = _refusal(error, llmisvc.LLMISVC_KIND)
            if refused is None:
                raise
            return Outcome([ConditionSpec("Ready", "False", *refused)], {"probe": None})
        if stored is not None:
            live = stored
        running = self._running_pods(namespace, llmisvc.LLMISVC_POD_SELECTOR.format(name=name))
        fields, conditions = llmisvc.llmisvc_status(spec, live, running)
        metered, requeue = self._meter(context, spec, running)
        if metered is not None:
            fields["metering"] = metered
        return Outcome(conditions, fields, requeue)

    def _missing_presets(self, spec: api.ModelDeploymentSpec, namespace: str) -> list[str]:
        """The named presets that exist nowhere KServe looks for them."""
        assert spec.serving.kserve is not None
        return [
            preset
            for preset in spec.serving.kserve.presets
            if not any(
                self.kube.get(llmisvc.LLMISVC_API_VERSION, llmisvc.PRESET_KIND, preset, where)
                for where in llmisvc.preset_locations(namespace)
            )
        ]

    def _apply(
        self, manifest: dict[str, Any], live: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        return apply_and_remember(
            self.kube, self.cache, manifest, FIELD_MANAGER, "ModelDeployment", live
        )

    def _running_replicas(self, namespace: str, name: str) -> int:
        """Predictor pods that run (and so hold their GPUs), in every revision."""
        return self._running_pods(namespace, f"{desired.ISVC_POD_LABEL}={name},component=predictor")

    def _running_pods(self, namespace: str, selector: str) -> int:
        pods = self.kube.list_objects("v1", "Pod", namespace, label_selector=selector)
        return sum(1 for pod in pods if (pod.get("status") or {}).get("phase") == "Running")

    # ---- metering ----------------------------------------------------------------------

    def _meter(
        self, context: Context, spec: api.ModelDeploymentSpec, running: int
    ) -> tuple[dict[str, Any] | None, float | None]:
        """The status.metering to record (None: leave it) and when to look again."""
        gpus = desired.gpus_per_replica(spec)
        recorded: Mapping[str, Any] = context.status.get("metering") or {}
        since = metering.parse_time(str(recorded.get("since") or ""))
        previous = (
            metering.Reading(
                since, int(recorded.get("replicas") or 0), int(recorded.get("gpusPerReplica") or 0)
            )
            if since is not None
            else None
        )
        requeue = metering.INTERVAL.total_seconds() if running * gpus > 0 else None
        accrual = metering.accrue(previous, running, gpus, self.clock())
        if accrual is None:
            return None, requeue
        total = decimal_of(str(recorded.get("gpuHours") or "0"))
        charged_to = recorded.get("chargedTo")
        if accrual.gpu_hours > 0 and accrual.start is not None:
            target = self._ledger_target(context.namespace or "")
            pricing = spec.pricing or api.Pricing()
            amount = Amount(
                gpu_hours=accrual.gpu_hours,
                money=metering.money(accrual.gpu_hours, decimal_of(pricing.gpu_hour)),
            )
            key = metering.interval_key(context.uid, accrual.start)
            if self.ledgers.settle(target.name, target.uid, target.period, key, amount):
                total += accrual.gpu_hours
            charged_to = target.label
        reading = accrual.reading
        fields: dict[str, Any] = {
            "since": metering.format_time(reading.at),
            "replicas": reading.replicas,
            "gpusPerReplica": reading.gpus,
            "gpuHours": _decimal_text(total),
        }
        if charged_to:
            fields["chargedTo"] = charged_to
        return fields, requeue

    def _ledger_target(self, namespace: str) -> LedgerTarget:
        """The workspace that owns `namespace` (label and owner reference agree), else the
        platform."""
        body = self.cache.lookup("Namespace", namespace)
        labels = ((body or {}).get("metadata") or {}).get("labels") or {}
        workspace = labels.get(LABEL_WORKSPACE)
        if not workspace:
            return PLATFORM_LEDGER
        found = self.workspace_lookup(workspace)
        if found is None:
            return PLATFORM_LEDGER
        uid = str((found.get("metadata") or {}).get("uid") or "")
        owners = ((body or {}).get("metadata") or {}).get("ownerReferences") or []
        if not any(owner.get("uid") == uid for owner in owners):
            log.warning(
                "namespace %s is labelled for workspace %s but not owned by it; charging the "
                "platform",
                namespace,
                workspace,
            )
            return PLATFORM_LEDGER
        period = ((found.get("spec") or {}).get("budget") or {}).get("period")
        kind: PeriodKind = period if period in ("Daily", "Weekly") else DEFAULT_BUDGET_PERIOD
        return LedgerTarget(workspace, uid, kind, f"workspace/{workspace}")

    # ---- external and builtin ----------------------------------------------------------

    def _endpoint(self, context: Context, spec: api.ModelDeploymentSpec, mode: str) -> Outcome:
        external = spec.serving.external
        url = external.base_url if external is not None else self.serving.builtin_url
        # The builtin server is ours: it must list the model. Providers' listings are not
        # always complete, so an external endpoint is only checked to answer with the key.
        model_check = None if external is not None else spec.model.name
        fingerprint = desired.probe_fingerprint(context.generation, url)
        now = self.monotonic()
        with self._lock:
            check = self._checks.get(context.uid)
        if check is not None and check.fingerprint == fingerprint and now < check.next_at:
            return Outcome(
                list(check.conditions),
                dict(check.fields),
                (check.next_at - now) if check.failures else None,
            )
        if check is not None and check.fingerprint == fingerprint:
            prior = check.failures
        elif check is None and context.status.get("observedGeneration") == context.generation:
            prior = int((context.status.get("probe") or {}).get("failures") or 0)
        else:
            prior = 0
        try:
            key = None
            if external is not None and external.api_key_secret_ref is not None:
                ref = external.api_key_secret_ref
                key = read_secret_key(context.namespace or "", ref.name, ref.key, self.kube)
            self.prober(
                url, key, self.serving.probe_timeout, model_check, egress=self._egress(context)
            )
        except SecretProblem as problem:
            reason, failure, message = problem.reason, problem.reason, problem.message
        except ModelCallError as error:
            reason = "EgressRefused" if error.reason == "EgressRefused" else "ProbeFailed"
            failure = error.reason
            message = f"{error.reason}: {error.message}"
        else:
            fields, conditions = desired.endpoint_ready(mode, url, desired.served_model(spec))
            self._remember(
                context.uid,
                _Check(fingerprint, 0, now + PROBE_OK_TTL, list(conditions), dict(fields)),
            )
            return Outcome(list(conditions), dict(fields))
        failures = prior + 1
        delay = desired.probe_delay(failures)
        fields, conditions = desired.endpoint_failed(url, reason, failure, message, failures, delay)
        self._remember(
            context.uid, _Check(fingerprint, failures, now + delay, list(conditions), dict(fields))
        )
        if failures == 1:
            self._warn(context, reason, conditions[0].message)
        return Outcome(list(conditions), dict(fields), delay)

    def _egress(self, context: Context) -> EgressPolicy | None:
        """The guard on a tenant's external model (its own namespace names the URL); the
        platform's own models are the platform's choice and are not guarded."""
        external = context.spec.serving.external is not None
        tenant = context.namespace != self.settings.platform_namespace
        return self.egress if external and tenant else None

    def _remember(self, uid: str, check: _Check) -> None:
        with self._lock:
            self._checks[uid] = check

    def _warn(self, context: Context, reason: str, message: str) -> None:
        """A Warning Event when checks start failing (messages never hold the key)."""
        try:
            self.kube.post_event(context.body, "Warning", reason, message)
        except ApiException as error:
            log.warning("could not post an Event for %s: %s", context.name, error.reason)


def _refusal(error: ApiException, kind: str = desired.ISVC_KIND) -> tuple[str, str] | None:
    """(reason, message) for a write the API server refused for good, else None (retry).

    A terminating namespace takes no new objects; an InferenceService refused by validation
    (KServe's webhook on a real cluster) says why in the server's message."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = str(body.get("message") or error.reason or "")
    causes = (body.get("details") or {}).get("causes") or []
    if error.status == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return "NamespaceTerminating", f"{message}; nothing is created"
    if error.status in (400, 422):
        return f"{kind}Refused", f"the API server refused the {kind}: {message}"
    return None


def model_of(body: Mapping[str, Any]) -> ObjectKey | None:
    """The ModelDeployment an InferenceService or LLMInferenceService (from the cache's watch)
    belongs to."""
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(desired.LABEL_COMPONENT) != desired.COMPONENT_MODEL:
        return None
    name = labels.get(desired.LABEL_MODELDEPLOYMENT)
    namespace = metadata.get("namespace")
    return ObjectKey(namespace, name) if name and namespace else None


def kserve_installed(
    api_version: str = desired.ISVC_API_VERSION, kind: str = desired.ISVC_KIND
) -> bool:
    """Whether the API server serves a KServe kind (discovery; no object read)."""
    try:
        client.dynamic().resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        log.warning("KServe's %s CRD is not installed: models that need it are refused", kind)
        return False
    return True


def setup(
    settings: OperatorSettings,
    cache: ObjectCache,
    kube: KubeClient,
    ledgers: LedgerStore,
    workspace_lookup: Lookup | None = None,
    kserve: bool | None = None,
    trainings: Callable[[str], list[Body]] | None = None,
) -> Controller:
    """Build the ModelDeployment controller and register its watches.

    The operator routes InferenceService changes in the shared `cache` here itself
    (`model_of`). `kserve` None asks the API server whether KServe's CRD is installed: without
    it the InferenceService watch is not registered (the cache would fail to list it at
    startup).
    """
    available = kserve_installed() if kserve is None else kserve
    llm = (
        kserve_installed(llmisvc.LLMISVC_API_VERSION, llmisvc.LLMISVC_KIND)
        if kserve is None
        else kserve
    )
    reconciler = ModelDeploymentReconciler(
        settings,
        serving_settings(settings),
        cache,
        kube,
        ledgers,
        kserve_available=available,
        workspace_lookup=workspace_lookup,
        llm_available=llm,
        trainings=trainings,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    controller.subscribe(reconciler.forget)
    if available:
        cache.watch(ISVC_WATCH)
    if llm:
        cache.watch(LLMISVC_WATCH)
    return controller


__all__ = [
    "FIELD_MANAGER",
    "ISVC_WATCH",
    "LLMISVC_WATCH",
    "PLATFORM_LEDGER",
    "ModelDeploymentReconciler",
    "kserve_installed",
    "model_of",
    "setup",
]
