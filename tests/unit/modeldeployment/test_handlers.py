"""The reconciler with the API server, the clock, the prober and the ledger faked."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY

from tests.fakes.kube import FakeKube
from tests.unit.generation.listener import Listener
from tests.unit.modeldeployment.support import (
    BUILTIN,
    EXTERNAL,
    NAMESPACE,
    RAW_GPU,
    UID,
    VLLM_ADAPTERS,
    check_golden,
)
from vibeplane.api.modeldeployment import ModelDeploymentSpec
from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Amount
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.reconcile import Context, ObjectKey, Outcome
from vibeplane.generation import router
from vibeplane.generation.client import ModelCallError, probe
from vibeplane.generation.egress import EgressPolicy
from vibeplane.generation.outcome_store import OutcomeStore
from vibeplane.generation.outcomes import Totals
from vibeplane.kube.conditions import find, merge_conditions, status_patch
from vibeplane.modeldeployment import desired, handlers, llmisvc, measured
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp.models import ModelResolver

SECRET_VALUE = "sk-live-DO-NOT-LEAK-1234567890"
T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
MODELS_URL = "https://api.example.com/v1/models"
Key = tuple[str, str | None, str]


def add_secret(kube: FakeKube, name: str, data: dict[str, str]) -> None:
    kube.add(
        {
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
        }
    )


PREDICTOR = f"{desired.ISVC_POD_LABEL}=m,component=predictor"


def set_pods(kube: FakeKube, *phases: str, selector: str = PREDICTOR) -> None:
    """The model's serving pods (selected by `selector`), in these phases."""
    labels = dict(term.split("=", 1) for term in selector.split(","))
    for key in [key for key in kube.objects if key[0] == "Pod"]:
        del kube.objects[key]
    for index, phase in enumerate(phases):
        kube.add(
            {
                "kind": "Pod",
                "metadata": {
                    "name": f"p-{index}",
                    "namespace": NAMESPACE,
                    "labels": labels,
                },
                "status": {"phase": phase},
            }
        )


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@dataclass
class FakeLedgers:
    charges: list[tuple[str, str, str, str, Amount]] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    def settle(self, workspace: str, uid: str, kind: str, key: str, actual: Amount) -> bool:
        if key in self.done:
            return False
        self.done.add(key)
        self.charges.append((workspace, uid, kind, key, actual))
        return True


@dataclass
class Prober:
    """Fails with `failures` (in order), then answers."""

    failures: list[ModelCallError] = field(default_factory=list)
    calls: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    rules: list[EgressPolicy | None] = field(default_factory=list)

    def __call__(
        self,
        url: str,
        key: str | None,
        timeout: float,
        model: str | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.calls.append((url, key, model))
        self.rules.append(egress)
        if self.failures:
            raise self.failures.pop(0)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386, as the API server applies the Controller's status patches."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
            if isinstance(value, dict):
                _drop_nulls(target[key])


def _drop_nulls(document: dict[str, Any]) -> None:
    for key in [key for key, value in document.items() if value is None]:
        del document[key]
    for value in document.values():
        if isinstance(value, dict):
            _drop_nulls(value)


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Harness:
    """One ModelDeployment, reconciled like the Controller does (status carried over)."""

    reconciler: handlers.ModelDeploymentReconciler
    spec: ModelDeploymentSpec
    generation: int = 1
    status: dict[str, Any] = field(default_factory=dict)
    name: str = "m"
    writes: int = 0
    namespace: str = NAMESPACE

    def reconcile(self) -> Outcome:
        body = {
            "apiVersion": "vibeplane.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": UID,
                "generation": self.generation,
            },
            "spec": self.spec.to_wire(),
            "status": self.status,
        }
        context = Context(
            self.name,
            self.namespace,
            UID,
            self.generation,
            self.spec,
            copy.deepcopy(self.status),
            body,
            OperatorSettings(),
        )
        outcome = self.reconciler(context)
        desired_status = dict(outcome.fields)
        desired_status["observedGeneration"] = self.generation
        desired_status["conditions"] = merge_conditions(
            self.status.get("conditions"), outcome.conditions, self.generation, "2026-11-24T10:00Z"
        )
        patch = status_patch(self.status, desired_status)
        if patch:
            self.writes += 1
            merge_patch(self.status, patch)
        return outcome

    def condition(self, type_: str) -> dict[str, Any]:
        found = find(self.status.get("conditions"), type_)
        assert found is not None, f"no {type_} condition in {self.status}"
        return dict(found)


