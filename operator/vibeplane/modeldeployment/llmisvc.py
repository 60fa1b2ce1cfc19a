"""Pure builders for the vLLM path: a ModelDeployment -> KServe's LLMInferenceService.

Why LLMInferenceService (serving.kserve.io/v1alpha2, KServe v0.20) and not an InferenceService
on the huggingface runtime's vLLM backend: the LLM path is where KServe puts LLM serving now.
It takes LoRA adapters as data (`model.lora.adapters`: name + URI, downloaded by KServe's
storage initializer and passed to vLLM as --lora-modules), so a new adapter is an edit of a
list rather than of a runtime's command line; it runs vLLM (llm-d images) with prefix caching
and can put llm-d's inference scheduler in front (prefix- and LoRA-aware routing across
replicas) where the platform has the Gateway API inference extension; and it disaggregates
prefill/decode and multi-node workers when a model outgrows one GPU. The huggingface runtime
serves one model per InferenceService and knows adapters only through free-form arguments.

What is emitted (and nothing KServe's webhook would rewrite, so the stored spec stays what is
applied): the base model's URI and served name; the adapters with vLLM's LoRA limits; one
container `main` (KServe's well-known template fills in the vLLM image and command) with the
GPUs and `VLLM_ADDITIONAL_ARGS` (prefix caching); the replicas: a fixed count when
minReplicas equals maxReplicas, else KServe's `scaling` between them, driven by the Workload
Variant Autoscaler (vLLM's saturation: KV cache, queue depth; `variantCost` the replica's
GPU-hour price) through a KEDA ScaledObject or an HPA; the model ServiceAccount; GPU tolerations
and product affinity as for InferenceServices. The router (Gateway, HTTPRoute, scheduler) only
where the platform enables it (ServingSettings.llm_router).

LLMInferenceServiceConfig (KServe's presets, merged under the service by KServe's controller):
the operator emits none. KServe's install ships the well-known ones (the vLLM image and command
of `main`), which KServe applies by itself; what vibeplane sets per ModelDeployment is spelled
out here, so the object applied is the whole intent and a dry-run against the CRD checks all of
it. A platform's own presets (its vLLM image from its registry, tuned flags) are its to install
(examples/llminferenceserviceconfig-vllm.yaml.example); a ModelDeployment names them in
`kserve.presets` (the service's `baseRefs`), and the operator checks each exists where KServe
looks for it (`preset_locations`) before it applies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from vibeplane.api import modeldeployment as api
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.modeldeployment.desired import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    Manifest,
    ServingSettings,
    _get,
    _passthrough,
    _resources,
    isvc_labels,
    owner_reference,
)

LLMISVC_API_VERSION = "serving.kserve.io/v1alpha2"
LLMISVC_KIND = "LLMInferenceService"
LLMISVC_POD_SELECTOR = (
    "app.kubernetes.io/part-of=llminferenceservice,kserve.io/component=workload,"
    "app.kubernetes.io/name={name}"
)
"""KServe's labels on the workload pods of one LLMInferenceService (GetWorkloadLabelSelector)."""
MAIN_CONTAINER = "main"
"""The container KServe's well-known template runs vLLM in; ours is merged into it by name."""
OPENAI_PATH = "/v1"
"""vLLM's OpenAI routes."""
PRESET_KIND = "LLMInferenceServiceConfig"
KSERVE_NAMESPACE = "kserve"
"""Where KServe's controller looks for a preset not in the service's own namespace
(its constants.KServeNamespace)."""


def preset_locations(namespace: str) -> tuple[str, ...]:
    """The namespaces KServe reads a named preset from, in order."""
    return (namespace, KSERVE_NAMESPACE) if namespace != KSERVE_NAMESPACE else (namespace,)


def missing_presets_condition(missing: Sequence[str], namespace: str) -> ConditionSpec:
    """Ready=False when named presets exist nowhere KServe looks (nothing is applied: KServe
    would refuse to reconcile the service)."""
    where = " or ".join(preset_locations(namespace))
    return ConditionSpec(
        "Ready",
        "False",
        "PresetNotFound",
        f"{PRESET_KIND} {', '.join(missing)} not found in {where}: install it, or remove it "
        "from serving.kserve.presets; nothing changed",
    )


def vllm_args(kserve: api.KServeServing) -> list[str]:
    """Extra `vllm serve` flags (KServe's template appends VLLM_ADDITIONAL_ARGS)."""
    return ["--enable-prefix-caching" if kserve.prefix_caching else "--no-enable-prefix-caching"]


def _lora(adapters: Sequence[tuple[str, str]], kserve: api.KServeServing) -> Manifest | None:
    if not adapters:
        return None
    limits = kserve.lora or api.Lora()
    lora: Manifest = {
        "adapters": [{"name": name, "uri": uri} for name, uri in adapters],
        "maxRank": limits.max_rank,
        "maxAdapters": limits.max_adapters,
    }
    if limits.max_cpu_adapters is not None:
        lora["maxCpuAdapters"] = limits.max_cpu_adapters
    return lora


