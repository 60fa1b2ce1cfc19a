"""The loop on the local platform: a training run finishes, its adapter becomes the candidate
on the base model's ModelDeployment by itself, a canary share of generations goes to it, and the
rule decides, with its numbers in status and an Event, kept across an operator restart.

Two depths:
- `test_the_rule_decides_on_counted_outcomes...` (in `make test`, about a minute): the real
  operator, API server, MinIO and training path; the generations' outcomes are posted into the
  model's outcomes ConfigMap by the same store the VibeApp path uses (vibeplane.generation.
  outcome_store), so no preview runs. It also shows that the counts go with their model.
- `test_a_finished_training_is_rolled_out_by_measured_success` (marked `slow`, about 6 min;
  `make test-slow`): the whole path, real VibeApps routed by the canary share, previews on the
  preview node, validation by readiness.

The model is one the test controls (an OpenAI-compatible stub on 127.0.0.1 that answers by the
model name asked for): the first candidate breaks every other app it writes (no page: its
preview never becomes ready), the second writes apps as good as the base model's. No Trainer
controller runs here: the test writes the TrainJob's Complete condition, as Trainer does.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from vibeplane_trainer import sft

from tests.integration.conftest import S3, OperatorProcess
from tests.integration.support import (
    GROUP,
    VERSION,
    StubModel,
    create_object,
    find_condition,
    wait_for,
)
from tests.integration.test_modeltraining import MERGE, _revision
from vibeplane.generation.outcome_store import OutcomeStore
from vibeplane.generation.outcomes import config_map_name
from vibeplane.kube.client import ApiServerClient

pytestmark = pytest.mark.integration

DAY = datetime(2099, 1, 1, tzinfo=UTC)
"""This test's records are dated here, and its runs read from here on: the dataset build skips
every other test's records by their day, without reading them."""
GOOD = '<file path="index.html">\n<title>ok</title><h1>ok</h1>\n</file>\n'
BROKEN = '<file path="app.js">\nconsole.log("no page")\n</file>\n'
RECORDED_ADAPTER = Path(__file__).resolve().parents[1] / "fixtures" / "tiny-lora"
"""A real LoRA adapter of the tiny test model, recorded from `make test-train`
(VIBEPLANE_RECORD_ADAPTER=tests/fixtures/tiny-lora make test-train)."""
WAVE = 6
"""Apps generated at once: the preview node's CPU (each preview asks 250m) holds few."""


