"""Pure builders: a ModelDeployment's spec (and what KServe reports) -> manifests and status.

Serving modes
-------------
- `kserve`: one InferenceService (`serving.kserve.io/v1beta1`, a plain dict: the operator
  never imports the kserve SDK) named like the ModelDeployment, in its namespace, owned by it.
- `external`: nothing is created; the endpoint is probed (`GET {baseURL}/models`).
- `builtin`: nothing is created; the platform's model server (`ServingSettings.builtin_url`)
  is probed.

Model storage credentials (KServe's convention)
-----------------------------------------------
A ModelDeployment names no credentials. In each namespace with a KServe model the operator
keeps a ServiceAccount `vibeplane-models`, and every InferenceService runs under it. When a
Secret `vibeplane-model-storage` exists in that namespace, the ServiceAccount lists it, and
KServe's storage initializer takes the S3 credentials from it: keys `AWS_ACCESS_KEY_ID` and
`AWS_SECRET_ACCESS_KEY`, endpoint and TLS from the annotations `serving.kserve.io/s3-endpoint`,
`serving.kserve.io/s3-usehttps`, `serving.kserve.io/s3-region`, `serving.kserve.io/s3-verifyssl`.
Without the Secret the ServiceAccount lists nothing (public buckets, or IAM roles bound to the
ServiceAccount), because KServe refuses to start a predictor whose ServiceAccount names a
missing Secret. The operator never copies the platform's storage Secret into a tenant's
namespace: a tenant admin (who can read Secrets there) would be able to read it.

Canary rollouts (Serverless only: KServe splits traffic between revisions only with Knative)
-------------------------------------------------------------------------------------------
KServe's model: the predictor's spec is always the newest version, `canaryTrafficPercent` is
the share of its latest revision, and the rest goes to the last revision rolled out with all
traffic (`status.components.predictor.latestRolledoutRevision`). Our spec says the opposite
way round (`model.storageUri` is the stable version, `canary.storageUri` the new one), so
`canary_plan` maps one onto the other, looking at what KServe reports:

- a canary starts only once `model.storageUri` is rolled out (KServe gives the first revision
  of a service all traffic whatever canaryTrafficPercent says), so a new ModelDeployment with
  a canary first gets the stable version alone (phase WaitingForStable);
- then the predictor serves `canary.storageUri` with `canaryTrafficPercent`;
- promote (canary.storageUri moved to model.storageUri, canary removed): the predictor keeps
  the same storageUri without canaryTrafficPercent, so the canary's revision takes all traffic
  and no new revision starts;
- roll back (canary removed, model.storageUri unchanged): first `model.storageUri` with
  `canaryTrafficPercent: 0`, which pins every request to the previous rolled-out revision at
  once, then, when KServe reports the new stable revision ready, without the pin. Dropping the
  canary in one step would send all traffic to the canary (the latest *ready* revision) until
  the stable one was ready again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vibeplane.api import modeldeployment as api
from vibeplane.api.common import owner_reference as common_owner_reference
from vibeplane.kube.conditions import ConditionSpec, Status, find
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME

# Read as desired.LABEL_* by the handlers.
from vibeplane.wellknown import LABEL_COMPONENT as LABEL_COMPONENT
from vibeplane.wellknown import LABEL_MODELDEPLOYMENT as LABEL_MODELDEPLOYMENT

Manifest = dict[str, Any]

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
ISVC_KIND = "InferenceService"
"""On InferenceServices: the ModelDeployment that owns it (a watch event re-queues it)."""
COMPONENT_MODEL = "model-serving"
"""The label value that selects our InferenceServices. Not app.kubernetes.io/managed-by:
KServe copies an InferenceService's labels onto its Deployments and pods, and those must not
look like the operator's own children (previews) to other watches."""
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
OPENAI_PATH = "/openai/v1"
"""Where KServe's OpenAI routes (and the vibeplane model server's) are mounted."""
DEFAULT_FORMAT = "huggingface"
KSERVE_DEPLOYMENT_MODES = {"RawDeployment": "Standard", "Serverless": "Knative"}
"""The names KServe >= 0.15 uses (the installed CRDs are v0.20): its webhook rewrites the legacy
RawDeployment and Serverless to these, so applying the legacy names would fight it forever."""
V2_FORMATS = frozenset({"triton", "vllm"})
"""Formats KServe's webhook gives protocolVersion v2 when none is set: the operator sets it
itself, so that the stored spec stays exactly what it applies (no write at every reconcile)."""
PROBE_BACKOFF_BASE = 5.0
PROBE_BACKOFF_MAX = 300.0


