"""Every kind of object the operator emits for other projects' APIs is accepted by their real
CRDs: a server-side dry-run (`kubectl apply --server-side --dry-run=server`) of each builder's
output against the API server with KServe's, Kubeflow Trainer's, Gateway API's and
cert-manager's CRDs installed
(hack/vibeplane_dev/cluster/config.py).

The builders' inputs are the golden cases of the unit tests, so what is proven here is what
the golden files hold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kubectl
from tests.unit.modeldeployment.support import (
    CANARY,
    RAW_GPU,
    SERVERLESS_ZERO,
    UID,
    VLLM_ADAPTERS,
    VLLM_AUTOSCALED,
    VLLM_AUTOSCALED_HPA,
)
from tests.unit.modeltraining.support import ADAPTER_URI, DATASET_URI, LORA_SFT
from tests.unit.modeltraining.support import UID as TRAINING_UID
from vibeplane.modeldeployment import desired, llmisvc
from vibeplane.modeltraining import desired as training
from vibeplane.vibeapp import publish, routes

pytestmark = pytest.mark.integration
SETTINGS = desired.ServingSettings()

Builder = Callable[[str], dict[str, Any]]
BUILDERS: dict[str, Builder] = {
    "InferenceService RawDeployment with GPUs": lambda ns: desired.inference_service(
        "base1", ns, UID, RAW_GPU, SETTINGS, desired.canary_plan(RAW_GPU, None)
    ),
    "InferenceService Serverless scale to zero": lambda ns: desired.inference_service(
        "small", ns, UID, SERVERLESS_ZERO, SETTINGS, desired.canary_plan(SERVERLESS_ZERO, None)
    ),
    "InferenceService canary": lambda ns: desired.inference_service(
        "base1", ns, UID, CANARY, SETTINGS, desired.CanaryPlan("canary", "s3://m/new", 10)
    ),
    "LLMInferenceService vLLM with adapters": lambda ns: llmisvc.llm_inference_service(
        "base1", ns, UID, VLLM_ADAPTERS, SETTINGS
    ),
    "LLMInferenceService autoscaled (WVA through KEDA)": lambda ns: llmisvc.llm_inference_service(
        "base1", ns, UID, VLLM_AUTOSCALED, SETTINGS
    ),
    "LLMInferenceService autoscaled (WVA through HPA), with a preset": lambda ns: (
        llmisvc.llm_inference_service("base1", ns, UID, VLLM_AUTOSCALED_HPA, SETTINGS)
    ),
    "LLMInferenceService with the router": lambda ns: llmisvc.llm_inference_service(
        "base1", ns, UID, VLLM_ADAPTERS, desired.ServingSettings(llm_router=True)
    ),
    "model ServiceAccount": lambda ns: desired.service_account(ns, SETTINGS, True, None),
    "TrainJob LoRA SFT": lambda ns: training.train_job(
        "base1-2026-12", ns, TRAINING_UID, LORA_SFT, DATASET_URI, ADAPTER_URI, "models-s3"
    ),
    "HTTPRoute of a preview (to the front service)": lambda ns: routes.http_route(
        "todo-preview",
        "todo",
        ns,
        UID,
        routes.preview_hosts("todo", ns, "apps.example.com"),
        routes.GatewayRef("vibeplane", "vibeplane-gateway", "http"),
        routes.Backend("vibeplane-frontdoor", "vibeplane-system", 80),
    ),
    "ReferenceGrant for a workspace's routes": lambda ns: routes.reference_grant(
        "ws-demo", routes.Backend("vibeplane-frontdoor", ns, 80), "demo", UID
    ),
    "HTTPRoute of a published app (with its ListenerSet)": lambda ns: publish.published_route(
        "todo",
        ns,
        UID,
        ["shop.example.com", "todo.apps.example.com"],
        routes.GatewayRef("vibeplane", "vibeplane-gateway", "http"),
        True,
    ),
    "ListenerSet of a published app's custom hostnames": lambda ns: publish.listener_set(
        "todo",
        ns,
        UID,
        ["shop.example.com", "www.shop.io"],
        routes.GatewayRef("vibeplane", "vibeplane-gateway", ""),
    ),
    "Certificate of a custom hostname": lambda ns: publish.certificate(
        "todo", ns, UID, "shop.example.com", "letsencrypt", "ClusterIssuer"
    ),
    "hostname claim (Lease)": lambda ns: routes.hostname_claim(
        "todo-ws-demo.apps.example.com", ns, "todo", "ws-demo", UID
    ),
}


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_the_real_crd_accepts_what_the_operator_emits(
    kubectl: Kubectl, namespace: str, tmp_path: Path, case: str
) -> None:
    manifest = BUILDERS[case](namespace)
    path = tmp_path / "object.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=vibeplane-test",
        "-o",
        "yaml",
        "-f",
        str(path),
    )
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(result.stdout)
    # Nothing the builder set was pruned as unknown by the schema.
    part = "spec" if "spec" in manifest else "metadata"
    assert _leaves(manifest[part]) <= _leaves(stored[part]), case


def _leaves(node: Any, path: str = "") -> set[str]:
    if isinstance(node, dict):
        return (
            set().union(*(_leaves(v, f"{path}/{k}") for k, v in node.items())) if node else {path}
        )
    if isinstance(node, list):
        return (
            set().union(*(_leaves(v, f"{path}/{i}") for i, v in enumerate(node)))
            if node
            else {path}
        )
    return {f"{path}={node!r}"}


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "example",
    ["modeldeployment-kserve.yaml.example", "llminferenceserviceconfig-vllm.yaml.example"],
)
def test_the_real_crds_accept_the_examples(
    kubectl: Kubectl, namespace: str, tmp_path: Path, example: str
) -> None:
    """The vLLM ModelDeployment and the platform preset it names, as the README shows them."""
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    manifest["metadata"]["namespace"] = namespace
    path = tmp_path / "object.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = kubectl("apply", "--server-side", "--dry-run=server", "-o", "yaml", "-f", str(path))
    assert result.returncode == 0, result.stderr
    stored = yaml.safe_load(result.stdout)
    assert _leaves(manifest["spec"]) <= _leaves(stored["spec"]), example
