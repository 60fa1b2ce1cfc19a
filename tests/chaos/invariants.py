"""What must hold at the end of every chaos run, read from the real state: the API server,
the ledger ConfigMaps (and every version of them the watch saw), and S3 itself."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.chaos.disrupt import LedgerStep
from tests.chaos.faults import ModelCall
from tests.integration.support import find_condition
from vibeplane.budget.ledger import Ledger
from vibeplane.storage.s3 import ObjectStore, app_prefix, bundle_key
from vibeplane.vibeapp.desired import generation_key

# Why a revision may end without a bundle: the model failed every attempt (timeouts, server
# errors, garbage), or answered in words. Both come only from injected model faults here.
TERMINAL_FAILURES = ("AllModelsFailed", "ModelDeclined")


@dataclass
class ChaosApp:
    """One app of the run, as the test made it."""

    name: str
    namespace: str
    workspace: str
    prompts: list[str]
    """Every prompt it will get; `given` of them are in its spec."""
    preview: bool
    doomed: bool
    """Deleted during the run."""
    uid: str = ""
    given: int = 1


def convergence_problem(app: ChaosApp, body: dict[str, Any]) -> str | None:
    """Why `body` (the app as the API server has it) is not converged, or None.

    Converged means the operator has nothing left to do and says so:
    - it has seen the latest spec (observedGeneration) and has no generation in flight;
    - every prompt has exactly one revision (numbers 1..n);
    - the newest revision has a bundle, is the one served, and the app is Running and Ready
      (with a preview URL when the preview is enabled);
    - or the newest revision failed to generate (no bundle, validation Failed) and Generated is
      False with a terminal reason (`TERMINAL_FAILURES`); the app then serves its newest
      revision that has a bundle (Running) or, when none has, is Failed.
    """
    metadata, status = body["metadata"], body.get("status") or {}
    where = f"{app.namespace}/{app.name}"
    if status.get("observedGeneration") != metadata.get("generation"):
        seen, latest = status.get("observedGeneration"), metadata.get("generation")
        return f"{where}: observedGeneration {seen}, generation {latest}"
    if status.get("generation"):
        return f"{where}: still generating: {status['generation']}"
    revisions = status.get("revisions") or []
    numbers = sorted(int(r["number"]) for r in revisions)
    if numbers != list(range(1, app.given + 1)):
        return f"{where}: revisions {numbers} for {app.given} prompts"
    newest = max(revisions, key=lambda r: int(r["number"]))
    bundled = [int(r["number"]) for r in revisions if r.get("sha256")]
    served = max(bundled, default=None)
    if status.get("revision") != served:
        return f"{where}: serves revision {status.get('revision')}, newest with a bundle {served}"
    generated = find_condition(body, "Generated") or {}
    ready = find_condition(body, "Ready") or {}
    if newest.get("sha256"):
        if status.get("phase") != "Running" or ready.get("status") != "True":
            return (
                f"{where}: newest revision generated but phase {status.get('phase')}, Ready {ready}"
            )
        if generated.get("status") != "True":
            return f"{where}: Generated {generated}"
        if app.preview and not status.get("url"):
            return f"{where}: a preview without a URL"
        return None
    if newest.get("validation") != "Failed":
        return f"{where}: newest revision has no bundle and is not failed: {newest}"
    if generated.get("status") != "False" or generated.get("reason") not in TERMINAL_FAILURES:
        return f"{where}: revision {newest['number']} failed but Generated says {generated}"
    phase = "Running" if served is not None else "Failed"
    if status.get("phase") != phase:
        return f"{where}: phase {status.get('phase')}, want {phase}"
    return None


def failures_explained(app: ChaosApp, body: Mapping[str, Any], calls: list[ModelCall]) -> list[str]:
    """Every revision without a bundle must be the model's doing: its last call was faulted."""
    problems = []
    for revision in (body.get("status") or {}).get("revisions") or []:
        if revision.get("sha256"):
            continue
        mine = [c for c in calls if c.app == app.name and c.revision == int(revision["number"])]
        if not mine or mine[-1].fault is None:
            problems.append(
                f"{app.namespace}/{app.name}: revision {revision['number']} failed, but its "
                f"model calls were {[c.fault for c in mine]} (the last one answered cleanly)"
            )
    return problems


