"""The dataset build on a fixture of records: each rule leaves out or scrubs what it must, and
counts it in the manifest; no app is in both splits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from vibeplane.modeltraining.dataset import (
    Interaction,
    Scrubbed,
    Selection,
    build,
    in_holdout,
    scrub,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FILES = {"index.html": "<h1>Todo</h1>", "app.js": "console.log('todo')"}
PLANTED_KEY = "sk-proj-PLANTEDkey0123456789abcdef"
PLANTED_AWS = "AKIAABCDEFGHIJKLMNOP"
PLANTED_EMAIL = "jane.doe@example.com"


def item(n: int, **changes: object) -> Interaction:
    base = Interaction(
        key=f"datasets/interactions/date=2026-12-01/acme.app{n}.1.0.jsonl",
        workspace="acme",
        app=f"app-{n}",
        revision=1,
        prompt=f"a todo list number {n}",
        time=T0 + timedelta(minutes=n),
        validation="Passed",
        files={**FILES, "n.txt": str(n)},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


FIXTURE = [
    item(1),
    item(2),
    item(3, workspace="withdrawn"),  # consent withdrawn since
    item(4, validation="Failed"),
    item(5, validation="Pending"),
    item(6, fix_up=True),
    item(7, revision=3, pinned_revision=2),  # rolled back from
    item(8, next_revision_time=T0 + timedelta(minutes=8, seconds=30)),  # re-asked at once
    item(9, next_revision_time=T0 + timedelta(hours=2)),  # a later, unrelated request: kept
    item(10, files=None),
    item(11, prompt="a todo list number 1", files={**FILES, "n.txt": "1"}),  # duplicate of 1
    item(
        12,
        prompt=f"send reports to {PLANTED_EMAIL} with key {PLANTED_KEY}",
        files={"app.js": f"const apiKey = '{PLANTED_KEY}'; const aws = '{PLANTED_AWS}';"},
    ),
]
SELECTION = Selection(consenting=frozenset({"acme", "other"}), holdout_percent=0)


def test_each_rule_is_applied_and_counted_in_the_manifest() -> None:
    dataset = build(FIXTURE, SELECTION, "base1")
    counts = dataset.manifest["counts"]
    assert counts == {
        "records": 12,
        "consentWithdrawn": 1,
        "otherWorkspace": 0,
        "notValidated": 2,
        "fixUps": 1,
        "rolledBack": 1,
        "reasked": 1,
        "missingOutput": 1,
        "duplicates": 1,
        "train": 4,
        "eval": 0,
        "trainApps": 4,
        "evalApps": 0,
        "emailsScrubbed": 1,
        "secretsScrubbed": 3,
    }
    kept_apps = sorted(json.loads(line)["app"] for line in dataset.train)
    # app-11 repeats app-1's prompt and files: the newer one is kept.
    assert kept_apps == ["app-11", "app-12", "app-2", "app-9"]
    text = dataset.train_bytes.decode()
    for planted in (PLANTED_KEY, PLANTED_AWS, PLANTED_EMAIL):
        assert planted not in text
    assert "<SECRET>" in text
    assert "<EMAIL>" in text


def test_an_example_is_the_chat_the_model_was_asked_and_its_files() -> None:
    dataset = build([item(1)], SELECTION, "base1")
    messages = json.loads(dataset.train[0])["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[1]["content"] == "a todo list number 1"
    assert "<h1>Todo</h1>" in messages[2]["content"]


def test_the_manifest_has_digests_and_changes_with_the_data() -> None:
    one = build(FIXTURE, SELECTION, "base1")
    again = build(list(reversed(FIXTURE)), SELECTION, "base1")
    other = build(FIXTURE[:-1], SELECTION, "base1")
    assert one.digest == again.digest
    assert one.digest != other.digest
    assert one.manifest["files"]["train.jsonl"].startswith("sha256:")
    assert one.manifest["splitBy"] == "app"


def test_consent_is_checked_at_build_time_and_own_training_keeps_its_own() -> None:
    records = [item(1), item(2, workspace="other")]
    withdrawn = build(records, Selection(consenting=frozenset({"other"})), "b")
    assert withdrawn.manifest["counts"]["consentWithdrawn"] == 1
    own = build(
        records, Selection(consenting=frozenset({"acme", "other"}), only_workspace="acme"), "b"
    )
    assert own.manifest["counts"]["otherWorkspace"] == 1
    assert {json.loads(line)["workspace"] for line in own.train + own.eval} == {"acme"}


def test_a_record_of_an_app_never_lands_in_both_splits() -> None:
    records = [
        item(n, app=f"app-{n % 40}", prompt=f"request {n}", time=T0 + timedelta(hours=n))
        for n in range(400)
    ]
    dataset = build(records, Selection(consenting=frozenset({"acme"}), holdout_percent=25), "b")
    train = {json.loads(line)["app"] for line in dataset.train}
    held = {json.loads(line)["app"] for line in dataset.eval}
    assert train
    assert held
    assert train.isdisjoint(held)
    assert held == {f"app-{n}" for n in range(40) if in_holdout(f"app-{n}", 25)}


def test_scrub_leaves_ordinary_text_alone() -> None:
    counts = Scrubbed()
    text = "a tokenizer demo; the password field is labelled; contact us via the form"
    assert scrub(text, counts) == text
    assert (counts.emails, counts.secrets) == (0, 0)
    assert scrub('password = "hunter2hunter2"', counts) == 'password = "<SECRET>"'
