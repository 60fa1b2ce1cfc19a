"""LoRA SFT of a base model on a ModelTraining's dataset; the adapter goes to object storage.

Run by Kubeflow Trainer's torch-distributed runtime (torchrun) with the arguments the operator
writes (operator/vibeplane/modeltraining/desired.py `train_job`): Trainer's initializers have
put the base model in --model-dir and the dataset (train.jsonl, eval.jsonl, manifest.json) in
--dataset-dir. Trainer exports nothing, so this process uploads the adapter (a PEFT directory:
adapter_config.json, adapter_model.safetensors, plus training.json with the eval loss and the
dataset digest) to --output-uri; rank 0 only.

The reading and the upload import neither torch nor TRL (tested without them); `train` does.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    dataset_dir: Path
    output_uri: str
    adapter_name: str
    lora_rank: int
    lora_alpha: int
    learning_rate: float
    epochs: int
    batch_size: int
    max_seq_length: int


def parse(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="vibeplane-trainer")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--output-uri", required=True)
    parser.add_argument("--adapter-name", required=True)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=4096)
    args = parser.parse_args(argv)
    return Settings(**{key: value for key, value in vars(args).items()})


def read_split(path: Path) -> list[list[dict[str, str]]]:
    """The chats of one split (train.jsonl or eval.jsonl); each must end with the assistant's
    answer, the one turn the loss is computed on."""
    chats: list[list[dict[str, str]]] = []
    if not path.exists():
        return chats
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        messages = json.loads(line).get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)
            or messages[-1]["role"] != "assistant"
        ):
            raise ValueError(f"{path}:{number}: not a chat ending with the assistant's answer")
        chats.append([{"role": m["role"], "content": str(m["content"])} for m in messages])
    return chats


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// URI."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri}: only s3:// output is supported")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{uri}: no bucket")
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def upload(directory: Path, uri: str, client: Any = None) -> list[str]:
    """Every file under `directory` to `uri` (s3://bucket/prefix/); the keys written.

    `client`: a boto3 S3 client; default: one from the environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL for S3-compatible stores)."""
    bucket, prefix = split_uri(uri)
    if client is None:
        import boto3

        client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    keys: list[str] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(directory).as_posix()
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def train(settings: Settings, work: Path) -> dict[str, Any]:
    """Train the adapter into `work`; returns what training.json records."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    train_chats = read_split(settings.dataset_dir / "train.jsonl")
    eval_chats = read_split(settings.dataset_dir / "eval.jsonl")
    if not train_chats:
        raise ValueError("the training split is empty")
    tokenizer = AutoTokenizer.from_pretrained(settings.model_dir)
    model = AutoModelForCausalLM.from_pretrained(settings.model_dir)
    config = SFTConfig(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        max_length=settings.max_seq_length,
        assistant_only_loss=False,
        completion_only_loss=None,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        # TRL defaults to bf16, which a CPU (and an older GPU) refuses to train in.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{"messages": c} for c in train_chats]),
        eval_dataset=Dataset.from_list([{"messages": c} for c in eval_chats])
        if eval_chats
        else None,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            task_type="CAUSAL_LM",
            target_modules="all-linear",
        ),
    )
    result = trainer.train()
    metrics: dict[str, Any] = {"trainLoss": float(result.training_loss)}
    if eval_chats:
        metrics["evalLoss"] = float(trainer.evaluate()["eval_loss"])
    adapter = work / "adapter"
    trainer.model.save_pretrained(adapter)
    return {"adapter": settings.adapter_name, "examples": len(train_chats), **metrics}


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse(argv)
    work = Path(os.environ.get("VIBEPLANE_TRAINER_WORK", "/tmp/vibeplane-trainer"))
    summary = train(settings, work)
    manifest = settings.dataset_dir / "manifest.json"
    if manifest.exists():
        import hashlib

        summary["datasetDigest"] = "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    (work / "adapter" / "training.json").write_text(json.dumps(summary, indent=1))
    if int(os.environ.get("RANK", "0")) == 0:
        upload(work / "adapter", settings.output_uri)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
