"""Generation's decisions: the attempt due, a finished attempt folded in, a fix-up.

Generation owns the Generated and BudgetOK conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from vibeplane.kube.conditions import ConditionSpec, find
from vibeplane.timestamps import format_time
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.decide.inputs import (
    AppInput,
    AttemptResult,
    AttemptState,
    Revision,
    remaining,
)

# ---- generation: owns Generated and BudgetOK ---------------------------------------------------


@dataclass(frozen=True)
class AttemptPlan:
    """The attempt the app needs now: which revision, which attempt of it, why."""

    revision: int
    attempt: int
    key: str
    fix_request: str | None = None
    previous_sha256: str | None = None
    """The bundle the attempt edits (a fix-up edits its own revision; a new one the newest)."""


def plan_attempt(inp: AppInput) -> AttemptPlan | None:
    """The attempt due: the next prompt's revision, or a fix-up of the served one; None when
    nothing is due or the workspace is suspended."""
    revisions, in_flight = inp.revisions(), inp.in_flight()
    workspace = inp.workspace.spec if inp.workspace else None
    target = desired.next_revision(inp.spec, revisions)
    fix_request = (in_flight or {}).get("fixRequest")
    if fix_request and target is None:  # a fix-up of the served revision (spec.autoFix)
        target = int((in_flight or {})["revision"])
    if target is None or (workspace is not None and workspace.suspended):
        return None
    attempt = int(in_flight["attempt"]) if in_flight and in_flight["revision"] == target else 0
    candidates = [r for r in revisions if r.get("sha256")]
    if fix_request:
        candidates = [r for r in candidates if r["number"] == target]
    previous = candidates[-1]["sha256"] if candidates else None
    key = desired.generation_key(inp.uid, target, attempt)
    return AttemptPlan(target, attempt, key, fix_request, previous)


@dataclass(frozen=True)
class GenerationStep:
    """Where generation stands after this reconcile."""

    revisions: list[Revision]
    in_flight: dict[str, Any] | None
    generated: ConditionSpec
    budget_ok: ConditionSpec
    submit: AttemptPlan | None = None
    """Start this attempt (unless the generator already runs it)."""
    absorbed: bool = False
    """A finished attempt was folded in: reconcile again at once."""
    requeue_after: float | None = None
    refused: bool = False
    """The attempt due waits because the budget refused it."""
    retry_at: str | None = None
    """A finished attempt is to be retried then (kept by the reconciler: `AttemptState`)."""


WITHIN_BUDGET = ConditionSpec("BudgetOK", "True", "WithinBudget", "the budget allows generations")
SUSPENDED = ConditionSpec(
    "Generated", "False", "WorkspaceSuspended", "the workspace is suspended: no generations"
)


def settled(
    revisions: Sequence[Mapping[str, Any]], conditions: Sequence[Mapping[str, Any]] | None
) -> ConditionSpec:
    """Generated while no generation is due: True, unless the newest revision failed (the
    model declined, or every model failed): then the reason it failed with stays."""
    newest = max(revisions, key=lambda r: int(r["number"]), default=None)
    if newest is None or newest.get("sha256"):
        return ConditionSpec("Generated", "True", "UpToDate", "every prompt has a revision")
    before = find(conditions, "Generated")
    if before is not None and before.get("status") == "False":
        return ConditionSpec(
            "Generated", "False", str(before.get("reason")), str(before.get("message") or "")
        )
    return ConditionSpec(
        "Generated", "False", "GenerationFailed", f"revision {newest['number']} has no files"
    )


def generation_step(inp: AppInput) -> GenerationStep:
    """The next generation step: absorb a finished attempt, wait out a retry, or start one."""
    revisions, in_flight = inp.revisions(), inp.in_flight()
    plan = plan_attempt(inp)
    if plan is None:
        due = desired.next_revision(inp.spec, revisions) is not None or bool(
            (in_flight or {}).get("fixRequest")
        )
        generated = SUSPENDED if due else settled(revisions, inp.status.get("conditions"))
        return GenerationStep(revisions, in_flight, generated, WITHIN_BUDGET)
    if inp.attempt.result is not None:
        return _budget(absorb(inp, plan, inp.attempt.result))
    wait = 0.0
    if not inp.attempt.woken:
        not_before = (in_flight or {}).get("notBefore")
        wait = max(remaining(not_before, inp.now), remaining(inp.attempt.retry_at, inp.now))
    if (
        in_flight
        and in_flight.get("reason")
        and not granted(in_flight, inp.attempt)
        and (wait > 0 or in_flight.get("key") == plan.key)
    ):
        # Waiting out a failure (the budget refused, no model may serve): the status says
        # why until the outcome changes, also while the retry runs, so a retry that fails
        # the same way writes nothing (and prepares no sandbox: nothing is being generated).
        generated = ConditionSpec(
            "Generated", "False", str(in_flight["reason"]), str(in_flight.get("message", ""))
        )
        if wait > 0:
            step = GenerationStep(
                revisions, in_flight, generated, WITHIN_BUDGET, requeue_after=wait
            )
            return _budget(step)
        submit = None if inp.attempt.running else plan
        step = GenerationStep(revisions, in_flight, generated, WITHIN_BUDGET, submit=submit)
        return _budget(step)
    started = {
        "revision": plan.revision,
        "attempt": plan.attempt,
        "key": plan.key,
        "started": (in_flight or {}).get("started") or format_time(inp.now),
        "fixRequest": plan.fix_request,
    }
    message = f"generating revision {plan.revision} (attempt {plan.attempt})"
    generated = ConditionSpec("Generated", "False", "Generating", message)
    submit = None if inp.attempt.running else plan
    return _budget(GenerationStep(revisions, started, generated, WITHIN_BUDGET, submit=submit))


def granted(in_flight: Mapping[str, Any], attempt: AttemptState) -> bool:
    """A retry of a budget refusal that the ledger granted: it generates now, and the status
    says so (one that still said BudgetExceeded while it was charged looked like an app left
    waiting). Other failures keep their reason while their retry runs: passing the budget says
    nothing of whether a model will answer this time."""
    return attempt.admitted and in_flight.get("reason") == "BudgetExceeded"


def _budget(step: GenerationStep) -> GenerationStep:
    """BudgetOK follows the attempt due, when the ledger refused it."""
    in_flight = step.in_flight or {}
    if in_flight.get("reason") != "BudgetExceeded":
        return step
    message = str(in_flight.get("message", ""))
    budget_ok = ConditionSpec("BudgetOK", "False", "BudgetExceeded", message)
    return replace(step, budget_ok=budget_ok, refused=True)


def absorb(inp: AppInput, plan: AttemptPlan, result: AttemptResult) -> GenerationStep:
    """Fold a finished attempt into the status: a revision, a retry to wait for, or a
    revision that failed."""
    revisions, in_flight = inp.revisions(), inp.in_flight()
    others = [r for r in revisions if r["number"] != plan.revision]
    message = result.message[:2000]
    if result.outcome == "succeeded" and result.record is not None:
        record = {k: v for k, v in result.record.items() if k != "key"}
        if plan.fix_request:
            before = next((r for r in revisions if r["number"] == plan.revision), {})
            record["fixes"] = int(before.get("fixes") or 0) + 1
        generated = ConditionSpec("Generated", "True", "Generated", result.message)
        return GenerationStep([*others, record], None, generated, WITHIN_BUDGET, absorbed=True)
    generated = ConditionSpec("Generated", "False", result.reason, message)
    if result.retry_after is not None:
        attempt = plan.attempt + 1 if result.next_attempt else plan.attempt
        retry_at = format_time(inp.now + timedelta(seconds=result.retry_after))
        waiting = {
            "revision": plan.revision,
            "attempt": attempt,
            "key": desired.generation_key(inp.uid, plan.revision, attempt),
            "started": (in_flight or {}).get("started") or format_time(inp.now),
            "notBefore": retry_at,
            "reason": result.reason,
            "message": message,
            "fixRequest": plan.fix_request,
        }
        if in_flight is not None and same_wait(in_flight, waiting):
            # The same failure again: the status stays as it is (no write); the retry's time
            # is kept by this process.
            waiting = in_flight
        return GenerationStep(
            revisions, waiting, generated, WITHIN_BUDGET, absorbed=True, retry_at=retry_at
        )
    failed: Revision = {
        "number": plan.revision,
        "time": format_time(inp.now),
        "promptDigest": desired.prompt_digest(inp.spec.prompts[plan.revision - 1]),
    }
    if result.record is not None:
        failed.update({k: v for k, v in result.record.items() if k != "key"})
    failed["validation"] = "Failed"
    return GenerationStep([*others, failed], None, generated, WITHIN_BUDGET, absorbed=True)


def same_wait(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether `after` waits out the failure `before` waited out already: the same attempt,
    reason and message (only the time of the retry differs)."""
    if not before.get("notBefore"):
        return False
    return all(
        before.get(field) == after.get(field)
        for field in ("revision", "attempt", "key", "reason", "message", "fixRequest")
    )


FIX_REQUEST = (
    "The app you wrote did not start or its main page did not answer. What happened:\n"
    "{failure}\nFix it and keep everything else as it is."
)


def fix_up(inp: AppInput, revisions: Sequence[Revision], failure: str) -> dict[str, Any] | None:
    """A charged fix-up generation for the newest revision that failed validation, while
    spec.autoFix.attempts allows; None when there is none left (or a rollback is served)."""
    allowed = inp.spec.auto_fix.attempts if inp.spec.auto_fix else 0
    served = desired.served_revision(inp.spec, list(revisions))
    newest = max((int(r["number"]) for r in revisions), default=0)
    if served is None or served["number"] != newest or int(served.get("fixes") or 0) >= allowed:
        return None
    attempt = int(served.get("attempt") or 0) + 1
    return {
        "revision": newest,
        "attempt": attempt,
        "key": desired.generation_key(inp.uid, newest, attempt),
        "started": format_time(inp.now),
        "fixRequest": FIX_REQUEST.format(failure=failure[-1500:]),
    }
