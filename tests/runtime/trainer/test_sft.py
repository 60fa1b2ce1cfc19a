"""The trainer against what the operator hands it: the TrainJob's arguments and a dataset
built by the operator's dataset builder; and, where the `train` extra is installed
(`make test-train`), a real LoRA SFT of a tiny GPT-2 built here (nothing downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vibeplane_trainer import sft

from tests.runtime.modelserver.test_modelserver_huggingface import TEMPLATE, build_tiny_model
from tests.unit.modeltraining.support import ADAPTER_URI, DATASET_URI, LORA_SFT, UID
from vibeplane.modeltraining import dataset, desired

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _dataset(folder: Path, count: int = 12) -> dataset.Dataset:
    items = [
        dataset.Interaction(
            key=f"k{n}",
            workspace="acme",
            app=f"app-{n}",
            revision=1,
            prompt=f"make a todo list app number {n}",
            time=T0,
            validation="Passed",
            files={"index.html": f"<h1>todo {n}</h1>"},
        )
        for n in range(count)
    ]
    built = dataset.build(items, dataset.Selection(frozenset({"acme"}), holdout_percent=25), "b")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_bytes(built.train_bytes)
    (folder / "eval.jsonl").write_bytes(built.eval_bytes)
    (folder / "manifest.json").write_bytes(built.manifest_bytes)
    return built


def test_the_trainer_takes_the_arguments_the_operator_writes() -> None:
    job = desired.train_job("run", "ns", UID, LORA_SFT, DATASET_URI, ADAPTER_URI, None)
    settings = sft.parse(job["spec"]["trainer"]["args"])
    assert job["spec"]["trainer"]["command"][-1] == "vibeplane_trainer.sft"
    assert settings.output_uri == ADAPTER_URI
    assert (settings.lora_rank, settings.epochs, settings.learning_rate) == (16, 2, 0.0002)
    assert settings.model_dir == Path("/workspace/model")


def test_the_trainer_reads_the_operators_dataset(tmp_path: Path) -> None:
    built = _dataset(tmp_path)
    chats = sft.read_split(tmp_path / "train.jsonl")
    assert len(chats) == built.counts["train"]
    assert all(chat[-1]["role"] == "assistant" for chat in chats)
    (tmp_path / "bad.jsonl").write_text(json.dumps({"messages": [{"role": "user"}]}) + "\n")
    with pytest.raises(ValueError, match="not a chat ending with the assistant's answer"):
        sft.read_split(tmp_path / "bad.jsonl")


def test_output_uris() -> None:
    assert sft.split_uri("s3://b/adapters/x") == ("b", "adapters/x/")
    with pytest.raises(ValueError, match="only s3://"):
        sft.split_uri("hf://org/x")


def test_a_real_lora_adapter_trains_on_a_tiny_model(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the train extra (torch, peft, trl) is not installed")
    model = tmp_path / "model"
    build_tiny_model(model, TEMPLATE)
    _dataset(tmp_path / "dataset")
    settings = sft.parse(
        [
            f"--model-dir={model}",
            f"--dataset-dir={tmp_path / 'dataset'}",
            "--output-uri=s3://unused/adapter/",
            "--adapter-name=tiny-lora",
            "--lora-rank=4",
            "--epochs=1",
            "--batch-size=2",
            "--max-seq-length=128",
        ]
    )
    started = time.monotonic()
    summary = sft.train(settings, tmp_path / "work")
    adapter = tmp_path / "work" / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    assert summary["trainLoss"] > 0
    size = sum(path.stat().st_size for path in adapter.rglob("*") if path.is_file())
    print(f"trained in {time.monotonic() - started:.1f} s; adapter {size} bytes: {summary}")
    # `VIBEPLANE_RECORD_ADAPTER=tests/fixtures/tiny-lora make test-train` records this run's
    # adapter: the one `make test` uploads and serves where torch is not installed.
    record = os.environ.get("VIBEPLANE_RECORD_ADAPTER")
    if record:
        shutil.rmtree(record, ignore_errors=True)
        shutil.copytree(adapter, record)
