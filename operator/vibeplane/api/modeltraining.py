"""ModelTraining: one LoRA fine-tuning run of a base model on consented interactions.

The operator builds the dataset from the consented generation records in object storage
(validated revisions only, deduplicated, secrets and e-mail addresses scrubbed, a held-out
split by app), writes it with a manifest of counts and digests, launches a Kubeflow Trainer v2
TrainJob on the named runtime, and records lineage (dataset digest, base model,
hyper-parameters, TrainJob, adapter URI) in status. The trainer image writes the adapter to
`output.uri` (Trainer has no exporter). A ModelTraining in a workspace's namespace trains that
workspace's private adapter from its own records only; one in the platform namespace trains
on every consenting workspace's records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from vibeplane.api.common import (
    DNS_SUBDOMAIN_PATTERN,
    Conditions,
    DecimalString,
    KubeModel,
    Quantity,
)
from vibeplane.api.meta import AGE_COLUMN, READY_COLUMN, KindInfo, PrinterColumn

URI_RULE: dict[str, JsonValue] = {
    "rule": "self.matches('^(s3|hf|pvc)://.+')",
    "message": "must be an s3://, hf:// or pvc:// URI",
}


class BaseModelRef(KubeModel):
    """The model the adapter is trained on."""

    name: str = Field(min_length=1, max_length=253)
    """The base model's name (its ModelDeployment's spec.model.name), recorded in lineage."""
    uri: str = Field(
        min_length=6, max_length=2048, json_schema_extra={"x-kubernetes-validations": [URI_RULE]}
    )
    """Where its weights are (the trainer's model initializer downloads them)."""


class DatasetSpec(KubeModel):
    """Which records become examples."""

    since: datetime | None = None
    """Only records written at or after this time."""
    holdout_percent: int = Field(default=10, ge=0, le=50)
    """Percent of apps (never of records) held out for evaluation."""
    reask_window_seconds: int = Field(default=120, ge=0, le=86400)
    """A revision followed by the app's next one within this many seconds was immediately
    re-asked (the person was not satisfied): left out."""
    max_examples: int = Field(default=100_000, ge=1, le=10_000_000)
    """Most training examples kept (the newest first)."""


class Hyperparameters(KubeModel):
    """LoRA SFT settings passed to the trainer."""

    lora_rank: int = Field(default=16, ge=1, le=512)
    """LoRA rank (r)."""
    lora_alpha: int = Field(default=32, ge=1, le=1024)
    """LoRA alpha."""
    learning_rate: DecimalString = "0.0002"
    """Peak learning rate."""
    epochs: int = Field(default=2, ge=1, le=100)
    """Passes over the training split."""
    batch_size: int = Field(default=8, ge=1, le=4096)
    """Examples per optimizer step (per node)."""
    max_seq_length: int = Field(default=4096, ge=128, le=131072)
    """Longest example in tokens; longer ones are truncated."""


class TrainerSpec(KubeModel):
    """The Kubeflow Trainer v2 runtime and image that run the SFT."""

    runtime: str = Field(default="torch-distributed", min_length=1, max_length=253)
    """A ClusterTrainingRuntime name (Trainer's torch-distributed runs any torchrun script)."""
    image: str = Field(default="ghcr.io/vibeplane/trainer:0.1.0", min_length=1, max_length=512)
    """The trainer image (runtime/trainer: TRL + PEFT LoRA SFT, uploads the adapter)."""
    num_nodes: int = Field(default=1, ge=1, le=64)
    """Nodes of the TrainJob."""
    gpus_per_node: int = Field(default=1, ge=0, le=16)
    """nvidia.com/gpu per node."""
    resources: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Other resources per node, e.g. {cpu: "8", memory: "64Gi"}."""
    active_deadline_seconds: int | None = Field(default=None, ge=60)
    """Stop the TrainJob after this long."""


class OutputSpec(KubeModel):
    """Where the adapter goes."""

    adapter_name: str = Field(min_length=1, max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)
    """The adapter's model name once served, e.g. "base1-2026-12"."""
    uri: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra={"x-kubernetes-validations": [URI_RULE]},
    )
    """Where the trainer uploads it; default s3://<bucket>/adapters/<namespace>/<name>/."""
    model_deployment: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN
    )
    """The ModelDeployment (in this namespace) the adapter is offered to once the run has
    succeeded: it is served there under `adapterName`, and a rollout on that deployment without
    a named candidate takes the newest such run as its candidate."""


