"""Pure builders: a ModelTraining -> its dataset location, its Kubeflow Trainer v2 TrainJob,
and its status (phase, conditions, lineage) from what Trainer reports.

The TrainJob (trainer.kubeflow.org/v1alpha1, Trainer v2.3) names a ClusterTrainingRuntime
(spec.trainer.runtime, `torch-distributed` by default: torchrun with the project's image);
Trainer's initializers download the base model and the dataset (s3://) into /workspace/model
and /workspace/dataset; the trainer (runtime/trainer: TRL SFT with a PEFT LoRA config) trains
on train.jsonl, evaluates on eval.jsonl and uploads the adapter to the output URI itself,
since Trainer exports nothing (its issue #2245). The run has succeeded when Trainer reports
Complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vibeplane.api import modeltraining as api
from vibeplane.api.common import API_VERSION
from vibeplane.kube.conditions import ConditionSpec, find
from vibeplane.wellknown import LABEL_COMPONENT
from vibeplane.wellknown import LABEL_MODELTRAINING as LABEL_MODELTRAINING

Manifest = dict[str, Any]

TRAINJOB_API_VERSION = "trainer.kubeflow.org/v1alpha1"
TRAINJOB_KIND = "TrainJob"
TRAINER_GROUP = "trainer.kubeflow.org"
COMPONENT_TRAINING = "model-training"
GPU_RESOURCE = "nvidia.com/gpu"
TRAINER_COMMAND = ("python3", "-m", "vibeplane_trainer.sft")


def dataset_prefix(namespace: str, name: str, digest: str) -> str:
    """Where one build of a run's dataset goes: addressed by its digest, never overwritten."""
    return f"datasets/training/{namespace}/{name}/{digest.removeprefix('sha256:')[:16]}/"


def output_uri(spec: api.ModelTrainingSpec, bucket: str, namespace: str, name: str) -> str:
    return spec.output.uri or f"s3://{bucket}/adapters/{namespace}/{name}/"


def hyperparameters(spec: api.ModelTrainingSpec) -> dict[str, str]:
    """The settings as the trainer's flags and lineage record them."""
    hp = spec.hyperparameters
    return {
        "loraRank": str(hp.lora_rank),
        "loraAlpha": str(hp.lora_alpha),
        "learningRate": hp.learning_rate,
        "epochs": str(hp.epochs),
        "batchSize": str(hp.batch_size),
        "maxSeqLength": str(hp.max_seq_length),
    }


def _flag(name: str) -> str:
    return "--" + "".join(f"-{c.lower()}" if c.isupper() else c for c in name)


def train_job(
    name: str,
    namespace: str,
    uid: str,
    spec: api.ModelTrainingSpec,
    dataset_uri: str,
    adapter_uri: str,
    storage_secret: str | None,
) -> Manifest:
    """The TrainJob of one run (its dataset already built and stored at `dataset_uri`)."""
    trainer = spec.trainer
    args = [
        "--model-dir=/workspace/model",
        "--dataset-dir=/workspace/dataset",
        f"--output-uri={adapter_uri}",
        f"--adapter-name={spec.output.adapter_name}",
        *(f"{_flag(key)}={value}" for key, value in hyperparameters(spec).items()),
    ]
    resources: dict[str, Any] = dict(sorted(trainer.resources.items()))
    if trainer.gpus_per_node > 0:
        resources[GPU_RESOURCE] = trainer.gpus_per_node
    body: Manifest = {
        "runtimeRef": {
            "name": trainer.runtime,
            "apiGroup": TRAINER_GROUP,
            "kind": "ClusterTrainingRuntime",
        },
        "initializer": {
            "model": _initializer(spec.base_model.uri, storage_secret),
            "dataset": _initializer(dataset_uri, storage_secret),
        },
        "trainer": {
            "image": trainer.image,
            "command": list(TRAINER_COMMAND),
            "args": args,
            "numNodes": trainer.num_nodes,
            **({"resourcesPerNode": {"limits": resources}} if resources else {}),
        },
    }
    if trainer.active_deadline_seconds is not None:
        body["activeDeadlineSeconds"] = trainer.active_deadline_seconds
    return {
        "apiVersion": TRAINJOB_API_VERSION,
        "kind": TRAINJOB_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_COMPONENT: COMPONENT_TRAINING, LABEL_MODELTRAINING: name},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ModelTraining",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": body,
    }


