"""The TrainJob a ModelTraining becomes, its lineage, and its status from Trainer's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.unit.modeltraining.support import ADAPTER_URI, DATASET_URI, LORA_SFT, UID
from vibeplane.modeltraining import desired

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, document: Any) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump(document, sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; UPDATE_GOLDEN=1 to accept"


def test_train_job_matches_golden() -> None:
    job = desired.train_job(
        "base1-2026-12", "vibeplane-system", UID, LORA_SFT, DATASET_URI, ADAPTER_URI, "models-s3"
    )
    check_golden("trainjob-lora-sft", job)
    assert "--lora-rank=16" in job["spec"]["trainer"]["args"]
    assert job["spec"]["initializer"]["dataset"] == {
        "storageUri": DATASET_URI,
        "secretRef": {"name": "models-s3"},
    }


def test_locations_are_addressed_by_run_and_digest() -> None:
    assert desired.dataset_prefix("ns", "run", "sha256:" + "ab" * 32) == (
        "datasets/training/ns/run/abababababababab/"
    )
    assert desired.output_uri(LORA_SFT, "bucket", "ns", "run") == "s3://bucket/adapters/ns/run/"


def test_lineage_names_everything_the_adapter_came_from() -> None:
    assert desired.lineage(LORA_SFT, "sha256:d", "ns", "run", ADAPTER_URI) == {
        "baseModel": "base1 (s3://models/base1/2026-11)",
        "datasetDigest": "sha256:d",
        "hyperparameters": {
            "loraRank": "16",
            "loraAlpha": "32",
            "learningRate": "0.0002",
            "epochs": "2",
            "batchSize": "8",
            "maxSeqLength": "4096",
        },
        "trainJob": "ns/run",
        "adapterUri": ADAPTER_URI,
    }


def test_status_follows_trainer() -> None:
    phase, conditions = desired.training_status(None)
    assert phase == "Training"
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert desired.training_status(done)[0] == "Succeeded"
    failed = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "m"}
            ]
        }
    }
    phase, conditions = desired.training_status(failed)
    assert phase == "Failed"
    assert (conditions[0].reason, conditions[1].reason) == ("DeadlineExceeded", "TrainJobFailed")


def test_a_run_without_examples_or_trainer_is_blocked_and_says_why() -> None:
    empty = {"digest": "sha256:d", "counts": {"records": 4, "train": 0, "eval": 0}}
    phase, ready = desired.blocked(empty, trainer_available=True) or ("", None)
    assert (phase, ready and ready.reason) == ("Failed", "EmptyDataset")
    some = {"digest": "sha256:d", "counts": {"records": 4, "train": 3, "eval": 1}}
    phase, ready = desired.blocked(some, trainer_available=False) or ("", None)
    assert (phase, ready and ready.reason) == ("Pending", "TrainerNotInstalled")
    assert desired.blocked(some, trainer_available=True) is None
    built = desired.dataset_condition(some)
    assert built.message == "3 training and 1 held-out examples from 4 records (sha256:d)"


def test_a_run_names_its_adapter_only_once_trainer_reports_complete() -> None:
    fields, conditions = desired.run_status(LORA_SFT, None, "sha256:d", "ns", "run", ADAPTER_URI)
    assert (fields["phase"], fields["adapterUri"], fields["trainJob"]) == (
        "Training",
        None,
        "run",
    )
    assert "adapterUri" not in fields["lineage"]  # none yet: omitted on the wire
    assert not any(c.type == "Ready" and c.status == "True" for c in conditions)

    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    fields, conditions = desired.run_status(LORA_SFT, done, "sha256:d", "ns", "run", ADAPTER_URI)
    assert (fields["phase"], fields["adapterUri"]) == ("Succeeded", ADAPTER_URI)
    assert fields["lineage"]["adapterUri"] == ADAPTER_URI
    ready = next(c for c in conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "AdapterReady")
