"""Shared by the ModelTraining unit tests (and the emitted-objects dry-run)."""

from __future__ import annotations

from vibeplane.api.modeltraining import ModelTrainingSpec

UID = "7a1f0000-0000-4000-8000-00000000000b"
DATASET_URI = "s3://vibeplane/datasets/training/vibeplane-system/base1-2026-12/0123456789abcdef/"
ADAPTER_URI = "s3://vibeplane/adapters/vibeplane-system/base1-2026-12/"

LORA_SFT = ModelTrainingSpec.model_validate(
    {
        "baseModel": {"name": "base1", "uri": "s3://models/base1/2026-11"},
        "output": {"adapterName": "base1-2026-12"},
        "dataset": {"holdoutPercent": 10},
        "hyperparameters": {"loraRank": 16, "epochs": 2, "learningRate": "0.0002"},
        "trainer": {
            "runtime": "torch-distributed",
            "numNodes": 1,
            "gpusPerNode": 1,
            "resources": {"cpu": "8", "memory": "64Gi"},
            "activeDeadlineSeconds": 21600,
        },
    }
)
