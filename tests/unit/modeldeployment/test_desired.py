"""The ModelDeployment's pure builders, against golden files (UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.modeldeployment.support import (
    CANARY,
    NAMESPACE,
    RAW_GPU,
    SERVERLESS_ZERO,
    UID,
    check_golden,
    isvc_live,
    spec,
)
from vibeplane.api import modeldeployment as api
from vibeplane.api.modeldeployment import ModelDeploymentSpec
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.modeldeployment import desired

SETTINGS = desired.ServingSettings()


def _manifests(name: str, md: ModelDeploymentSpec, live: dict[str, Any] | None = None) -> Any:
    plan = desired.canary_plan(md, live)
    return [
        desired.service_account(NAMESPACE, SETTINGS, storage_secret_exists=True, live=None),
        desired.inference_service(name, NAMESPACE, UID, md, SETTINGS, plan),
    ]


def _conditions(conditions: list[ConditionSpec]) -> list[dict[str, str]]:
    return [vars(condition) for condition in conditions]


def test_raw_deployment_with_gpus_matches_golden() -> None:
    check_golden("kserve-raw-gpu", _manifests("base1", RAW_GPU))


def test_serverless_scale_to_zero_matches_golden() -> None:
    check_golden("kserve-serverless-zero", _manifests("coder", SERVERLESS_ZERO))


def test_canary_matches_golden() -> None:
    stable = desired.inference_service(
        "base1", NAMESPACE, UID, CANARY, SETTINGS, desired.CanaryPlan("waiting", "s3://x", None)
    )
    live = isvc_live(
        {**stable, "spec": {"predictor": {"model": {"storageUri": "s3://models/base1/2026-11"}}}}
    )
    check_golden("kserve-canary", _manifests("base1", CANARY, live))


def test_gpu_limits_requests_affinity_and_tolerations() -> None:
    isvc = _manifests("base1", RAW_GPU)[1]
    predictor = isvc["spec"]["predictor"]
    resources = predictor["model"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 2
    assert resources["requests"]["nvidia.com/gpu"] == 2
    assert resources["requests"]["cpu"] == "8"
    term = predictor["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0] == {
        "key": "nvidia.com/gpu.product",
        "operator": "In",
        "values": ["NVIDIA-H100-80GB-HBM3"],
    }
    assert predictor["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # KServe >= 0.15's name: its webhook would rewrite RawDeployment to it.
    assert isvc["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Standard"}
    assert predictor["automountServiceAccountToken"] is False
    assert isvc["metadata"]["ownerReferences"][0]["controller"] is True
    assert predictor["serviceAccountName"] == "vibeplane-models"
    assert predictor["model"]["modelFormat"] == {"name": "huggingface"}
    assert predictor["model"]["runtime"] == "vibeplane-modelserver"
    assert predictor["model"]["args"] == ["--model-name=base1"]


def test_v2_formats_get_the_protocol_kserve_would_default() -> None:
    md = spec(
        {
            "model": {"name": "coder", "format": "vllm", "storageUri": "s3://m/coder"},
            "serving": {"kserve": {"engine": "modelserver"}},
        }
    )
    assert _manifests("coder", md)[1]["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    assert "protocolVersion" not in _manifests("base1", RAW_GPU)[1]["spec"]["predictor"]["model"]


def test_no_gpu_means_no_gpu_scheduling() -> None:
    md = spec(
        {
            "model": {"name": "tiny", "storageUri": "s3://m/tiny"},
            "serving": {"kserve": {"engine": "modelserver", "gpu": {"count": 0}}},
        }
    )
    predictor = _manifests("tiny", md)[1]["spec"]["predictor"]
    assert "resources" not in predictor["model"]
    assert "tolerations" not in predictor
    assert "affinity" not in predictor


def test_another_runtime_gets_no_modelserver_flags() -> None:
    predictor = _manifests("coder", SERVERLESS_ZERO)[1]["spec"]["predictor"]
    assert predictor["model"]["runtime"] == "kserve-huggingfaceserver"
    assert "args" not in predictor["model"]
    assert predictor["minReplicas"] == 0


@pytest.mark.parametrize(
    ("kserve", "fragment"),
    [
        (
            {"engine": "modelserver", "min_replicas": 0, "deployment_mode": "RawDeployment"},
            "needs deploymentMode Serverless",
        ),
        (
            {
                "engine": "modelserver",
                "canary": api.Canary(storage_uri="s3://m/c", traffic_percent=5),
            },
            "canary needs deploymentMode Serverless",
        ),
        ({"min_replicas": 3, "max_replicas": 2}, "must not exceed"),
        ({"min_replicas": 0}, "engine vllm keeps at least one replica"),
        ({"scale_metric": "rps"}, "scaleMetric and scaleTarget are for engine modelserver"),
    ],
)
def test_the_builder_guards_what_cel_refuses(kserve: dict[str, Any], fragment: str) -> None:
    # model_construct skips validation, like an object stored before a rule existed.
    md = api.ModelDeploymentSpec.model_construct(
        model=api.ModelSource(name="m", storage_uri="s3://m/m"),
        serving=api.Serving.model_construct(kserve=api.KServeServing.model_construct(**kserve)),
    )
    problem = desired.kserve_problem(md)
    assert problem is not None
    assert fragment in problem


def test_kserve_without_storage_uri_is_a_problem() -> None:
    md = spec({"model": {"name": "m"}, "serving": {"kserve": {}}})
    assert "storageUri is required" in (desired.kserve_problem(md) or "")


# ---- the canary plan ---------------------------------------------------------------------

STABLE = "s3://models/base1/2026-11"
NEW = "s3://models/base1/2026-12"


def _live(storage_uri: str, percent: int | None = None, **status: Any) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"storageUri": storage_uri}}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    manifest = {"metadata": {"name": "base1"}, "spec": {"predictor": predictor}}
    return isvc_live(manifest, **status)


def _without_canary(md: ModelDeploymentSpec, storage_uri: str = STABLE) -> ModelDeploymentSpec:
    data = md.to_wire()
    data["model"]["storageUri"] = storage_uri
    del data["serving"]["kserve"]["canary"]
    return spec(data)


def test_a_new_canary_waits_for_the_stable_version() -> None:
    assert desired.canary_plan(CANARY, None) == desired.CanaryPlan("waiting", STABLE, None)
    # Created but KServe has not rolled anything out yet.
    not_rolled = _live(STABLE, rolled_out=None, latest_ready=None)
    assert desired.canary_plan(CANARY, not_rolled).mode == "waiting"
    # KServe has not seen the latest generation yet.
    stale = _live(STABLE, generation=2, observed=1)
    assert desired.canary_plan(CANARY, stale).mode == "waiting"


def test_the_canary_starts_once_the_stable_version_is_rolled_out() -> None:
    plan = desired.canary_plan(CANARY, _live(STABLE))
    assert plan == desired.CanaryPlan("canary", NEW, 10)


def test_a_started_canary_stays_while_its_revision_is_not_ready() -> None:
    live = _live(NEW, 10, created="base1-predictor-00002", generation=2, observed=2)
    assert desired.canary_plan(CANARY, live) == desired.CanaryPlan("canary", NEW, 10)


def test_promotion_keeps_the_canary_revision_and_drops_the_split() -> None:
    promoted = _without_canary(CANARY, NEW)
    live = _live(NEW, 10, created="base1-predictor-00002", latest_ready="base1-predictor-00002")
    assert desired.canary_plan(promoted, live) == desired.CanaryPlan("stable", NEW, None)


def test_rollback_pins_traffic_to_the_previous_revision_first() -> None:
    rolled_back = _without_canary(CANARY)
    live = _live(NEW, 10, created="base1-predictor-00002", latest_ready="base1-predictor-00002")
    assert desired.canary_plan(rolled_back, live) == desired.CanaryPlan("rollback", STABLE, 0)
    # Applied, but KServe has not made the stable revision again yet: keep the pin.
    pinned = _live(
        STABLE, 0, generation=3, observed=3, created="base1-predictor-00003",
        latest_ready="base1-predictor-00002",
    )  # fmt: skip
    assert desired.canary_plan(rolled_back, pinned).mode == "rollback"
    # KServe has not seen the pin yet.
    unseen = _live(STABLE, 0, generation=3, observed=2)
    assert desired.canary_plan(rolled_back, unseen).mode == "rollback"
    # The stable revision is ready again: drop the pin.
    ready = _live(
        STABLE, 0, generation=3, observed=3, created="base1-predictor-00003",
        latest_ready="base1-predictor-00003",
    )  # fmt: skip
    assert desired.canary_plan(rolled_back, ready) == desired.CanaryPlan("stable", STABLE, None)


def test_a_canary_of_zero_percent_is_kept_as_asked() -> None:
    data = CANARY.to_wire()
    data["serving"]["kserve"]["canary"]["trafficPercent"] = 0
    assert desired.canary_plan(spec(data), _live(NEW, 10)) == desired.CanaryPlan("canary", NEW, 0)


# ---- status ------------------------------------------------------------------------------


def test_status_mirrors_a_ready_canary() -> None:
    live = _live(
        NEW,
        10,
        created="base1-predictor-00002",
        latest_ready="base1-predictor-00002",
        rolled_out="base1-predictor-00001",
        traffic=[
            {"revisionName": "base1-predictor-00002", "latestRevision": True, "percent": 10},
            {"revisionName": "base1-predictor-00001", "tag": "prev", "percent": 90},
        ],
    )
    plan = desired.canary_plan(CANARY, live)
    fields, conditions = desired.kserve_status(CANARY, plan, live, 3, None)
    check_golden("kserve-status-canary", [fields, _conditions(conditions)])
    assert fields["url"] == "http://base1-predictor.ws-team-a.svc.cluster.local/openai/v1"
    assert fields["canary"]["trafficPercent"] == 10
    assert fields["replicas"] == 3


def test_kserve_reasons_and_messages_pass_through() -> None:
    live = _live(STABLE, ready=None)
    live["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "RevisionMissing",
            "message": "Revision base1-predictor-00001 failed with message: OOMKilled.",
        },
        {"type": "PredictorReady", "status": "Unknown"},
    ]
    plan = desired.canary_plan(RAW_GPU, live)
    _, conditions = desired.kserve_status(RAW_GPU, plan, live, 0, None)
    by_type = {condition.type: condition for condition in conditions}
    assert by_type["Ready"] == ConditionSpec(
        "Ready",
        "False",
        "RevisionMissing",
        "Revision base1-predictor-00001 failed with message: OOMKilled.",
    )
    assert by_type["PredictorReady"].status == "Unknown"
    assert "CanaryReady" not in by_type


def test_status_before_kserve_reports_anything() -> None:
    manifest = _manifests("base1", RAW_GPU)[1]
    plan = desired.canary_plan(RAW_GPU, manifest)
    fields, conditions = desired.kserve_status(RAW_GPU, plan, manifest, 0, None)
    assert fields["url"] is None
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("Ready", "Unknown", "InferenceServicePending"),
        ("PredictorReady", "Unknown", "InferenceServicePending"),
    ]


def test_url_falls_back_to_status_url() -> None:
    live = _live(STABLE, address=None)
    assert desired.isvc_url(live) == "http://base1.ws-team-a.example.com/openai/v1"


def test_canary_removed_leaves_a_no_canary_condition_once_there_was_one() -> None:
    stable = _without_canary(CANARY)
    previous = [{"type": "CanaryReady", "status": "True", "reason": "CanaryServing"}]
    live = _live(STABLE)
    plan = desired.canary_plan(stable, live)
    fields, conditions = desired.kserve_status(stable, plan, live, 1, previous)
    assert fields["canary"] is None
    assert conditions[-1] == ConditionSpec(
        "CanaryReady", "False", "NoCanary", "no canary is configured"
    )


def test_rollback_status_names_the_previous_revision() -> None:
    rolled_back = _without_canary(CANARY)
    live = _live(NEW, 10, created="base1-predictor-00002", latest_ready="base1-predictor-00002")
    plan = desired.canary_plan(rolled_back, live)
    fields, conditions = desired.kserve_status(rolled_back, plan, live, 2, None)
    assert fields["canary"]["phase"] == "RollingBack"
    assert conditions[-1].reason == "RollingBack"
    assert "base1-predictor-00001" in conditions[-1].message


def test_service_account_lists_the_storage_secret_only_when_it_exists() -> None:
    with_secret = desired.service_account(NAMESPACE, SETTINGS, True, None)
    assert with_secret["secrets"] == [{"name": "vibeplane-model-storage"}]
    assert "secrets" not in desired.service_account(NAMESPACE, SETTINGS, False, None)
    # A reference we made is taken back when the Secret goes.
    gone = desired.service_account(NAMESPACE, SETTINGS, False, with_secret)
    assert gone["secrets"] == []


def test_probe_backoff_grows_to_five_minutes() -> None:
    assert [desired.probe_delay(n) for n in range(0, 9)] == [
        0.0,
        5.0,
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        300.0,
        300.0,
    ]
    assert desired.probe_delay(10_000) == 300.0


def test_stale_kserve_conditions_turn_unknown() -> None:
    previous = [
        {"type": "Ready", "status": "True"},
        {"type": "PredictorReady", "status": "True"},
    ]
    assert desired.stale_kserve_conditions(previous) == [
        ConditionSpec("PredictorReady", "Unknown", "NotKServe", "the model is not served by KServe")
    ]
    assert desired.stale_kserve_conditions(None) == []