def _variant_cost(spec: api.ModelDeploymentSpec) -> str | None:
    """A replica's price per hour (its GPUs x pricing.gpuHour), WVA's variantCost; None when
    the deployment names no GPU price."""
    kserve = spec.serving.kserve
    gpus = kserve.gpu.count if kserve is not None and kserve.gpu is not None else 0
    try:
        price = Decimal((spec.pricing or api.Pricing()).gpu_hour) * gpus
    except InvalidOperation:
        return None
    if price <= 0:
        return None
    text = format(price.normalize(), "f")
    return text


def _replicas(spec: api.ModelDeploymentSpec, kserve: api.KServeServing) -> Manifest:
    """`replicas` (fixed), or `scaling` when maxReplicas is above minReplicas."""
    if kserve.min_replicas == kserve.max_replicas:
        return {"replicas": kserve.min_replicas}
    actuator = "keda" if kserve.autoscaler == "KEDA" else "hpa"
    wva: Manifest = {actuator: {}}
    cost = _variant_cost(spec)
    if cost is not None:
        wva["variantCost"] = cost
    return {
        "scaling": {
            "minReplicas": kserve.min_replicas,
            "maxReplicas": kserve.max_replicas,
            "wva": dict(sorted(wva.items())),
        }
    }


def _gpu_placement(kserve: api.KServeServing) -> Manifest:
    gpu = kserve.gpu
    if gpu is None or gpu.count <= 0:
        return {}
    placement: Manifest = {
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    }
    if gpu.product:
        term = {
            "matchExpressions": [
                {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [gpu.product]}
            ]
        }
        placement["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    return placement


def llm_inference_service(
    name: str,
    namespace: str,
    uid: str,
    spec: api.ModelDeploymentSpec,
    settings: ServingSettings,
    adapters: Sequence[tuple[str, str]] | None = None,
) -> Manifest:
    """The LLMInferenceService serving `spec` with vLLM (call desired.kserve_problem first).

    `adapters`: (name, uri) of the adapters to serve (adapters.resolve); default: those of
    the spec that name a uri."""
    kserve = spec.serving.kserve
    assert kserve is not None, "needs serving.kserve"
    assert kserve.engine == "vllm", "needs serving.kserve.engine vllm"
    model: Manifest = {"uri": spec.model.storage_uri, "name": spec.model.name}
    if adapters is None:
        adapters = [(a.name, a.uri) for a in spec.adapters if a.uri is not None]
    lora = _lora(adapters, kserve)
    if lora is not None:
        model["lora"] = lora
    container: Manifest = {
        "name": MAIN_CONTAINER,
        "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": " ".join(vllm_args(kserve))}],
    }
    resources = _resources(kserve)
    if resources:
        container["resources"] = resources
    template: Manifest = {
        "serviceAccountName": settings.service_account,
        # vLLM never calls the Kubernetes API.
        "automountServiceAccountToken": False,
        **_gpu_placement(kserve),
        "containers": [container],
    }
    body: Manifest = {"model": model, **_replicas(spec, kserve), "template": template}
    if kserve.presets:
        body["baseRefs"] = [{"name": preset} for preset in kserve.presets]
    if settings.llm_router:
        # A Gateway API route through the platform's gateway, and llm-d's endpoint picker
        # (prefix-cache and LoRA aware) in front of the replicas.
        body["router"] = {"gateway": {}, "route": {}, "scheduler": {}}
    return {
        "apiVersion": LLMISVC_API_VERSION,
        "kind": LLMISVC_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": isvc_labels(name),
            "ownerReferences": [owner_reference(name, uid)],
        },
        "spec": body,
    }


def llmisvc_url(live: Mapping[str, Any] | None) -> str | None:
    """The OpenAI base URL of a live LLMInferenceService: the cluster-local address first."""
    for path in (("status", "address", "url"), ("status", "url")):
        value = _get(live, *path)
        if isinstance(value, str) and value:
            return value.rstrip("/") + OPENAI_PATH
    for entry in _get(live, "status", "addresses") or []:
        value = entry.get("url") if isinstance(entry, Mapping) else None
        if isinstance(value, str) and value:
            return value.rstrip("/") + OPENAI_PATH
    return None


def llmisvc_status(
    spec: api.ModelDeploymentSpec, live: Mapping[str, Any] | None, running_replicas: int
) -> tuple[dict[str, Any], list[ConditionSpec]]:
    """Status fields and conditions mirroring what KServe reports of the LLMInferenceService."""
    ready = _passthrough(
        live, "Ready", "LLMInferenceServiceReady", "waiting for KServe to report the service"
    )
    workloads = _passthrough(
        live, "WorkloadsReady", "WorkloadsReady", "waiting for KServe to report the vLLM workloads"
    )
    url = llmisvc_url(live)
    if ready.status == "True" and url is None:
        ready = ConditionSpec("Ready", "False", "NoAddress", "KServe reports Ready but no address")
    fields: dict[str, Any] = {
        "url": url,
        "replicas": running_replicas,
        "canary": None,
        "probe": None,
    }
    # KServe's WorkloadsReady, reported as our PredictorReady (one name across engines).
    predictor = dataclasses.replace(workloads, type="PredictorReady")
    return fields, [ready, predictor]


__all__ = [
    "LLMISVC_API_VERSION",
    "LLMISVC_KIND",
    "LLMISVC_POD_SELECTOR",
    "PRESET_KIND",
    "llm_inference_service",
    "llmisvc_status",
    "llmisvc_url",
    "missing_presets_condition",
    "preset_locations",
    "vllm_args",
]