@dataclass(frozen=True)
class ServingSettings:
    """The operator settings serving depends on (see handlers.serving_settings)."""

    builtin_url: str = "http://vibeplane-modelserver.vibeplane-system.svc:8080/openai/v1"
    """The OpenAI base URL of the builtin generator (runtime/modelserver)."""
    modelserver_runtime: str = "vibeplane-modelserver"
    """The ServingRuntime used when serving.kserve.runtime is not set."""
    service_account: str = "vibeplane-models"
    """The ServiceAccount InferenceServices run under (created per namespace)."""
    storage_secret: str = "vibeplane-model-storage"
    """The Secret with S3 credentials the ServiceAccount lists when it exists."""
    probe_timeout: float = 5.0
    """Seconds one endpoint check may take."""
    llm_router: bool = False
    """Give LLMInferenceServices KServe's router (Gateway, HTTPRoute, llm-d's scheduler):
    only where the Gateway API and its inference extension are installed."""


def owner_reference(name: str, uid: str) -> Manifest:
    """The ModelDeployment as the controlling owner: its InferenceService goes when it goes."""
    return dict(common_owner_reference("ModelDeployment", name, uid))


def served_model(spec: api.ModelDeploymentSpec) -> str:
    """The `model` clients send: the external endpoint's name, else spec.model.name."""
    external = spec.serving.external
    return external.model if external is not None else spec.model.name


def pricing_fields(spec: api.ModelDeploymentSpec) -> dict[str, Any]:
    pricing = spec.pricing or api.Pricing()
    return api.EffectivePricing(
        input_per_million=pricing.input_per_million,
        output_per_million=pricing.output_per_million,
        gpu_hour=pricing.gpu_hour,
    ).to_wire()


# ---- kserve: the InferenceService -------------------------------------------------------


def kserve_problem(spec: api.ModelDeploymentSpec) -> str | None:
    """Why the kserve spec cannot be served, or None. The CRD's CEL rules refuse these first;
    this guard is for objects stored before a rule existed."""
    kserve = spec.serving.kserve
    if kserve is None:
        return "serving.kserve is not set"
    if kserve.min_replicas > kserve.max_replicas:
        return "minReplicas must not exceed maxReplicas"
    if kserve.engine == "vllm":
        problem = api.vllm_problem(kserve)
        if problem is not None:
            return problem
    elif kserve.min_replicas == 0 and kserve.deployment_mode != "Serverless":
        return (
            "minReplicas 0 (scale to zero) needs deploymentMode Serverless: KServe's HPA "
            "cannot scale a RawDeployment to zero"
        )
    elif kserve.canary is not None and kserve.deployment_mode != "Serverless":
        return "canary needs deploymentMode Serverless"
    if not spec.model.storage_uri:
        return "model.storageUri is required with serving.kserve (where are the weights?)"
    return None


CanaryMode = Literal["stable", "waiting", "canary", "rollback"]