class Models:
    """The stub's behaviour by model name: a failing one breaks every other app it writes."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.asked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, model: str, _messages: list[dict[str, Any]]) -> str:
        with self._lock:
            count = self.asked[model]
            self.asked[model] += 1
        return BROKEN if model in self.failing and count % 2 == 0 else GOOD


def _custom(api: ApiClient) -> Any:
    return kubernetes.client.CustomObjectsApi(api)


def _workspace(api: ApiClient) -> dict[str, Any]:
    name = f"ro{uuid.uuid4().hex[:6]}"
    create_object(
        api,
        "Workspace",
        name,
        {"budget": {"tokens": 50_000_000, "money": "1000"}, "dataSharing": {"allowTraining": True}},
    )

    def ready() -> dict[str, Any] | None:
        obj = _custom(api).get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
        condition = find_condition(obj, "Ready")
        return dict(obj) if condition and condition["status"] == "True" else None

    return wait_for(ready, timeout=60, what="workspace Ready")


def _train(api: ApiClient, s3: S3, workspace: str, namespace: str, adapter: str) -> None:
    """A ModelTraining offering `adapter` to the deployment "own", driven to Succeeded."""
    for n in range(3):
        app = f"seed-{uuid.uuid4().hex[:6]}"
        entry = _revision(
            s3, workspace, app, 1, f"{adapter} page {n}", {"index.html": "x"}, "Passed", DAY
        )
        s3.store.write_index(workspace, app, [entry])
    run = f"run-{adapter}"
    create_object(
        api,
        "ModelTraining",
        run,
        {
            "baseModel": {"name": "own", "uri": "s3://models/own"},
            "output": {"adapterName": adapter, "modelDeployment": "own"},
            "dataset": {"since": DAY.strftime("%Y-%m-%dT00:00:00Z")},
        },
        namespace=namespace,
    )
    custom = _custom(api)

    def phase(wanted: str) -> Any:
        def check() -> dict[str, Any] | None:
            obj = custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeltrainings", run
            )
            return obj if (obj.get("status") or {}).get("phase") == wanted else None

        return check

    wait_for(phase("Training"), timeout=120, what=f"{run}'s TrainJob")
    job = custom.get_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", namespace, "trainjobs", run
    )
    if RECORDED_ADAPTER.is_dir():
        # The trainer's export, as its pod does it: the adapter to the URI in its arguments
        # (a LoRA adapter a real `make test-train` run trained on the tiny model, recorded).
        output = sft.parse(job["spec"]["trainer"]["args"]).output_uri
        uploaded = sft.upload(RECORDED_ADAPTER, output)
        assert any(key.endswith("adapter_config.json") for key in uploaded)
    custom.patch_namespaced_custom_object_status(
        "trainer.kubeflow.org",
        "v1alpha1",
        namespace,
        "trainjobs",
        run,
        {
            "status": {
                "conditions": [
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "JobsCompleted",
                        "message": "done",
                        "lastTransitionTime": "2099-01-01T00:00:00Z",
                    }
                ]
            }
        },
        _content_type=MERGE,
    )
    wait_for(phase("Succeeded"), timeout=60, what=f"{run} Succeeded")


def _model(api: ApiClient, namespace: str) -> dict[str, Any]:
    return dict(
        _custom(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", "own"
        )
    )


def _rollout(api: ApiClient, namespace: str) -> dict[str, Any]:
    return dict((_model(api, namespace).get("status") or {}).get("rollout") or {})


def _wave(api: ApiClient, namespace: str, tag: str) -> list[tuple[str, str]]:
    """WAVE apps generated at once on "own"; (served model, validation) of each. An app is
    deleted as soon as it is validated: the preview node has room for few previews."""
    custom = _custom(api)
    names = [f"{tag}-{n}" for n in range(WAVE)]
    for name in names:
        create_object(api, "VibeApp", name, {"prompts": ["a page"], "model": "own"}, namespace)
    found: dict[str, tuple[str, str]] = {}

    def validated() -> bool | None:
        for name in names:
            if name in found:
                continue
            app = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", name)
            revisions = (app.get("status") or {}).get("revisions") or []
            if revisions and revisions[0].get("validation") in ("Passed", "Failed"):
                found[name] = (str(revisions[0].get("servedModel")), revisions[0]["validation"])
                custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", name)
        return len(found) == len(names) or None

    # Broken apps fail when their preview's ready timeout (30 s in the tests) runs out.
    wait_for(validated, timeout=240, what=f"wave {tag} validated")
    return [found[name] for name in names]


def _counted(api: ApiClient, namespace: str, at_least: int) -> dict[str, Any] | None:
    """status.rollout once both arms together count `at_least` generations."""
    rollout = _rollout(api, namespace)
    arms = ("incumbent", "candidateArm")
    counted = sum(int(rollout.get(arm, {}).get("generations", 0)) for arm in arms)
    return rollout if counted >= at_least else None


def _until_decided(api: ApiClient, namespace: str, tag: str) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []
    for wave in range(10):
        results += _wave(api, namespace, f"{tag}{wave}")
        total = len(results)
        rollout = wait_for(
            functools.partial(_counted, api, namespace, total),
            timeout=30,
            what="the outcomes counted",
        )
        if rollout.get("phase") in ("Promoted", "RolledBack"):
            return results
    raise AssertionError(
        f"not decided after {len(results)} generations: {_rollout(api, namespace)}"
    )


def _events(api: ApiClient, namespace: str) -> list[tuple[str, str]]:
    core = kubernetes.client.CoreV1Api(api)
    listed = core.list_namespaced_event(namespace, field_selector="involvedObject.name=own")
    return [(event.reason, event.message) for event in listed.items]


def _own_model(api: ApiClient, namespace: str, serving: dict[str, Any]) -> None:
    create_object(
        api,
        "ModelDeployment",
        "own",
        {
            "model": {"name": "own", "storageUri": "s3://models/own"},
            "serving": serving,
            "pricing": {"inputPerMillion": "1", "outputPerMillion": "2"},
            # Few generations per arm, so a wide margin: at 0.2, 10/10 against 10/10 is "at
            # least as good" (generation/rollout.py; at the default 0.02 it takes ~115 per arm).
            "rollout": {"canaryPercent": 50, "minSamples": 10, "margin": "0.2"},
        },
        namespace=namespace,
    )

    def waiting() -> dict[str, Any] | None:
        condition = find_condition(_model(api, namespace), "RolloutDecided")
        return condition if condition and condition["reason"] == "NoCandidate" else None

    wait_for(waiting, timeout=60, what="a rollout waiting for a candidate")


def _post(store: OutcomeStore, namespace: str, served: str, tag: str, passed: list[bool]) -> None:
    """Settled generations of "own" served by `served`, as the VibeApp path posts them."""
    for n, success in enumerate(passed):
        record = {
            "key": f"{tag}-{n}:1:0",
            "model": "own",
            "modelNamespace": namespace,
            "servedModel": served,
            "fixUp": False,
            "tokensIn": 1000,
            "tokensOut": 500,
            "cost": "0.002",
            "latencySeconds": 1.5,
        }
        store.post(record, success)


def _decided(api: ApiClient, namespace: str, phase: str) -> dict[str, Any]:
    def decided() -> dict[str, Any] | None:
        rollout = _rollout(api, namespace)
        return rollout if rollout.get("phase") == phase else None

    return wait_for(decided, timeout=60, what=f"the rollout {phase}")


def test_the_rule_decides_on_counted_outcomes_and_the_counts_go_with_the_model(
    api: ApiClient, s3: S3, operator: OperatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.server.endpoint)  # the trainer's upload
    ws = _workspace(api)
    workspace, namespace = ws["metadata"]["name"], ws["status"]["namespace"]
    kube = ApiServerClient()
    platform = "vibeplane-system"

    def uid_of(model_namespace: str, name: str) -> str | None:
        body = kube.get(f"{GROUP}/{VERSION}", "ModelDeployment", name, model_namespace)
        return str(body["metadata"]["uid"]) if body else None

    def namespace_uid(name: str) -> str | None:
        body = kube.get("v1", "Namespace", name)
        return str(body["metadata"]["uid"]) if body else None

    store = OutcomeStore(kube, platform, uid_of, namespace_uid=namespace_uid)
    try:
        # The platform's own model: vLLM through KServe (the default engine).
        _own_model(api, namespace, {"kserve": {"minReplicas": 1, "maxReplicas": 1}})
        # A finished run's adapter is served and is the candidate, by itself; it fails half
        # its apps against a base model that passes all of them: rolled back by the rule.
        _train(api, s3, workspace, namespace, "gen-1")
        wait_for(
            lambda: _rollout(api, namespace).get("candidate") == "gen-1" or None,
            timeout=30,
            what="gen-1 the candidate",
        )
        # Trained, uploaded to MinIO, and served as a LoRA adapter of the base model by vLLM.
        run = _custom(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeltrainings", "run-gen-1"
        )
        adapter_uri = run["status"]["adapterUri"]
        if RECORDED_ADAPTER.is_dir():
            assert s3.store.get(adapter_uri.split("/", 3)[3] + "adapter_config.json")
        served = _custom(api).get_namespaced_custom_object(
            "serving.kserve.io", "v1alpha2", namespace, "llminferenceservices", "own"
        )
        assert served["spec"]["model"]["lora"]["adapters"] == [
            {"name": "gen-1", "uri": adapter_uri}
        ]
        _post(store, namespace, "own", "a-own", [True] * 12)
        _post(store, namespace, "gen-1", "a-gen1", [True, False] * 6)
        rollout = _decided(api, namespace, "RolledBack")
        candidate, incumbent = rollout["candidateArm"], rollout["incumbent"]
        assert (candidate["model"], incumbent["model"]) == ("gen-1", "own")
        # The rule may decide as soon as both arms hold minSamples (10): 5/10 already fails.
        assert 10 <= candidate["generations"] <= 12
        assert float(candidate["successRate"]) <= 0.55
        assert (incumbent["generations"], incumbent["successes"]) == (12, 12)
        assert float(rollout["zScore"]) < -1.645
        assert rollout["canaryPercent"] == 0
        condition = find_condition(_model(api, namespace), "RolloutDecided")
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("True", "RolledBack")
        assert any(reason == "AdapterRolledBack" for reason, _ in _events(api, namespace))
        # A restarted operator keeps the counts and the decision: they are on the API server.
        operator.restart()
        wait_for(
            lambda: _rollout(api, namespace) == rollout or None, timeout=30, what="same numbers"
        )

        # The next run is as good as the base model: promoted.
        _train(api, s3, workspace, namespace, "gen-2")
        wait_for(
            lambda: _rollout(api, namespace).get("candidate") == "gen-2" or None,
            timeout=30,
            what="gen-2 the candidate",
        )
        _post(store, namespace, "own", "b-own", [True] * 10)
        _post(store, namespace, "gen-2", "b-gen2", [True] * 10)
        rollout = _decided(api, namespace, "Promoted")
        assert rollout["incumbent"]["model"] == "own"
        assert (rollout["candidateArm"]["generations"], rollout["incumbent"]["generations"]) == (
            10,
            10,
        )
        assert "at least as good" in rollout["decision"]
        assert any(reason == "AdapterPromoted" for reason, _ in _events(api, namespace))
        status = _model(api, namespace)["status"]
        assert status["adapters"] == ["gen-1", "gen-2"]
        economics = status["economics"]
        assert economics["apps"] == 44
        assert economics["costPerApp"] == "0.002"

        # The counts go with their model: a tenant's by the operator when it is deleted...
        uid = uid_of(namespace, "own")
        assert uid is not None
        owned = kube.get("v1", "ConfigMap", config_map_name(uid), platform)
        assert owned is not None
        assert [o["kind"] for o in owned["metadata"]["ownerReferences"]] == ["Namespace"]
        _custom(api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", "own"
        )
        wait_for(
            lambda: kube.get("v1", "ConfigMap", config_map_name(uid), platform) is None or None,
            timeout=30,
            what="the tenant model's outcomes deleted",
        )
        # ... or, deleted while no operator runs, at the operator's next start...
        create_object(
            api,
            "ModelDeployment",
            "later",
            {"model": {"name": "later"}, "serving": {"builtin": {}}},
            namespace=namespace,
        )
        store.post({"key": "l:1:0", "model": "later", "modelNamespace": namespace}, True)
        later = uid_of(namespace, "later")
        assert later is not None
        assert kube.get("v1", "ConfigMap", config_map_name(later), platform) is not None
        operator.stop()
        try:
            _custom(api).delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", "later"
            )
        finally:
            operator.start()
        wait_for(
            lambda: kube.get("v1", "ConfigMap", config_map_name(later), platform) is None or None,
            timeout=60,
            what="the outcomes of a model deleted while no operator ran, swept at its start",
        )
        # ... a platform model's by the garbage collector (it owns them).
        shared = f"shared-{uuid.uuid4().hex[:6]}"
        create_object(
            api,
            "ModelDeployment",
            shared,
            {"model": {"name": shared}, "serving": {"builtin": {}}},
            namespace=platform,
        )
        record = {"key": "s:1:0", "model": shared, "modelNamespace": platform}
        store.post(record, True)
        shared_uid = uid_of(platform, shared)
        assert shared_uid is not None
        owned = kube.get("v1", "ConfigMap", config_map_name(shared_uid), platform)
        assert owned is not None
        assert [o["uid"] for o in owned["metadata"]["ownerReferences"]] == [shared_uid]
        _custom(api).delete_namespaced_custom_object(
            GROUP, VERSION, platform, "modeldeployments", shared
        )
        wait_for(
            lambda: (
                kube.get("v1", "ConfigMap", config_map_name(shared_uid), platform) is None or None
            ),
            timeout=60,
            what="the platform model's outcomes collected",
        )
    finally:
        _custom(api).delete_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)


@pytest.mark.slow  # about 6 min: `make test-slow`
@pytest.mark.timeout(900)  # waves of real previews; a broken one fails after 30 s
def test_a_finished_training_is_rolled_out_by_measured_success(
    api: ApiClient,
    s3: S3,
    operator: OperatorProcess,
    preview_node: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.server.endpoint)  # the trainer's upload
    models = Models()
    stub = StubModel(lambda _: GOOD, by_model=models)
    ws = _workspace(api)
    workspace, namespace = ws["metadata"]["name"], ws["status"]["namespace"]
    try:
        _own_model(api, namespace, {"external": {"baseURL": stub.url, "model": "own"}})

        # 1. A run finishes: its adapter is served and is the candidate, by itself. It breaks
        # half its apps: rolled back by the rule.
        models.failing.add("gen-1")
        _train(api, s3, workspace, namespace, "gen-1")
        wait_for(
            lambda: _rollout(api, namespace).get("candidate") == "gen-1" or None,
            timeout=30,
            what="gen-1 the candidate",
        )
        assert (_model(api, namespace).get("status") or {}).get("adapters") == ["gen-1"]
        if RECORDED_ADAPTER.is_dir():
            run = _custom(api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeltrainings", "run-gen-1"
            )
            prefix = run["status"]["adapterUri"].split("/", 3)[3]
            assert s3.store.get(prefix + "adapter_config.json")
        results = _until_decided(api, namespace, "a")
        rollout = _rollout(api, namespace)
        print(f"gen-1: {len(results)} generations; {rollout}")
        assert rollout["phase"] == "RolledBack", rollout
        candidate, incumbent = rollout["candidateArm"], rollout["incumbent"]
        assert (candidate["model"], incumbent["model"]) == ("gen-1", "own")
        assert candidate["generations"] >= 10
        assert incumbent["generations"] >= 10
        assert float(candidate["successRate"]) <= 0.6
        assert float(incumbent["successRate"]) == 1.0
        assert float(rollout["zScore"]) < -1.645
        assert {served for served, _ in results} == {"gen-1", "own"}
        condition = find_condition(_model(api, namespace), "RolloutDecided")
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("True", "RolledBack")
        assert any(reason == "AdapterRolledBack" for reason, _ in _events(api, namespace))
        # A restarted operator keeps the counts and the decision: they are on the API server.
        operator.restart()
        wait_for(
            lambda: _rollout(api, namespace) == rollout or None, timeout=30, what="same numbers"
        )
        # Decided: everyone is back on the base model.
        assert {served for served, _ in _wave(api, namespace, "after")} == {"own"}

        # 2. The next run writes apps as good as the base model's: promoted.
        _train(api, s3, workspace, namespace, "gen-2")
        wait_for(
            lambda: _rollout(api, namespace).get("candidate") == "gen-2" or None,
            timeout=30,
            what="gen-2 the candidate",
        )
        results = _until_decided(api, namespace, "b")
        rollout = _rollout(api, namespace)
        print(f"gen-2: {len(results)} generations; {rollout}")
        assert rollout["phase"] == "Promoted", rollout
        assert rollout["incumbent"]["model"] == "own"
        assert float(rollout["candidateArm"]["successRate"]) == 1.0
        assert "at least as good" in rollout["decision"]
        assert any(reason == "AdapterPromoted" for reason, _ in _events(api, namespace))
        status = _model(api, namespace)["status"]
        assert status["adapters"] == ["gen-1", "gen-2"]
        economics = status["economics"]
        assert economics["apps"] >= 2 * 2 * 10
        assert economics["costPerApp"] is not None
        print(f"economics: {economics}")
    finally:
        stub.close()
        _custom(api).delete_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)
