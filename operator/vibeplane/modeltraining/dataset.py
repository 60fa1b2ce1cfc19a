"""Pure: consented generation records -> a training dataset, its held-out split and manifest.

Inputs are already gathered (handlers.py reads them): each training record (storage/s3.py,
written by vibeapp/generate.py `_training` when the workspace allowed training) joined with its
app's revision index entry (the settled validation), the app's later revisions (re-asks), the
app's pinned revision (rollback) and the revision's files (its bundle). Rules, in order, each
counted in the manifest:

1. consent, checked now: records of a workspace that does not allow training today are left
   out, whatever it allowed when they were written; a workspace's own training keeps only its
   own records;
2. only revisions that passed validation, and not fix-up attempts of a failed one;
3. not rolled back from (the app pins an earlier revision) and not immediately re-asked (the
   app's next revision started within the re-ask window);
4. secrets, keys, tokens and e-mail addresses scrubbed from prompt and output; then
   deduplicated on (prompt, output);
5. split by app, never by record: an app's examples all go to train or all to eval, by a hash
   of the app (stable across rebuilds).

Each example is a chat (system: the format specification, user: the prompt with the previous
revision's files as context, assistant: the revision's files in the output format), the
shape TRL's SFTTrainer takes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vibeplane.generation.format import build_messages, render_files

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}\b"),  # OpenAI-style API keys
    re.compile(r"\bsk_(?:live|test)_[A-Za-z0-9]{16,}\b"),  # Stripe
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bxox[abpors]-[A-Za-z0-9-]{10,}\b"),  # Slack tokens
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API keys
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),  # JWTs
    # name = "value" assignments of anything called a key, secret, token or password
    re.compile(
        r"(?i)(\b[\w-]*(?:api[_-]?key|secret|token|passw(?:or)?d)[\w-]*\b\s*[:=]\s*)"
        r"([\"']?)[^\s\"'<]{8,}\2"  # not an already scrubbed <SECRET>
    ),
)
EMAIL_PLACEHOLDER = "<EMAIL>"
SECRET_PLACEHOLDER = "<SECRET>"


@dataclass
class Scrubbed:
    """Counts of what scrubbing replaced."""

    emails: int = 0
    secrets: int = 0


def scrub(text: str, counts: Scrubbed) -> str:
    """`text` with secrets and e-mail addresses replaced by placeholders (counted)."""
    for pattern in SECRET_PATTERNS:
        if pattern.groups >= 2:
            text, found = pattern.subn(
                lambda m: f"{m.group(1)}{m.group(2)}{SECRET_PLACEHOLDER}{m.group(2)}", text
            )
        else:
            text, found = pattern.subn(SECRET_PLACEHOLDER, text)
        counts.secrets += found
    text, found = EMAIL.subn(EMAIL_PLACEHOLDER, text)
    counts.emails += found
    return text


@dataclass(frozen=True)
class Interaction:
    """One consented record, joined with what settles whether it is a good example."""

    key: str
    """Its object key (listed in the manifest's digest)."""
    workspace: str
    app: str
    revision: int
    prompt: str
    time: datetime
    validation: str
    """The revision's settled validation in the app's index: Passed, Failed or Pending."""
    fix_up: bool = False
    next_revision_time: datetime | None = None
    """When the app's next revision started, if there is one."""
    pinned_revision: int | None = None
    """The revision the app is pinned to (a rollback), if any."""
    files: Mapping[str, str] | None = None
    """The revision's files (None: the bundle is gone)."""
    previous_files: Mapping[str, str] | None = None
    """The previous revision's files: the context the model edited."""
    stack: str = "static"


@dataclass(frozen=True)
class Selection:
    """Which records may be used, and how to split."""

    consenting: frozenset[str]
    """Workspaces that allow training now."""
    only_workspace: str | None = None
    """A workspace's own training: its records only."""
    since: datetime | None = None
    holdout_percent: int = 10
    reask_window: timedelta = timedelta(seconds=120)
    max_examples: int = 100_000


@dataclass
class Dataset:
    """The built dataset: JSONL lines, the manifest, and its digest."""

    train: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def train_bytes(self) -> bytes:
        return "".join(line + "\n" for line in self.train).encode()

    @property
    def eval_bytes(self) -> bytes:
        return "".join(line + "\n" for line in self.eval).encode()

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest, sort_keys=True, indent=1).encode()

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest_bytes).hexdigest()


