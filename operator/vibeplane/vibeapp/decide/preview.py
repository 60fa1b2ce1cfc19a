"""The preview's decisions: what the served revision needs and how it stands.

The preview is one sandbox per app (a Deployment whose template carries no revision); each
revision reaches the running sandbox by delivery (a signed order, `vibeplane.vibeapp.delivery`)
and swaps in there. The app's status records which sandbox took which revision
(`status.delivered`), so a restarted operator, a restarted pod or a new revision is seen as a
difference and delivered again, and a converged app sends nothing. The preview owns the
PreviewReady condition."""

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
    AppInput,
    Revision,
    elapsed_since,
    idle_check,
)
from vibeplane.wellknown import (
    ANNOTATION_LOCAL_PORT,
    ANNOTATION_TEMPLATE,
    ANNOTATION_WAKE,
)

DELIVERY_RETRY = 0.5
"""Seconds before a delivery that did not get through is tried again (a pod just Ready may
not be behind its Service yet: kube-proxy programs it a moment later)."""

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
    """Fields to record on the revision to serve (deployedAt, validation)."""
    updated: int | None = None
    """The revision `revision_update` is for, when it is not the one serving."""
    delivered: Mapping[str, Any] | None = None
    """A new status.delivered (None: as it was)."""


@dataclass(frozen=True)
class PreviewPlan:
    """The preview objects the served revision needs, or the state without any."""

    state: PreviewState | None = None
    """Decided without objects (nothing to serve, preview disabled): apply nothing."""
    serve: Revision = field(default_factory=dict)
    replicas: int = 1
    prepare: bool = False
    """Apply the objects for a revision still being generated (a sandbox, adopted from the
    warm pool or started, and its Service, ready when the revision is), or release them when
    none is coming; `state` is the preview's state meanwhile, nothing is delivered."""


def plan_preview(inp: AppInput, revisions: Sequence[Revision], coming: bool = False) -> PreviewPlan:
    """What the served revision's preview needs; `coming`: a generation is in flight."""
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
        state = PreviewState(condition, "Pending")
        enabled = (inp.spec.preview or api.Preview()).enabled
        if enabled and (coming or inp.deployment is not None):
            # The sandbox starts (or is adopted) and its Service is programmed while the model
            # writes the revision, which is then one delivery away; no revision coming: none.
            suspended = inp.workspace is not None and bool(
                inp.workspace.spec and inp.workspace.spec.suspended
            )
            return PreviewPlan(state, replicas=int(coming and not suspended), prepare=True)
        return PreviewPlan(state)
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
    return PreviewPlan(None, dict(serve), replicas)


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


def refused_preview(plan: PreviewPlan, message: str) -> PreviewState:
    """The API server refused a preview object for good (e.g. the app's name makes an invalid
    Service name): said here, with the revisions kept."""
    condition = ConditionSpec("PreviewReady", "False", "PreviewRefused", message)
    number = plan.serve.get("number")
    return PreviewState(condition, "Failed", serving=int(number) if number else None)


@dataclass(frozen=True)
class DeliveryResult:
    """How the sandbox answered a delivery."""

    status: int
    """The HTTP status (0: the sandbox could not be reached)."""
    message: str = ""
    sandbox: str | None = None
    """The sandbox that took it (`sandbox_id`), when it did."""


