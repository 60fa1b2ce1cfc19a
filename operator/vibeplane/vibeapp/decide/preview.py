"""The preview's decisions: what the served revision needs and how it stands.

The preview owns the PreviewReady condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vibeplane.api import vibeapp as api
from vibeplane.api.common import duration_seconds
from vibeplane.kube.conditions import ConditionSpec, find
from vibeplane.timestamps import format_time, parse_time
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.decide.generation import GenerationStep
from vibeplane.vibeapp.decide.inputs import (
    BUNDLE_URL_MARGIN,
    AppInput,
    Revision,
    elapsed_since,
    idle_check,
)
from vibeplane.wellknown import (
    ANNOTATION_BUNDLE_URL_EXPIRES,
    ANNOTATION_LOCAL_PORT,
    ANNOTATION_WAKE,
    ENV_BUNDLE_SHA256,
    ENV_BUNDLE_URL,
)

# ---- the preview: owns PreviewReady ------------------------------------------------------------


@dataclass(frozen=True)
class PreviewState:
    """PreviewReady and what the preview means for the app."""

    condition: ConditionSpec
    phase: str
    url: str | None = None
    serving: int | None = None
    requeue_after: float | None = None
    revision_update: Mapping[str, Any] = field(default_factory=dict)
    """Fields to record on the served revision (deployedAt, validation)."""


@dataclass(frozen=True)
class PreviewPlan:
    """The preview objects the served revision needs, or the state without any."""

    state: PreviewState | None = None
    """Decided without objects (nothing to serve, preview disabled): apply nothing."""
    serve: Revision = field(default_factory=dict)
    replicas: int = 1
    bundle_url: tuple[str, str] | None = None
    """(expires, URL) of the live preview's bundle when it can be kept; None: presign anew."""


def plan_preview(inp: AppInput, revisions: Sequence[Revision]) -> PreviewPlan:
    """What the served revision's preview needs."""
    serve = desired.served_revision(inp.spec, list(revisions))
    with_bundle = [int(r["number"]) for r in revisions if r.get("sha256")]
    if serve is None and inp.spec.pinned_revision is not None and with_bundle:
        message = (
            f"spec.pinnedRevision {inp.spec.pinned_revision} is not a stored revision (stored: "
            f"{', '.join(map(str, with_bundle))}); pin one of those, or remove pinnedRevision "
            "to serve the latest"
        )
        condition = ConditionSpec("PreviewReady", "False", "PinnedRevisionNotFound", message)
        return PreviewPlan(PreviewState(condition, "Pending"))
    if serve is None:
        message = (
            "no revision has files to serve" if revisions else "no revision has been generated yet"
        )
        condition = ConditionSpec("PreviewReady", "False", "NoRevision", message)
        return PreviewPlan(PreviewState(condition, "Pending"))
    preview = inp.spec.preview or api.Preview()
    if not preview.enabled:
        condition = ConditionSpec(
            "PreviewReady", "False", "Disabled", "spec.preview.enabled is false"
        )
        return PreviewPlan(PreviewState(condition, "Running", serving=int(serve["number"])))
    suspended = inp.workspace is not None and bool(
        inp.workspace.spec and inp.workspace.spec.suspended
    )
    replicas = 0 if suspended or hibernated(inp) else 1
    return PreviewPlan(None, dict(serve), replicas, reusable_bundle_url(inp, serve))


def hibernated(inp: AppInput) -> bool:
    """Idle longer than idleTimeout (by status.lastActivity) and not woken since."""
    preview = inp.spec.preview or api.Preview()
    last = parse_time(inp.status.get("lastActivity"))
    # Written by people: an unreadable value is ignored (and said so when hibernated).
    woke = parse_time(inp.annotations.get(ANNOTATION_WAKE))
    newest = max((moment for moment in (last, woke) if moment), default=None)
    if newest is None:
        return False
    return (inp.now - newest).total_seconds() > duration_seconds(preview.idle_timeout)