def make(
    kube: FakeKube,
    spec: ModelDeploymentSpec,
    prober: Prober | None = None,
    clock: Clock | None = None,
    ledgers: FakeLedgers | None = None,
    kserve: bool = True,
    workspaces: dict[str, dict[str, Any]] | None = None,
    egress: EgressPolicy | None = None,
    outcomes: OutcomeStore | None = None,
) -> Harness:
    clock = clock or Clock()
    reconciler = handlers.ModelDeploymentReconciler(
        OperatorSettings(),
        desired.ServingSettings(builtin_url="http://127.0.0.1:9/openai/v1"),
        ObjectCache(kube, on_change=lambda body: None),
        kube,
        ledgers or FakeLedgers(),  # type: ignore[arg-type]
        kserve_available=kserve,
        workspace_lookup=lambda name: (workspaces or {}).get(name),
        clock=lambda: clock.now,
        monotonic=lambda: clock.mono,
        prober=prober or Prober(),
        egress=egress,
        llm_available=kserve,
    )
    return Harness(reconciler, spec)


def outcome_document(harness: Harness, outcome: Outcome) -> dict[str, Any]:
    return {
        "fields": outcome.fields,
        "conditions": [vars(c) for c in outcome.conditions],
        "requeueAfter": outcome.requeue_after,
    }


# ---- external ----------------------------------------------------------------------------


def test_external_ready_matches_golden_and_holds_no_key(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE + "\n"})
    prober = Prober()
    harness = make(kube, EXTERNAL, prober)
    outcome = harness.reconcile()
    check_golden("external-ready", outcome_document(harness, outcome))
    # The key (without the newline `echo` leaves) reached the prober, and nothing else.
    assert prober.calls == [("https://api.example.com/v1", SECRET_VALUE, None)]
    assert SECRET_VALUE not in repr(harness.status)


@pytest.mark.parametrize(
    ("secrets", "reason", "fragment"),
    [
        ({}, "SecretNotFound", "Secret frontier-key (key apiKey) not found in namespace"),
        (
            {"frontier-key": {"other": SECRET_VALUE}},
            "SecretKeyNotFound",
            "Secret frontier-key in namespace ws-team-a has no key apiKey",
        ),
    ],
)
def test_secret_problems_name_the_secret_never_its_content(
    kube: FakeKube, secrets: dict[str, dict[str, str]], reason: str, fragment: str
) -> None:
    for name, data in secrets.items():
        add_secret(kube, name, data)
    prober = Prober()
    harness = make(kube, EXTERNAL, prober)
    outcome = harness.reconcile()
    ready = harness.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert fragment in ready["message"]
    assert harness.status["probe"] == {"failures": 1, "lastFailureReason": reason}
    assert outcome.requeue_after == 5.0
    assert prober.calls == []
    assert SECRET_VALUE not in repr(harness.status)
    assert kube.events == [(reason, ready["message"])]


