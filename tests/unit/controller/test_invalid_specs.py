"""A bad spec ends in a condition, never in a reconcile that fails forever.

The API server validates our objects against the CRD schema, and the schema is generated from
the same pydantic models the operator validates with (tests/security/test_bad_input.py shows,
on the real API server, that the two agree). Objects can still reach the operator that its
models refuse: stored before a stricter CRD was installed (the API server does not re-validate
stored objects), or written while the CRD was missing. And a spec the models accept can still
make the API server refuse a child (a name too long for a namespace). Either way the object
gets Ready=False with a reason and a message that says what to change, and the reconcile
loop moves on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from tests.fakes.kube import FakeKube
from tests.unit.api.schema_strategies import specs
from tests.unit.api.test_model_properties import JSON
from vibeplane.api import ALL_KINDS
from vibeplane.api.meta import KindInfo
from vibeplane.api.workspace import INFO as WORKSPACE
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome
from vibeplane.kube.conditions import ConditionSpec, find
from vibeplane.settings import OperatorSettings


class Harness:
    """One Controller whose status writes are recorded, not sent."""

    def __init__(self, info: KindInfo) -> None:
        self.info = info
        self.kube = FakeKube()
        self.reconciled: list[Context] = []
        self.outcome: Outcome | Exception = Outcome([ConditionSpec("Ready", "True", "Fine")])
        cache = ObjectCache(self.kube, on_change=lambda body: None)
        self.controller = Controller(
            info, self._reconcile, OperatorSettings(), cache, self.kube, workers=1
        )

    @property
    def patches(self) -> list[dict[str, Any]]:
        return [patch for _, _, patch in self.kube.status_patches]

    def _reconcile(self, context: Context) -> Outcome:
        self.reconciled.append(context)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def run(self, spec: Any) -> dict[str, Any] | None:
        """Reconcile one object with this spec; the status written, if any."""
        self.kube.status_patches.clear()
        namespace = None if self.info.scope == "Cluster" else "ws-a"
        body = {
            "apiVersion": "vibeplane.io/v1alpha1",
            "kind": self.info.kind,
            "metadata": {"name": "x", "namespace": namespace, "uid": "u-1", "generation": 3},
            "spec": spec,
        }
        self.controller._reconcile_body(ObjectKey(namespace, "x"), body)
        assert len(self.patches) <= 1
        return self.patches[0] if self.patches else None


@pytest.fixture(params=ALL_KINDS, ids=lambda info: info.kind)
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = Harness(request.param)
    yield harness
    harness.controller.queue.shutdown()


def _refused(info: KindInfo, spec: Any) -> bool:
    try:
        info.spec.model_validate(spec)
    except ValidationError:
        return True
    return False


def _assert_invalid_spec_condition(harness: Harness, status: dict[str, Any] | None) -> None:
    assert status is not None, "an invalid spec must be reported in status"
    ready = find(status["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec")
    assert ready["observedGeneration"] == 3
    assert status["observedGeneration"] == 3
    # The API server would take the write: the status schema holds it (condition lengths).
    harness.info.status.model_validate(status)
    assert harness.reconciled == [], "an invalid spec is never handed to the reconcile"


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(data=st.data())
def test_any_refused_spec_becomes_an_invalid_spec_condition(
    harness: Harness, data: st.DataObject
) -> None:
    spec = data.draw(JSON | specs(harness.info))
    if not _refused(harness.info, spec or {}):  # as the Controller reads a missing spec
        return
    _assert_invalid_spec_condition(harness, harness.run(spec))


def test_a_spec_with_hundreds_of_problems_still_fits_in_a_condition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness(WORKSPACE)
    try:
        # 256 members, each with three bad fields: 768 problems.
        spec = {"members": [{"kind": 1, "name": 2, "role": 3}] * 256}
        status = harness.run(spec)
        _assert_invalid_spec_condition(harness, status)
        assert status is not None
        message = find(status["conditions"], "Ready")["message"]  # type: ignore[index]
        assert "spec.members.0.kind" in message
        assert "more" in message  # the rest is counted, not listed
    finally:
        harness.controller.queue.shutdown()


def _refusal(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Unprocessable Entity")
    error.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return error


@pytest.mark.parametrize("code", [400, 422])
def test_a_child_the_api_server_refuses_becomes_a_condition(harness: Harness, code: int) -> None:
    # E.g. the Workspace "team.alpha": its namespace ws-team.alpha is no DNS label.
    message = 'Namespace "ws-team.alpha" is invalid: metadata.name: Invalid value: "ws-team.alpha"'
    harness.outcome = _refusal(code, message)
    valid = {
        "Workspace": {},
        "ModelDeployment": {"model": {"name": "m"}, "serving": {"builtin": {}}},
        "VibeApp": {"prompts": ["a todo list"]},
        "ModelTraining": {
            "baseModel": {"name": "b", "uri": "s3://m/b"},
            "output": {"adapterName": "a"},
        },
    }[harness.info.kind]
    status = harness.run(valid)
    assert status is not None
    ready = find(status["conditions"], "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "Refused")
    assert message in ready["message"]
    harness.info.status.model_validate(status)


def test_other_api_errors_are_retried_and_a_vanished_object_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness(WORKSPACE)
    try:
        harness.outcome = _refusal(500, "etcdserver: request timed out")
        with pytest.raises(ApiException):  # the work queue retries it with backoff
            harness.run({})
        harness.outcome = _refusal(404, "not found")
        assert harness.run({}) is None
    finally:
        harness.controller.queue.shutdown()
