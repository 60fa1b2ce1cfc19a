"""ModelDeployment: one model the platform can generate with.

Exactly one serving mode: `kserve` (the platform's own model on GPUs, as a KServe
InferenceService), `external` (a rented OpenAI-compatible endpoint) or `builtin` (the offline
generator, for air-gapped installs and tests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue, model_validator

from vibeplane.api.common import (
    Conditions,
    DecimalString,
    KubeModel,
    Quantity,
    SecretKeyRef,
)
from vibeplane.api.meta import AGE_COLUMN, READY_COLUMN, KindInfo, PrinterColumn

SERVING_MODES = ("kserve", "external", "builtin")


class ModelSource(KubeModel):
    """Which model is served, and where its weights are."""

    name: str = Field(min_length=1, max_length=253)
    """The model's name as clients ask for it, e.g. "base1"."""
    version: str | None = Field(default=None, max_length=128)
    """The model's version, e.g. "2026-11"."""
    format: str | None = Field(default=None, max_length=64)
    """The weights' format as KServe names it, e.g. "huggingface", "vllm"."""
    storage_uri: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('^(s3|gs|pvc|hf|https?)://.+')",
                    "message": "storageUri must be a URI such as s3://bucket/path",
                }
            ]
        },
    )
    """Where the weights are, e.g. s3://models/base1/2026-11."""


class Gpu(KubeModel):
    """GPUs per replica."""

    count: int = Field(default=1, ge=0, le=16)
    """nvidia.com/gpu per replica."""
    product: str | None = Field(default=None, max_length=128)
    """The GPU product to schedule on (node label nvidia.com/gpu.product), e.g.
    "NVIDIA-H100-80GB-HBM3"."""


class Resources(KubeModel):
    """CPU and memory of each replica's container."""

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Requested resources, e.g. {cpu: "4", memory: "32Gi"}."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Resource limits."""


class Canary(KubeModel):
    """A second version receiving a share of traffic; promote by moving it to model.storageUri."""

    storage_uri: str = Field(min_length=1, max_length=2048)
    """The canary's weights."""
    traffic_percent: int = Field(ge=0, le=100)
    """Percent of requests the canary receives (0-100)."""


class KServeServing(KubeModel):
    """Serve the model with a KServe InferenceService."""

    runtime: str | None = Field(default=None, max_length=253)
    """A ServingRuntime name; defaults to the vibeplane modelserver."""
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe's deployment mode; only Serverless can scale to zero."""
    gpu: Gpu | None = None
    """GPUs per replica."""
    resources: Resources | None = None
    """CPU and memory per replica."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas; 0 (scale to zero) needs deploymentMode Serverless."""
    max_replicas: int = Field(default=1, ge=1, le=1000)
    """Most replicas."""
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] | None = None
    """The autoscaling metric."""
    scale_target: int | None = Field(default=None, ge=1)
    """The autoscaling target per replica for scaleMetric."""
    canary: Canary | None = None
    """A canary version and its traffic share; needs deploymentMode Serverless (KServe splits
    traffic between revisions only there). Promote: move canary.storageUri to
    model.storageUri and remove canary. Roll back: remove canary, or set trafficPercent 0 to
    keep the canary revision while every request goes to the previous one."""

    @model_validator(mode="after")
    def _replicas_consistent(self) -> KServeServing:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if self.min_replicas == 0 and self.deployment_mode != "Serverless":
            raise ValueError(
                "minReplicas 0 needs deploymentMode Serverless: KServe's HPA cannot scale a "
                "RawDeployment to zero"
            )
        if self.canary is not None and self.deployment_mode != "Serverless":
            raise ValueError(
                "canary needs deploymentMode Serverless: KServe splits traffic between "
                "revisions only in Serverless mode (a RawDeployment would send all of it to "
                "the canary)"
            )
        return self


KSERVE_RULES: list[JsonValue] = [
    {
        "rule": "self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
    },
    {
        "rule": "self.minReplicas > 0 || self.deploymentMode == 'Serverless'",
        "message": "minReplicas 0 (scale to zero) needs deploymentMode Serverless: KServe's HPA"
        " cannot scale a RawDeployment to zero",
    },
    {
        "rule": "!has(self.canary) || self.deploymentMode == 'Serverless'",
        "message": "canary needs deploymentMode Serverless: KServe splits traffic between"
        " revisions only in Serverless mode (a RawDeployment would send all of it to the canary)",
    },
]


class External(KubeModel):
    """Use an OpenAI-compatible endpoint: the rented frontier fallback."""

    base_url: str = Field(
        alias="baseURL",
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.matches('^https?://[^\\\\s/]+')",
                    "message": "baseURL must be an http(s) URL such as https://api.example.com/v1",
                }
            ]
        },
    )
    """The API's base URL, e.g. https://api.example.com/v1."""
    model: str = Field(min_length=1, max_length=253)
    """The model name the endpoint expects."""
    api_key_secret_ref: SecretKeyRef | None = None
    """The Secret key holding the API key; never copied into status, events or logs."""


class Builtin(KubeModel):
    """Use the offline builtin generator (runtime/modelserver); takes no settings."""


