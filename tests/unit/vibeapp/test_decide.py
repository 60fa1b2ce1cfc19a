"""The VibeApp's decisions, state by state, without a cluster.

Each test builds the one input a reconcile gathers (`AppInput`) and walks the state machine:
a prompt becomes a revision and a running preview; a preview that never answers is fixed up;
a pin picks the served revision; an idle preview hibernates and wakes; the budget refuses;
the model fails; the workspace blocks or suspends; a deleted app cleans up.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import FINALIZER, OperatorSettings
from vibeplane.vibeapp import decide, desired
from vibeplane.vibeapp.decide import AppInput, AttemptState, WorkspaceView
from vibeplane.vibeapp.generate import Result
from vibeplane.wellknown import ANNOTATION_WAKE, LABEL_RETAIN, LABEL_WORKSPACE

NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
UID = "u-1"
SETTINGS = OperatorSettings(preview_activity_poll=True, preview_ready_timeout=180.0)
WORKSPACE = WorkspaceView("team", "w-1", WorkspaceSpec.model_validate({}))
SHA = "ab" * 32


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def app(
    prompts: list[str],
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    **fields: Any,
) -> AppInput:
    values: dict[str, Any] = {
        "name": "todo",
        "namespace": "ws-team",
        "uid": UID,
        "spec": VibeAppSpec.model_validate({"prompts": prompts, **(spec or {})}),
        "status": status or {},
        "now": NOW,
        "settings": SETTINGS,
        "finalizers": (FINALIZER,),
        "workspace": WORKSPACE,
    }
    values.update(fields)
    return AppInput(**values)


def revision(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "number": number,
        "sha256": SHA,
        "artifactUri": f"s3://vibeplane/workspaces/team/apps/{UID}/bundles/{SHA}.tar.gz",
        "time": stamp(NOW - timedelta(minutes=5)),
        "cost": "0.01",
        **fields,
    }


POD: dict[str, Any] = {
    "metadata": {"name": "todo-preview-x", "uid": "p-1", "creationTimestamp": stamp(NOW)},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "restartCount": 0}],
    },
}
SANDBOX = "todo-preview-x/p-1/0"


def ready_deployment(number: int) -> decide.DeliveryResult:
    """The sandbox's answer to revision `number`'s delivery: swapped in."""
    return decide.DeliveryResult(200, "", SANDBOX)


def succeeded(number: int) -> Result:
    record = {**revision(number), "key": desired.generation_key(UID, number, 0)}
    return Result("succeeded", "Generated", f"revision {number} generated", record=record)


def reconcile(
    inp: AppInput,
    live: decide.DeliveryResult | None = None,
    log_tail: str = "",
    seen: str | None = None,
) -> tuple[decide.GenerationStep, decide.PreviewState, decide.AppStatus]:
    """The decisions of one reconcile, with `live` as the sandbox's answer to a delivery (its
    pod is then ready)."""
    assert decide.blocked(inp) is None
    if live is not None and not inp.pods:
        inp = replace(inp, pods=(POD,))
    step = decide.generation_step(inp)
    plan = decide.plan_preview(inp, step.revisions)
    preview = plan.state or decide.preview_state(inp, plan, live, log_tail)
    return step, preview, decide.app_status(inp, step, preview, seen)


def condition(status: decide.AppStatus, type_: str) -> ConditionSpec:
    return next(c for c in status.conditions if c.type == type_)


# ---- generate ------------------------------------------------------------------------------


def test_a_new_prompt_starts_an_attempt() -> None:
    step, preview, status = reconcile(app(["a todo list"]))
    assert step.submit == decide.AttemptPlan(1, 0, f"{UID}:1:0")
    assert step.in_flight == {
        "revision": 1,
        "attempt": 0,
        "key": f"{UID}:1:0",
        "started": stamp(NOW),
        "fixRequest": None,
    }
    assert (preview.condition.reason, preview.condition.message) == (
        "NoRevision",
        "no revision has been generated yet",
    )
    assert status.fields["phase"] == "Generating"
    assert condition(status, "Ready").status == "False"
    assert decide.needs_finalizer(app(["x"], finalizers=()))


def test_a_running_attempt_is_not_started_again() -> None:
    started = {"revision": 1, "attempt": 0, "key": f"{UID}:1:0", "started": stamp(NOW)}
    inp = app(["a todo list"], {"generation": started}, attempt=AttemptState(running=True))
    step, _, status = reconcile(inp)
    assert step.submit is None
    assert step.in_flight is not None
    assert step.in_flight["started"] == stamp(NOW)
    assert status.fields["phase"] == "Generating"


def test_a_finished_attempt_becomes_a_revision_and_its_preview_deploys() -> None:
    started = {"revision": 1, "attempt": 0, "key": f"{UID}:1:0", "started": stamp(NOW)}
    inp = app(["a todo list"], {"generation": started}, attempt=AttemptState(succeeded(1)))
    step, preview, status = reconcile(inp)
    assert step.absorbed
    assert step.in_flight is None
    assert step.revisions == [revision(1)]  # the attempt's key is not kept
    assert condition(status, "Generated") == ConditionSpec(
        "Generated", "True", "Generated", "revision 1 generated"
    )
    assert (preview.phase, preview.requeue_after) == ("Deploying", 5.0)
    assert status.fields["revisions"] == [{**revision(1), "deployedAt": stamp(NOW)}]
    assert status.fields["lastActivity"] == stamp(NOW)  # a new revision is activity
    assert status.fields["totalCost"] == "0.01"
    assert decide.activity_url(inp, step, preview) is None


def test_a_ready_preview_runs_and_passes_validation() -> None:
    deployed = revision(1, deployedAt=stamp(NOW - timedelta(seconds=30)))
    inp = app(["a todo list"], {"revisions": [deployed], "lastActivity": stamp(NOW)})
    step, preview, status = reconcile(inp, live=ready_deployment(1))
    assert preview.condition == ConditionSpec("PreviewReady", "True", "Ready", "revision 1 answers")
    assert status.fields["phase"] == "Running"
    assert status.fields["url"] == "http://todo-preview.ws-team.svc/"
    assert status.fields["revisions"][0]["validation"] == "Passed"
    assert status.requeue_after == 300.0  # a quarter of the 30m idle timeout, at most 5m
    assert condition(status, "Ready") == ConditionSpec(
        "Ready", "True", "Running", "the preview serves the current revision"
    )
    assert decide.activity_url(inp, step, preview) == "http://todo-preview.ws-team.svc/"


def test_traffic_the_preview_saw_is_activity_and_older_traffic_is_not() -> None:
    deployed = revision(1, deployedAt=stamp(NOW), validation="Passed")
    delivered = {"revision": 1, "sha256": SHA, "sandbox": SANDBOX}
    before = stamp(NOW - timedelta(minutes=10))
    status = {"revisions": [deployed], "lastActivity": before, "delivered": delivered}
    inp = app(["x"], status, pods=(POD,))
    later = stamp(NOW - timedelta(minutes=1))
    running = reconcile(inp, seen=later)[2]
    assert (running.fields["phase"], running.fields["lastActivity"]) == ("Running", later)
    earlier = stamp(NOW - timedelta(hours=2))
    assert reconcile(inp, seen=earlier)[2].fields["lastActivity"] == before


def test_a_sandbox_taking_its_revision_restarts_the_idle_time() -> None:
    """A woken preview's idle time counts from when it answers again, not from the wake: one
    that took longer to start than its idle timeout is not scaled to zero on arrival."""
    deployed = revision(1, deployedAt=stamp(NOW - timedelta(minutes=1)), validation="Passed")
    woke = stamp(NOW - timedelta(seconds=20))
    status = {"revisions": [deployed], "lastActivity": stamp(NOW - timedelta(hours=3))}
    spec = {"preview": {"enabled": True, "idleTimeout": "30s"}}
    inp = app(["x"], status, spec, annotations={ANNOTATION_WAKE: woke})
    taken = reconcile(inp, ready_deployment(1))[2]
    assert taken.fields["phase"] == "Running"
    assert taken.fields["lastActivity"] == stamp(NOW)
    # 20 s later: 40 s after the wake, 20 s after it answered: still running.
    later = app(["x"], taken.fields, spec, annotations={ANNOTATION_WAKE: woke}, pods=(POD,))
    later = replace(later, now=NOW + timedelta(seconds=20))
    assert decide.plan_preview(later, taken.fields["revisions"]).replicas == 1
    # Without the delivery's activity it would have been idle since the wake.
    assert decide.plan_preview(replace(later, status=status), [deployed]).replicas == 0


def test_the_local_node_port_is_the_url_once_its_pod_is_ready() -> None:
    pod = {
        "metadata": {"name": "p", "annotations": {"vibeplane.io/local-port": "31001"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    settings = OperatorSettings(preview_local_node=True)
    inp = app(["x"], {"revisions": [revision(1)]}, pods=(pod,), settings=settings)
    assert decide.preview_url(inp) == "http://127.0.0.1:31001/"
    assert decide.preview_url(app(["x"], settings=settings)) == "http://todo-preview.ws-team.svc/"


def test_a_ready_sandbox_gets_the_served_revision_once() -> None:
    inp = app(["x"], {"revisions": [revision(1)]}, pods=(POD,))
    plan = decide.plan_preview(inp, [revision(1)])
    assert decide.delivery_needed(inp, plan) == POD
    status = reconcile(inp, ready_deployment(1))[2]
    delivered = {"revision": 1, "sha256": SHA, "sandbox": SANDBOX}
    assert status.fields["delivered"] == delivered
    # Delivered: the next reconcile sends nothing and stays Running.
    again = app(["x"], status.fields, pods=(POD,))
    assert (
        decide.delivery_needed(again, decide.plan_preview(again, status.fields["revisions"]))
        is None
    )
    assert reconcile(again)[2].fields == status.fields
    # A restarted container (an empty runtime) or a new revision is delivered again.
    restarted = {**POD, "status": {**POD["status"], "containerStatuses": [{"restartCount": 1}]}}
    again = app(["x"], status.fields, pods=(restarted,))
    assert decide.delivery_needed(again, decide.plan_preview(again, status.fields["revisions"]))
    newer = [*status.fields["revisions"], revision(2, sha256="cd" * 32)]
    again = app(["x", "y"], {**status.fields, "revisions": newer}, pods=(POD,))
    assert decide.delivery_needed(again, decide.plan_preview(again, newer)) == POD


def test_a_refused_revision_fails_and_the_old_one_keeps_serving() -> None:
    delivered = {"revision": 1, "sha256": SHA, "sandbox": SANDBOX}
    revisions = [revision(1, validation="Passed"), revision(2, sha256="cd" * 32)]
    inp = app(["x", "y"], {"revisions": revisions, "delivered": delivered}, pods=(POD,))
    refused = decide.DeliveryResult(422, "checksum mismatch: expected sha256 cd.., got ab..")
    _, preview, status = reconcile(inp, refused)
    assert preview.condition.reason == "ValidationFailed"
    assert "checksum mismatch" in preview.condition.message
    assert "revision 1 keeps serving" in preview.condition.message
    assert status.fields["revision"] == 1
    assert status.fields["delivered"] == delivered
    assert [r.get("validation") for r in status.fields["revisions"]] == ["Passed", "Failed"]
    # Not sent again: a fix-up (a new bundle) or a new prompt is.
    again = app(["x", "y"], status.fields, pods=(POD,))
    assert (
        decide.delivery_needed(again, decide.plan_preview(again, status.fields["revisions"]))
        is None
    )


def test_an_unreachable_sandbox_is_tried_again_soon() -> None:
    inp = app(["x"], {"revisions": [revision(1)]}, pods=(POD,))
    _, preview, _ = reconcile(inp, decide.DeliveryResult(0, "unreachable: refused"))
    assert (preview.phase, preview.requeue_after) == ("Deploying", 0.5)
    assert "unreachable" in preview.condition.message


# ---- fix-up --------------------------------------------------------------------------------


def test_a_preview_that_never_answers_fails_validation_and_is_fixed_up() -> None:
    deployed = revision(1, deployedAt=stamp(NOW - timedelta(seconds=181)))
    spec = {"autoFix": {"attempts": 1}}
    inp = app(["a todo list"], {"revisions": [deployed], "lastActivity": stamp(NOW)}, spec)
    plan = decide.plan_preview(inp, [deployed])
    assert decide.needs_log_tail(inp, plan)
    _step, preview, status = reconcile(inp, None, log_tail="SyntaxError: line 3")
    assert preview.condition.reason == "ValidationFailed"
    assert preview.condition.message.endswith("log tail:\nSyntaxError: line 3")
    assert status.fixing_up
    fix = status.fields["generation"]
    assert (fix["revision"], fix["attempt"], fix["key"]) == (1, 1, f"{UID}:1:1")
    assert "SyntaxError: line 3" in fix["fixRequest"]
    assert status.fields["revisions"][0]["validation"] == "Failed"
    assert status.fields["phase"] == "Generating"
    assert condition(status, "Generated").reason == "FixingUp"

    # The next reconcile starts the fix-up: the failing revision's own bundle is edited.
    fixing = app(["a todo list"], status.fields, spec)
    plan_fix = decide.plan_attempt(fixing)
    assert plan_fix == decide.AttemptPlan(1, 1, f"{UID}:1:1", fix["fixRequest"], SHA)
    done = app(["a todo list"], status.fields, spec, attempt=AttemptState(succeeded(1)))
    absorbed = decide.generation_step(done)
    assert absorbed.revisions[0]["fixes"] == 1
    assert absorbed.in_flight is None


def test_fix_ups_stop_at_the_allowed_attempts_and_the_logs_are_read_once() -> None:
    failed = revision(1, deployedAt=stamp(NOW - timedelta(hours=1)), validation="Failed", fixes=1)
    said = "revision 1 did not become ready in 180s; log tail:\nboom"
    before = [
        {"type": "PreviewReady", "status": "False", "reason": "ValidationFailed", "message": said}
    ]
    inp = app(["x"], {"revisions": [failed], "conditions": before}, {"autoFix": {"attempts": 1}})
    plan = decide.plan_preview(inp, [failed])
    assert not decide.needs_log_tail(inp, plan)  # the message recorded before is kept
    _, preview, status = reconcile(inp)
    assert preview.condition.message == said
    assert not status.fixing_up
    assert status.fields["generation"] is None
    assert status.fields["phase"] == "Failed"


# ---- pin -----------------------------------------------------------------------------------


def test_a_pin_serves_that_revision_and_a_missing_one_says_which_exist() -> None:
    revisions = [revision(1), revision(2, sha256="cd" * 32)]
    pinned = app(["a", "b"], {"revisions": revisions}, {"pinnedRevision": 1})
    assert decide.plan_preview(pinned, revisions).serve["number"] == 1
    missing = app(["a", "b"], {"revisions": revisions}, {"pinnedRevision": 7})
    _, preview, status = reconcile(missing)
    assert preview.condition.reason == "PinnedRevisionNotFound"
    assert "(stored: 1, 2)" in preview.condition.message
    assert status.fields["phase"] == "Pending"
    assert condition(status, "Ready").message == preview.condition.message


def test_a_disabled_preview_is_running_without_objects() -> None:
    inp = app(["a"], {"revisions": [revision(1)]}, {"preview": {"enabled": False}})
    plan = decide.plan_preview(inp, [revision(1)])
    assert plan.state is not None
    assert plan.state.condition.reason == "Disabled"
    assert reconcile(inp)[2].fields["phase"] == "Running"


# ---- hibernate, wake -----------------------------------------------------------------------


def test_an_idle_preview_hibernates_and_the_wake_annotation_wakes_it() -> None:
    idle = {"revisions": [revision(1)], "lastActivity": stamp(NOW - timedelta(hours=3))}
    plan = decide.plan_preview(app(["a"], idle), [revision(1)])
    assert plan.replicas == 0
    _, preview, status = reconcile(app(["a"], idle))
    assert (preview.condition.reason, status.fields["phase"]) == ("Hibernated", "Hibernated")
    assert condition(status, "Ready").status == "True"  # hibernated by choice is ready
    woken = app(["a"], idle, annotations={ANNOTATION_WAKE: stamp(NOW - timedelta(minutes=1))})
    assert decide.plan_preview(woken, [revision(1)]).replicas == 1
    unreadable = app(["a"], idle, annotations={ANNOTATION_WAKE: "tomorrow 9am"})
    message = reconcile(unreadable)[1].condition.message
    assert "'tomorrow 9am' is not a time" in message
    assert "was ignored" in message


def test_a_suspended_workspace_generates_nothing_and_scales_the_preview_to_zero() -> None:
    suspended = WorkspaceView("team", "w-1", WorkspaceSpec.model_validate({"suspended": True}))
    inp = app(["a", "b"], {"revisions": [revision(1)]}, workspace=suspended)
    step, preview, status = reconcile(inp)
    assert step.submit is None
    assert step.in_flight is None
    assert condition(status, "Generated").reason == "WorkspaceSuspended"
    assert (preview.condition.reason, preview.phase) == ("WorkspaceSuspended", "Hibernated")


# ---- the budget refuses, the model fails ---------------------------------------------------


def test_a_refused_budget_waits_and_says_so() -> None:
    started = {"revision": 1, "attempt": 0, "key": f"{UID}:1:0", "started": stamp(NOW)}
    refused = Result("refused", "BudgetExceeded", "the money limit 1 is reached", retry_after=60)
    inp = app(["a"], {"generation": started}, attempt=AttemptState(refused))
    step, _, status = reconcile(inp)
    assert step.refused
    assert step.absorbed
    assert step.in_flight is not None
    assert step.in_flight["notBefore"] == stamp(NOW + timedelta(seconds=60))
    assert step.in_flight["attempt"] == 0  # the same attempt, later
    assert status.fields["phase"] == "BudgetExceeded"
    assert condition(status, "BudgetOK") == ConditionSpec(
        "BudgetOK", "False", "BudgetExceeded", "the money limit 1 is reached"
    )
    # Before notBefore nothing starts; the reconcile comes back when it is due.
    waiting = app(["a"], status.fields, now=NOW + timedelta(seconds=20))
    step = decide.generation_step(waiting)
    assert step.submit is None
    assert step.requeue_after == 40.0
    assert step.refused
    # Woken by the budget's waiting line (another app gave budget back): it starts now.
    woken = app(
        ["a"], status.fields, now=NOW + timedelta(seconds=20), attempt=AttemptState(woken=True)
    )
    assert decide.generation_step(woken).submit == decide.AttemptPlan(1, 0, f"{UID}:1:0")
    # After it, the attempt starts again.
    due = app(["a"], status.fields, now=NOW + timedelta(seconds=61))
    assert decide.generation_step(due).submit == decide.AttemptPlan(1, 0, f"{UID}:1:0")


def test_a_failed_model_leaves_a_failed_revision_and_the_app_failed() -> None:
    started = {"revision": 1, "attempt": 2, "key": f"{UID}:1:2", "started": stamp(NOW)}
    failed = Result("failed", "ModelFailed", "every model failed: timeout")
    inp = app(["a"], {"generation": started}, attempt=AttemptState(failed))
    step, preview, status = reconcile(inp)
    assert step.revisions == [
        {
            "number": 1,
            "time": stamp(NOW),
            "promptDigest": desired.prompt_digest("a"),
            "validation": "Failed",
        }
    ]
    assert preview.condition.message == "no revision has files to serve"
    assert status.fields["phase"] == "Failed"
    assert condition(status, "Generated") == ConditionSpec(
        "Generated", "False", "ModelFailed", "every model failed: timeout"
    )
    # Settled: the reason stays on the next reconcile, and nothing is generated again.
    again = app(["a"], status.fields | {"conditions": [vars(c) for c in status.conditions]})
    step = decide.generation_step(again)
    assert step.submit is None
    assert step.generated.reason == "ModelFailed"


def test_a_transient_failure_retries_as_a_new_attempt_when_told() -> None:
    started = {"revision": 1, "attempt": 0, "key": f"{UID}:1:0", "started": stamp(NOW)}
    result = Result("failed", "ModelUnavailable", "503", retry_after=30, next_attempt=True)
    step = decide.generation_step(app(["a"], {"generation": started}, attempt=AttemptState(result)))
    assert step.in_flight is not None
    assert (step.in_flight["attempt"], step.in_flight["key"]) == (1, f"{UID}:1:1")
    assert not step.refused
    assert step.budget_ok.status == "True"


# ---- the workspace, deletion ---------------------------------------------------------------


def test_no_workspace_or_an_invalid_one_blocks_the_app() -> None:
    none = decide.blocked(app(["a"], workspace=None))
    assert none is not None
    assert (none.conditions[0].reason, none.phase, none.requeue_after) == (
        "NoWorkspace",
        "Pending",
        10.0,
    )
    invalid = decide.blocked(app(["a"], workspace=WorkspaceView("team", "w-1", None)))
    assert invalid is not None
    assert invalid.conditions[0].reason == "WorkspaceInvalid"


def test_a_deleted_app_waits_for_its_attempt_then_cleans_up() -> None:
    assert decide.deletion(app(["a"], deleting=True, busy=True)) == decide.Deletion(wait=True)
    labels = {LABEL_WORKSPACE: "team"}
    cleanup = decide.deletion(app(["a"], deleting=True, namespace_labels=labels))
    assert cleanup == decide.Deletion(
        delete_prefix_of="team", release_budget=True, remove_finalizer=True
    )
    retained = {**labels, LABEL_RETAIN: "true"}
    kept = decide.deletion(app(["a"], deleting=True, namespace_labels=retained, workspace=None))
    assert kept == decide.Deletion(remove_finalizer=True)
    assert decide.deletion(app(["a"], deleting=True, finalizers=())) == decide.Deletion()


def test_the_real_node_serves_the_preview_on_its_node_port() -> None:
    service = {"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}
    settings = OperatorSettings(preview_node_address="10.0.0.7")
    inp = app(["x"], service=service, settings=settings)
    assert decide.preview_url(inp) == "http://10.0.0.7:30080/"
    assert decide.preview_url(app(["x"], settings=settings)) == "http://todo-preview.ws-team.svc/"


def test_the_serving_sandbox_is_not_one_its_deployment_is_taking_down() -> None:
    """Hibernated a moment ago, woken now: the pod of the Deployment at 0 is still Ready in the
    cache but going; it must not count as serving (its URL would be dead at once)."""
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    going = {
        "metadata": {
            "name": "todo-preview-1",
            "uid": "p1",
            "creationTimestamp": "2026-11-24T09:00:00Z",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": True}],
        },
        "status": ready,
    }
    adopted = {
        "metadata": {
            "name": "preview-warm-1",
            "uid": "p2",
            "creationTimestamp": "2026-11-24T08:00:00Z",
            "ownerReferences": [{"kind": "VibeApp", "name": "todo", "controller": True}],
        },
        "status": ready,
    }
    at_zero = {"spec": {"replicas": 0}}
    assert decide.ready_sandbox(app(["x"], pods=(going,), deployment=at_zero)) is None
    assert decide.ready_sandbox(app(["x"], pods=(going,), deployment={"spec": {"replicas": 1}}))
    # An adopted sandbox serves with its Deployment at 0.
    found = decide.ready_sandbox(app(["x"], pods=(going, adopted), deployment=at_zero))
    assert found is not None
    assert found["metadata"]["name"] == "preview-warm-1"
