"""ModelDeployment: one model the platform can generate with.

Exactly one serving mode: `kserve` (the platform's own model on GPUs: vLLM through KServe's
LLMInferenceService, or an InferenceService on the vibeplane model server for tiny test
models), `external` (a rented OpenAI-compatible endpoint) or `builtin` (the offline generator,
for air-gapped installs and tests).

LoRA adapters listed in `adapters` share the base model's GPUs: the router asks for one by its
name (the `model` of a chat completion). `rollout` puts a candidate adapter on a canary share
of generations and promotes or rolls it back by measured success.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator

from vibeplane.api.common import (
    DNS_SUBDOMAIN_PATTERN,
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


class Lora(KubeModel):
    """vLLM's LoRA settings (KServe's model.lora): how many adapters share the base model."""

    max_rank: int = Field(default=16, ge=1, le=512)
    """The largest adapter rank served (vLLM --max-lora-rank)."""
    max_adapters: int = Field(default=8, ge=1, le=256)
    """Adapters resident on the GPU at once (vLLM --max-loras); more are swapped in."""
    max_cpu_adapters: int | None = Field(default=None, ge=1, le=4096)
    """Adapters kept in CPU memory (vLLM --max-cpu-loras)."""


PresetName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


class KServeServing(KubeModel):
    """Serve the model with KServe: vLLM (LLMInferenceService, the default) or the vibeplane
    model server (tiny models and tests)."""

    engine: Literal["vllm", "modelserver"] = "vllm"
    """vllm (default): KServe's LLMInferenceService (serving.kserve.io/v1alpha2) with vLLM
    workers, prefix caching and LoRA adapters; modelserver: an InferenceService on the
    vibeplane model server runtime (its transformers backend: tiny models and tests)."""
    prefix_caching: bool = True
    """vLLM automatic prefix caching: every generation starts with the same format
    specification, so its KV blocks are computed once per replica (vllm only)."""
    lora: Lora | None = None
    """LoRA limits (vllm only); defaults apply when adapters are listed."""
    presets: list[PresetName] = Field(default_factory=list, max_length=8)
    """KServe LLMInferenceServiceConfigs merged under this model's service, in order, after
    KServe's well-known ones (its `baseRefs`; vllm only): e.g. the platform's vLLM image from
    its own registry. Looked up where KServe looks: the model's namespace, then KServe's
    (`kserve`); a missing one is Ready=False/PresetNotFound and nothing is applied."""
    runtime: str | None = Field(default=None, max_length=253)
    """A ServingRuntime name; defaults to the vibeplane modelserver (modelserver only)."""
    deployment_mode: Literal["RawDeployment", "Serverless"] = "RawDeployment"
    """KServe's deployment mode; only Serverless can scale to zero (modelserver only: an
    LLMInferenceService runs Deployments)."""
    gpu: Gpu | None = None
    """GPUs per replica."""
    resources: Resources | None = None
    """CPU and memory per replica."""
    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas; 0 (scale to zero) needs engine modelserver and deploymentMode
    Serverless."""
    max_replicas: int = Field(default=1, ge=1, le=1000)
    """Most replicas. With engine vllm and maxReplicas above minReplicas, KServe's Workload
    Variant Autoscaler scales the vLLM replicas on their saturation (KV cache, queue depth)
    through `autoscaler`."""
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] | None = None
    """The autoscaling metric (modelserver only)."""
    scale_target: int | None = Field(default=None, ge=1)
    """The autoscaling target per replica for scaleMetric (modelserver only)."""
    autoscaler: Literal["KEDA", "HPA"] = "KEDA"
    """engine vllm, autoscaled: what acts on the Workload Variant Autoscaler's desired
    replicas. KEDA (a ScaledObject reading Prometheus directly) or HPA (needs a Prometheus
    Adapter serving wva_desired_replicas as an external metric)."""
    canary: Canary | None = None
    """A canary version and its traffic share; needs deploymentMode Serverless (KServe splits
    traffic between revisions only there). Promote: move canary.storageUri to
    model.storageUri and remove canary. Roll back: remove canary, or set trafficPercent 0 to
    keep the canary revision while every request goes to the previous one."""

    @model_validator(mode="after")
    def _replicas_consistent(self) -> KServeServing:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        if self.engine == "vllm":
            problem = vllm_problem(self)
            if problem is not None:
                raise ValueError(problem)
            return self
        if self.presets:
            raise ValueError(MODELSERVER_PRESETS_MESSAGE)
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


