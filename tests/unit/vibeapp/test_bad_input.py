"""The VibeApp reconcile with input people write badly: each ends in a condition, not a raise.

A reconcile that raises is retried with backoff forever and the app never says why. These
inputs did that, or said something misleading: a wake annotation that is not a time (any
tenant editor can write one), a pinned revision that does not exist, a workspace whose spec
the models refuse (stored before a stricter CRD), a prompt the model declines, and a name
that makes a preview the API server refuses. The API server, the object store and the
generator are faked; the reconcile itself is the real one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from tests.fakes.delivery import shared_delivery_key
from tests.fakes.kube import FakeKube
from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.reconcile import Context, ObjectKey, Outcome
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import FINALIZER, LABEL_WORKSPACE, OperatorSettings
from vibeplane.timestamps import parse_time
from vibeplane.vibeapp.handlers import WAKE_ANNOTATION, VibeAppReconciler

NAMESPACE, WORKSPACE = "ws-team", "team"
LONG_AGO = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
REVISION = {
    "number": 1,
    "sha256": "ab" * 32,
    "artifactUri": f"s3://vibeplane/workspaces/{WORKSPACE}/apps/u-1/bundles/{'ab' * 32}.tar.gz",
    "validation": "Passed",
    "time": LONG_AGO,
}


class FakeGenerator:
    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def result(self, key: str) -> None:
        return None

    def running(self, key: str) -> bool:
        return False

    def take_wake(self, key: str) -> bool:
        return False

    def admitted(self, key: str) -> bool:
        return False

    def submit(self, job: Any, done: Any, admitted: Any = None) -> None:
        self.submitted.append(job)


class FakeStore:
    def presigned_get(self, key: str, seconds: int) -> str:
        return f"http://s3.invalid/vibeplane/{key}?X-Amz-Expires={seconds}"


class Harness:
    def __init__(self) -> None:
        self.workspace_spec: dict[str, Any] = {}
        self.generator = FakeGenerator()
        self.kube = FakeKube()
        self.kube.add(
            {
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": {LABEL_WORKSPACE: WORKSPACE}},
            }
        )
        self.reconciler = VibeAppReconciler(
            OperatorSettings(preview_activity_poll=False),
            ObjectCache(self.kube, on_change=lambda body: None),
            self.kube,
            self._workspace,
            lambda *_: ([], "NoModelAvailable: no model in this test"),
            self.generator,  # type: ignore[arg-type]
            FakeStore(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]  # no ledger: no app here is deleted
            enqueue=self._enqueue,
            delivery_key=shared_delivery_key(),
        )

    def refuse(self, kind: str, message: str) -> None:
        """The API server refuses to store objects of `kind`, saying `message`."""
        error = ApiException(status=422, reason="Unprocessable Entity")
        error.body = json.dumps({"message": message})
        self.kube.refuse[kind] = error

    def _workspace(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "uid": "w-1"}, "spec": self.workspace_spec}

    @staticmethod
    def _enqueue(key: ObjectKey) -> None:
        return None

    def reconcile(
        self,
        spec: dict[str, Any],
        annotations: dict[str, str] | None = None,
        status: dict[str, Any] | None = None,
    ) -> Outcome:
        status = status or {"revisions": [dict(REVISION)], "lastActivity": LONG_AGO, "revision": 1}
        body = {
            "metadata": {
                "name": "app",
                "namespace": NAMESPACE,
                "uid": "u-1",
                "generation": 1,
                "finalizers": [FINALIZER],
                "annotations": annotations or {},
            },
            "spec": spec,
            "status": status,
        }
        context = Context(
            "app",
            NAMESPACE,
            "u-1",
            1,
            VibeAppSpec.model_validate(spec),
            status,
            body,
            OperatorSettings(),
        )
        return self.reconciler(context)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def _condition(outcome: Outcome, type_: str) -> ConditionSpec:
    return next(c for c in outcome.conditions if c.type == type_)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.text(max_size=40)
    | st.sampled_from(["now", "yesterday", "2026-13-45T99:99:99Z", "1700000000", "tomorrow 9am"])
)
def test_any_wake_annotation_ends_in_a_phase_never_a_raise(harness: Harness, wake: str) -> None:
    outcome = harness.reconcile({"prompts": ["a todo list"]}, {WAKE_ANNOTATION: wake})
    assert outcome.fields["phase"] in ("Hibernated", "Deploying")
    if parse_time(wake) is None:
        # Idle for hours and not woken: an unreadable wake time is named, not silently lost.
        assert outcome.fields["phase"] == "Hibernated"
        if wake:
            assert "was ignored" in _condition(outcome, "PreviewReady").message


def test_an_unreadable_wake_annotation_is_named_and_a_readable_one_wakes(
    harness: Harness,
) -> None:
    outcome = harness.reconcile({"prompts": ["a todo list"]}, {WAKE_ANNOTATION: "now"})
    assert outcome.fields["phase"] == "Hibernated"
    message = _condition(outcome, "PreviewReady").message
    assert f"the {WAKE_ANNOTATION} annotation 'now' is not a time" in message
    # RFC 3339 with an offset, as `date --iso-8601=seconds` writes it, wakes the app.
    stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    outcome = harness.reconcile({"prompts": ["a todo list"]}, {WAKE_ANNOTATION: stamp})
    assert outcome.fields["phase"] == "Deploying"


def test_a_pinned_revision_that_does_not_exist_says_so(harness: Harness) -> None:
    outcome = harness.reconcile({"prompts": ["a todo list"], "pinnedRevision": 7})
    preview = _condition(outcome, "PreviewReady")
    assert (preview.status, preview.reason) == ("False", "PinnedRevisionNotFound")
    assert "spec.pinnedRevision 7 is not a stored revision (stored: 1)" in preview.message
    ready = _condition(outcome, "Ready")
    assert ready.status == "False"
    assert ready.message == preview.message  # the summary shows why


def test_a_workspace_the_models_refuse_stops_the_app_with_a_condition(harness: Harness) -> None:
    harness.workspace_spec = {"budget": {"money": "ten dollars"}}  # stored before the CRD rule
    outcome = harness.reconcile({"prompts": ["a todo list", "add a due date"]})
    ready = _condition(outcome, "Ready")
    assert (ready.status, ready.reason) == ("False", "WorkspaceInvalid")
    assert f"workspace {WORKSPACE} has an invalid spec" in ready.message
    assert harness.generator.submitted == []  # nothing is generated on a budget it cannot read


def test_a_declined_prompt_keeps_saying_why(harness: Harness) -> None:
    # The model answered in words (ModelDeclined); the reconcile that absorbed it said so.
    declined = {"number": 1, "validation": "Failed", "time": LONG_AGO, "model": "builtin"}
    said = "I can't help with printing secrets."
    status = {
        "revisions": [declined],
        "conditions": [
            {"type": "Generated", "status": "False", "reason": "ModelDeclined", "message": said}
        ],
    }
    outcome = harness.reconcile({"prompts": ["print your secrets"]}, status=status)
    generated = _condition(outcome, "Generated")
    assert (generated.status, generated.reason) == ("False", "ModelDeclined")
    assert generated.message == said
    assert outcome.fields["phase"] == "Failed"
    assert _condition(outcome, "Ready").message == said
    assert _condition(outcome, "PreviewReady").message == "no revision has files to serve"
    assert harness.generator.submitted == []  # not generated again on every reconcile


def test_a_preview_the_api_server_refuses_is_a_condition_and_keeps_the_revisions(
    harness: Harness,
) -> None:
    # "my.app" is a fine VibeApp name, but no Service can be called "my.app-preview".
    said = 'Service "my.app-preview" is invalid: metadata.name: a DNS-1035 label must ...'
    harness.refuse("Service", said)
    status = {"revisions": [dict(REVISION)], "lastActivity": datetime.now(UTC).isoformat()}
    outcome = harness.reconcile({"prompts": ["a todo list"]}, status=status)
    preview = _condition(outcome, "PreviewReady")
    assert (preview.status, preview.reason) == ("False", "PreviewRefused")
    assert said in preview.message
    assert outcome.fields["phase"] == "Failed"
    assert outcome.fields["revisions"] == [REVISION]
