"""The end-of-run checks on made-up states: each one finds the fault it is there to find (a
double charge, a lost bundle, an orphan, an app that is not converged), so a chaos run that
passes means those faults were absent, not unlooked-for. No cluster needed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.chaos.disrupt import LedgerStep
from tests.chaos.faults import ModelCall
from tests.chaos.invariants import (
    ChaosApp,
    ChargeCount,
    charged_records,
    convergence_problem,
    failures_explained,
    ledger_charges,
    orphans,
    revisions_in_s3,
)
from vibeplane.budget.ledger import Amount, Ledger, Reservation
from vibeplane.budget.periods import period_of
from vibeplane.storage.s3 import bundle_key

APP = ChaosApp("a1", "ws-x", "x", ["p1", "p2"], preview=False, doomed=False, uid="u1", given=2)
NOW = datetime.now(UTC)


def _revision(
    number: int, attempt: int = 0, bundle: bool = True, tokens: int = 30
) -> dict[str, Any]:
    revision: dict[str, Any] = {"number": number, "attempt": attempt, "validation": "Pending"}
    if tokens:
        revision.update({"tokensIn": tokens - 10, "tokensOut": 10, "cost": "0.001"})
    if bundle:
        sha = hashlib.sha256(f"bundle {number}".encode()).hexdigest()
        revision.update({"sha256": sha, "artifactUri": f"s3://b/{bundle_key('x', 'u1', sha)}"})
    else:
        revision["validation"] = "Failed"
    return revision


def _app(revisions: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    bundled = [r["number"] for r in revisions if r.get("sha256")]
    newest_ok = bool(revisions[-1].get("sha256"))
    return {
        "metadata": {"name": "a1", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "generation": None,
            "revisions": revisions,
            "revision": max(bundled, default=None),
            "phase": "Running" if bundled else "Failed",
            "conditions": [
                {"type": "Ready", "status": "True" if bundled else "False"},
                {
                    "type": "Generated",
                    "status": "True" if newest_ok else "False",
                    "reason": "Generated" if newest_ok else "AllModelsFailed",
                },
            ],
            **status,
        },
    }


def test_convergence_wants_every_prompt_done_and_said_so() -> None:
    assert convergence_problem(APP, _app([_revision(1), _revision(2)])) is None
    # A failed newest revision is converged only with a terminal reason, serving the older one.
    assert convergence_problem(APP, _app([_revision(1), _revision(2, bundle=False)])) is None
    still = _app([_revision(1), _revision(2)], generation={"revision": 2, "attempt": 1})
    assert "still generating" in (convergence_problem(APP, still) or "")
    missing = _app([_revision(1)])
    assert "revisions [1] for 2 prompts" in (convergence_problem(APP, missing) or "")
    stale = _app([_revision(1), _revision(2)], revision=1)
    assert "serves revision 1" in (convergence_problem(APP, stale) or "")
    quiet = _app([_revision(1), _revision(2, bundle=False)])
    quiet["status"]["conditions"][1] = {"type": "Generated", "status": "True", "reason": "UpToDate"}
    assert "failed but Generated says" in (convergence_problem(APP, quiet) or "")


def test_a_failed_revision_must_be_the_models_doing() -> None:
    body = _app([_revision(1), _revision(2, bundle=False, tokens=0)])
    faulted = [ModelCall("a1", 2, None, 30), ModelCall("a1", 2, "timeout", 0)]
    assert failures_explained(APP, body, faulted) == []
    clean_last = [ModelCall("a1", 2, "timeout", 0), ModelCall("a1", 2, None, 30)]
    assert failures_explained(APP, body, clean_last)
    assert failures_explained(APP, body, [])


class FakeStore:
    def __init__(self, objects: dict[str, bytes], index: list[dict[str, Any]]) -> None:
        self.objects, self.index = objects, index

    def read_index(self, workspace: str, uid: str) -> list[dict[str, Any]]:
        return self.index

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def keys(self, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]


def test_a_lost_or_changed_bundle_is_found() -> None:
    revisions = [_revision(1), _revision(2)]
    body = _app(revisions)
    objects = {
        bundle_key("x", "u1", r["sha256"]): f"bundle {r['number']}".encode() for r in revisions
    }
    index = [{"number": r["number"], "sha256": r["sha256"]} for r in revisions]
    assert revisions_in_s3(APP, body, FakeStore(objects, index), "b") == []  # type: ignore[arg-type]
    lost = dict(objects)
    del lost[bundle_key("x", "u1", revisions[1]["sha256"])]
    assert revisions_in_s3(APP, body, FakeStore(lost, index), "b")  # type: ignore[arg-type]
    changed = {**objects, bundle_key("x", "u1", revisions[1]["sha256"]): b"other bytes"}
    assert revisions_in_s3(APP, body, FakeStore(changed, index), "b")  # type: ignore[arg-type]
    assert revisions_in_s3(APP, body, FakeStore(objects, index[:1]), "b")  # type: ignore[arg-type]


def test_an_indexed_answer_without_files_must_be_a_failed_revision() -> None:
    # Revision 1's answer had no files (the model answered in words): the generator indexes
    # it before settling, and the status lists it as failed; revision 2 has a bundle.
    revisions = [_revision(1, bundle=False), _revision(2)]
    body = _app(revisions)
    sha = revisions[1]["sha256"]
    objects = {bundle_key("x", "u1", sha): b"bundle 2"}
    index = [{"number": 1, "validation": "Failed"}, {"number": 2, "sha256": sha}]
    assert revisions_in_s3(APP, body, FakeStore(objects, index), "b") == []  # type: ignore[arg-type]
    # An indexed answer the status does not know as failed is a lost or wrong record.
    both_bundled = _app([_revision(2)])
    assert revisions_in_s3(APP, both_bundled, FakeStore(objects, index), "b")  # type: ignore[arg-type]


def _ledger(tokens: int, money: str, done: list[str], reserved: tuple[str, ...] = ()) -> Ledger:
    return Ledger(
        "x",
        period_of("Monthly", NOW),
        settled=Amount(tokens, Decimal(money)),
        reservations={k: Reservation(Amount(5), NOW, "p") for k in reserved},
        done={k: "p" for k in done},
    )


def test_exactly_one_charge_per_settled_generation() -> None:
    revisions = [_revision(1), _revision(2, attempt=1)]
    expected = charged_records([(APP, _app(revisions))])
    assert sorted(expected) == ["u1:1:0", "u1:2:1"]
    once = [
        LedgerStep("x", frozenset({"u1:1:0"}), 30, Decimal("0.001"), True),
        LedgerStep("x", frozenset({"u1:2:0"}), 0, Decimal(0), True),  # a released attempt
        LedgerStep("x", frozenset({"u1:2:1"}), 30, Decimal("0.001"), True),
    ]
    ledger = _ledger(60, "0.002", ["u1:1:0", "u1:2:0", "u1:2:1"])
    count = ChargeCount()
    assert ledger_charges("x", ledger, once, expected, False, count) == []
    assert (count.charges, count.releases, count.settled_generations) == (2, 1, 2)

    # Revision 2 charged under its first attempt too: a second charge for one generation.
    twice = [*once[:1], LedgerStep("x", frozenset({"u1:2:0"}), 30, Decimal("0.001"), True), once[2]]
    problems = ledger_charges(
        "x",
        _ledger(90, "0.003", ["u1:1:0", "u1:2:0", "u1:2:1"]),
        twice,
        expected,
        False,
        ChargeCount(),
    )
    assert any("u1:2:0 was charged" in p for p in problems)
    assert any("revision 2 charged 2 times" in p for p in problems)

    # A settled generation never charged, and a reservation left behind.
    problems = ledger_charges(
        "x",
        _ledger(30, "0.001", ["u1:1:0"], reserved=("u1:2:1",)),
        once[:1],
        expected,
        False,
        ChargeCount(),
    )
    assert any("u1:2:1) charged 0 times" in p for p in problems)
    assert any("reservations left" in p for p in problems)

    # The ledger's total disagrees with the versions the watch saw.
    problems = ledger_charges(
        "x",
        _ledger(61, "0.002", ["u1:1:0", "u1:2:0", "u1:2:1"]),
        once,
        expected,
        False,
        ChargeCount(),
    )
    assert any("add up to" in p for p in problems)


def test_a_deleted_app_may_be_charged_once_per_revision() -> None:
    steps = [
        LedgerStep("gone", frozenset({"u9:1:0"}), 30, Decimal("0.001"), True),
        LedgerStep("gone", frozenset({"u9:1:1"}), 30, Decimal("0.001"), True),
    ]
    ledger = _ledger(60, "0.002", ["u9:1:0", "u9:1:1"])
    problems = ledger_charges("gone", ledger, steps, {}, True, ChargeCount())
    assert problems == ["gone: app u9 revision 1 charged 2 times"]
    assert (
        ledger_charges("gone", _ledger(30, "0.001", ["u9:1:0"]), steps[:1], {}, True, ChargeCount())
        == []
    )


def test_orphans_are_found() -> None:
    live = {"u1": APP}
    preview = {
        "kind": "Deployment",
        "metadata": {
            "namespace": "ws-x",
            "name": "a9-preview",
            "ownerReferences": [{"kind": "VibeApp", "name": "a9", "uid": "u9"}],
        },
    }
    gone = ChaosApp("a9", "ws-x", "x", ["p"], preview=True, doomed=True, uid="u9")
    store = FakeStore({"workspaces/x/apps/u9/revisions.json": b"[]"}, [])
    problems = orphans([preview], live, [gone], store, ["x"])  # type: ignore[arg-type]
    assert any("its VibeApp a9 is gone" in p for p in problems)
    assert any("deleted app ws-x/a9 left 1" in p for p in problems)
    assert any("objects in S3 of no live app: ['u9']" in p for p in problems)
    assert orphans([], live, [], FakeStore({}, []), ["x"]) == []  # type: ignore[arg-type]
