"""A ModelTraining on the real API server and MinIO: the dataset built from consented records
(validated, deduplicated, scrubbed, split by app) with its manifest in object storage, the
TrainJob accepted by Trainer's real CRD, and the lineage once Trainer reports Complete.

No Trainer controller runs here: the test plays it, writing the TrainJob's status the way
Trainer does, as the KServe tests do for InferenceServices."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from vibeplane_trainer import sft

from tests.integration.conftest import S3, OperatorProcess
from tests.integration.support import GROUP, VERSION, create_object, find_condition, wait_for
from vibeplane.storage import bundles
from vibeplane.storage.s3 import training_key

pytestmark = pytest.mark.integration
PLANTED = "sk-live-PLANTED0123456789abcdefgh"
MERGE = "application/merge-patch+json"


def _workspace(api: ApiClient, allow: bool) -> dict[str, Any]:
    name = f"train-{uuid.uuid4().hex[:6]}"
    create_object(
        api,
        "Workspace",
        name,
        {"budget": {"tokens": 1000}, "dataSharing": {"allowTraining": allow}},
    )
    custom = kubernetes.client.CustomObjectsApi(api)

    def ready() -> dict[str, Any] | None:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
        return (
            obj
            if (obj.get("status") or {}).get("namespace") and find_condition(obj, "Ready")
            else None
        )

    return wait_for(ready, timeout=60, what=f"workspace {name}")


def _revision(
    s3: S3,
    workspace: str,
    app: str,
    number: int,
    prompt: str,
    files: dict[str, str],
    validation: str,
    when: datetime,
    fix_up: bool = False,
) -> dict[str, Any]:
    bundle = bundles.build(files)
    uri = s3.store.put_bundle(workspace, app, bundle.sha256, bundle.data)
    s3.store.put_training_record(
        training_key(workspace, app, number, 0, when),
        {
            "workspace": workspace,
            "app": app,
            "revision": number,
            "attempt": 0,
            "prompt": prompt,
            "model": "builtin",
            "validation": "Pending",
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    return {
        "number": number,
        "attempt": 0,
        "sha256": bundle.sha256,
        "artifactUri": uri,
        "validation": validation,
        "fixUp": fix_up,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_a_workspace_trains_its_own_adapter_from_its_own_records(
    api: ApiClient, s3: S3, operator: OperatorProcess
) -> None:
    ws = _workspace(api, allow=True)
    name, namespace = ws["metadata"]["name"], ws["status"]["namespace"]
    now = datetime.now(UTC) - timedelta(days=1)
    page = {"index.html": "<h1>Books</h1>"}
    for n in range(6):
        app = f"app-{uuid.uuid4().hex[:6]}-{n}"
        entries = [
            _revision(
                s3, name, app, 1, f"a list of books {n}", {**page, "n": str(n)}, "Passed", now
            ),
        ]
        if n == 0:  # a failed second revision, and a fix-up of it
            entries.append(
                _revision(s3, name, app, 2, "add authors", page, "Failed", now + timedelta(hours=1))
            )
        if n == 1:  # the same prompt and files as app 2's: a duplicate
            entries[0] = _revision(
                s3, name, app, 1, "a list of books 2", {**page, "n": "2"}, "Passed", now
            )
        if n == 3:  # planted secret and address
            entries[0] = _revision(
                s3,
                name,
                app,
                1,
                f"mail jane@example.com, key {PLANTED}",
                {"app.js": f"const token = '{PLANTED}';"},
                "Passed",
                now,
            )
        s3.store.write_index(name, app, entries)
    run = f"own-{uuid.uuid4().hex[:6]}"
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modeltrainings",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelTraining",
            "metadata": {"name": run},
            "spec": {
                "baseModel": {"name": "base1", "uri": "s3://models/base1"},
                "output": {"adapterName": f"{name}-own"},
                "dataset": {"holdoutPercent": 30, "since": now.strftime("%Y-%m-%dT00:00:00Z")},
            },
        },
    )

    def training() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeltrainings", run)
        return obj if (obj.get("status") or {}).get("phase") == "Training" else None

    # The dataset build reads every consented record in the bucket: after the whole suite
    # (chaos, budgets) that is many objects, slow on a loaded machine.
    obj = wait_for(training, timeout=180, what="the dataset built and the TrainJob created")
    dataset = obj["status"]["dataset"]
    counts = dataset["counts"]
    assert (counts["notValidated"], counts["duplicates"]) == (1, 1)
    assert counts["train"] + counts["eval"] == 5
    assert counts["secretsScrubbed"] >= 2
    assert counts["emailsScrubbed"] == 1
    prefix = dataset["uri"].split("/", 3)[3]
    manifest = json.loads(s3.store.get(prefix + "manifest.json") or b"{}")
    assert manifest["counts"] == counts
    assert dataset["digest"].startswith("sha256:")
    text = (s3.store.get(prefix + "train.jsonl") or b"").decode() + (
        s3.store.get(prefix + "eval.jsonl") or b""
    ).decode()
    assert PLANTED not in text
    assert "jane@example.com" not in text
    apps = [
        {
            json.loads(line)["app"]
            for line in (s3.store.get(prefix + f) or b"").decode().splitlines()
        }
        for f in ("train.jsonl", "eval.jsonl")
    ]
    assert apps[0].isdisjoint(apps[1])
    assert {json.loads(line)["workspace"] for line in text.splitlines()} == {name}

    job = custom.get_namespaced_custom_object(
        "trainer.kubeflow.org", "v1alpha1", namespace, "trainjobs", run
    )
    assert job["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert job["spec"]["initializer"]["dataset"]["storageUri"] == dataset["uri"]
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
                        "lastTransitionTime": "2026-12-03T10:00:00Z",
                    }
                ]
            }
        },
        _content_type=MERGE,
    )

    def succeeded() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeltrainings", run)
        return obj if (obj.get("status") or {}).get("phase") == "Succeeded" else None

    lineage = wait_for(succeeded, timeout=30, what="the run Succeeded")["status"]["lineage"]
    assert lineage["datasetDigest"] == dataset["digest"]
    assert lineage["adapterUri"] == f"s3://vibeplane/adapters/{namespace}/{run}/"
    assert lineage["trainJob"] == f"{namespace}/{run}"
    assert lineage["hyperparameters"]["loraRank"] == "16"


def test_a_workspace_without_consent_cannot_train(
    api: ApiClient, operator: OperatorProcess
) -> None:
    ws = _workspace(api, allow=False)
    namespace = ws["status"]["namespace"]
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modeltrainings",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelTraining",
            "metadata": {"name": "no"},
            "spec": {
                "baseModel": {"name": "b", "uri": "s3://m/b"},
                "output": {"adapterName": "no"},
            },
        },
    )

    def refused() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeltrainings", "no")
        condition = find_condition(obj, "Ready")
        return condition if condition and condition["reason"] == "ConsentNotGiven" else None

    wait_for(refused, timeout=30, what="ConsentNotGiven")


def test_the_trainer_uploads_an_adapter_where_the_run_says(
    s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's export (Trainer has none) against the real MinIO: every file of the
    adapter directory under the run's output URI."""
    adapter = tmp_path / "adapter"
    (adapter / "nested").mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    (adapter / "nested" / "x.bin").write_bytes(b"\x00\x01")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.server.endpoint)
    prefix = f"adapters/test/{uuid.uuid4().hex[:6]}"
    keys = sft.upload(adapter, f"s3://vibeplane/{prefix}")
    assert keys == [f"{prefix}/adapter_config.json", f"{prefix}/nested/x.bin"]
    assert s3.store.get(f"{prefix}/adapter_config.json") == b'{"r": 4}'