def test_probe_failures_back_off_and_recover(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    clock = Clock()
    prober = Prober(
        [
            ModelCallError(
                "ConnectionFailed", "GET https://api.example.com/v1/models: refused", True
            ),
            ModelCallError("ServerError", "GET https://api.example.com/v1/models: HTTP 503", True),
        ]
    )
    harness = make(kube, EXTERNAL, prober, clock)
    first = harness.reconcile()
    assert first.requeue_after == 5.0
    ready = harness.condition("Ready")
    assert ready["reason"] == "ProbeFailed"
    assert ready["message"].startswith("ConnectionFailed: GET https://api.example.com/v1/models")
    assert "(attempt 1; next check in 5s)" in ready["message"]
    # A resync 2 s later checks nothing and writes nothing.
    before = copy.deepcopy(harness.status)
    clock.advance(2)
    again = harness.reconcile()
    assert len(prober.calls) == 1
    assert again.requeue_after == pytest.approx(3.0)
    assert harness.status == before
    # At the deadline: the second failure doubles the wait.
    clock.advance(3)
    second = harness.reconcile()
    assert second.requeue_after == 10.0
    assert harness.status["probe"] == {"failures": 2, "lastFailureReason": "ServerError"}
    clock.advance(10)
    third = harness.reconcile()
    assert third.requeue_after is None
    assert harness.condition("Ready")["status"] == "True"
    assert harness.status["probe"] == {"failures": 0}
    assert harness.status["url"] == "https://api.example.com/v1"
    # Within the success TTL nothing is checked again.
    clock.advance(30)
    harness.reconcile()
    assert len(prober.calls) == 3


def test_the_attempt_count_survives_a_restart(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    error = ModelCallError("Timeout", "GET https://api.example.com/v1/models: no answer", True)
    harness = make(kube, EXTERNAL, Prober([error]))
    harness.status = {"observedGeneration": 1, "probe": {"failures": 3}}
    outcome = harness.reconcile()
    assert harness.status["probe"]["failures"] == 4
    assert outcome.requeue_after == 40.0


def test_a_spec_edit_checks_again_at_once(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    error = ModelCallError("Timeout", "no answer", True)
    prober = Prober([error])
    harness = make(kube, EXTERNAL, prober)
    harness.reconcile()
    harness.generation = 2
    harness.reconcile()
    assert len(prober.calls) == 2
    assert harness.condition("Ready")["status"] == "True"


# ---- builtin -----------------------------------------------------------------------------


def test_builtin_probes_the_model_server_for_its_model(kube: FakeKube) -> None:
    error = ModelCallError(
        "ConnectionFailed", "GET http://127.0.0.1:9/openai/v1/models: refused", True
    )
    prober = Prober([error])
    harness = make(kube, BUILTIN, prober)
    outcome = harness.reconcile()
    check_golden("builtin-probe-failed", outcome_document(harness, outcome))
    assert prober.calls == [("http://127.0.0.1:9/openai/v1", None, "builtin")]


def test_serving_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIBEPLANE_BUILTIN_MODEL_URL", "http://127.0.0.1:8123/openai/v1")
    serving = handlers.serving_settings(OperatorSettings.from_env())
    assert serving.builtin_url == "http://127.0.0.1:8123/openai/v1"
    assert serving.modelserver_runtime == "vibeplane-modelserver"


# ---- kserve ------------------------------------------------------------------------------


def test_kserve_applies_once_then_mirrors_kserve(kube: FakeKube) -> None:
    harness = make(kube, RAW_GPU)
    harness.reconcile()
    kinds = [manifest["kind"] for manifest in kube.applied]
    assert kinds == ["ServiceAccount", "InferenceService"]
    assert harness.condition("Ready")["reason"] == "InferenceServicePending"
    # Converged: a second reconcile writes nothing.
    harness.reconcile()
    assert len(kube.applied) == 2
    # KServe reports the service ready.
    isvc = kube.objects[("InferenceService", NAMESPACE, "m")]
    isvc["status"] = {
        "observedGeneration": 1,
        "address": {"url": "http://m-predictor.ws-team-a.svc.cluster.local"},
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    }
    harness.reconcile()
    assert harness.condition("Ready")["status"] == "True"
    assert harness.condition("PredictorReady")["status"] == "True"
    assert harness.status["url"] == "http://m-predictor.ws-team-a.svc.cluster.local/openai/v1"
    assert harness.status["servingMode"] == "kserve"
    assert len(kube.applied) == 2


def test_the_storage_secret_is_listed_when_it_exists(kube: FakeKube) -> None:
    add_secret(kube, "vibeplane-model-storage", {"AWS_ACCESS_KEY_ID": "a"})
    make(kube, RAW_GPU).reconcile()
    account = kube.objects[("ServiceAccount", NAMESPACE, "vibeplane-models")]
    assert account["secrets"] == [{"name": "vibeplane-model-storage"}]


def test_without_kserve_the_condition_says_so(kube: FakeKube) -> None:
    harness = make(kube, RAW_GPU, kserve=False)
    harness.reconcile()
    assert harness.condition("Ready")["reason"] == "KServeNotInstalled"
    assert kube.applied == []


def test_gpu_hours_are_charged_to_the_workspace(kube: FakeKube) -> None:
    kube.objects[("Namespace", None, NAMESPACE)] = {
        "metadata": {
            "name": NAMESPACE,
            "labels": {"vibeplane.io/workspace": "team-a"},
            "ownerReferences": [{"kind": "Workspace", "name": "team-a", "uid": "ws-uid"}],
        }
    }
    workspaces = {
        "team-a": {"metadata": {"name": "team-a", "uid": "ws-uid"}, "spec": {"budget": {}}}
    }
    clock, ledgers = Clock(), FakeLedgers()
    harness = make(kube, RAW_GPU, clock=clock, ledgers=ledgers, workspaces=workspaces)
    set_pods(kube, "Running", "Running", "Pending")
    first = harness.reconcile()
    assert first.requeue_after == 60.0
    assert harness.status["replicas"] == 2
    assert harness.status["metering"] == {
        "since": "2026-11-24T10:00:00Z",
        "replicas": 2,
        "gpusPerReplica": 2,
        "gpuHours": "0",
    }
    assert ledgers.charges == []
    clock.advance(120)
    harness.reconcile()
    assert ledgers.charges == [
        (
            "team-a",
            "ws-uid",
            "Monthly",
            f"gpu:{UID}:20261124T100000Z",
            Amount(gpu_hours=Decimal("0.133333"), money=Decimal("0.333333")),
        )
    ]
    assert harness.status["metering"]["gpuHours"] == "0.133333"
    assert harness.status["metering"]["chargedTo"] == "workspace/team-a"
    assert harness.status["metering"]["since"] == "2026-11-24T10:02:00Z"
    # Scaled to zero: the last interval is charged, then nothing more is recorded.
    set_pods(kube)
    clock.advance(30)
    idle = harness.reconcile()
    assert idle.requeue_after is None
    assert len(ledgers.charges) == 2
    before = copy.deepcopy(harness.status)
    clock.advance(3600)
    harness.reconcile()
    assert harness.status == before


def test_a_retried_interval_is_not_charged_twice(kube: FakeKube) -> None:
    clock, ledgers = Clock(), FakeLedgers()
    harness = make(kube, RAW_GPU, clock=clock, ledgers=ledgers)
    set_pods(kube, "Running")
    harness.reconcile()
    saved = copy.deepcopy(harness.status)
    clock.advance(60)
    harness.reconcile()
    # The status write was lost: the same interval is computed again, and refused.
    harness.status = saved
    clock.advance(5)
    harness.reconcile()
    assert len(ledgers.charges) == 1
    assert ledgers.charges[0][0] == "platform"
    assert harness.status["metering"]["chargedTo"] == "platform"


def test_a_namespace_not_owned_by_its_labelled_workspace_charges_the_platform(
    kube: FakeKube,
) -> None:
    kube.objects[("Namespace", None, NAMESPACE)] = {
        "metadata": {"name": NAMESPACE, "labels": {"vibeplane.io/workspace": "team-a"}}
    }
    workspaces = {"team-a": {"metadata": {"name": "team-a", "uid": "ws-uid"}, "spec": {}}}
    harness = make(kube, RAW_GPU, workspaces=workspaces)
    assert harness.reconciler._ledger_target(NAMESPACE) == handlers.PLATFORM_LEDGER


def test_leaving_kserve_clears_its_status(kube: FakeKube) -> None:
    harness = make(kube, RAW_GPU)
    set_pods(kube, "Running")
    harness.reconcile()
    assert "metering" in harness.status
    harness.spec = BUILTIN
    harness.generation = 2
    harness.reconcile()
    for key in ("replicas", "canary", "metering"):
        assert key not in harness.status
    assert harness.condition("PredictorReady")["status"] == "Unknown"
    assert harness.status["servingMode"] == "builtin"


def test_the_key_never_reaches_the_logs(kube: FakeKube, caplog: pytest.LogCaptureFixture) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    caplog.set_level(logging.DEBUG)
    make(kube, EXTERNAL, Prober([ModelCallError("ClientError", "HTTP 401", False)])).reconcile()
    assert SECRET_VALUE not in caplog.text


def test_model_of_routes_inference_services_to_their_owner() -> None:
    isvc = {
        "metadata": {
            "name": "m",
            "namespace": NAMESPACE,
            "labels": desired.isvc_labels("m"),
        }
    }
    assert handlers.model_of(isvc) == ObjectKey(NAMESPACE, "m")
    assert handlers.model_of({"metadata": {"name": "x", "namespace": NAMESPACE}}) is None


def test_forget_drops_the_memory_of_a_deleted_model(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    harness = make(kube, EXTERNAL)
    harness.reconcile()
    assert harness.reconciler._checks
    harness.reconciler.forget("DELETED", {"metadata": {"uid": UID}})
    assert not harness.reconciler._checks


def test_a_deleted_tenant_model_takes_its_outcomes_and_a_platform_model_leaves_them_to_gc(
    kube: FakeKube,
) -> None:
    platform = OperatorSettings().platform_namespace
    board = OutcomeStore(kube, platform, lambda namespace, name: UID, namespace_uid=lambda _: "n")
    board.post(
        {"key": "a:1:0", "model": "m", "modelNamespace": NAMESPACE, "servedModel": "m"}, True
    )
    harness = make(kube, EXTERNAL)
    reconciler = harness.reconciler
    assert kube.get("v1", "ConfigMap", f"outcomes-{UID}", platform) is not None
    reconciler.forget("MODIFIED", {"metadata": {"uid": UID, "namespace": NAMESPACE}})
    assert kube.get("v1", "ConfigMap", f"outcomes-{UID}", platform) is not None
    reconciler.forget("DELETED", {"metadata": {"uid": UID, "namespace": NAMESPACE}})
    assert kube.get("v1", "ConfigMap", f"outcomes-{UID}", platform) is None
    # A platform model's ConfigMap is its child: the garbage collector deletes it.
    kube.deleted.clear()
    reconciler.forget("DELETED", {"metadata": {"uid": "u-2", "namespace": platform}})
    assert kube.deleted == []


def test_a_recovered_endpoint_forgets_its_failure_and_settles(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    clock = Clock()
    harness = make(kube, EXTERNAL, Prober([ModelCallError("Timeout", "no answer", True)]), clock)
    harness.reconcile()
    assert harness.status["probe"] == {"failures": 1, "lastFailureReason": "Timeout"}
    clock.advance(5)
    harness.reconcile()
    assert harness.status["probe"] == {"failures": 0}
    writes = harness.writes
    clock.advance(120)  # past the success TTL: checked again, same answer, nothing written
    harness.reconcile()
    assert harness.writes == writes


def test_a_rollback_converges_without_repeated_writes(kube: FakeKube) -> None:
    from tests.unit.modeldeployment.support import CANARY

    harness = make(kube, CANARY)
    harness.reconcile()
    isvc = kube.objects[("InferenceService", NAMESPACE, "m")]
    isvc["status"] = {
        "observedGeneration": 1,
        "components": {
            "predictor": {
                "latestCreatedRevision": "m-1",
                "latestReadyRevision": "m-1",
                "latestRolledoutRevision": "m-1",
            }
        },
    }
    harness.reconcile()  # the canary starts
    isvc = kube.objects[("InferenceService", NAMESPACE, "m")]
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    isvc["status"] = {
        "observedGeneration": 2,
        "components": {
            "predictor": {
                "latestCreatedRevision": "m-2",
                "latestReadyRevision": "m-2",
                "latestRolledoutRevision": "m-1",
                "traffic": [{"revisionName": "m-2", "latestRevision": True, "percent": 10}],
            }
        },
    }
    harness.reconcile()
    assert harness.status["canary"]["storageUri"] == "s3://models/base1/2026-12"
    data = CANARY.to_wire()
    del data["serving"]["kserve"]["canary"]
    harness.spec = ModelDeploymentSpec.model_validate(data)
    harness.generation = 2
    harness.reconcile()
    assert harness.status["canary"]["phase"] == "RollingBack"
    assert "storageUri" not in harness.status["canary"]
    writes = harness.writes
    harness.reconcile()
    assert harness.writes == writes


def test_clear_removed_nulls_keys_a_nested_object_loses() -> None:
    current = {"canary": {"phase": "Serving", "storageUri": "s3://x"}, "url": "u"}
    fields = {"canary": {"phase": "RollingBack"}, "url": "u", "replicas": None}
    assert desired.clear_removed(current, fields) == {
        "canary": {"phase": "RollingBack", "storageUri": None},
        "url": "u",
        "replicas": None,
    }
    assert desired.clear_removed({"canary": {"phase": "RollingBack"}}, fields)["canary"] == {
        "phase": "RollingBack"
    }


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (
            403,
            {
                "message": "unable to create new content in namespace ws-team-a because it is "
                "being terminated",
                "details": {"causes": [{"reason": "NamespaceTerminating"}]},
            },
            "NamespaceTerminating",
        ),
        (422, {"message": "spec.predictor: Invalid value"}, "InferenceServiceRefused"),
    ],
)
def test_a_refused_write_becomes_a_condition(
    kube: FakeKube,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    body: dict[str, Any],
    reason: str,
) -> None:
    error = ApiException(status=status, reason="Refused")
    error.body = json.dumps(body)
    kube.refuse = {"InferenceService": error, "ServiceAccount": error}
    harness = make(kube, RAW_GPU)
    harness.reconcile()
    ready = harness.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert body["message"] in ready["message"]


def test_other_api_errors_are_retried(kube: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    unavailable = ApiException(status=503, reason="Service Unavailable")
    kube.refuse = {"InferenceService": unavailable, "ServiceAccount": unavailable}
    with pytest.raises(ApiException):
        make(kube, RAW_GPU).reconcile()


# ---- tenant models' egress ---------------------------------------------------------------


def test_only_a_tenants_external_model_is_probed_under_the_egress_rule(kube: FakeKube) -> None:
    add_secret(kube, "frontier-key", {"apiKey": SECRET_VALUE})
    rule = EgressPolicy.from_settings([], [], lambda host, port: ["93.184.216.34"])
    prober = Prober()
    make(kube, EXTERNAL, prober, egress=rule).reconcile()
    platform = make(kube, BUILTIN, prober, egress=rule)
    platform.reconcile()
    keyless = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "m"},
            "serving": {"external": {"baseURL": "https://x.test/v1", "model": "m"}},
        }
    )
    shared = make(kube, keyless, prober, egress=rule)
    shared.namespace = OperatorSettings().platform_namespace
    shared.reconcile()
    assert prober.rules == [rule, None, None]


def test_a_tenant_model_on_loopback_is_refused_and_sent_nothing(
    kube: FakeKube, listener: Listener
) -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "peek"},
            "serving": {
                "external": {"baseURL": f"http://127.0.0.1:{listener.port}/v1", "model": "m"}
            },
        }
    )
    harness = make(kube, spec, probe, egress=EgressPolicy())
    harness.reconcile()
    ready = harness.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "EgressRefused")
    assert "127.0.0.1, a loopback address: tenant models may reach only public" in ready["message"]
    assert harness.status["probe"]["lastFailureReason"] == "EgressRefused"
    assert (listener.connections, listener.requests) == (0, [])
    # The platform allows the destination: the same model is checked, and Ready.
    allowed = make(kube, spec, probe, egress=EgressPolicy.from_settings(["127.0.0.1"], []))
    allowed.reconcile()
    assert allowed.condition("Ready")["status"] == "True"
    assert len(listener.requests) == 1