def reusable_bundle_url(inp: AppInput, revision: Mapping[str, Any]) -> tuple[str, str] | None:
    """The live preview's presigned bundle URL while it is valid for another 10 minutes, so a
    converged preview's template (and so its pods) never changes."""
    if inp.deployment is None:
        return None
    template = inp.deployment["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0].get("env", [])}
    expires = annotations.get(ANNOTATION_BUNDLE_URL_EXPIRES, "")
    valid_until = parse_time(expires)  # unreadable: presigned anew
    if (
        env.get(ENV_BUNDLE_SHA256) == revision["sha256"]
        and valid_until is not None
        and valid_until > inp.now + BUNDLE_URL_MARGIN
    ):
        return expires, str(env[ENV_BUNDLE_URL])
    return None


def refused_preview(plan: PreviewPlan, message: str) -> PreviewState:
    """The API server refused a preview object for good (e.g. the app's name makes an invalid
    Service name): said here, with the revisions kept."""
    condition = ConditionSpec("PreviewReady", "False", "PreviewRefused", message)
    return PreviewState(condition, "Failed", serving=int(plan.serve["number"]))


def timed_out(inp: AppInput, plan: PreviewPlan, live: Mapping[str, Any] | None) -> bool:
    """Whether the served revision had its time to become ready and did not."""
    number = int(plan.serve["number"])
    if plan.replicas == 0 or desired.deployment_ready(live, number):
        return False
    waited = elapsed_since(plan.serve.get("deployedAt"), inp.now)
    return (
        waited is not None
        and waited > inp.settings.preview_ready_timeout
        and plan.serve.get("validation") != "Passed"
    )


def needs_log_tail(inp: AppInput, plan: PreviewPlan, live: Mapping[str, Any] | None) -> bool:
    """Whether the pod's logs must be read for the ValidationFailed message (once: a message
    recorded before is kept)."""
    return timed_out(inp, plan, live) and _failure_recorded(inp, plan) is None


def _failure_recorded(inp: AppInput, plan: PreviewPlan) -> str | None:
    before = find(inp.status.get("conditions"), "PreviewReady")
    if (
        plan.serve.get("validation") == "Failed"
        and before
        and before.get("reason") == ("ValidationFailed")
    ):
        return str(before.get("message"))
    return None


def preview_state(
    inp: AppInput, plan: PreviewPlan, live: Mapping[str, Any] | None, log_tail: str = ""
) -> PreviewState:
    """PreviewReady once the preview's objects are applied (`live`: the Deployment now)."""
    number = int(plan.serve["number"])
    preview = inp.spec.preview or api.Preview()
    if plan.replicas == 0:
        return _scaled_to_zero(inp, number)
    if desired.deployment_ready(live, number):
        condition = ConditionSpec("PreviewReady", "True", "Ready", f"revision {number} answers")
        update = {} if _validated(plan.serve) else {"validation": "Passed"}
        url = preview_url(inp)
        return PreviewState(
            condition, "Running", url, number, idle_check(preview.idle_timeout), update
        )
    if timed_out(inp, plan, live):
        message = _failure_recorded(inp, plan) or (
            f"revision {number} did not become ready in "
            f"{inp.settings.preview_ready_timeout:.0f}s; log tail:\n{log_tail}"
        )
        condition = ConditionSpec("PreviewReady", "False", "ValidationFailed", message)
        update = {} if _validated(plan.serve) else {"validation": "Failed"}
        return PreviewState(condition, "Failed", serving=number, revision_update=update)
    started = elapsed_since(plan.serve.get("deployedAt"), inp.now) is not None
    message = f"waiting for revision {number} to answer"
    condition = ConditionSpec("PreviewReady", "False", "Deploying", message)
    update = {} if started else {"deployedAt": format_time(inp.now)}
    return PreviewState(condition, "Deploying", None, number, 5.0, update)


def _validated(revision: Mapping[str, Any]) -> bool:
    return revision.get("validation") in ("Passed", "Failed")


def _scaled_to_zero(inp: AppInput, number: int) -> PreviewState:
    suspended = inp.workspace is not None and bool(
        inp.workspace.spec and inp.workspace.spec.suspended
    )
    message = "the preview is scaled to zero"
    woke = inp.annotations.get(ANNOTATION_WAKE)
    if woke and parse_time(woke) is None:
        message += (
            f"; the {ANNOTATION_WAKE} annotation {woke[:64]!r} is not a time such as "
            "2026-11-24T10:00:00Z and was ignored"
        )
    reason = "WorkspaceSuspended" if suspended else "Hibernated"
    return PreviewState(
        ConditionSpec("PreviewReady", "False", reason, message), "Hibernated", serving=number
    )


def preview_url(inp: AppInput) -> str:
    """Where people reach the preview: the local node's port, the node's NodePort, the
    preview domain, or the Service's cluster name."""
    settings = inp.settings
    if settings.preview_local_node:
        for pod in inp.pods:
            port = (pod["metadata"].get("annotations") or {}).get(ANNOTATION_LOCAL_PORT)
            if port and pod_ready(pod):
                return f"http://127.0.0.1:{port}/"
    if settings.preview_node_address:
        ports = ((inp.service or {}).get("spec") or {}).get("ports") or []
        if ports and ports[0].get("nodePort"):
            return f"http://{settings.preview_node_address}:{ports[0]['nodePort']}/"
    if settings.preview_domain:
        return f"http://{inp.name}-{inp.namespace}.{settings.preview_domain}/"
    return f"http://{desired.preview_name(inp.name)}.{inp.namespace}.svc/"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def activity_url(inp: AppInput, step: GenerationStep, preview: PreviewState) -> str | None:
    """The running preview to ask when it last served a person (None: nothing to ask, or a
    new revision is the newest activity anyway)."""
    if step.generated.reason == "Generated" or not inp.settings.preview_activity_poll:
        return None
    return preview.url if preview.phase == "Running" else None
