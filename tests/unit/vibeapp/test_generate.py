"""The Generator's scheduling: the pool bound, the per-workspace bound, and no thread held by
a workspace that is at its limit."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from vibeplane.budget.ledger import Limits
from vibeplane.generation.checks import FileLimits
from vibeplane.generation.client import ChatResult
from vibeplane.vibeapp.generate import Generator, Job, ModelTarget, Result, truncated_message


def job(workspace: str, app: str) -> Job:
    return Job(
        namespace=f"ws-{workspace}",
        app=app,
        app_uid=f"uid-{workspace}-{app}",
        workspace=workspace,
        workspace_uid=f"uid-{workspace}",
        period="Monthly",
        limits=Limits(),
        revision=1,
        attempt=0,
        prompts=("p",),
        previous_sha256=None,
        stack="static",
        models=(),
        allow_training=False,
    )


class Gate:
    """Attempts that run until released, recording which started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def run(self, job: Job) -> Result:
        with self.changed:
            self.started.append(job.app)
            event = self.release.setdefault(job.app, threading.Event())
            self.changed.notify_all()
        assert event.wait(10), f"{job.app} never released"
        if job.app == "boom":
            raise RuntimeError("the attempt failed")
        return Result("succeeded", "Generated", job.app)

    def wait_started(self, count: int) -> list[str]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.started) >= count, timeout=10)
            return list(self.started)

    def finish(self, app: str) -> None:
        with self.lock:
            self.release.setdefault(app, threading.Event()).set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr(Generator, "run", lambda self, job: gate.run(job))
    return gate


def generator(workers: int, per_workspace: int) -> Generator:
    return Generator(
        ledgers=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        file_limits=FileLimits(),
        workers=workers,
        per_workspace=per_workspace,
    )


def test_a_busy_workspace_does_not_hold_the_pool(gate: Gate) -> None:
    pool = generator(workers=2, per_workspace=1)
    done: list[str] = []
    for workspace, app in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]:
        pool.submit(job(workspace, app), lambda j: done.append(j.app))
    # a1 runs; a2 and a3 wait for a's slot without a thread; b1 takes the second thread.
    assert sorted(gate.wait_started(2)) == ["a1", "b1"]
    gate.finish("a1")
    assert gate.wait_started(3)[-1] == "a2"  # a's line, in order
    for app in ("b1", "a2", "a3"):
        gate.finish(app)
    gate.wait_started(4)
    pool._pool.shutdown(wait=True)
    assert sorted(done) == ["a1", "a2", "a3", "b1"]


def test_the_same_attempt_runs_once_and_results_are_taken_once(gate: Gate) -> None:
    pool = generator(workers=2, per_workspace=2)
    same = job("a", "a1")
    calls: list[Any] = []
    pool.submit(same, calls.append)
    pool.submit(same, calls.append)  # already running: ignored
    gate.wait_started(1)
    assert pool.running(same.key)
    assert pool.result(same.key) is None
    gate.finish("a1")
    pool._pool.shutdown(wait=True)
    result = pool.result(same.key)
    assert result is not None
    assert result.message == "a1"
    assert pool.result(same.key) is None  # taken
    assert len(calls) == 1
    assert gate.started == ["a1"]


def test_a_crashed_attempt_frees_its_slot_and_reports(gate: Gate) -> None:
    pool = generator(workers=1, per_workspace=1)
    pool.submit(job("a", "boom"), lambda _: None)
    pool.submit(job("a", "after"), lambda _: None)
    gate.wait_started(1)
    gate.finish("boom")
    gate.finish("after")
    assert gate.wait_started(2) == ["boom", "after"]
    pool._pool.shutdown(wait=True)
    crashed = pool.result(job("a", "boom").key)
    assert crashed is not None
    assert crashed.reason == "InternalError"
    assert "the attempt failed" in crashed.message
    assert not crashed.next_attempt  # retried as the same attempt: it may have stored already


def test_a_cut_off_answer_says_why_and_what_it_cost() -> None:
    target = ModelTarget("builtin", "http://127.0.0.1:9/v1", "builtin", None, {}, 8192, "")
    answer = ChatResult("...", 805, 2100, "builtin", 0.1, "length")
    bounded = truncated_message(answer, target, 2100, True, {"cost": "0.000858"})
    assert bounded == (
        "the answer of builtin was cut off at 2,100 output tokens (max_tokens 2,100: all the "
        "workspace budget could hold of the model's 8,192); no revision was made, and 0.00086 "
        "was charged for the tokens used"
    )
    whole = truncated_message(answer, target, 8192, False, {"cost": "0.0033"})
    assert "(max_tokens 8,192: the model's output limit)" in whole


def test_a_wake_is_answered_once() -> None:
    waiting = generator(1, 1)
    assert not waiting.take_wake("uid:1:0")
    waiting.wake("uid:1:0")
    assert waiting.take_wake("uid:1:0")
    assert not waiting.take_wake("uid:1:0")