# ---- engine vllm -------------------------------------------------------------------------


def test_vllm_applies_an_llm_inference_service_once_then_mirrors_kserve(kube: FakeKube) -> None:
    harness = make(kube, VLLM_ADAPTERS)
    harness.reconcile()
    assert [m["kind"] for m in kube.applied] == ["ServiceAccount", "LLMInferenceService"]
    assert harness.condition("Ready")["status"] == "Unknown"
    harness.reconcile()
    assert len(kube.applied) == 2  # converged: no write
    live = kube.objects[("LLMInferenceService", NAMESPACE, "m")]
    live["status"] = {
        "addresses": [{"url": "http://m-kserve-workload-svc.ws-team-a.svc.cluster.local"}],
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "WorkloadsReady", "status": "True"},
        ],
    }
    set_pods(kube, "Running", "Running", selector=llmisvc.LLMISVC_POD_SELECTOR.format(name="m"))
    harness.reconcile()
    assert harness.condition("Ready")["status"] == "True"
    assert harness.status["url"] == "http://m-kserve-workload-svc.ws-team-a.svc.cluster.local/v1"
    assert harness.status["adapters"] == ["base1-2026-12", "acme-private"]
    assert harness.status["replicas"] == 2
    assert len(kube.applied) == 2


def test_a_vllm_model_naming_a_missing_preset_applies_nothing_and_says_where_it_looked(
    kube: FakeKube,
) -> None:
    named = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "m", "storageUri": "s3://models/m"},
            "serving": {"kserve": {"presets": ["vibeplane-vllm"]}},
        }
    )
    harness = make(kube, named)
    harness.reconcile()
    ready = harness.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PresetNotFound")
    assert f"in {NAMESPACE} or kserve" in ready["message"]
    assert kube.applied == []
    # Installed where KServe looks (its own namespace): applied, naming it in baseRefs.
    kube.add(
        {
            "apiVersion": llmisvc.LLMISVC_API_VERSION,
            "kind": llmisvc.PRESET_KIND,
            "metadata": {"name": "vibeplane-vllm", "namespace": "kserve"},
        }
    )
    harness.reconcile()
    (applied,) = [m for m in kube.applied if m["kind"] == llmisvc.LLMISVC_KIND]
    assert applied["spec"]["baseRefs"] == [{"name": "vibeplane-vllm"}]