@dataclass(frozen=True)
class CanaryPlan:
    """What the predictor serves now: its storageUri, canaryTrafficPercent and why."""

    mode: CanaryMode
    storage_uri: str
    traffic_percent: int | None


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def predictor_status(live: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """status.components.predictor of a live InferenceService ({} when absent)."""
    value = _get(live, "status", "components", "predictor")
    return value if isinstance(value, Mapping) else {}


def kserve_caught_up(live: Mapping[str, Any] | None) -> bool:
    """Whether KServe reported status for the InferenceService's current generation."""
    observed = _get(live, "status", "observedGeneration")
    generation = _get(live, "metadata", "generation")
    return live is not None and observed is not None and observed == generation


def latest_revision_ready(live: Mapping[str, Any] | None) -> bool:
    """KServe saw the current spec and its newest revision is ready."""
    predictor = predictor_status(live)
    created = predictor.get("latestCreatedRevision")
    return (
        kserve_caught_up(live) and bool(created) and predictor.get("latestReadyRevision") == created
    )


def canary_plan(spec: api.ModelDeploymentSpec, live: Mapping[str, Any] | None) -> CanaryPlan:
    """Map model.storageUri + canary onto KServe's canary semantics (see the module doc)."""
    kserve = spec.serving.kserve
    stable = spec.model.storage_uri or ""
    canary = kserve.canary if kserve is not None else None
    live_uri = _get(live, "spec", "predictor", "model", "storageUri")
    live_percent = _get(live, "spec", "predictor", "canaryTrafficPercent")
    if canary is not None:
        rolled_out = predictor_status(live).get("latestRolledoutRevision")
        started = live is not None and (
            live_percent is not None
            or live_uri == canary.storage_uri
            or (live_uri == stable and bool(rolled_out) and latest_revision_ready(live))
        )
        if started:
            return CanaryPlan("canary", canary.storage_uri, canary.traffic_percent)
        return CanaryPlan("waiting", stable, None)
    if live is not None and live_percent is not None:
        if live_uri != stable:
            return CanaryPlan("rollback", stable, 0)
        if live_percent == 0 and not latest_revision_ready(live):
            return CanaryPlan("rollback", stable, 0)
    return CanaryPlan("stable", stable, None)


def _resources(kserve: api.KServeServing) -> Manifest:
    requests: dict[str, Any] = dict(kserve.resources.requests) if kserve.resources else {}
    limits: dict[str, Any] = dict(kserve.resources.limits) if kserve.resources else {}
    gpus = kserve.gpu.count if kserve.gpu is not None else 0
    if gpus > 0:
        # Extended resources must have requests equal to limits; set both explicitly.
        requests[GPU_RESOURCE] = gpus
        limits[GPU_RESOURCE] = gpus
    result: Manifest = {}
    if requests:
        result["requests"] = dict(sorted(requests.items()))
    if limits:
        result["limits"] = dict(sorted(limits.items()))
    return result


def gpus_per_replica(spec: api.ModelDeploymentSpec) -> int:
    kserve = spec.serving.kserve
    return kserve.gpu.count if kserve is not None and kserve.gpu is not None else 0


def isvc_labels(name: str) -> dict[str, str]:
    return {LABEL_COMPONENT: COMPONENT_MODEL, LABEL_MODELDEPLOYMENT: name}


def inference_service(
    name: str,
    namespace: str,
    uid: str,
    spec: api.ModelDeploymentSpec,
    settings: ServingSettings,
    plan: CanaryPlan,
) -> Manifest:
    """The InferenceService serving `spec` (call `kserve_problem` first)."""
    kserve = spec.serving.kserve
    assert kserve is not None, "inference_service needs serving.kserve"
    runtime = kserve.runtime or settings.modelserver_runtime
    model: Manifest = {
        "modelFormat": {"name": spec.model.format or DEFAULT_FORMAT},
        "runtime": runtime,
        "storageUri": plan.storage_uri,
    }
    if runtime == settings.modelserver_runtime:
        # The vibeplane model server answers to --model-name; the last flag wins over the
        # ServingRuntime's default (the InferenceService's name).
        model["args"] = [f"--model-name={spec.model.name}"]
    resources = _resources(kserve)
    if resources:
        model["resources"] = resources
    if model["modelFormat"]["name"] in V2_FORMATS:
        model["protocolVersion"] = "v2"  # what KServe's webhook would set (see above)
    predictor: Manifest = {
        "serviceAccountName": settings.service_account,
        # Model servers never call the Kubernetes API; KServe may default this too.
        "automountServiceAccountToken": False,
        "minReplicas": kserve.min_replicas,
        "maxReplicas": kserve.max_replicas,
    }
    if kserve.scale_metric is not None:
        predictor["scaleMetric"] = kserve.scale_metric
    if kserve.scale_target is not None:
        predictor["scaleTarget"] = kserve.scale_target
    if plan.traffic_percent is not None:
        predictor["canaryTrafficPercent"] = plan.traffic_percent
    gpu = kserve.gpu
    if gpu is not None and gpu.count > 0:
        predictor["tolerations"] = [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        ]
        if gpu.product:
            predictor["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": GPU_PRODUCT_LABEL,
                                        "operator": "In",
                                        "values": [gpu.product],
                                    }
                                ]
                            }
                        ]
                    }
                }
            }
    predictor["model"] = model
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": ISVC_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": isvc_labels(name),
            "annotations": {
                DEPLOYMENT_MODE_ANNOTATION: KSERVE_DEPLOYMENT_MODES[kserve.deployment_mode]
            },
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": {"predictor": predictor},
    }


def service_account(
    namespace: str,
    settings: ServingSettings,
    storage_secret_exists: bool,
    live: Mapping[str, Any] | None,
) -> Manifest:
    """The ServiceAccount predictors run under; lists the storage Secret when it exists.

    Shared by every ModelDeployment of the namespace, so it has no owner (it stays, empty, with
    the namespace). `secrets` is sent as an empty list only to take back a reference we made
    (server-side apply then removes our entry), else left out so no write repeats."""
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": settings.service_account,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGER_NAME, LABEL_COMPONENT: COMPONENT_MODEL},
        },
    }
    if storage_secret_exists:
        manifest["secrets"] = [{"name": settings.storage_secret}]
    else:
        listed = [item.get("name") for item in (_get(live, "secrets") or [])]
        if settings.storage_secret in listed:
            manifest["secrets"] = []
    return manifest


