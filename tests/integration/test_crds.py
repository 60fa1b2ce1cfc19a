"""The generated CRDs on the real API server: printer columns, explain, and bad input refused."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import Kubectl
from tests.integration.support import create_object

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "vibeplane.io", "v1alpha1"


def test_the_crds_are_a_fixed_point_of_the_api_server(kubectl: Kubectl) -> None:
    """What the files say is what the server stores: another field manager (a GitOps tool)
    applies them without a conflict, and a server-side diff finds nothing to change."""
    result = kubectl("apply", "--server-side", "--field-manager=gitops", "-f", str(ROOT / "crds"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("serverside-applied") == 4
    diff = kubectl("diff", "--server-side", "--field-manager=gitops", "-f", str(ROOT / "crds"))
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout[-3000:] + diff.stderr


def test_kserve_inference_service_crd_is_installed(kubectl: Kubectl) -> None:
    result = kubectl("get", "crd", "inferenceservices.serving.kserve.io", "-o", "json")
    assert result.returncode == 0, result.stderr
    versions = [v["name"] for v in json.loads(result.stdout)["spec"]["versions"]]
    assert "v1beta1" in versions


@pytest.mark.parametrize(
    "crd",
    ["llminferenceservices.serving.kserve.io", "llminferenceserviceconfigs.serving.kserve.io"],
)
def test_kserve_llm_crds_are_installed(kubectl: Kubectl, crd: str) -> None:
    """KServe v0.20.0's LLM path (config/crd/full/llmisvc/): LLMInferenceService and its presets,
    LLMInferenceServiceConfig, v1alpha2 the storage version."""
    result = kubectl("get", "crd", crd, "-o", "json")
    assert result.returncode == 0, result.stderr
    versions = {v["name"]: v["storage"] for v in json.loads(result.stdout)["spec"]["versions"]}
    assert versions.get("v1alpha2") is True


@pytest.mark.parametrize(
    ("crd", "bundle"),
    [
        ("httproutes.gateway.networking.k8s.io", "v1.7.0"),
        ("gateways.gateway.networking.k8s.io", "v1.7.0"),
        ("gatewayclasses.gateway.networking.k8s.io", "v1.7.0"),
        ("referencegrants.gateway.networking.k8s.io", "v1.7.0"),
        ("certificates.cert-manager.io", None),
        ("issuers.cert-manager.io", None),
        ("clusterissuers.cert-manager.io", None),
    ],
)
def test_gateway_api_and_cert_manager_crds_are_established(
    kubectl: Kubectl, crd: str, bundle: str | None
) -> None:
    """The real CRDs from their Go modules: Gateway API's standard channel, cert-manager."""
    result = kubectl("get", "crd", crd, "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    established = [c for c in document["status"]["conditions"] if c["type"] == "Established"]
    assert established
    assert established[0]["status"] == "True"
    annotations = document["metadata"].get("annotations", {})
    if bundle is not None:
        assert annotations["gateway.networking.k8s.io/bundle-version"] == bundle
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"


def test_explain_shows_the_model_docstrings(kubectl: Kubectl) -> None:
    result = kubectl("explain", "vibeapp.spec.prompts")
    assert result.returncode == 0, result.stderr
    assert "appending a prompt asks for the next revision" in " ".join(result.stdout.split())
    result = kubectl("explain", "workspace.spec.budget.onExceeded")
    assert "Downgrade routes generations to a cheaper allowed model" in " ".join(
        result.stdout.split()
    )


def test_get_shows_printer_columns(kubectl: Kubectl, api: ApiClient, namespace: str) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    workspace = f"cols-{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", workspace, {})
    try:
        create_object(
            api,
            "ModelDeployment",
            "m",
            {"model": {"name": "m"}, "serving": {"builtin": {}}},
            namespace=namespace,
        )
        create_object(api, "VibeApp", "a", {"prompts": ["a todo list"]}, namespace=namespace)
        result = kubectl("get", "ws", workspace)
        assert result.stdout.split()[:6] == ["NAME", "NAMESPACE", "USED", "%", "APPS", "READY"]
        result = kubectl("get", "md,va", "-n", namespace)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["NAME", "MODE", "MODEL", "TIER", "READY", "AGE"]
        va_header = next(line for line in lines if line.startswith("NAME") and "PHASE" in line)
        assert va_header.split() == ["NAME", "PHASE", "REV", "URL", "COST", "AGE"]
        result = kubectl("get", "vibeplane", "-n", namespace, "-o", "name")
        assert "vibeapp.vibeplane.io/a" in result.stdout  # the category
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)