def test_vllm_without_the_llm_crd_says_so(kube: FakeKube) -> None:
    harness = make(kube, VLLM_ADAPTERS, kserve=False)
    harness.reconcile()
    ready = harness.condition("Ready")
    assert (ready["reason"], kube.applied) == ("KServeNotInstalled", [])
    assert "LLMInferenceService" in ready["message"]


# ---- rollout by measured success, and economics ------------------------------------------

ROLLOUT_MODEL = {
    "model": {"name": "builtin"},
    "serving": {"builtin": {}},
    "pricing": {"inputPerMillion": "1", "outputPerMillion": "4", "gpuHour": "0"},
    "adapters": [{"name": "cand", "uri": "s3://models/adapters/cand"}],
    "rollout": {"candidate": "cand", "canaryPercent": 20, "minSamples": 50, "margin": "0.03"},
}


GENERATIONS = itertools.count()
"""Each generation's own key: a key is counted once."""


def run_generations(
    harness: Harness,
    board: OutcomeStore,
    candidate_rate: float,
    count: int,
    candidate: str = "cand",
    rates: dict[str, float] | None = None,
) -> None:
    """`count` generations routed by the real router and resolver to the model under test;
    the test's model succeeds at `candidate_rate` on the candidate adapter and 90 % on the
    base; each settled revision is posted like the VibeApp path does, and the model is
    reconciled every 50 generations (and at the end)."""
    rng = random.Random(5)
    body = {
        "metadata": {"name": harness.name, "namespace": harness.namespace},
        "spec": harness.spec.to_wire(),
        "status": harness.status,
    }
    for i in range(count):
        body["status"] = harness.status
        resolve = ModelResolver(OperatorSettings(), lambda: [body])
        targets, error = resolve(
            VibeAppSpec.model_validate({"prompts": ["x"]}),
            NAMESPACE,
            WorkspaceSpec.model_validate({"owner": "o@example.com"}),
            False,
            workspace_name="team",
            generation_key=f"app-{i}:1:0",
        )
        assert error == "", error
        target = targets[0]
        rate = (
            candidate_rate
            if target.served_model == candidate
            else (rates or {}).get(target.served_model, 0.9)
        )
        record = {
            "key": f"app-{next(GENERATIONS)}:1:0",
            "model": target.name,
            "modelNamespace": target.namespace,
            "servedModel": target.served_model,
            "arm": target.arm,
            "fixUp": False,
            "tokensIn": 1000,
            "tokensOut": 2000,
            "cost": "0.009",
            "latencySeconds": 3.0,
        }
        board.post(record, rng.random() < rate)
        if i % 50 == 49:
            harness.reconcile()
    harness.reconcile()