VLLM_CANARY_MESSAGE = (
    "canary (a second storageUri) is for engine modelserver; with engine vllm a new version is "
    "an adapter: list it in adapters and roll it out with spec.rollout"
)
VLLM_ZERO_MESSAGE = (
    "engine vllm keeps at least one replica (KServe's LLM autoscaling has no scale to zero): "
    "set minReplicas to 1 or more, or use engine modelserver with deploymentMode Serverless"
)
VLLM_SERVERLESS_MESSAGE = (
    "deploymentMode Serverless is for engine modelserver: an LLMInferenceService runs "
    "Deployments (leave deploymentMode RawDeployment)"
)
VLLM_METRIC_MESSAGE = (
    "scaleMetric and scaleTarget are for engine modelserver: engine vllm scales on vLLM's "
    "saturation (KServe's Workload Variant Autoscaler) between minReplicas and maxReplicas"
)
VLLM_RUNTIME_MESSAGE = (
    "runtime (a ServingRuntime) is for engine modelserver: engine vllm runs KServe's vLLM workload"
)


def vllm_problem(kserve: KServeServing) -> str | None:
    """Why engine vllm cannot serve these settings, or None (the CRD's CEL rules say the
    same)."""
    if kserve.canary is not None:
        return VLLM_CANARY_MESSAGE
    if kserve.min_replicas == 0:
        return VLLM_ZERO_MESSAGE
    if kserve.deployment_mode == "Serverless":
        return VLLM_SERVERLESS_MESSAGE
    if kserve.scale_metric is not None or kserve.scale_target is not None:
        return VLLM_METRIC_MESSAGE
    if kserve.runtime is not None:
        return VLLM_RUNTIME_MESSAGE
    return None


MODELSERVER_PRESETS_MESSAGE = (
    "presets (LLMInferenceServiceConfigs) are for engine vllm: engine modelserver makes an "
    "InferenceService"
)