# ---- kserve: status ----------------------------------------------------------------------


def isvc_url(live: Mapping[str, Any] | None) -> str | None:
    """The OpenAI base URL of a live InferenceService.

    The cluster-local address first: the operator (and the VibeApp path) call from inside the
    cluster, where `status.url` (the external domain, often example.com) may not resolve."""
    for path in (("status", "address", "url"), ("status", "url")):
        value = _get(live, *path)
        if isinstance(value, str) and value:
            return value.rstrip("/") + OPENAI_PATH
    return None


def _passthrough(
    live: Mapping[str, Any] | None, type_: str, default_reason: str, waiting: str
) -> ConditionSpec:
    """KServe's condition `type_`, with its reason and message, as ours."""
    conditions = _get(live, "status", "conditions")
    condition = find(conditions if isinstance(conditions, list) else None, type_)
    if condition is None:
        return ConditionSpec(type_, "Unknown", "InferenceServicePending", waiting)
    raw = str(condition.get("status") or "Unknown")
    status: Status = "True" if raw == "True" else "False" if raw == "False" else "Unknown"
    reason = str(condition.get("reason") or "") or (
        default_reason if status == "True" else f"{default_reason.removesuffix('Ready')}NotReady"
    )
    message = str(condition.get("message") or "") or f"KServe reports {type_}={status}"
    return ConditionSpec(type_, status, reason, message)


def _traffic_of_latest(predictor: Mapping[str, Any]) -> int | None:
    for target in predictor.get("traffic") or []:
        if isinstance(target, Mapping) and target.get("latestRevision") is True:
            percent = target.get("percent")
            return int(percent) if isinstance(percent, int) else None
    return None


def canary_status(
    spec: api.ModelDeploymentSpec,
    plan: CanaryPlan,
    live: Mapping[str, Any] | None,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
) -> tuple[Manifest | None, ConditionSpec | None]:
    """status.canary and the CanaryReady condition (None: leave no such condition)."""
    kserve = spec.serving.kserve
    canary = kserve.canary if kserve is not None else None
    predictor = predictor_status(live)
    latest = predictor.get("latestReadyRevision")
    previous = predictor.get("latestRolledoutRevision")
    ready = latest_revision_ready(live)
    if plan.mode == "stable":
        if find(previous_conditions, "CanaryReady") is None:
            return None, None
        return None, ConditionSpec("CanaryReady", "False", "NoCanary", "no canary is configured")
    if plan.mode == "rollback":
        status = api.CanaryStatus(
            phase="RollingBack",
            traffic_percent=0,
            ready=False,
            latest_revision=latest,
            previous_revision=previous,
        )
        return status.to_wire(), ConditionSpec(
            "CanaryReady",
            "False",
            "RollingBack",
            f"the canary was removed: every request goes to revision {previous or '(previous)'}"
            f" until {plan.storage_uri} is ready again",
        )
    assert canary is not None
    if plan.mode == "waiting":
        status = api.CanaryStatus(
            storage_uri=canary.storage_uri,
            phase="WaitingForStable",
            traffic_percent=0,
            ready=False,
            latest_revision=latest,
            previous_revision=previous,
        )
        return status.to_wire(), ConditionSpec(
            "CanaryReady",
            "False",
            "WaitingForStableRollout",
            f"model.storageUri ({spec.model.storage_uri}) rolls out first, so the canary has a "
            f"revision to share traffic with; then {canary.storage_uri} gets "
            f"{canary.traffic_percent}%",
        )
    observed = _traffic_of_latest(predictor) if ready else None
    status = api.CanaryStatus(
        storage_uri=canary.storage_uri,
        phase="Serving" if ready else "Progressing",
        traffic_percent=observed if observed is not None else (0 if not ready else None),
        ready=ready,
        latest_revision=latest,
        previous_revision=previous,
    )
    if ready:
        condition = ConditionSpec(
            "CanaryReady",
            "True",
            "CanaryServing",
            f"{observed if observed is not None else canary.traffic_percent}% of requests go to "
            f"{canary.storage_uri} (revision {latest}), the rest to revision "
            f"{previous or '(previous)'}",
        )
    else:
        latest_deployment = _passthrough(
            live, "LatestDeploymentReady", "LatestDeploymentReady", "waiting for KServe"
        )
        detail = (
            f": {latest_deployment.reason}: {latest_deployment.message}"
            if latest_deployment.status == "False"
            else ""
        )
        condition = ConditionSpec(
            "CanaryReady",
            "False",
            "CanaryProgressing",
            f"waiting for the canary revision of {canary.storage_uri} to become ready{detail}",
        )
    return status.to_wire(), condition


