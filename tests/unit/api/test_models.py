"""The pydantic models refuse what the CRD schema refuses, with the same rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vibeplane.api.modeldeployment import ModelDeploymentSpec
from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.api.workspace import WorkspaceSpec

BUILTIN_MODEL = {"model": {"name": "m"}, "serving": {"builtin": {}}}


def test_wire_names_are_the_contract() -> None:
    spec = WorkspaceSpec.model_validate(
        {
            "displayName": "Team",
            "network": {"allowInternetEgress": True, "allowedEgressCIDRs": ["10.1.0.0/16"]},
            "budget": {"money": "250.00", "gpuHours": "1.5", "onExceeded": "Downgrade"},
            "dataSharing": {"allowTraining": True},
        }
    )
    wire = spec.to_wire()
    assert wire["network"]["allowedEgressCIDRs"] == ["10.1.0.0/16"]
    assert wire["budget"]["softLimitPercent"] == 80
    assert wire["dataSharing"] == {"allowTraining": True}
    external = ModelDeploymentSpec.model_validate(
        {"model": {"name": "m"}, "serving": {"external": {"baseURL": "https://x/v1", "model": "m"}}}
    )
    assert external.to_wire()["serving"]["external"]["baseURL"] == "https://x/v1"
    assert external.serving.mode == "external"


@pytest.mark.parametrize(
    ("model", "data", "fragment"),
    [
        (ModelDeploymentSpec, {"model": {"name": "m"}, "serving": {}}, "exactly one"),
        (
            ModelDeploymentSpec,
            {"model": {"name": "m"}, "serving": {"builtin": {}, "kserve": {}}},
            "exactly one",
        ),
        (WorkspaceSpec, {"quota": {"cpu": "-1"}}, "not a non-negative Kubernetes quantity"),
        (WorkspaceSpec, {"quota": {"memory": -5}}, "must not be negative"),
        (WorkspaceSpec, {"budget": {"softLimitPercent": 150}}, "less than or equal to 99"),
        (WorkspaceSpec, {"budget": {"money": "ten dollars"}}, "not a decimal string"),
        (VibeAppSpec, {"prompts": []}, "at least 1 item"),
        (VibeAppSpec, {"prompts": ["x"], "stack": "cobol"}, "'static', 'python' or 'node'"),
        (
            ModelDeploymentSpec,
            {
                **BUILTIN_MODEL,
                "serving": {
                    "kserve": {"canary": {"storageUri": "s3://b/m", "trafficPercent": 101}}
                },
            },
            "less than or equal to 100",
        ),
        (
            ModelDeploymentSpec,
            {**BUILTIN_MODEL, "serving": {"kserve": {"engine": "modelserver", "minReplicas": 0}}},
            "needs deploymentMode Serverless",
        ),
    ],
)
def test_bad_input_is_refused(model: Any, data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        model.model_validate(data)


def test_scale_to_zero_in_serverless_is_fine() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            **BUILTIN_MODEL,
            "serving": {
                "kserve": {
                    "engine": "modelserver",
                    "minReplicas": 0,
                    "deploymentMode": "Serverless",
                }
            },
        }
    )
    assert spec.serving.kserve is not None
    assert spec.serving.kserve.min_replicas == 0