def ready_model(kube: FakeKube, board: OutcomeStore) -> Harness:
    harness = make(kube, ModelDeploymentSpec.model_validate(ROLLOUT_MODEL), outcomes=board)
    harness.reconcile()
    assert harness.condition("Ready")["status"] == "True"
    return harness


def test_a_candidate_failing_half_its_apps_is_rolled_back_with_the_numbers(
    kube: FakeKube,
) -> None:
    board = OutcomeStore(kube, OperatorSettings().platform_namespace, lambda namespace, name: UID)
    harness = ready_model(kube, board)
    run_generations(harness, board, 0.5, 1500)
    rollout = harness.status["rollout"]
    assert rollout["phase"] == "RolledBack", rollout
    assert rollout["canaryPercent"] == 0
    candidate, incumbent = rollout["candidateArm"], rollout["incumbent"]
    assert candidate["model"] == "cand"
    assert incumbent["model"] == "builtin"
    assert candidate["generations"] >= 50
    assert float(candidate["successRate"]) < 0.7 < 0.8 < float(incumbent["successRate"])
    assert float(rollout["zScore"]) < -1.645
    assert "the candidate does worse" in rollout["decision"]
    assert harness.condition("RolloutDecided")["reason"] == "RolledBack"
    assert [reason for reason, _ in kube.events] == ["AdapterRolledBack"]
    # Decided: every later generation goes to the incumbent.
    before = candidate["generations"]
    run_generations(harness, board, 0.5, 200)
    assert harness.status["rollout"]["candidateArm"]["generations"] == before