def sandbox_id(pod: Mapping[str, Any]) -> str:
    """A preview sandbox's identity: its pod and how often its container restarted (a
    restarted container is a new, empty runtime)."""
    metadata = pod["metadata"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return f"{metadata['name']}/{metadata.get('uid', '')}/{restarts}"


def ready_sandbox(inp: AppInput) -> Mapping[str, Any] | None:
    """The sandbox that serves the app: a ready pod not being deleted nor about to be (its
    Deployment is at 0: hibernated a moment ago, woken now), one started from today's pod spec
    before one from an older spec (a rollout or a stale adopted sandbox can leave both), the
    newest of those."""
    scaled_down = ((inp.deployment or {}).get("spec") or {}).get("replicas") == 0
    ready = [
        pod
        for pod in inp.pods
        if pod_ready(pod)
        and not pod["metadata"].get("deletionTimestamp")
        and not (scaled_down and _owner_kind(pod) == "ReplicaSet")
    ]
    return max(
        ready,
        key=lambda pod: (
            _started_from(pod) == inp.template,
            str(pod["metadata"].get("creationTimestamp", "")),
        ),
        default=None,
    )


def _owner_kind(pod: Mapping[str, Any]) -> str | None:
    owners = pod["metadata"].get("ownerReferences") or []
    return next((str(o.get("kind")) for o in owners if o.get("controller")), None)


def _started_from(pod: Mapping[str, Any]) -> str | None:
    annotations: Mapping[str, str] = pod["metadata"].get("annotations") or {}
    return annotations.get(ANNOTATION_TEMPLATE)


def _delivered_here(inp: AppInput, plan: PreviewPlan) -> bool:
    delivered = inp.status.get("delivered") or {}
    sandbox = ready_sandbox(inp)
    return (
        sandbox is not None
        and delivered.get("sandbox") == sandbox_id(sandbox)
        and delivered.get("sha256") == plan.serve.get("sha256")
        and delivered.get("revision") == plan.serve.get("number")
    )


def delivery_needed(inp: AppInput, plan: PreviewPlan) -> Mapping[str, Any] | None:
    """The ready sandbox to deliver the revision to (None: nothing to deliver, or no sandbox
    to take it yet). A revision the sandbox refused (validation Failed) is not sent again;
    its fix-up is a new bundle, and so a new delivery."""
    if plan.replicas == 0 or _delivered_here(inp, plan):
        return None
    if plan.serve.get("validation") == "Failed":
        return None
    return ready_sandbox(inp)


def _node_url(inp: AppInput) -> str | None:
    """The preview's address on the local node (the serving sandbox's own port) or the
    node's NodePort."""
    settings = inp.settings
    if settings.preview_local_node:
        sandbox = ready_sandbox(inp)
        annotations = (sandbox["metadata"].get("annotations") or {}) if sandbox else {}
        port = annotations.get(ANNOTATION_LOCAL_PORT)
        if port:
            return f"http://127.0.0.1:{port}/"
    if settings.preview_node_address:
        ports = ((inp.service or {}).get("spec") or {}).get("ports") or []
        if ports and ports[0].get("nodePort"):
            return f"http://{settings.preview_node_address}:{ports[0]['nodePort']}/"
    return None


def delivery_url(inp: AppInput) -> str:
    """Where the operator reaches the preview's runtime: on the local node the port of the
    sandbox `ready_sandbox` chose (during a rollout, the newest ready pod of today's spec, not
    whichever pod the cache lists first), else the node's NodePort, or the Service's cluster
    name (never the gateway: deliveries are not people)."""
    node = _node_url(inp)
    return node or f"http://{desired.preview_name(inp.name)}.{inp.namespace}.svc/"


def timed_out(inp: AppInput, plan: PreviewPlan) -> bool:
    """Whether the served revision had its time to reach its sandbox and did not."""
    if plan.replicas == 0 or _delivered_here(inp, plan):
        return False
    waited = elapsed_since(plan.serve.get("deployedAt"), inp.now)
    return (
        waited is not None
        and waited > inp.settings.preview_ready_timeout
        and plan.serve.get("validation") != "Passed"
    )


def needs_log_tail(inp: AppInput, plan: PreviewPlan) -> bool:
    """Whether the pod's logs must be read for the ValidationFailed message (once: a message
    recorded before is kept)."""
    return timed_out(inp, plan) and _failure_recorded(inp, plan) is None


def _failure_recorded(inp: AppInput, plan: PreviewPlan) -> str | None:
    before = find(inp.status.get("conditions"), "PreviewReady")
    if (
        plan.serve.get("validation") == "Failed"
        and before
        and before.get("reason") == ("ValidationFailed")
    ):
        return str(before.get("message"))
    return None


def _refused(result: DeliveryResult | None) -> bool:
    """The sandbox fetched the bundle and refused it (checksum, archive, no main page)."""
    return result is not None and result.status == 422


def preview_state(
    inp: AppInput,
    plan: PreviewPlan,
    result: DeliveryResult | None = None,
    log_tail: str = "",
) -> PreviewState:
    """PreviewReady once the preview's objects are applied and any delivery was answered."""
    number = int(plan.serve["number"])
    preview = inp.spec.preview or api.Preview()
    before = inp.status.get("delivered") or None
    if plan.replicas == 0:
        return _scaled_to_zero(inp, number)
    delivered: Mapping[str, Any] | None = None
    if result is not None and result.status == 200 and result.sandbox:
        delivered = {"revision": number, "sha256": plan.serve["sha256"], "sandbox": result.sandbox}
    if delivered is not None or _delivered_here(inp, plan):
        condition = ConditionSpec("PreviewReady", "True", "Ready", f"revision {number} answers")
        update = {} if plan.serve.get("validation") == "Passed" else {"validation": "Passed"}
        url = preview_url(inp)
        wait = idle_check(preview.idle_timeout)
        return PreviewState(condition, "Running", url, number, wait, update, delivered=delivered)
    # The revision the sandbox still serves, when it is this app's and the sandbox is up.
    sandbox = ready_sandbox(inp)
    still = (
        int(before["revision"])
        if before and sandbox is not None and before.get("sandbox") == sandbox_id(sandbox)
        else None
    )
    if _refused(result) or (plan.serve.get("validation") == "Failed" and still is not None):
        message = (
            f"revision {number} was refused by its sandbox: {result.message}"
            if result is not None and _refused(result)
            else _failure_recorded(inp, plan) or f"revision {number} failed validation"
        )
        if still is not None:
            message += f"; revision {still} keeps serving"
        condition = ConditionSpec("PreviewReady", "False", "ValidationFailed", message)
        update = {} if _validated(plan.serve) else {"validation": "Failed"}
        return PreviewState(
            condition,
            "Failed",
            preview_url(inp) if still is not None else None,
            still or number,
            revision_update=update,
            updated=number,
        )
    if timed_out(inp, plan):
        message = _failure_recorded(inp, plan) or (
            f"revision {number} did not reach a ready sandbox in "
            f"{inp.settings.preview_ready_timeout:.0f}s; log tail:\n{log_tail}"
        )
        condition = ConditionSpec("PreviewReady", "False", "ValidationFailed", message)
        update = {} if _validated(plan.serve) else {"validation": "Failed"}
        return PreviewState(condition, "Failed", serving=number, revision_update=update)
    started = elapsed_since(plan.serve.get("deployedAt"), inp.now) is not None
    message = f"waiting for revision {number} to answer"
    if result is not None:
        message += f" (its delivery: {result.message or f'HTTP {result.status}'})"
    condition = ConditionSpec("PreviewReady", "False", "Deploying", message)
    update = {} if started else {"deployedAt": format_time(inp.now)}
    wait = DELIVERY_RETRY if result is not None else 5.0
    return PreviewState(condition, "Deploying", None, number, wait, update, updated=number)


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
    node = _node_url(inp)
    if node:
        return node
    if inp.settings.preview_domain:
        return f"http://{inp.name}-{inp.namespace}.{inp.settings.preview_domain}/"
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