def _initializer(uri: str, storage_secret: str | None) -> Manifest:
    initializer: Manifest = {"storageUri": uri}
    if storage_secret is not None and uri.startswith("s3://"):
        initializer["secretRef"] = {"name": storage_secret}
    return initializer


def lineage(
    spec: api.ModelTrainingSpec, dataset_digest: str, namespace: str, name: str, adapter: str | None
) -> Manifest:
    return api.Lineage(
        base_model=f"{spec.base_model.name} ({spec.base_model.uri})",
        dataset_digest=dataset_digest,
        hyperparameters=hyperparameters(spec),
        train_job=f"{namespace}/{name}",
        adapter_uri=adapter,
    ).to_wire()


def training_status(
    live: Mapping[str, Any] | None,
) -> tuple[str, list[ConditionSpec]]:
    """(phase, conditions) from the TrainJob Trainer reports."""
    conditions: Sequence[Mapping[str, Any]] = ((live or {}).get("status") or {}).get(
        "conditions"
    ) or []
    failed = find(conditions, "Failed")
    if failed is not None and failed.get("status") == "True":
        message = str(failed.get("message") or "Trainer reports the TrainJob failed")
        reason = str(failed.get("reason") or "TrainJobFailed")
        return "Failed", [
            ConditionSpec("Trained", "False", reason, message),
            ConditionSpec("Ready", "False", "TrainJobFailed", message),
        ]
    complete = find(conditions, "Complete")
    if complete is not None and complete.get("status") == "True":
        return "Succeeded", [
            ConditionSpec("Trained", "True", "TrainJobComplete", "Trainer reports Complete"),
        ]
    suspended = find(conditions, "Suspended")
    if suspended is not None and suspended.get("status") == "True":
        waiting = "Trainer suspended the TrainJob"
    else:
        waiting = "the TrainJob is running" if live is not None else "creating the TrainJob"
    return "Training", [
        ConditionSpec("Trained", "False", "Training", waiting),
        ConditionSpec("Ready", "False", "Training", waiting),
    ]


__all__ = [
    "COMPONENT_TRAINING",
    "LABEL_MODELTRAINING",
    "TRAINJOB_API_VERSION",
    "TRAINJOB_KIND",
    "dataset_prefix",
    "hyperparameters",
    "lineage",
    "output_uri",
    "train_job",
    "training_status",
]


def dataset_condition(recorded: Mapping[str, Any]) -> ConditionSpec:
    """DatasetBuilt, from the dataset recorded in status."""
    counts = recorded.get("counts") or {}
    return ConditionSpec(
        "DatasetBuilt",
        "True",
        "Built",
        f"{counts.get('train', 0)} training and {counts.get('eval', 0)} held-out examples "
        f"from {counts.get('records', 0)} records ({recorded.get('digest')})",
    )


def blocked(
    recorded: Mapping[str, Any], trainer_available: bool
) -> tuple[str, ConditionSpec] | None:
    """(phase, Ready) when the run cannot start its TrainJob; None when it can."""
    if not (recorded.get("counts") or {}).get("train"):
        return "Failed", ConditionSpec(
            "Ready",
            "False",
            "EmptyDataset",
            "no record qualifies for training (see status.dataset.counts)",
        )
    if not trainer_available:
        return "Pending", ConditionSpec(
            "Ready",
            "False",
            "TrainerNotInstalled",
            "the TrainJob CRD (trainer.kubeflow.org/v1alpha1) is not installed: "
            "install Kubeflow Trainer v2 and restart the operator",
        )
    return None


def run_status(
    spec: api.ModelTrainingSpec,
    live: Mapping[str, Any] | None,
    dataset_digest: str,
    namespace: str,
    name: str,
    adapter_uri: str,
) -> tuple[Manifest, list[ConditionSpec]]:
    """(status fields, conditions) of a run whose TrainJob exists: what Trainer reports, and
    once it is Complete the adapter and the lineage that names it."""
    phase, conditions = training_status(live)
    succeeded = phase == "Succeeded"
    adapter = adapter_uri if succeeded else None
    fields: Manifest = {
        "phase": phase,
        "trainJob": name,
        "adapterUri": adapter,
        "lineage": lineage(spec, dataset_digest, namespace, name, adapter),
    }
    if succeeded:
        conditions.append(
            ConditionSpec(
                "Ready",
                "True",
                "AdapterReady",
                f"adapter {spec.output.adapter_name} at {adapter_uri}: list it in its base "
                "model's ModelDeployment adapters to serve it",
            )
        )
    return fields, conditions
