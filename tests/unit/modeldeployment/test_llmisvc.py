"""The vLLM path's builders: the LLMInferenceService a ModelDeployment becomes, and its status."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.modeldeployment.support import (
    NAMESPACE,
    UID,
    VLLM_ADAPTERS,
    VLLM_AUTOSCALED,
    check_golden,
    spec,
)
from vibeplane.modeldeployment import llmisvc
from vibeplane.modeldeployment.desired import ServingSettings


def test_vllm_with_adapters_matches_golden() -> None:
    manifest = llmisvc.llm_inference_service(
        "base1", NAMESPACE, UID, VLLM_ADAPTERS, ServingSettings()
    )
    check_golden("vllm-adapters", manifest)
    assert manifest["spec"]["template"]["containers"][0]["env"] == [
        {"name": "VLLM_ADDITIONAL_ARGS", "value": "--enable-prefix-caching"}
    ]
    assert [a["name"] for a in manifest["spec"]["model"]["lora"]["adapters"]] == [
        "base1-2026-12",
        "acme-private",
    ]


def test_the_router_is_there_only_where_the_platform_enables_it() -> None:
    plain = llmisvc.llm_inference_service("m", NAMESPACE, UID, VLLM_ADAPTERS, ServingSettings())
    routed = llmisvc.llm_inference_service(
        "m", NAMESPACE, UID, VLLM_ADAPTERS, ServingSettings(llm_router=True)
    )
    assert "router" not in plain["spec"]
    assert routed["spec"]["router"] == {"gateway": {}, "route": {}, "scheduler": {}}


def test_no_adapters_no_lora_and_prefix_caching_can_be_turned_off() -> None:
    bare = spec(
        {
            "model": {"name": "m", "storageUri": "hf://org/m"},
            "serving": {"kserve": {"engine": "vllm", "prefixCaching": False}},
        }
    )
    manifest = llmisvc.llm_inference_service("m", NAMESPACE, UID, bare, ServingSettings())
    assert "lora" not in manifest["spec"]["model"]
    assert manifest["spec"]["template"]["containers"][0]["env"][0]["value"] == (
        "--no-enable-prefix-caching"
    )
    assert manifest["spec"]["replicas"] == 1


def test_vllm_is_the_default_engine_of_a_kserve_model() -> None:
    model = spec({"model": {"name": "m", "storageUri": "hf://o/m"}, "serving": {"kserve": {}}})
    assert model.serving.kserve is not None
    assert model.serving.kserve.engine == "vllm"


def test_autoscaled_vllm_matches_golden() -> None:
    manifest = llmisvc.llm_inference_service(
        "base1", NAMESPACE, UID, VLLM_AUTOSCALED, ServingSettings()
    )
    check_golden("vllm-autoscaled", manifest)


def test_between_min_and_max_replicas_kserves_autoscaler_scales_vllm() -> None:
    scaled = spec(
        {
            "model": {"name": "m", "storageUri": "hf://o/m"},
            "serving": {"kserve": {"gpu": {"count": 2}, "minReplicas": 1, "maxReplicas": 4}},
            "pricing": {"gpuHour": "3.20"},
        }
    )
    manifest = llmisvc.llm_inference_service("m", NAMESPACE, UID, scaled, ServingSettings())
    assert "replicas" not in manifest["spec"]  # KServe refuses replicas with scaling
    # WVA weighs a replica by its cost: 2 GPUs at 3.20 an hour.
    assert manifest["spec"]["scaling"] == {
        "minReplicas": 1,
        "maxReplicas": 4,
        "wva": {"keda": {}, "variantCost": "6.4"},
    }
    hpa = spec(
        {
            "model": {"name": "m", "storageUri": "hf://o/m"},
            "serving": {"kserve": {"minReplicas": 2, "maxReplicas": 3, "autoscaler": "HPA"}},
        }
    )
    manifest = llmisvc.llm_inference_service("m", NAMESPACE, UID, hpa, ServingSettings())
    assert manifest["spec"]["scaling"] == {"minReplicas": 2, "maxReplicas": 3, "wva": {"hpa": {}}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "deploymentMode": "Serverless",
                "canary": {"storageUri": "s3://x/y", "trafficPercent": 5},
            },
            "with engine vllm a new version is an adapter",
        ),
        ({"minReplicas": 0, "deploymentMode": "Serverless"}, "at least one replica"),
        ({"deploymentMode": "Serverless"}, "Serverless is for engine modelserver"),
        ({"scaleMetric": "rps", "maxReplicas": 3}, "scaleMetric and scaleTarget are for"),
        ({"runtime": "vibeplane-modelserver"}, "runtime .a ServingRuntime. is for engine"),
        ({"minReplicas": 3, "maxReplicas": 2}, "minReplicas must not exceed maxReplicas"),
    ],
)
def test_vllm_refuses_what_it_cannot_do(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(
            {
                "model": {"name": "m", "storageUri": "hf://o/m"},
                "serving": {"kserve": {"engine": "vllm", **change}},
            }
        )


def test_adapter_names_are_unique_and_the_rollout_names_one() -> None:
    base = {"model": {"name": "m"}, "serving": {"builtin": {}}}
    with pytest.raises(ValidationError, match="adapter names must be unique"):
        spec(
            {
                **base,
                "adapters": [{"name": "a", "uri": "s3://b/a"}, {"name": "a", "uri": "s3://b/c"}],
            }
        )
    with pytest.raises(ValidationError, match=r"rollout\.candidate must name an adapter"):
        spec(
            {**base, "adapters": [{"name": "a", "uri": "s3://b/a"}], "rollout": {"candidate": "b"}}
        )


def test_status_mirrors_kserve() -> None:
    live = {
        "status": {
            "url": "http://base1.ws-team-a.example.com",
            "addresses": [{"url": "http://base1-kserve-workload-svc.ws-team-a.svc.cluster.local"}],
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "WorkloadsReady", "status": "True"},
            ],
        }
    }
    fields, conditions = llmisvc.llmisvc_status(VLLM_ADAPTERS, live, 2)
    assert fields["url"] == "http://base1.ws-team-a.example.com/v1"
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("Ready", "True", "LLMInferenceServiceReady"),
        ("PredictorReady", "True", "WorkloadsReady"),
    ]
    waiting, pending = llmisvc.llmisvc_status(VLLM_ADAPTERS, None, 0)
    assert waiting["url"] is None
    assert pending[0].status == "Unknown"