def _md(serving: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"model": {"name": "m"}, "serving": serving, **spec}


BAD_INPUTS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "two serving modes",
        "modeldeployments",
        _md({"builtin": {}, "external": {"baseURL": "https://x", "model": "m"}}),
        "exactly one of serving.kserve, serving.external, serving.builtin must be set",
    ),
    (
        "no serving mode",
        "modeldeployments",
        _md({}),
        "exactly one of serving.kserve, serving.external, serving.builtin must be set",
    ),
    (
        "negative quota quantity",
        "workspaces",
        {"quota": {"cpu": "-2"}},
        "a quantity must not be negative",
    ),
    (
        "negative quota count",
        "workspaces",
        {"quota": {"pods": -1}},
        "should be greater than or equal to 0",
    ),
    (
        "softLimitPercent 150",
        "workspaces",
        {"budget": {"softLimitPercent": 150}},
        "should be less than or equal to 99",
    ),
    (
        "money in words",
        "workspaces",
        {"budget": {"money": "ten dollars"}},
        "must be a non-negative decimal string",
    ),
    ("empty prompt list", "vibeapps", {"prompts": []}, "should have at least 1 items"),
    ("empty prompt", "vibeapps", {"prompts": [""]}, "should be at least 1 chars long"),
    (
        "unknown enum value",
        "vibeapps",
        {"prompts": ["x"], "stack": "cobol"},
        'Unsupported value: "cobol"',
    ),
    (
        "trafficPercent 101",
        "modeldeployments",
        _md({"kserve": {"canary": {"storageUri": "s3://m/c", "trafficPercent": 101}}}),
        "should be less than or equal to 100",
    ),
    (
        "scale to zero in RawDeployment",
        "modeldeployments",
        _md(
            {
                "kserve": {
                    "engine": "modelserver",
                    "minReplicas": 0,
                    "deploymentMode": "RawDeployment",
                }
            }
        ),
        "minReplicas 0 (scale to zero) needs deploymentMode Serverless",
    ),
    (
        "baseURL not http(s)",
        "modeldeployments",
        _md({"external": {"baseURL": "ftp://models.example.com", "model": "m"}}),
        "baseURL must be an http(s) URL",
    ),
    (
        "price in words",
        "modeldeployments",
        _md({"builtin": {}}, pricing={"inputPerMillion": "free"}),
        "must be a non-negative decimal string",
    ),
    (
        "default model not allowed",
        "workspaces",
        {"models": {"allowed": ["a"], "default": "b"}},
        "models.default must be one of models.allowed",
    ),
    (
        "egress to a non-CIDR",
        "workspaces",
        {"network": {"allowedEgressCIDRs": ["everywhere"]}},
        "must be a CIDR",
    ),
]


@pytest.mark.parametrize(
    ("plural", "spec", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_refused_with_a_clear_message(
    api: ApiClient, namespace: str, plural: str, spec: dict[str, Any], message: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    kind = {
        "workspaces": "Workspace",
        "modeldeployments": "ModelDeployment",
        "vibeapps": "VibeApp",
    }[plural]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}"},
        "spec": spec,
    }
    create = (
        (lambda: custom.create_cluster_custom_object(GROUP, VERSION, plural, body))
        if plural == "workspaces"
        else (
            lambda: custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        )
    )
    with pytest.raises(ApiException) as refused:
        create()
    assert refused.value.status == 422
    assert message in json.loads(refused.value.body)["message"]


def test_unknown_fields_are_refused_by_strict_validation(api: ApiClient, namespace: str) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "gpu-on-builtin"},
        "spec": _md({"builtin": {"gpu": {"count": 1}}}),
    }
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", body, field_validation="Strict"
        )
    assert 'unknown field "spec.serving.builtin.gpu"' in json.loads(refused.value.body)["message"]


def test_workspace_namespace_is_immutable(api: ApiClient) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    name = f"imm-{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"namespace": f"{name}-a"})
    try:
        with pytest.raises(ApiException) as refused:
            custom.patch_cluster_custom_object(
                GROUP, VERSION, "workspaces", name, {"spec": {"namespace": f"{name}-b"}}
            )
        assert "spec.namespace is immutable" in json.loads(refused.value.body)["message"]
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)