class ModelTrainingSpec(KubeModel):
    """The desired training run."""

    base_model: BaseModelRef
    """The model to adapt."""
    output: OutputSpec
    """The adapter's name and destination."""
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    """How the dataset is selected."""
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """LoRA SFT settings."""
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    """The Trainer runtime and image."""


class DatasetCounts(KubeModel):
    """What the dataset build kept and left out, by reason."""

    records: int = 0
    """Records read."""
    consent_withdrawn: int = 0
    """Of workspaces that do not (or no longer) allow training."""
    other_workspace: int = 0
    """Of other workspaces (a workspace's own training)."""
    not_validated: int = 0
    """Whose revision did not pass validation (or is still pending)."""
    fix_ups: int = 0
    """Fix-up attempts of a failed revision."""
    rolled_back: int = 0
    """Revisions the app was rolled back from."""
    reasked: int = 0
    """Revisions immediately re-asked."""
    missing_output: int = 0
    """Whose bundle is gone."""
    duplicates: int = 0
    """Same prompt and output as a kept example."""
    train: int = 0
    """Training examples."""
    eval: int = 0
    """Held-out examples."""
    train_apps: int = 0
    """Apps in the training split."""
    eval_apps: int = 0
    """Apps in the held-out split."""
    emails_scrubbed: int = 0
    """E-mail addresses replaced."""
    secrets_scrubbed: int = 0
    """Keys, tokens and secrets replaced."""


class DatasetStatus(KubeModel):
    """The dataset that was built."""

    uri: str | None = None
    """Its prefix in object storage (train.jsonl, eval.jsonl, manifest.json)."""
    digest: str | None = None
    """sha256 of the manifest: the dataset's identity in lineage."""
    counts: DatasetCounts | None = None
    """Kept and left out, by reason."""


class Lineage(KubeModel):
    """Where the adapter came from."""

    base_model: str | None = None
    """Base model name and URI."""
    dataset_digest: str | None = None
    """The dataset manifest's sha256."""
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    """The settings trained with."""
    train_job: str | None = None
    """namespace/name of the TrainJob."""
    adapter_uri: str | None = None
    """Where the adapter is."""


class ModelTrainingStatus(KubeModel):
    """The observed state of the run."""

    phase: Literal["Pending", "Training", "Succeeded", "Failed"] | None = None
    """Pending: the dataset is being built; Training: the TrainJob runs; Succeeded: the adapter
    is in object storage; Failed: see the Ready condition."""
    dataset: DatasetStatus | None = None
    """The dataset built for this run."""
    train_job: str | None = None
    """The TrainJob's name."""
    adapter_name: str | None = None
    """The adapter's model name."""
    adapter_uri: str | None = None
    """Where the adapter is (once Succeeded)."""
    lineage: Lineage | None = None
    """Dataset digest, base model, hyper-parameters, TrainJob and adapter URI."""
    conditions: Conditions = Field(default_factory=list)
    """Ready, DatasetBuilt, Trained."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""


INFO = KindInfo(
    kind="ModelTraining",
    plural="modeltrainings",
    short_names=("mt",),
    scope="Namespaced",
    spec=ModelTrainingSpec,
    status=ModelTrainingStatus,
    description=(
        "A ModelTraining is one LoRA fine-tuning run of a base model on consented, validated "
        "interactions, run as a Kubeflow Trainer TrainJob, with its dataset and lineage."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Base", ".spec.baseModel.name"),
        PrinterColumn("Adapter", ".spec.output.adapterName"),
        PrinterColumn("Train", ".status.dataset.counts.train", type="integer", priority=1),
        READY_COLUMN,
        AGE_COLUMN,
    ),
)