def revisions_in_s3(
    app: ChaosApp, body: Mapping[str, Any], store: ObjectStore, bucket: str
) -> list[str]:
    """No lost revision: every revision with a bundle has it in S3 under the sha256 status
    names, and the app's revision index in S3 lists exactly those revisions with a bundle.
    The index also keeps answers that ended an attempt without files (declined, cut off,
    failed validation: indexed before they are settled, so a rerun never charges them
    twice); each of those must be a failed revision of the status."""
    problems = []
    where = f"{app.namespace}/{app.name}"
    revisions = (body.get("status") or {}).get("revisions") or []
    bundled = {int(r["number"]): r for r in revisions if r.get("sha256")}
    failed = {int(r["number"]) for r in revisions if not r.get("sha256")}
    entries = store.read_index(app.workspace, app.uid)
    index = {int(e["number"]): e for e in entries}
    indexed = {number for number, e in index.items() if e.get("sha256")}
    if sorted(indexed) != sorted(bundled):
        problems.append(
            f"{where}: S3's index has bundles of {sorted(indexed)}, status {sorted(bundled)}"
        )
    unknown = {number for number, e in index.items() if not e.get("sha256")} - failed
    if unknown:
        problems.append(
            f"{where}: S3's index has answers without files for {sorted(unknown)}, which the "
            f"status does not list as failed revisions"
        )
    for number, revision in bundled.items():
        key = bundle_key(app.workspace, app.uid, revision["sha256"])
        if revision.get("artifactUri") != f"s3://{bucket}/{key}":
            problems.append(f"{where}: revision {number} points at {revision.get('artifactUri')}")
        data = store.get(key)
        if data is None:
            problems.append(f"{where}: revision {number}'s bundle {key} is not in S3")
        elif hashlib.sha256(data).hexdigest() != revision["sha256"]:
            problems.append(f"{where}: revision {number}'s bundle does not match its sha256")
        entry = index.get(number)
        if entry is not None and entry.get("sha256") != revision["sha256"]:
            problems.append(f"{where}: revision {number} differs between S3's index and status")
    return problems


@dataclass(frozen=True)
class Charge:
    """What a revision record says was charged for it."""

    app: str
    revision: int
    tokens: int
    money: Decimal


def charged_records(apps: Iterable[tuple[ChaosApp, Mapping[str, Any]]]) -> dict[str, Charge]:
    """Idempotency key -> the charge, for every revision a model answered (with a bundle, or
    declined in words): the generations that must be settled, each exactly once."""
    charges = {}
    for app, body in apps:
        for revision in (body.get("status") or {}).get("revisions") or []:
            if revision.get("tokensIn") is None:
                continue  # failed without an answer: nothing to charge
            key = generation_key(
                app.uid, int(revision["number"]), int(revision.get("attempt") or 0)
            )
            charges[key] = Charge(
                app.name,
                int(revision["number"]),
                int(revision["tokensIn"]) + int(revision.get("tokensOut") or 0),
                Decimal(str(revision.get("cost") or "0")),
            )
    return charges


@dataclass
class ChargeCount:
    settled_generations: int = 0
    """Revision records a model answered: each must be charged exactly once."""
    charges: int = 0
    """Keys the ledger history shows charged (a settle that grew the total)."""
    releases: int = 0
    """Keys closed without a charge (a failed attempt gave its reservation back)."""
    unattributed: int = 0
    """Keys closed while the watch could not see each write (a relist after 410 Gone)."""
    tokens: int = 0
    money: Decimal = Decimal(0)


