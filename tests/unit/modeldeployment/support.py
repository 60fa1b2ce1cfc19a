"""Shared by the ModelDeployment unit tests: specs, golden files, KServe's status shapes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from vibeplane.api.modeldeployment import ModelDeploymentSpec

GOLDEN = Path(__file__).parent / "golden"
UID = "5e1f0000-0000-4000-8000-00000000000a"
NAMESPACE = "ws-team-a"


def check_golden(name: str, documents: Any) -> None:
    """Compare with golden/<name>.yaml; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump_all(
        documents if isinstance(documents, list) else [documents], sort_keys=False
    )
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; UPDATE_GOLDEN=1 to accept"


def spec(data: dict[str, Any]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(data)


RAW_GPU = spec(
    {
        "model": {
            "name": "base1",
            "version": "2026-11",
            "format": "huggingface",
            "storageUri": "s3://models/base1/2026-11",
        },
        "serving": {
            "kserve": {
                "engine": "modelserver",
                "deploymentMode": "RawDeployment",
                "gpu": {"count": 2, "product": "NVIDIA-H100-80GB-HBM3"},
                "resources": {
                    "requests": {"cpu": "8", "memory": "64Gi"},
                    "limits": {"memory": "64Gi"},
                },
                "minReplicas": 1,
                "maxReplicas": 3,
                "scaleMetric": "cpu",
                "scaleTarget": 70,
            }
        },
        "pricing": {"inputPerMillion": "0.20", "outputPerMillion": "0.80", "gpuHour": "2.50"},
        "tier": "large",
        "routing": {"priority": 10, "fallbacks": ["builtin"]},
    }
)
SERVERLESS_ZERO = spec(
    {
        "model": {"name": "coder", "storageUri": "s3://models/coder/v3"},
        "serving": {
            "kserve": {
                "engine": "modelserver",
                "deploymentMode": "Serverless",
                "runtime": "kserve-huggingfaceserver",
                "gpu": {"count": 1},
                "minReplicas": 0,
                "maxReplicas": 4,
                "scaleMetric": "concurrency",
                "scaleTarget": 8,
            }
        },
        "pricing": {"gpuHour": "1.10"},
    }
)
CANARY = spec(
    {
        "model": {"name": "base1", "storageUri": "s3://models/base1/2026-11"},
        "serving": {
            "kserve": {
                "engine": "modelserver",
                "deploymentMode": "Serverless",
                "gpu": {"count": 1, "product": "NVIDIA-L40S"},
                "minReplicas": 1,
                "maxReplicas": 2,
                "canary": {"storageUri": "s3://models/base1/2026-12", "trafficPercent": 10},
            }
        },
    }
)
EXTERNAL = spec(
    {
        "model": {"name": "frontier"},
        "serving": {
            "external": {
                "baseURL": "https://api.example.com/v1",
                "model": "frontier-large-2026",
                "apiKeySecretRef": {"name": "frontier-key", "key": "apiKey"},
            }
        },
        "pricing": {"inputPerMillion": "3", "outputPerMillion": "15"},
        "tier": "large",
    }
)
BUILTIN = spec({"model": {"name": "builtin"}, "serving": {"builtin": {}}, "tier": "small"})


def isvc_live(
    manifest: dict[str, Any],
    *,
    generation: int = 1,
    observed: int | None = 1,
    ready: str | None = "True",
    created: str | None = "base1-predictor-00001",
    latest_ready: str | None = "base1-predictor-00001",
    rolled_out: str | None = "base1-predictor-00001",
    traffic: list[dict[str, Any]] | None = None,
    url: str | None = "http://base1.ws-team-a.example.com",
    address: str | None = "http://base1-predictor.ws-team-a.svc.cluster.local",
) -> dict[str, Any]:
    """`manifest` as the API server would hold it once KServe reported this status."""
    live = {
        **manifest,
        "metadata": {**manifest["metadata"], "generation": generation, "uid": "isvc-uid"},
    }
    predictor: dict[str, Any] = {}
    for key, value in (
        ("latestCreatedRevision", created),
        ("latestReadyRevision", latest_ready),
        ("latestRolledoutRevision", rolled_out),
    ):
        if value is not None:
            predictor[key] = value
    if traffic is not None:
        predictor["traffic"] = traffic
    status: dict[str, Any] = {"components": {"predictor": predictor}}
    if observed is not None:
        status["observedGeneration"] = observed
    if ready is not None:
        status["conditions"] = [
            {"type": "PredictorReady", "status": ready},
            {"type": "Ready", "status": ready},
        ]
    if url:
        status["url"] = url
    if address:
        status["address"] = {"url": address}
    live["status"] = status
    return live


VLLM_ADAPTERS = spec(
    {
        "model": {"name": "base1", "storageUri": "s3://models/base1/2026-11"},
        "serving": {
            "kserve": {
                "engine": "vllm",
                "gpu": {"count": 1, "product": "NVIDIA-H200"},
                "resources": {"requests": {"cpu": "8", "memory": "64Gi"}},
                "minReplicas": 2,
                "maxReplicas": 2,
                "lora": {"maxRank": 32, "maxAdapters": 4},
            }
        },
        "adapters": [
            {
                "name": "base1-2026-12",
                "uri": "s3://models/adapters/base1-2026-12",
                "training": "base1-2026-12",
            },
            {"name": "acme-private", "uri": "s3://models/adapters/acme", "workspace": "acme"},
        ],
        "rollout": {"candidate": "base1-2026-12", "canaryPercent": 10},
        "pricing": {"inputPerMillion": "0", "outputPerMillion": "0", "gpuHour": "3.20"},
    }
)


VLLM_AUTOSCALED = spec(
    {
        "model": {"name": "base1", "storageUri": "s3://models/base1/2026-11"},
        "serving": {
            "kserve": {
                "gpu": {"count": 2, "product": "NVIDIA-H200"},
                "minReplicas": 1,
                "maxReplicas": 8,
            }
        },
        "adapters": [{"name": "base1-2026-12", "uri": "s3://models/adapters/base1-2026-12"}],
        "pricing": {"gpuHour": "3.20"},
    }
)
"""vLLM (the default engine) scaled by KServe's Workload Variant Autoscaler through KEDA."""
VLLM_AUTOSCALED_HPA = spec(
    {
        "model": {"name": "base1", "storageUri": "s3://models/base1/2026-11"},
        "serving": {
            "kserve": {
                "minReplicas": 2,
                "maxReplicas": 4,
                "autoscaler": "HPA",
                "presets": ["vibeplane-vllm"],
            }
        },
    }
)
"""Scaled through an HPA, with a platform preset (its `baseRefs`)."""