def test_a_candidate_at_least_as_good_is_promoted_and_costs_are_counted(
    kube: FakeKube,
) -> None:
    board = OutcomeStore(kube, OperatorSettings().platform_namespace, lambda namespace, name: UID)
    harness = ready_model(kube, board)
    run_generations(harness, board, 0.97, 3000)
    rollout = harness.status["rollout"]
    assert rollout["phase"] == "Promoted", rollout
    assert "at least as good" in rollout["decision"]
    assert [reason for reason, _ in kube.events] == ["AdapterPromoted"]
    economics = harness.status["economics"]
    assert economics["apps"] == 3000
    assert economics["tokenCost"] == "27"
    assert economics["costPerApp"] == "0.009"
    assert (economics["tokensIn"], economics["tokensOut"]) == (3_000_000, 6_000_000)
    # The same figure for dashboards: the gauge per model.
    gauge = REGISTRY.get_sample_value(
        "vibeplane_model_cost_per_app", {"namespace": NAMESPACE, "model": "m"}
    )
    assert gauge == pytest.approx(0.009)
    # Restarted (a new reconciler, status kept): the same totals, and no write.
    writes = harness.writes
    harness.reconciler = make(kube, harness.spec).reconciler
    harness.reconcile()
    assert harness.status["economics"] == economics
    assert harness.writes == writes


def test_gpu_hours_count_in_the_cost_per_app() -> None:
    totals = {
        "base1": Totals(3, 3, 3000, 6000, Decimal("0.03"), 9.0),
        "cand": Totals(1, 0, 1000, 2000, Decimal("0.01"), 3.0),
    }
    pricing = ModelDeploymentSpec.model_validate(
        {**ROLLOUT_MODEL, "pricing": {"gpuHour": "2.5"}}
    ).pricing
    assert pricing is not None
    economics = measured.economics(totals, "0.4", pricing)
    assert economics == {
        "apps": 4,
        "tokensIn": 4000,
        "tokensOut": 8000,
        "tokenCost": "0.04",
        "gpuHours": "0.4",
        "gpuCost": "1",
        "costPerApp": "0.26",
    }


def test_pin_promote_and_abort_by_spec(kube: FakeKube) -> None:
    board = OutcomeStore(kube, OperatorSettings().platform_namespace, lambda namespace, name: UID)
    for action, phase in (("Pin", "Pinned"), ("Promote", "Promoted"), ("Abort", "RolledBack")):
        model = copy.deepcopy(ROLLOUT_MODEL)
        model["rollout"]["action"] = action
        harness = make(kube, ModelDeploymentSpec.model_validate(model), outcomes=board)
        harness.reconcile()
        run_generations(harness, board, 0.5, 300)
        assert harness.status["rollout"]["phase"] == phase
        assert "by spec.rollout.action" in harness.status["rollout"]["decision"]


def test_an_adapter_from_a_training_is_served_once_the_run_succeeded(kube: FakeKube) -> None:
    model = ModelDeploymentSpec.model_validate(
        {
            **ROLLOUT_MODEL,
            "model": {"name": "base1", "storageUri": "s3://models/base1"},
            "serving": {"kserve": {"engine": "vllm"}},
            "adapters": [{"name": "cand", "training": "run-1"}],
        }
    )
    harness = make(kube, model)
    outcome = harness.reconcile()
    isvc = kube.objects[("LLMInferenceService", NAMESPACE, "m")]
    assert "lora" not in isvc["spec"]["model"]
    pending = harness.condition("AdaptersReady")
    assert (pending["status"], pending["reason"]) == ("False", "AdaptersPending")
    assert "ModelTraining run-1 not found" in pending["message"]
    assert harness.status["adapters"] == []
    assert outcome.requeue_after == 30
    # Routing: the rollout's candidate is not served, so nobody is sent to it.
    body = {
        "metadata": {"name": "m", "namespace": NAMESPACE},
        "spec": model.to_wire(),
        "status": harness.status,
    }
    assert router.candidate_from(body).rollout is None  # type: ignore[union-attr]
    kube.objects[("ModelTraining", NAMESPACE, "run-1")] = {
        "metadata": {"name": "run-1", "namespace": NAMESPACE},
        "status": {"phase": "Succeeded", "adapterUri": "s3://vibeplane/adapters/ns/run-1/"},
    }
    harness.reconcile()
    isvc = kube.objects[("LLMInferenceService", NAMESPACE, "m")]
    assert isvc["spec"]["model"]["lora"]["adapters"] == [
        {"name": "cand", "uri": "s3://vibeplane/adapters/ns/run-1/"}
    ]
    assert harness.condition("AdaptersReady")["status"] == "True"
    assert harness.status["adapters"] == ["cand"]
    body["status"] = harness.status
    assert router.candidate_from(body).rollout is not None  # type: ignore[union-attr]