def kserve_status(
    spec: api.ModelDeploymentSpec,
    plan: CanaryPlan,
    live: Mapping[str, Any] | None,
    running_replicas: int,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
) -> tuple[dict[str, Any], list[ConditionSpec]]:
    """Status fields and conditions mirroring the InferenceService KServe reports."""
    ready = _passthrough(
        live,
        "Ready",
        "InferenceServiceReady",
        "waiting for KServe to report the InferenceService's status",
    )
    predictor = _passthrough(
        live, "PredictorReady", "PredictorReady", "waiting for KServe to report the predictor"
    )
    url = isvc_url(live)
    if ready.status == "True" and url is None:
        ready = ConditionSpec(
            "Ready", "False", "NoAddress", "KServe reports Ready but no address or url yet"
        )
    canary, canary_condition = canary_status(spec, plan, live, previous_conditions)
    fields: dict[str, Any] = {
        "url": url,
        "replicas": running_replicas,
        "canary": canary,
        "probe": None,
    }
    conditions = [ready, predictor]
    if canary_condition is not None:
        conditions.append(canary_condition)
    return fields, conditions


# ---- external and builtin: probes --------------------------------------------------------


def probe_delay(failures: int) -> float:
    """Seconds before the next check after `failures` consecutive failures: 5 s doubling,
    at most 5 min."""
    if failures <= 0:
        return 0.0
    return min(PROBE_BACKOFF_MAX, PROBE_BACKOFF_BASE * float(1 << min(failures - 1, 16)))


def probe_fingerprint(generation: int | None, url: str) -> str:
    """What a remembered check result is valid for: a spec edit or a new URL checks again."""
    return hashlib.sha256(f"{generation}\0{url}".encode()).hexdigest()


def endpoint_ready(mode: str, url: str, model: str) -> tuple[dict[str, Any], list[ConditionSpec]]:
    """Status after a successful check."""
    what = "the builtin model server" if mode == "builtin" else "the endpoint"
    return (
        {"url": url, "probe": api.ProbeStatus(failures=0).to_wire()},
        [
            ConditionSpec(
                "Ready", "True", "EndpointReady", f"{what} answers GET /models; model {model}"
            )
        ],
    )


def endpoint_failed(
    url: str, reason: str, failure: str, message: str, failures: int, delay: float
) -> tuple[dict[str, Any], list[ConditionSpec]]:
    """Status after a failed check: `reason` is the condition's (ProbeFailed, SecretNotFound,
    SecretKeyNotFound), `failure` the detailed cause (e.g. the client's Timeout)."""
    return (
        {
            "url": url,
            "probe": api.ProbeStatus(failures=failures, last_failure_reason=failure).to_wire(),
        },
        [
            ConditionSpec(
                "Ready",
                "False",
                reason,
                f"{message} (attempt {failures}; next check in {delay:g}s)",
            )
        ],
    )


def stale_kserve_conditions(
    previous_conditions: Sequence[Mapping[str, Any]] | None,
) -> list[ConditionSpec]:
    """Conditions only KServe serving sets, turned Unknown when a model stops using it (they
    would otherwise stay as the last KServe reported them)."""
    return [
        ConditionSpec(type_, "Unknown", "NotKServe", "the model is not served by KServe")
        for type_ in ("PredictorReady", "CanaryReady")
        if find(previous_conditions, type_) is not None
    ]


def clear_removed(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` with an explicit None for each key a nested status object loses.

    Status is written as a JSON merge patch, which merges nested objects: a key left out of
    status.canary would stay as it was, the status would never equal what was computed, and
    every reconcile would write it again. A None removes the key (once: the next reconcile
    sees it gone and adds nothing)."""
    result = dict(fields)
    for key, value in fields.items():
        before = current.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = clear_removed(before, value)
            for gone in before.keys() - value.keys():
                nested[gone] = None
            result[key] = nested
    return result


KSERVE_ONLY_FIELDS = {"replicas": None, "canary": None, "metering": None}
"""Status fields cleared when a model is not (or no longer) served by KServe."""
