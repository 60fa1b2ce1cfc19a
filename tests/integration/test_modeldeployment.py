"""ModelDeployments on the real control plane, with KServe's real InferenceService CRD.

No KServe controller runs here: where KServe would report status, the test writes it to the
InferenceService's status subresource, as KServe's controller would, and watches the operator
follow. Probes run against the real model server (the `model_server` fixture) and, for fault
injection, a stub on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import ModelServer, OperatorProcess
from tests.integration.support import AuditLog, or_none, wait_for
from vibeplane.budget.store import LedgerStore, ledger_name
from vibeplane.settings import OperatorSettings
from vibeplane_dev.cluster.local import OPERATOR_USER

pytestmark = pytest.mark.integration
GROUP, VERSION = "vibeplane.io", "v1alpha1"
KSERVE, KSERVE_VERSION = "serving.kserve.io", "v1beta1"
PLATFORM = OperatorSettings().platform_namespace
MERGE = "application/merge-patch+json"
SECRET_VALUE = "sk-test-never-in-status-0123456789"


def _condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for condition in ((obj or {}).get("status") or {}).get("conditions", []):
        if condition["type"] == type_:
            return dict(condition)
    return None


class Models:
    """ModelDeployments and InferenceServices of one namespace, through the API server."""

    def __init__(self, api: ApiClient, namespace: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "modeldeployments",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ModelDeployment",
                    "metadata": {"name": name},
                    "spec": spec,
                },
                field_validation="Strict",
            )
        )

    def get(self, name: str) -> dict[str, Any] | None:
        return or_none(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "modeldeployments",
            name,
        )

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "modeldeployments",
            name,
            {"spec": spec},
            _content_type=MERGE,
        )

    def isvc(self, name: str) -> dict[str, Any] | None:
        return or_none(
            self.custom.get_namespaced_custom_object,
            KSERVE,
            KSERVE_VERSION,
            self.namespace,
            "inferenceservices",
            name,
        )

    def report(self, name: str, status: dict[str, Any]) -> None:
        """Play KServe's controller: write status for the InferenceService's generation."""
        live = self.isvc(name)
        assert live is not None
        status = {"observedGeneration": live["metadata"]["generation"], **status}
        self.custom.patch_namespaced_custom_object_status(
            KSERVE,
            KSERVE_VERSION,
            self.namespace,
            "inferenceservices",
            name,
            {"status": status},
            _content_type=MERGE,
        )

    def wait(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.get(name)
            return obj if obj is not None and check(obj) else None

        return wait_for(reached, timeout=timeout, what=f"{name}: {what}")

    def wait_isvc(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.isvc(name)
            return obj if obj is not None and check(obj) else None

        return wait_for(reached, timeout=timeout, what=f"InferenceService {name}: {what}")

    def running_predictor_pod(self, name: str, pod: str) -> None:
        """A predictor pod as KServe would create it, marked Running (it is never scheduled:
        a scheduling gate keeps it off every node)."""
        self.core.create_namespaced_pod(
            self.namespace,
            {
                "metadata": {
                    "name": pod,
                    "labels": {
                        "serving.kserve.io/inferenceservice": name,
                        "component": "predictor",
                    },
                },
                "spec": {
                    "schedulingGates": [{"name": "vibeplane.io/test"}],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "kserve-container",
                            "image": "registry.invalid/modelserver",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        )
        self.core.patch_namespaced_pod_status(pod, self.namespace, {"status": {"phase": "Running"}})


def _ready_is(status: str, reason: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        condition = _condition(obj, "Ready")
        return (
            condition is not None
            and condition["status"] == status
            and (reason is None or condition["reason"] == reason)
            and condition.get("observedGeneration") == obj["metadata"]["generation"]
        )

    return check


def _predictor(isvc: dict[str, Any]) -> dict[str, Any]:
    predictor: dict[str, Any] = isvc["spec"]["predictor"]
    return predictor


RAW_GPU = {
    "model": {"name": "base1", "format": "huggingface", "storageUri": "s3://models/base1/v1"},
    "serving": {
        "kserve": {
            "engine": "modelserver",
            "deploymentMode": "RawDeployment",
            "gpu": {"count": 2, "product": "NVIDIA-H100-80GB-HBM3"},
            "resources": {"requests": {"cpu": "4", "memory": "32Gi"}},
            "minReplicas": 1,
            "maxReplicas": 2,
        }
    },
    "pricing": {"gpuHour": "2.50"},
}


@pytest.fixture
def models(api: ApiClient, namespace: str, operator: OperatorProcess) -> Models:
    return Models(api, namespace)


# ---- kserve ------------------------------------------------------------------------------


def test_the_inference_service_is_stored_with_gpus(models: Models, audit: AuditLog) -> None:
    models.create("base1", RAW_GPU)
    isvc = models.wait_isvc("base1", lambda _: True, "created")
    predictor = _predictor(isvc)
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert predictor["model"]["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert predictor["model"]["storageUri"] == "s3://models/base1/v1"
    assert predictor["serviceAccountName"] == "vibeplane-models"
    expression = predictor["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expression["values"] == ["NVIDIA-H100-80GB-HBM3"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    owner = isvc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelDeployment", "base1", True)
    # Written by server-side apply under the controller's field manager (a real write).
    managers = {(m["manager"], m["operation"]) for m in isvc["metadata"]["managedFields"]}
    assert ("vibeplane-modeldeployment", "Apply") in managers
    account = models.core.read_namespaced_service_account("vibeplane-models", models.namespace)
    assert account.secrets is None
    md = models.wait("base1", _ready_is("Unknown", "InferenceServicePending"), "pending")
    assert md["status"]["servingMode"] == "kserve"
    assert md["status"]["replicas"] == 0
    # Converged: resyncs (every 3 s) write nothing more.
    mark = audit.mark()
    time.sleep(7)
    writes = audit.writes(mark, OPERATOR_USER, models.namespace)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]


def test_a_kserve_model_is_served_by_vllm_by_default_with_its_adapters_and_autoscaling(
    models: Models, audit: AuditLog
) -> None:
    models.create(
        "base1",
        {
            "model": {"name": "base1", "storageUri": "s3://models/base1/v1"},
            "serving": {"kserve": {"gpu": {"count": 1}, "minReplicas": 1, "maxReplicas": 3}},
            "adapters": [{"name": "acme", "uri": "s3://models/adapters/acme"}],
            "pricing": {"gpuHour": "2.50"},
        },
    )

    def llmisvc() -> dict[str, Any] | None:
        return or_none(
            models.custom.get_namespaced_custom_object,
            KSERVE,
            "v1alpha2",
            models.namespace,
            "llminferenceservices",
            "base1",
        )

    live = wait_for(llmisvc, timeout=30, what="the LLMInferenceService")
    assert models.isvc("base1") is None  # no InferenceService on the vLLM path
    spec = live["spec"]
    assert spec["model"]["lora"]["adapters"] == [
        {"name": "acme", "uri": "s3://models/adapters/acme"}
    ]
    (main,) = spec["template"]["containers"]
    assert {"name": "VLLM_ADDITIONAL_ARGS", "value": "--enable-prefix-caching"} in main["env"]
    assert "replicas" not in spec
    assert spec["scaling"]["minReplicas"] == 1
    assert spec["scaling"]["maxReplicas"] == 3
    assert spec["scaling"]["wva"]["keda"] == {}
    assert spec["scaling"]["wva"]["variantCost"] == "2.5"
    # KServe's controller (played here) reports the service ready at its address.
    models.custom.patch_namespaced_custom_object_status(
        KSERVE,
        "v1alpha2",
        models.namespace,
        "llminferenceservices",
        "base1",
        {
            "status": {
                "observedGeneration": live["metadata"]["generation"],
                "address": {"url": "http://base1-kserve-workload-svc.ns.svc.cluster.local"},
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": "2026-12-03T00:00:00Z"}
                    for t in ("Ready", "WorkloadsReady")
                ],
            }
        },
        _content_type=MERGE,
    )
    md = models.wait("base1", _ready_is("True"), "Ready")
    assert md["status"]["url"] == "http://base1-kserve-workload-svc.ns.svc.cluster.local/v1"
    assert md["status"]["adapters"] == ["acme"]
    # Converged: resyncs (every 3 s) write nothing more.
    mark = audit.mark()
    time.sleep(7)
    writes = audit.writes(mark, OPERATOR_USER, models.namespace)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]


def test_status_follows_what_kserve_reports(models: Models) -> None:
    models.create("base1", RAW_GPU)
    models.wait_isvc("base1", lambda _: True, "created")
    models.report(
        "base1",
        {
            "conditions": [
                {
                    "type": "PredictorReady",
                    "status": "False",
                    "reason": "RevisionFailed",
                    "message": "container kserve-container: OOMKilled",
                },
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "RevisionFailed",
                    "message": "container kserve-container: OOMKilled",
                },
            ]
        },
    )
    md = models.wait("base1", _ready_is("False", "RevisionFailed"), "KServe's failure")
    assert _condition(md, "Ready")["message"] == "container kserve-container: OOMKilled"  # type: ignore[index]
    assert _condition(md, "PredictorReady")["reason"] == "RevisionFailed"  # type: ignore[index]
    models.report(
        "base1",
        {
            "url": "http://base1.example.com",
            "address": {"url": "http://base1-predictor.t.svc.cluster.local"},
            "conditions": [
                {"type": "PredictorReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
        },
    )
    md = models.wait("base1", _ready_is("True"), "Ready")
    assert md["status"]["url"] == "http://base1-predictor.t.svc.cluster.local/openai/v1"
    models.running_predictor_pod("base1", "base1-predictor-a")
    md = models.wait("base1", lambda obj: obj["status"].get("replicas") == 1, "1 replica")
    assert md["status"]["metering"]["replicas"] == 1
    assert md["status"]["metering"]["gpusPerReplica"] == 2


def _serving(isvc: dict[str, Any]) -> tuple[str, int | None]:
    predictor = _predictor(isvc)
    return predictor["model"]["storageUri"], predictor.get("canaryTrafficPercent")


def _rolled_out(
    models: Models, name: str, latest: str, rolled: str, traffic: list[dict[str, Any]]
) -> None:
    models.report(
        name,
        {
            "address": {"url": f"http://{name}-predictor.svc"},
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest,
                    "latestReadyRevision": latest,
                    "latestRolledoutRevision": rolled,
                    "traffic": traffic,
                }
            },
            "conditions": [
                {"type": "PredictorReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
        },
    )


def test_canary_rollout_promotion_and_rollback(models: Models) -> None:
    stable, canary, second = "s3://models/m/v1", "s3://models/m/v2", "s3://models/m/v3"
    models.create(
        "m",
        {
            "model": {"name": "m", "storageUri": stable},
            "serving": {
                "kserve": {
                    "engine": "modelserver",
                    "deploymentMode": "Serverless",
                    "minReplicas": 0,
                    "maxReplicas": 2,
                    "canary": {"storageUri": canary, "trafficPercent": 10},
                }
            },
        },
    )
    # The stable version rolls out first: KServe would give a first revision all traffic.
    isvc = models.wait_isvc("m", lambda _: True, "created")
    assert _serving(isvc) == (stable, None)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert _predictor(isvc)["minReplicas"] == 0
    md = models.wait(
        "m",
        lambda obj: (
            (_condition(obj, "CanaryReady") or {}).get("reason") == "WaitingForStableRollout"
        ),
        "waiting for stable",
    )
    assert md["status"]["canary"]["phase"] == "WaitingForStable"
    _rolled_out(models, "m", "m-00001", "m-00001", [{"revisionName": "m-00001", "percent": 100}])
    # Then the canary: the predictor's spec is the new version, with its share.
    models.wait_isvc("m", lambda obj: _serving(obj) == (canary, 10), "canary 10%")
    _rolled_out(
        models,
        "m",
        "m-00002",
        "m-00001",
        [
            {"revisionName": "m-00002", "latestRevision": True, "percent": 10},
            {"revisionName": "m-00001", "tag": "prev", "percent": 90},
        ],
    )
    md = models.wait(
        "m", lambda obj: (_condition(obj, "CanaryReady") or {}).get("status") == "True", "serving"
    )
    assert md["status"]["canary"] == {
        "storageUri": canary,
        "phase": "Serving",
        "trafficPercent": 10,
        "ready": True,
        "latestRevision": "m-00002",
        "previousRevision": "m-00001",
    }
    # Promote: the canary becomes model.storageUri; its revision takes all traffic.
    models.patch("m", {"model": {"storageUri": canary}, "serving": {"kserve": {"canary": None}}})
    models.wait_isvc("m", lambda obj: _serving(obj) == (canary, None), "promoted")
    _rolled_out(
        models,
        "m",
        "m-00002",
        "m-00002",
        [{"revisionName": "m-00002", "latestRevision": True, "percent": 100}],
    )
    md = models.wait(
        "m", lambda obj: (_condition(obj, "CanaryReady") or {}).get("reason") == "NoCanary", "none"
    )
    assert "canary" not in md["status"]
    # A second canary, then a rollback: every request is pinned to the previous revision
    # at once, and the pin goes when the stable version is ready again.
    models.patch(
        "m", {"serving": {"kserve": {"canary": {"storageUri": second, "trafficPercent": 20}}}}
    )
    models.wait_isvc("m", lambda obj: _serving(obj) == (second, 20), "second canary")
    _rolled_out(models, "m", "m-00003", "m-00002", [])
    models.patch("m", {"serving": {"kserve": {"canary": None}}})
    models.wait_isvc("m", lambda obj: _serving(obj) == (canary, 0), "pinned to the previous")
    md = models.wait(
        "m",
        lambda obj: (_condition(obj, "CanaryReady") or {}).get("reason") == "RollingBack",
        "rolling back",
    )
    assert "m-00002" in _condition(md, "CanaryReady")["message"]  # type: ignore[index]
    _rolled_out(models, "m", "m-00004", "m-00002", [])
    models.wait_isvc("m", lambda obj: _serving(obj) == (canary, None), "rolled back")


def test_deleting_the_model_deployment_deletes_the_inference_service(models: Models) -> None:
    models.create("gone", RAW_GPU)
    models.wait_isvc("gone", lambda _: True, "created")
    models.custom.delete_namespaced_custom_object(
        GROUP, VERSION, models.namespace, "modeldeployments", "gone"
    )
    wait_for(lambda: models.isvc("gone") is None, timeout=60, what="garbage collection")


def test_gpu_hours_are_charged_to_the_workspace(api: ApiClient, operator: OperatorProcess) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    workspace = f"gpu{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "workspaces",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workspace",
            "metadata": {"name": workspace},
            "spec": {"budget": {"gpuHours": "100", "money": "1000"}},
        },
    )
    try:

        def workspace_ready() -> dict[str, Any] | None:
            obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)
            return dict(obj) if _ready_is("True")(obj) else None

        ws = wait_for(workspace_ready, timeout=30, what="workspace Ready")
        models = Models(api, ws["status"]["namespace"])
        models.create("dedicated", RAW_GPU)
        models.wait_isvc("dedicated", lambda _: True, "created")
        models.running_predictor_pod("dedicated", "dedicated-predictor-a")
        md = models.wait(
            "dedicated",
            lambda obj: (obj["status"].get("metering") or {}).get("replicas") == 1,
            "a reading of 1 replica",
        )
        # Move the reading an hour back, as if the operator had been down: the gap is charged
        # at the last level, for at most 15 minutes (2 GPUs x 0.25 h).
        since = datetime.now(UTC) - timedelta(hours=1)
        models.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            models.namespace,
            "modeldeployments",
            "dedicated",
            {"status": {"metering": {"since": since.strftime("%Y-%m-%dT%H:%M:%SZ")}}},
            _content_type=MERGE,
        )
        md = models.wait(
            "dedicated", lambda obj: obj["status"]["metering"]["gpuHours"] == "0.5", "charged"
        )
        assert md["status"]["metering"]["chargedTo"] == f"workspace/{workspace}"
        ledger = LedgerStore(PLATFORM).read(workspace, ws["metadata"]["uid"], "Monthly")
        key = f"gpu:{md['metadata']['uid']}:{since.strftime('%Y%m%dT%H%M%SZ')}"
        assert key in ledger.done
        assert str(ledger.settled.gpu_hours) == "0.5"
        assert str(ledger.settled.money) == "1.25"
        # The workspace reports it (its controller watches its ledger).
        wait_for(
            lambda: (
                custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)
                .get("status", {})
                .get("usage", {})
                .get("gpuHours")
                == "0.5"
            ),
            timeout=30,
            what="workspace usage",
        )
        assert ledger_name(workspace, ws["metadata"]["uid"]).startswith("ledger-")
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)


# ---- external and builtin ----------------------------------------------------------------


def test_the_builtin_model_is_ready_against_the_real_model_server(
    api: ApiClient, operator: OperatorProcess, model_server: ModelServer
) -> None:
    builtin = Models(api, PLATFORM)
    md = builtin.wait("builtin", _ready_is("True", "EndpointReady"), "Ready", timeout=60)
    # The operator's VIBEPLANE_BUILTIN_MODEL_URL is this session's model server (another test
    # session on the same cluster may have its own, on another port).
    assert md["status"]["url"].startswith("http://127.0.0.1:")
    assert md["status"]["url"].endswith("/openai/v1")
    assert md["status"]["servingMode"] == "builtin"
    assert "model builtin" in _condition(md, "Ready")["message"]  # type: ignore[index]


def _secret(models: Models, name: str, data: dict[str, str]) -> None:
    models.core.create_namespaced_secret(
        models.namespace, {"metadata": {"name": name}, "stringData": data}
    )


def _external(base_url: str, secret: str | None = "provider") -> dict[str, Any]:
    external: dict[str, Any] = {"baseURL": base_url, "model": "builtin"}
    if secret:
        external["apiKeySecretRef"] = {"name": secret, "key": "apiKey"}
    return {"model": {"name": "rented"}, "serving": {"external": external}}


def test_an_external_endpoint_is_checked_with_its_key(
    models: Models, model_server: ModelServer
) -> None:
    _secret(models, "provider", {"apiKey": SECRET_VALUE})
    models.create("rented", _external(model_server.openai_base))
    md = models.wait("rented", _ready_is("True", "EndpointReady"), "Ready")
    assert md["status"]["url"] == model_server.openai_base
    assert md["status"]["probe"] == {"failures": 0}
    assert SECRET_VALUE not in json.dumps(md)


def test_a_missing_secret_is_a_clear_condition(models: Models, model_server: ModelServer) -> None:
    models.create("rented", _external(model_server.openai_base))
    md = models.wait("rented", _ready_is("False", "SecretNotFound"), "SecretNotFound")
    message = _condition(md, "Ready")["message"]  # type: ignore[index]
    assert "Secret provider (key apiKey) not found" in message
    assert md["status"]["probe"]["failures"] >= 1
    # The Secret appears: the next check (5 s later) finds it.
    _secret(models, "provider", {"apiKey": SECRET_VALUE})
    models.wait("rented", _ready_is("True"), "Ready once the Secret exists", timeout=30)
    events = models.core.list_namespaced_event(models.namespace)
    assert any(event.reason == "SecretNotFound" for event in events.items)
    assert all(SECRET_VALUE not in (event.message or "") for event in events.items)


class FlakyProvider(BaseHTTPRequestHandler):
    """An OpenAI-compatible /models that fails `failures` times with 503, then answers; it
    records when each request came and with which Authorization header."""

    failures = 0
    requests: list[tuple[float, str]] = []

    def do_GET(self) -> None:
        FlakyProvider.requests.append((time.monotonic(), self.headers.get("Authorization", "")))
        if FlakyProvider.failures > 0:
            FlakyProvider.failures -= 1
            # A provider that echoes the key back: the client must scrub it.
            body = json.dumps({"error": {"message": f"overloaded ({SECRET_VALUE})"}}).encode()
            self.send_response(503)
        else:
            body = json.dumps({"object": "list", "data": [{"id": "builtin"}]}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def flaky_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FlakyProvider.failures, FlakyProvider.requests = 2, []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_failing_endpoint_is_retried_with_backoff(models: Models, flaky_provider: str) -> None:
    _secret(models, "provider", {"apiKey": SECRET_VALUE})
    models.create("flaky", _external(flaky_provider))
    md = models.wait("flaky", _ready_is("False", "ProbeFailed"), "ProbeFailed")
    message = _condition(md, "Ready")["message"]  # type: ignore[index]
    assert message.startswith("ServerError: GET http://127.0.0.1:")
    assert "overloaded ([redacted])" in message
    assert md["status"]["probe"]["lastFailureReason"] == "ServerError"
    md = models.wait("flaky", _ready_is("True", "EndpointReady"), "recovered", timeout=40)
    assert md["status"]["probe"] == {"failures": 0}
    assert SECRET_VALUE not in json.dumps(md)
    # Three checks, 5 s then 10 s apart: the backoff, not the 3 s resync, set the pace.
    times = [moment for moment, _ in FlakyProvider.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 4.5
    assert times[2] - times[1] >= 9.5
    assert {header for _, header in FlakyProvider.requests} == {f"Bearer {SECRET_VALUE}"}


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            _external("ftp://models.example.com", secret=None),
            "baseURL must be an http(s) URL",
        ),
        (
            {**RAW_GPU, "serving": {"kserve": {"engine": "modelserver", "minReplicas": 0}}},
            "minReplicas 0 (scale to zero) needs deploymentMode Serverless",
        ),
        (
            {
                **RAW_GPU,
                "serving": {
                    "kserve": {
                        "engine": "modelserver",
                        "canary": {"storageUri": "s3://models/m/v2", "trafficPercent": 5},
                    }
                },
            },
            "canary needs deploymentMode Serverless",
        ),
        (
            {"model": {"name": "m"}, "serving": {"builtin": {"gpu": {"count": 1}}}},
            'unknown field "spec.serving.builtin.gpu"',
        ),
    ],
    ids=["baseURL not http(s)", "scale to zero in RawDeployment", "canary in RawDeployment",
         "GPU count on builtin"],
)  # fmt: skip
def test_bad_input_is_refused_by_the_api_server(
    api: ApiClient, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as refused:
        Models(api, namespace).create("bad", spec)
    # 422 for the schema and CEL rules; 400 for an unknown field under strict validation.
    assert refused.value.status in (400, 422)
    assert message in json.loads(refused.value.body)["message"]


# ---- zero writes at rest ---------------------------------------------------------------------

KSERVE_READY = {
    "address": {"url": "http://served-predictor.svc"},
    "conditions": [
        {"type": "PredictorReady", "status": "True"},
        {"type": "Ready", "status": "True"},
    ],
}


def test_converged_models_of_each_serving_mode_cost_no_writes_across_a_restart(
    api: ApiClient,
    models: Models,
    model_server: ModelServer,
    operator: OperatorProcess,
    audit: AuditLog,
) -> None:
    """Once a ModelDeployment of each serving mode is Ready, resyncs and a restart of the
    operator (which forgets its probe memory) send nothing to the API server for any of them:
    counted from the audit log."""
    _secret(models, "provider", {"apiKey": SECRET_VALUE})
    models.create("rented", _external(model_server.openai_base))
    models.create("local", {"model": {"name": "builtin"}, "serving": {"builtin": {}}})
    models.create("served", RAW_GPU)
    models.wait_isvc("served", lambda isvc: True, "created")
    models.report("served", KSERVE_READY)
    for name in ("rented", "local", "served"):
        models.wait(name, _ready_is("True"), "Ready", timeout=60)
    Models(api, PLATFORM).wait("builtin", _ready_is("True"), "Ready", timeout=60)
    time.sleep(4)  # the last writes of convergence land
    mark = audit.mark()
    time.sleep(6)
    operator.restart()
    time.sleep(10)

    def models_of_this_test(event: dict[str, Any]) -> bool:
        ref = event.get("objectRef") or {}
        return ref.get("namespace") == models.namespace or (
            ref.get("namespace") == PLATFORM and ref.get("resource") == "modeldeployments"
        )

    writes = [e for e in audit.writes(mark, OPERATOR_USER) if models_of_this_test(e)]
    assert writes == [], [
        f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('subresource', '')}"
        f" {e['objectRef'].get('namespace')}/{e['objectRef'].get('name')}"
        for e in writes
    ]
