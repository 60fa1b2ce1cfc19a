"""The VibeApp controller's decisions, as pure functions of one gathered input.

The reconcile (`vibeplane.vibeapp.handlers`) has three parts, as cert-manager's controllers do:
gather everything a decision reads into one `AppInput` (the spec and status, the workspace, the
in-flight attempt as the generator knows it, the live preview objects, the time), decide here,
and apply what was decided (start an attempt, apply the preview, write the status). Nothing in
this module reads a clock, the API server, the object store or the network, so the whole state
machine (generate, fix up, pin, hibernate, wake, budget refused, model failed, deletion) is
unit-tested without a cluster (tests/unit/vibeapp/test_decide.py).

Two concerns own one condition each: generation owns Generated and BudgetOK
(`generation_step`), the preview owns PreviewReady (`plan_preview`, `preview_state`); the
app's phase and its summary Ready condition combine them (`app_status`).
"""

from vibeplane.vibeapp.decide.app import (
    AppStatus,
    Blocked,
    Deletion,
    app_status,
    blocked,
    deletion,
    last_activity,
    needs_finalizer,
    phase,
    total_cost,
    with_update,
)
from vibeplane.vibeapp.decide.generation import (
    FIX_REQUEST,
    SUSPENDED,
    WITHIN_BUDGET,
    AttemptPlan,
    GenerationStep,
    absorb,
    fix_up,
    generation_step,
    plan_attempt,
    settled,
)
from vibeplane.vibeapp.decide.inputs import (
    BUNDLE_URL_SECONDS,
    BUSY_RECHECK,
    KEPT_REVISIONS,
    LONGEST_WAIT,
    NO_WORKSPACE_RECHECK,
    AppInput,
    AttemptResult,
    AttemptState,
    Revision,
    WorkspaceView,
    elapsed_since,
    idle_check,
    remaining,
)
from vibeplane.vibeapp.decide.preview import (
    DeliveryResult,
    PreviewPlan,
    PreviewState,
    activity_url,
    delivery_needed,
    delivery_url,
    hibernated,
    needs_log_tail,
    plan_preview,
    pod_ready,
    preview_state,
    preview_url,
    ready_sandbox,
    refused_preview,
    sandbox_id,
    timed_out,
)

__all__ = [
    "BUNDLE_URL_SECONDS",
    "BUSY_RECHECK",
    "FIX_REQUEST",
    "KEPT_REVISIONS",
    "LONGEST_WAIT",
    "NO_WORKSPACE_RECHECK",
    "SUSPENDED",
    "WITHIN_BUDGET",
    "AppInput",
    "AppStatus",
    "AttemptPlan",
    "AttemptResult",
    "AttemptState",
    "Blocked",
    "Deletion",
    "DeliveryResult",
    "GenerationStep",
    "PreviewPlan",
    "PreviewState",
    "Revision",
    "WorkspaceView",
    "absorb",
    "activity_url",
    "app_status",
    "blocked",
    "deletion",
    "delivery_needed",
    "delivery_url",
    "elapsed_since",
    "fix_up",
    "generation_step",
    "hibernated",
    "idle_check",
    "last_activity",
    "needs_finalizer",
    "needs_log_tail",
    "phase",
    "plan_attempt",
    "plan_preview",
    "pod_ready",
    "preview_state",
    "preview_url",
    "ready_sandbox",
    "refused_preview",
    "remaining",
    "sandbox_id",
    "settled",
    "timed_out",
    "total_cost",
    "with_update",
]