KSERVE_RULES: list[JsonValue] = [
    {
        "rule": "self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
    },
    {
        "rule": "self.engine == 'vllm' || self.minReplicas > 0 || "
        "self.deploymentMode == 'Serverless'",
        "message": "minReplicas 0 (scale to zero) needs deploymentMode Serverless: KServe's HPA"
        " cannot scale a RawDeployment to zero",
    },
    {
        "rule": "self.engine == 'vllm' || !has(self.canary) || self.deploymentMode == 'Serverless'",
        "message": "canary needs deploymentMode Serverless: KServe splits traffic between"
        " revisions only in Serverless mode (a RawDeployment would send all of it to the canary)",
    },
    {"rule": "self.engine != 'vllm' || !has(self.canary)", "message": VLLM_CANARY_MESSAGE},
    {"rule": "self.engine != 'vllm' || self.minReplicas >= 1", "message": VLLM_ZERO_MESSAGE},
    {
        "rule": "self.engine != 'vllm' || self.deploymentMode != 'Serverless'",
        "message": VLLM_SERVERLESS_MESSAGE,
    },
    {
        "rule": "self.engine != 'vllm' || (!has(self.scaleMetric) && !has(self.scaleTarget))",
        "message": VLLM_METRIC_MESSAGE,
    },
    {"rule": "self.engine != 'vllm' || !has(self.runtime)", "message": VLLM_RUNTIME_MESSAGE},
    {
        "rule": "self.engine == 'vllm' || !has(self.presets) || size(self.presets) == 0",
        "message": MODELSERVER_PRESETS_MESSAGE,
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
    min_output_tokens: int = Field(default=1024, ge=16)
    """The floor of a bounded generation: when the budget cannot hold outputTokens, a
    generation may still run with what remains, sent as its max_tokens, down to this many
    output tokens (a smaller answer would not be useful). Capped at outputTokens."""


class Routing(KubeModel):
    """How the router orders this model among others."""

    priority: int = Field(default=100, ge=0, le=1000)
    """Lower is tried first among fallbacks."""
    fallbacks: list[str] = Field(default_factory=list, max_length=16)
    """ModelDeployments to try, in order, when this one is not Ready or fails."""


ADAPTER_URI_RULE: dict[str, JsonValue] = {
    "rule": "self.matches('^(s3|hf|pvc)://.+')",
    "message": "an adapter's uri must be s3://, hf:// or pvc://",
}


ADAPTER_SOURCE_RULE: dict[str, JsonValue] = {
    "rule": "has(self.uri) || has(self.training)",
    "message": "an adapter needs a uri or a training",
}


class Adapter(KubeModel):
    """A LoRA adapter on the base model, served under its own model name."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [ADAPTER_SOURCE_RULE]})

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )
    """The model name a generation asks for to get this adapter, e.g. "base1-2026-12"."""
    uri: str | None = Field(
        default=None,
        min_length=6,
        max_length=2048,
        json_schema_extra={"x-kubernetes-validations": [ADAPTER_URI_RULE]},
    )
    """Where its weights are (a PEFT directory), e.g. s3://models/adapters/base1-2026-12.
    Unset with `training`: the adapter that run exported, once it has succeeded."""
    workspace: str | None = Field(default=None, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)
    """Private to this Workspace: only its apps are routed to it (a workspace's own adapter,
    trained from its own records)."""
    training: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    """The ModelTraining (in this namespace) that produced it: without `uri`, the adapter is
    served once that run has succeeded, from the URI in its status."""

    @model_validator(mode="after")
    def _has_a_source(self) -> Adapter:
        if self.uri is None and self.training is None:
            raise ValueError("an adapter needs a uri or a training")
        return self


ROLLOUT_ACTIONS = ("Auto", "Pin", "Promote", "Abort")


class Rollout(KubeModel):
    """A candidate adapter on a canary share of generations, decided by measured success.

    Rule (vibeplane.generation.rollout): once each arm has `minSamples` finished generations,
    the candidate is rolled back when a one-sided two-proportion z-test says its success rate
    is below the incumbent's (z < -zThreshold), promoted when a non-inferiority test says it is
    not worse by more than `margin` (Agresti-Caffo adjusted z > zThreshold), and stays on
    canary otherwise, up to `maxSamples` per arm (then rolled back: not shown to be as
    good)."""

    candidate: str | None = Field(default=None, min_length=1, max_length=63)
    """The adapter under test (a name in adapters). Unset: the newest succeeded ModelTraining
    in this namespace whose output.modelDeployment names this deployment (a finished run
    becomes the candidate by itself); once one is promoted, it is the next one's incumbent."""
    incumbent: str | None = Field(default=None, max_length=63)
    """What it is compared with: an adapter name, or unset for the base model."""
    canary_percent: int = Field(default=10, ge=1, le=50)
    """Percent of generations routed to the candidate while it is evaluated."""
    min_samples: int = Field(default=100, ge=10, le=1_000_000)
    """Finished generations per arm before any decision."""
    max_samples: int = Field(default=2000, ge=10, le=10_000_000)
    """Generations per arm after which an undecided candidate is rolled back."""
    margin: DecimalString = "0.02"
    """How much lower a success rate may be and still count as at least as good."""
    z_threshold: DecimalString = "1.645"
    """The z-score the decision needs (1.645: one-sided 5 %)."""
    action: Literal["Auto", "Pin", "Promote", "Abort"] = "Auto"
    """Auto: the rule decides; Pin: keep the canary share, never decide; Promote: promote
    now; Abort: roll back now."""


ADAPTER_RULES: list[JsonValue] = [
    {
        "rule": "self.all(a, self.exists_one(b, b.name == a.name))",
        "message": "adapter names must be unique",
    }
]
ROLLOUT_RULE: dict[str, JsonValue] = {
    "rule": "!has(self.rollout) || !has(self.rollout.candidate) || (has(self.adapters) && "
    "self.adapters.exists(a, a.name == self.rollout.candidate))",
    "message": "rollout.candidate must name an adapter in adapters",
}


class ModelDeploymentSpec(KubeModel):
    """The desired state of one model."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [ROLLOUT_RULE]})

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
    adapters: list[Adapter] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-validations": ADAPTER_RULES},
    )
    """LoRA adapters served on this base model, each under its own model name."""
    rollout: Rollout | None = None
    """A candidate adapter on canary, promoted or rolled back by measured success."""

    @model_validator(mode="after")
    def _adapters_consistent(self) -> ModelDeploymentSpec:
        names = [adapter.name for adapter in self.adapters]
        if len(names) != len(set(names)):
            raise ValueError("adapter names must be unique")
        rollout = self.rollout
        if rollout is not None and rollout.candidate is not None and rollout.candidate not in names:
            raise ValueError("rollout.candidate must name an adapter in adapters")
        return self


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


class ArmBaseline(KubeModel):
    """The served model's totals when the rollout started: its arm counts from here."""

    generations: int = 0
    successes: int = 0
    cost: str = "0"
    latency_seconds: str = "0"


class ArmStatus(KubeModel):
    """What one arm of a rollout has measured."""

    model: str | None = None
    """The model name asked for (the adapter, or the base model)."""
    generations: int = 0
    """Finished generations routed to it."""
    successes: int = 0
    """Those whose revision passed validation without a fix-up."""
    success_rate: str | None = None
    """successes / generations."""
    cost_per_app: str | None = None
    """Mean cost of a generated app."""
    latency_seconds: str | None = None
    """Mean model latency per generation."""
    counted_from: ArmBaseline | None = None
    """The model's totals (in its outcomes ConfigMap) when the rollout started."""


class RolloutStatus(KubeModel):
    """Where a rollout stands, and the numbers behind its decision."""

    candidate: str | None = None
    """The adapter under test."""
    phase: Literal["Canary", "Pinned", "Promoted", "RolledBack"] | None = None
    """Canary: measuring; Pinned: measuring, not deciding; Promoted/RolledBack: decided."""
    canary_percent: int | None = None
    """Share of generations routed to the candidate now (0 once decided)."""
    incumbent: ArmStatus | None = None
    """The incumbent's numbers on the same traffic."""
    candidate_arm: ArmStatus | None = None
    """The candidate's numbers."""
    z_score: str | None = None
    """The two-proportion z-score (candidate - incumbent)."""
    decision: str | None = None
    """The rule's last verdict, with its numbers."""
    decided_at: datetime | None = None
    """When it was promoted or rolled back."""


class ModelEconomics(KubeModel):
    """What generating an app with this model costs (since the operator started counting)."""

    apps: int = 0
    """Generations that produced a revision."""
    tokens_in: int = 0
    """Input tokens of those generations."""
    tokens_out: int = 0
    """Output tokens."""
    token_cost: str = "0"
    """Tokens x prices."""
    gpu_hours: str = "0"
    """GPU-hours metered (kserve)."""
    gpu_cost: str = "0"
    """GPU-hours x gpuHour price."""
    cost_per_app: str | None = None
    """(tokenCost + gpuCost) / apps: the figure to hold against a frontier API's."""


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
    adapters: list[str] = Field(default_factory=list)
    """The adapters served now, by model name."""
    rollout: RolloutStatus | None = None
    """The rollout's state and numbers."""
    economics: ModelEconomics | None = None
    """Cost per generated app."""
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