def _finished_run(kube: FakeKube, name: str, adapter: str, created: str) -> None:
    """A ModelTraining that succeeded and offers its adapter to the deployment "m"."""
    kube.objects[("ModelTraining", NAMESPACE, name)] = {
        "metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": created},
        "spec": {"output": {"adapterName": adapter, "modelDeployment": "m"}},
        "status": {"phase": "Succeeded", "adapterUri": f"s3://vibeplane/adapters/ns/{name}/"},
    }


def test_a_finished_training_becomes_the_candidate_and_the_winner_the_next_bar(
    kube: FakeKube,
) -> None:
    automatic = {"canaryPercent": 20, "minSamples": 50, "margin": "0.03"}
    model = ModelDeploymentSpec.model_validate(
        {**ROLLOUT_MODEL, "adapters": [], "rollout": automatic}
    )
    vllm = ModelDeploymentSpec.model_validate(
        {
            **ROLLOUT_MODEL,
            "model": {"name": "base1", "storageUri": "s3://models/base1"},
            "serving": {"kserve": {"engine": "vllm"}},
            "adapters": [],
            "rollout": automatic,
        }
    )
    board = OutcomeStore(kube, OperatorSettings().platform_namespace, lambda namespace, name: UID)
    harness = make(kube, model, outcomes=board)
    harness.reconcile()
    waiting = harness.condition("RolloutDecided")
    assert (waiting["status"], waiting["reason"]) == ("False", "NoCandidate")
    assert "rollout" not in harness.status
    assert "adapters" not in harness.status
    # A run still training offers nothing; one that succeeded is served and is the candidate.
    kube.objects[("ModelTraining", NAMESPACE, "run-0")] = {
        "metadata": {"name": "run-0", "namespace": NAMESPACE, "creationTimestamp": "2026-12-03"},
        "spec": {"output": {"adapterName": "gen-0", "modelDeployment": "m"}},
        "status": {"phase": "Training"},
    }
    _finished_run(kube, "run-1", "gen-1", "2026-12-01T00:00:00Z")
    harness.reconcile()
    assert harness.status["adapters"] == ["gen-1"]
    assert harness.status["rollout"]["candidate"] == "gen-1"
    assert harness.status["rollout"]["incumbent"]["model"] == "builtin"
    # On vLLM the offered adapter is served beside the base model.
    make(kube, vllm).reconcile()
    isvc = kube.objects[("LLMInferenceService", NAMESPACE, "m")]
    assert isvc["spec"]["model"]["lora"]["adapters"] == [
        {"name": "gen-1", "uri": "s3://vibeplane/adapters/ns/run-1/"}
    ]
    body = {"metadata": {"name": "m", "namespace": NAMESPACE}, "spec": model.to_wire()}
    body["status"] = harness.status
    view = router.candidate_from(body).rollout  # type: ignore[union-attr]
    assert view is not None
    assert (view.candidate, view.incumbent) == ("gen-1", "builtin")

    run_generations(harness, board, 0.97, 3000, candidate="gen-1")
    assert harness.status["rollout"]["phase"] == "Promoted", harness.status["rollout"]
    assert [reason for reason, _ in kube.events] == ["AdapterPromoted"]

    # The next run: the new candidate, measured against the promoted one.
    _finished_run(kube, "run-2", "gen-2", "2026-12-02T00:00:00Z")
    harness.reconcile()
    rollout = harness.status["rollout"]
    assert (rollout["candidate"], rollout["phase"]) == ("gen-2", "Canary")
    assert rollout["incumbent"]["model"] == "gen-1"
    assert harness.status["adapters"] == ["gen-1", "gen-2"]
    body["status"] = harness.status
    view = router.candidate_from(body).rollout  # type: ignore[union-attr]
    assert view is not None
    assert (view.candidate, view.incumbent) == ("gen-2", "gen-1")
    run_generations(harness, board, 0.5, 1500, candidate="gen-2", rates={"gen-1": 0.97})
    rollout = harness.status["rollout"]
    assert rollout["phase"] == "RolledBack", rollout
    assert rollout["incumbent"]["model"] == "gen-1"
    assert rollout["incumbent"]["generations"] > rollout["candidateArm"]["generations"] >= 50
    assert [reason for reason, _ in kube.events] == ["AdapterPromoted", "AdapterRolledBack"]
