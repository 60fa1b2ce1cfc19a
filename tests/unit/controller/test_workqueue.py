"""The work queue on a fake clock: gathering windows, delays, backoff, no thread per key.

Time moves only when a test advances the clock; `until` bounds how long a test waits for the
worker threads to act on what the clock now allows, it never waits for time to pass. Times are
binary fractions, so sums of them are exact.
"""

from __future__ import annotations

import threading

from tests.fakes.clock import FakeClock, until
from vibeplane.controller.workqueue import WorkQueue


def test_requests_within_a_window_are_one_pass() -> None:
    clock = FakeClock()
    passes: list[str] = []
    queue: WorkQueue[str] = WorkQueue("test", passes.append, workers=1, clock=clock)
    try:
        for _ in range(10):
            queue.add_within("workspace-a", 0.5)
            clock.advance(0.03125)
        assert queue.delayed() == 1  # ten requests, one pass planned
        assert passes == []  # nothing before the window closes
        clock.advance(0.1875)
        assert until(lambda: passes == ["workspace-a"])
        assert until(queue.idle)
        assert queue.delayed() == 0
        queue.add_within("workspace-a", 0.05)  # a later burst is its own pass
        clock.advance(0.05)
        assert until(lambda: len(passes) == 2)
        assert passes == ["workspace-a", "workspace-a"]
    finally:
        queue.shutdown()


def test_a_key_already_queued_is_not_gathered_again() -> None:
    clock = FakeClock()
    started, release = threading.Event(), threading.Event()
    passes: list[str] = []

    def process(key: str) -> None:
        passes.append(key)
        if key == "blocker":
            started.set()
            release.wait(5)

    queue: WorkQueue[str] = WorkQueue("test", process, workers=1, clock=clock)
    try:
        queue.add("blocker")
        assert started.wait(5)
        queue.add("a")  # waiting behind the blocker
        queue.add_within("a", 0.01)
        assert queue.delayed() == 0  # the queued pass takes the request
        release.set()
        assert until(lambda: passes == ["blocker", "a"] and queue.idle())
        clock.advance(1)
        assert until(queue.idle)
        assert passes == ["blocker", "a"]
    finally:
        queue.shutdown()


def test_delayed_keys_share_one_thread_and_a_later_delay_replaces_an_earlier() -> None:
    clock = FakeClock()
    passes: list[tuple[str, float]] = []
    queue: WorkQueue[str] = WorkQueue(
        "test", lambda key: passes.append((key, clock.monotonic())), workers=2, clock=clock
    )
    started = clock.monotonic()
    try:
        threads_before = threading.active_count()
        for index in range(200):
            queue.add_after(f"app-{index}", 0.25)
        assert threading.active_count() == threads_before  # no thread per delayed key
        queue.add_after("moved", 5.0)
        queue.add_after("moved", 0.125)  # replaces the 5 s delay
        clock.advance(0.125)
        assert until(lambda: [key for key, _ in passes] == ["moved"])
        assert queue.delayed() == 200
        clock.advance(0.125)
        assert until(lambda: len(passes) == 201)
        keys = [key for key, _ in passes]
        assert sorted(keys) == sorted([f"app-{i}" for i in range(200)] + ["moved"])
        assert min(at for key, at in passes if key != "moved") >= started + 0.25
        clock.advance(5)  # the replaced 5 s delay is not a second pass
        assert until(queue.idle)
        assert len(passes) == 201
    finally:
        queue.shutdown()


def test_a_failed_key_comes_back_after_a_growing_backoff() -> None:
    clock = FakeClock()
    attempts: list[float] = []

    def process(key: str) -> None:
        attempts.append(clock.monotonic())
        raise RuntimeError("transient")

    queue: WorkQueue[str] = WorkQueue(
        "test", process, workers=1, base_delay=0.5, max_delay=60, clock=clock
    )
    try:
        queue.add("a")
        assert until(lambda: len(attempts) == 1 and queue.delayed() == 1)
        clock.advance(0.4375)
        assert until(queue.idle)
        assert len(attempts) == 1  # not before its backoff
        clock.advance(0.0625)
        assert until(lambda: len(attempts) == 2 and queue.delayed() == 1)
        clock.advance(0.9375)
        assert until(queue.idle)
        assert len(attempts) == 2  # the second backoff is twice as long
        clock.advance(0.0625)
        assert until(lambda: len(attempts) == 3)
    finally:
        queue.shutdown()
