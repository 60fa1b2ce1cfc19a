"""The app as a whole: its workspace blocking it, its deletion, its phase and status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import FINALIZER
from vibeplane.timestamps import format_time
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.decide.generation import GenerationStep, fix_up
from vibeplane.vibeapp.decide.inputs import (
    KEPT_REVISIONS,
    LONGEST_WAIT,
    NO_WORKSPACE_RECHECK,
    AppInput,
    Revision,
)
from vibeplane.vibeapp.decide.preview import PreviewState
from vibeplane.wellknown import (
    LABEL_RETAIN,
    LABEL_WORKSPACE,
)

# ---- the workspace and deletion ----------------------------------------------------------------


@dataclass(frozen=True)
class Blocked:
    """The app can do nothing until its workspace changes: this status, nothing else."""

    conditions: list[ConditionSpec]
    phase: str
    requeue_after: float | None = None


def blocked(inp: AppInput) -> Blocked | None:
    """Why the app's workspace stops it (none, or an invalid spec); None when it does not."""
    if inp.workspace is None:
        message = f"namespace {inp.namespace} belongs to no Workspace"
        condition = ConditionSpec("Ready", "False", "NoWorkspace", message)
        return Blocked([condition], "Pending", NO_WORKSPACE_RECHECK)
    if inp.workspace.spec is None:
        message = (
            f"workspace {inp.workspace.name} has an invalid spec (see its Ready condition): no "
            "generations or previews until it is fixed"
        )
        return Blocked([ConditionSpec("Ready", "False", "WorkspaceInvalid", message)], "Pending")
    return None


def needs_finalizer(inp: AppInput) -> bool:
    """Only apps of a workspace can have objects in S3: only they carry the finalizer."""
    return FINALIZER not in inp.finalizers


@dataclass(frozen=True)
class Deletion:
    """What a deleted app still needs before it goes."""

    wait: bool = False
    """An attempt still runs: its bundle would land after the cleanup. Look again later."""
    delete_prefix_of: str | None = None
    """Remove the app's objects in S3, stored under this workspace's name."""
    release_budget: bool = False
    """Give back what the app still holds in its workspace's ledger."""
    remove_finalizer: bool = False


def deletion(inp: AppInput) -> Deletion:
    if inp.busy:
        return Deletion(wait=True)
    if FINALIZER not in inp.finalizers:
        return Deletion()
    # The workspace may be gone already (its deletion takes the namespace and the apps with
    # it): the namespace's labels carry its name and retention until the end.
    workspace = inp.namespace_labels.get(LABEL_WORKSPACE) or (
        inp.workspace.name if inp.workspace else None
    )
    retain = inp.namespace_labels.get(LABEL_RETAIN) == "true"
    return Deletion(
        # An app outside any workspace never generated anything: nothing to remove.
        delete_prefix_of=workspace if workspace and not retain else None,
        # Reserved by an attempt no generation will settle now (the operator restarted).
        release_budget=inp.workspace is not None,
        remove_finalizer=True,
    )


# ---- the app: phase, conditions, status ----------------------------------------------------


@dataclass(frozen=True)
class AppStatus:
    """The status to write, and whether a fix-up attempt was just started."""

    conditions: list[ConditionSpec]
    fields: dict[str, Any]
    requeue_after: float
    fixing_up: bool = False


def app_status(
    inp: AppInput, step: GenerationStep, preview: PreviewState, seen_activity: str | None = None
) -> AppStatus:
    """Combine generation and preview into the phase, Ready and the status fields."""
    updated = preview.updated if preview.updated is not None else preview.serving
    revisions = with_update(step.revisions, updated, preview.revision_update)
    in_flight, generated = step.in_flight, step.generated
    fixing_up = False
    if preview.condition.reason == "ValidationFailed" and in_flight is None:
        in_flight = fix_up(inp, revisions, preview.condition.message)
        if in_flight is not None:
            fixing_up = True
            generated = ConditionSpec(
                "Generated",
                "False",
                "FixingUp",
                f"revision {in_flight['revision']} failed validation: asking the model to fix "
                f"it (attempt {in_flight['attempt']})",
            )
    app_phase = phase(step, in_flight, preview, revisions)
    fields = {
        "generation": in_flight,
        "phase": app_phase,
        "revision": preview.serving,
        "delivered": preview.delivered or inp.status.get("delivered"),
        "revisions": revisions[-KEPT_REVISIONS:],
        "url": preview.url,
        "totalCost": total_cost(revisions),
        "lastActivity": last_activity(
            inp, generated, seen_activity, delivered=preview.delivered is not None
        ),
    }
    waits = (step.requeue_after, preview.requeue_after, LONGEST_WAIT)
    requeue = min(x for x in waits if x is not None)
    conditions = desired.conditions_for(app_phase, generated, preview.condition, step.budget_ok)
    return AppStatus(conditions, fields, requeue, fixing_up)


def with_update(
    revisions: Sequence[Revision], number: int | None, update: Mapping[str, Any]
) -> list[Revision]:
    """The revisions with `update` recorded on revision `number`."""
    if not update:
        return list(revisions)
    return [{**r, **update} if r.get("number") == number else r for r in revisions]


def phase(
    step: GenerationStep,
    in_flight: Mapping[str, Any] | None,
    preview: PreviewState,
    revisions: Sequence[Mapping[str, Any]],
) -> str:
    if step.refused:
        return "BudgetExceeded"
    if in_flight:
        return "Generating"
    if preview.phase == "Pending" and revisions and revisions[-1].get("validation") == "Failed":
        return "Failed"
    return preview.phase


def last_activity(
    inp: AppInput, generated: ConditionSpec, seen: str | None, delivered: bool = False
) -> str:
    """When a person last used the app: a new revision counts, and so does traffic the
    preview saw. A sandbox that just took its revision (after a wake, a restart) counts too:
    the idle time starts when the app answers again, not when its pod was asked for (a woken
    preview that took longer to start than its idle timeout was scaled to zero again the moment
    it answered)."""
    last = str(inp.status.get("lastActivity") or format_time(inp.now))
    if generated.reason == "Generated" or delivered:
        return format_time(inp.now)
    if seen is not None and seen > last:
        return seen
    return last


def total_cost(revisions: Sequence[Mapping[str, Any]]) -> str:
    total = sum((Decimal(str(r.get("cost", "0"))) for r in revisions), Decimal(0))
    return format(total.normalize(), "f") if total else "0"