def ledger_charges(
    workspace: str,
    ledger: Ledger,
    steps: list[LedgerStep],
    expected: Mapping[str, Charge],
    deleted_apps: bool,
    count: ChargeCount,
) -> list[str]:
    """Exactly one charge per settled generation, and nothing left reserved.

    `steps` is every change of this workspace's ledger the watch saw. A single write closes
    one key, so a key charged twice, or a charge under a key no revision was charged for (a
    second attempt of a generation already charged), shows here with its key. `expected` holds
    the charges the revisions of the workspace's apps owe. The apps of a `deleted_apps`
    workspace are gone, and their revisions with them: there each revision may be charged at
    most once.
    """
    problems: list[str] = []
    charged: dict[str, list[LedgerStep]] = defaultdict(list)
    for step in steps:
        count.tokens += step.tokens
        count.money += step.money
        if not step.single:  # several writes at once: check their sum
            owed = [expected[k] for k in step.closed if k in expected]
            if not deleted_apps and (step.tokens, step.money) != (
                sum(c.tokens for c in owed),
                sum((c.money for c in owed), Decimal(0)),
            ):
                problems.append(
                    f"{workspace}: closing {sorted(step.closed)} charged {step.tokens} tokens, "
                    f"their revisions owe {sum(c.tokens for c in owed)}"
                )
            count.unattributed += len(step.closed)
            for key in step.closed:
                if key in expected:
                    charged[key].append(step)
            continue
        if len(step.closed) != 1:
            problems.append(
                f"{workspace}: one write closed {sorted(step.closed)}, charging {step.tokens}"
            )
            continue
        (key,) = step.closed
        if step.tokens or step.money:
            charged[key].append(step)
            count.charges += 1
        else:
            count.releases += 1
    for key, charge in expected.items():
        times = len(charged.get(key, []))
        if times != 1:
            problems.append(
                f"{workspace}: {charge.app} revision {charge.revision} ({key}) "
                f"charged {times} times"
            )
        single = [s for s in charged.get(key, []) if s.single]
        if single and (single[0].tokens, single[0].money) != (charge.tokens, charge.money):
            problems.append(
                f"{workspace}: {key} charged {single[0].tokens} tokens ({single[0].money}), "
                f"its revision says {charge.tokens} ({charge.money})"
            )
        if key not in ledger.done:
            problems.append(f"{workspace}: {key} is not closed in the ledger")
    per_revision: Counter[tuple[str, str]] = Counter()
    for key, charging in charged.items():
        uid, revision, _attempt = key.split(":")
        per_revision[(uid, revision)] += len(charging)
        if key not in expected and not deleted_apps:
            problems.append(
                f"{workspace}: {key} was charged, but no revision owes it (a second charge?)"
            )
    for (uid, revision), charges in per_revision.items():
        if charges > 1:
            problems.append(f"{workspace}: app {uid} revision {revision} charged {charges} times")
    seen = (sum(s.tokens for s in steps), sum((s.money for s in steps), Decimal(0)))
    if (ledger.settled.tokens, ledger.settled.money) != seen:
        problems.append(
            f"{workspace}: the ledger settled {ledger.settled.tokens} tokens "
            f"({ledger.settled.money}); the versions the watch saw add up to {seen}"
        )
    total_owed = (
        sum(c.tokens for c in expected.values()),
        sum((c.money for c in expected.values()), Decimal(0)),
    )
    if not deleted_apps and (ledger.settled.tokens, ledger.settled.money) != total_owed:
        problems.append(
            f"{workspace}: the ledger settled {ledger.settled.tokens} tokens "
            f"({ledger.settled.money}); the revisions owe {total_owed}"
        )
    if ledger.reservations:
        problems.append(f"{workspace}: reservations left: {sorted(ledger.reservations)}")
    if ledger.reserved(datetime.now(UTC)).tokens:
        problems.append(f"{workspace}: tokens still reserved")
    count.settled_generations += len(expected)
    return problems


def orphans(
    previews: Iterable[Mapping[str, Any]],
    live: Mapping[str, ChaosApp],
    deleted: Iterable[ChaosApp],
    store: ObjectStore,
    workspaces: Iterable[str],
) -> list[str]:
    """No orphaned objects: every preview Deployment and Service belongs to a live app that
    has a preview; a deleted app left nothing in S3; no app prefix in S3 belongs to no app."""
    problems = []
    for obj in previews:
        metadata = obj["metadata"]
        where = f"{obj['kind']} {metadata['namespace']}/{metadata['name']}"
        owners = [r for r in metadata.get("ownerReferences") or [] if r.get("kind") == "VibeApp"]
        if len(owners) != 1:
            problems.append(f"{where}: owners {owners}")
            continue
        owner = live.get(owners[0]["uid"])
        if owner is None:
            problems.append(f"{where}: its VibeApp {owners[0]['name']} is gone")
        elif not owner.preview:
            problems.append(f"{where}: {owner.name} has no preview enabled")
    for app in deleted:
        left = store.keys(app_prefix(app.workspace, app.uid))
        if left:
            problems.append(
                f"deleted app {app.namespace}/{app.name} left {len(left)} in S3: {left}"
            )
    for workspace in workspaces:
        prefix = f"workspaces/{workspace}/apps/"
        uids = {key[len(prefix) :].split("/")[0] for key in store.keys(prefix)}
        strangers = uids - set(live)
        if strangers:
            problems.append(f"{workspace}: objects in S3 of no live app: {sorted(strangers)}")
    return problems