class Serving(KubeModel):
    """How the model is served: exactly one of kserve, external, builtin."""

    kserve: KServeServing | None = Field(
        default=None, json_schema_extra={"x-kubernetes-validations": KSERVE_RULES}
    )
    """A KServe InferenceService on the platform's GPUs."""
    external: External | None = None
    """An external OpenAI-compatible endpoint."""
    builtin: Builtin | None = None
    """The builtin offline generator."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Serving:
        chosen = [mode for mode in SERVING_MODES if getattr(self, mode) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"exactly one of serving.kserve, serving.external, serving.builtin must be set, "
                f"got {len(chosen)}"
            )
        return self

    @property
    def mode(self) -> str:
        return next(mode for mode in SERVING_MODES if getattr(self, mode) is not None)


SERVING_RULE: dict[str, JsonValue] = {
    "rule": "[has(self.kserve), has(self.external), has(self.builtin)].filter(x, x).size() == 1",
    "message": "exactly one of serving.kserve, serving.external, serving.builtin must be set",
}


class Pricing(KubeModel):
    """What using the model costs, charged to the workspace that generates."""

    input_per_million: DecimalString = "0"
    """Price per million input tokens."""
    output_per_million: DecimalString = "0"
    """Price per million output tokens."""
    gpu_hour: DecimalString = "0"
    """Price per GPU-hour of running replicas."""


class Limits(KubeModel):
    """The model's context and output limits."""

    context_tokens: int = Field(default=32768, ge=256)
    """Longest prompt plus context the model accepts, in tokens."""
    output_tokens: int = Field(default=8192, ge=16)
    """Most tokens one generation may produce; also the size of a budget reservation."""


class Routing(KubeModel):
    """How the router orders this model among others."""

    priority: int = Field(default=100, ge=0, le=1000)
    """Lower is tried first among fallbacks."""
    fallbacks: list[str] = Field(default_factory=list, max_length=16)
    """ModelDeployments to try, in order, when this one is not Ready or fails."""


class ModelDeploymentSpec(KubeModel):
    """The desired state of one model."""

    model: ModelSource
    """The model and its weights."""
    serving: Serving = Field(json_schema_extra={"x-kubernetes-validations": [SERVING_RULE]})
    """How it is served: exactly one of kserve, external, builtin."""
    pricing: Pricing | None = None
    """Prices charged per token and GPU-hour."""
    tier: Literal["small", "medium", "large"] = "medium"
    """Capability tier; Downgrade moves a workspace to a cheaper one past its soft limit."""
    limits: Limits | None = None
    """Context and output limits."""
    routing: Routing | None = None
    """Routing priority and fallbacks."""


class CanaryStatus(KubeModel):
    """The canary as KServe reports it."""

    storage_uri: str | None = None
    """The canary's weights."""
    phase: Literal["WaitingForStable", "Progressing", "Serving", "RollingBack"] | None = None
    """WaitingForStable: model.storageUri is rolled out first, so the canary has a revision to
    split traffic with; Progressing: the canary revision is not ready yet; Serving: it takes
    trafficPercent of requests; RollingBack: the canary was removed and every request goes to
    the previous revision until model.storageUri is ready again."""
    traffic_percent: int | None = None
    """Percent of traffic the canary receives now."""
    ready: bool | None = None
    """Whether the canary revision is ready."""
    latest_revision: str | None = None
    """KServe's latest ready revision of the predictor (the canary's while one rolls out)."""
    previous_revision: str | None = None
    """The last revision rolled out with all traffic; it serves what the canary does not."""


class ProbeStatus(KubeModel):
    """Health checks of an external or builtin endpoint (GET {url}/models)."""

    failures: int = 0
    """Consecutive failed checks; the next one waits 5 s doubling up to 5 min."""
    last_failure_reason: str | None = None
    """Why the last check failed: SecretNotFound, SecretKeyNotFound, Timeout, ConnectionFailed,
    ServerError, ClientError or UnparseableResponse."""


class MeteringStatus(KubeModel):
    """GPU-hours of a KServe deployment, charged from readings of its running replicas."""

    since: datetime | None = None
    """When the last reading was taken; the next charge covers the time from here."""
    replicas: int = 0
    """Predictor replicas running at the last reading."""
    gpus_per_replica: int = 0
    """nvidia.com/gpu of each replica at the last reading."""
    gpu_hours: str = "0"
    """GPU-hours this deployment has charged (informational: the budget ledger is the record)."""
    charged_to: str | None = None
    """The ledger charged: workspace/<name> in a workspace's namespace, else platform."""


class EffectivePricing(KubeModel):
    """The prices in force."""

    input_per_million: str = "0"
    """Price per million input tokens."""
    output_per_million: str = "0"
    """Price per million output tokens."""
    gpu_hour: str = "0"
    """Price per GPU-hour."""


class ModelDeploymentStatus(KubeModel):
    """The observed state of one model."""

    serving_mode: Literal["kserve", "external", "builtin"] | None = None
    """Which serving mode is in use."""
    url: str | None = None
    """The endpoint the router sends chat completions to."""
    replicas: int | None = None
    """Predictor replicas running now (KServe only)."""
    canary: CanaryStatus | None = None
    """The canary's state."""
    pricing: EffectivePricing | None = None
    """The effective prices."""
    probe: ProbeStatus | None = None
    """Endpoint checks (external and builtin)."""
    metering: MeteringStatus | None = None
    """GPU-hour metering (KServe)."""
    conditions: Conditions = Field(default_factory=list)
    """Ready, PredictorReady, CanaryReady."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""


INFO = KindInfo(
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("md",),
    scope="Namespaced",
    spec=ModelDeploymentSpec,
    status=ModelDeploymentStatus,
    description=(
        "A ModelDeployment is one model the platform can generate with: served by KServe on "
        "GPUs, an external OpenAI-compatible endpoint, or the builtin offline generator."
    ),
    printer_columns=(
        PrinterColumn("Mode", ".status.servingMode"),
        PrinterColumn("Model", ".spec.model.name"),
        PrinterColumn("Tier", ".spec.tier"),
        READY_COLUMN,
        PrinterColumn("Replicas", ".status.replicas", type="integer", priority=1),
        PrinterColumn("URL", ".status.url", priority=1),
        AGE_COLUMN,
    ),
)