def in_holdout(app: str, percent: int) -> bool:
    """Whether `app` is held out: a stable hash of the app, so rebuilds agree."""
    bucket = int.from_bytes(hashlib.sha256(f"holdout:{app}".encode()).digest()[:8], "big")
    return bucket % 100 < percent


def _exclusion(item: Interaction, selection: Selection) -> str | None:
    if item.workspace not in selection.consenting:
        return "consentWithdrawn"
    if selection.only_workspace is not None and item.workspace != selection.only_workspace:
        return "otherWorkspace"
    if item.fix_up:
        return "fixUps"
    if item.validation != "Passed":
        return "notValidated"
    if item.pinned_revision is not None and item.revision > item.pinned_revision:
        return "rolledBack"
    if (
        item.next_revision_time is not None
        and item.next_revision_time - item.time <= selection.reask_window
    ):
        return "reasked"
    if item.files is None:
        return "missingOutput"
    return None


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(
    interactions: Iterable[Interaction],
    selection: Selection,
    base_model: str,
) -> Dataset:
    """The dataset (see the module doc); the newest examples first when capped."""
    counts = {
        "records": 0,
        "consentWithdrawn": 0,
        "otherWorkspace": 0,
        "notValidated": 0,
        "fixUps": 0,
        "rolledBack": 0,
        "reasked": 0,
        "missingOutput": 0,
        "duplicates": 0,
        "train": 0,
        "eval": 0,
        "trainApps": 0,
        "evalApps": 0,
        "emailsScrubbed": 0,
        "secretsScrubbed": 0,
    }
    scrubbed = Scrubbed()
    kept: list[tuple[Interaction, str]] = []
    seen: set[str] = set()
    used_keys: list[str] = []
    ordered: Sequence[Interaction] = sorted(
        interactions, key=lambda i: (i.time, i.key), reverse=True
    )
    for item in ordered:
        if selection.since is not None and item.time < selection.since:
            continue
        counts["records"] += 1
        reason = _exclusion(item, selection)
        if reason is not None:
            counts[reason] += 1
            continue
        assert item.files is not None
        messages = build_messages(
            [scrub(item.prompt, scrubbed)], _scrub_files(item.previous_files, scrubbed), item.stack
        )
        completion = scrub(render_files(item.files), scrubbed)
        messages.append({"role": "assistant", "content": completion})
        identity = hashlib.sha256(
            json.dumps([messages[-2]["content"], completion]).encode()
        ).hexdigest()
        if identity in seen:
            counts["duplicates"] += 1
            continue
        seen.add(identity)
        if len(kept) >= selection.max_examples:
            continue
        line = json.dumps(
            {"messages": messages, "app": item.app, "workspace": item.workspace},
            sort_keys=True,
            separators=(",", ":"),
        )
        kept.append((item, line))
        used_keys.append(item.key)
    dataset = Dataset(counts=counts)
    train_apps: set[str] = set()
    eval_apps: set[str] = set()
    for item, line in reversed(kept):  # oldest first in the files
        if in_holdout(item.app, selection.holdout_percent):
            dataset.eval.append(line)
            eval_apps.add(item.app)
        else:
            dataset.train.append(line)
            train_apps.add(item.app)
    counts.update(
        train=len(dataset.train),
        eval=len(dataset.eval),
        trainApps=len(train_apps),
        evalApps=len(eval_apps),
        emailsScrubbed=scrubbed.emails,
        secretsScrubbed=scrubbed.secrets,
    )
    dataset.manifest = {
        "baseModel": base_model,
        "counts": counts,
        "files": {
            "train.jsonl": _digest(dataset.train_bytes),
            "eval.jsonl": _digest(dataset.eval_bytes),
        },
        "records": _digest("\n".join(sorted(used_keys)).encode()),
        "selection": {
            "consenting": sorted(selection.consenting),
            "onlyWorkspace": selection.only_workspace,
            "since": selection.since.isoformat() if selection.since else None,
            "holdoutPercent": selection.holdout_percent,
            "reaskWindowSeconds": int(selection.reask_window.total_seconds()),
            "maxExamples": selection.max_examples,
        },
        "splitBy": "app",
    }
    return dataset


def _scrub_files(files: Mapping[str, str] | None, counts: Scrubbed) -> dict[str, str] | None:
    if files is None:
        return None
    return {path: scrub(text, counts) for path, text in files.items()}


__all__ = [
    "Dataset",
    "Interaction",
    "Scrubbed",
    "Selection",
    "build",
    "in_holdout",
    "scrub",
]
