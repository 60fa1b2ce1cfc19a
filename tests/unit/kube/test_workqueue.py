"""The work queue: a burst of requests for one key within a window is one pass."""

from __future__ import annotations

import threading
import time

from vibeplane.kube.workqueue import WorkQueue


def test_requests_within_a_window_are_one_pass() -> None:
    passes: list[str] = []
    done = threading.Event()

    def process(key: str) -> None:
        passes.append(key)
        done.set()

    queue: WorkQueue[str] = WorkQueue("test", process, workers=1)
    try:
        for _ in range(10):
            queue.add_within("workspace-a", 0.3)
            time.sleep(0.01)
        assert passes == []  # nothing before the window closes
        assert done.wait(5)
        time.sleep(0.4)
        assert passes == ["workspace-a"]
        queue.add_within("workspace-a", 0.05)  # a later burst is its own pass
        deadline = time.monotonic() + 5
        while len(passes) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert passes == ["workspace-a", "workspace-a"]
    finally:
        queue.shutdown()


def test_a_key_already_queued_is_not_gathered_again() -> None:
    started, release = threading.Event(), threading.Event()
    passes: list[str] = []

    def process(key: str) -> None:
        passes.append(key)
        if key == "blocker":
            started.set()
            release.wait(5)

    queue: WorkQueue[str] = WorkQueue("test", process, workers=1)
    try:
        queue.add("blocker")
        assert started.wait(5)
        queue.add("a")  # waiting behind the blocker
        queue.add_within("a", 0.01)
        time.sleep(0.1)
        release.set()
        time.sleep(0.3)
        assert passes == ["blocker", "a"]
    finally:
        queue.shutdown()


def test_delayed_keys_share_one_thread_and_a_later_delay_replaces_an_earlier() -> None:
    passes: list[tuple[str, float]] = []
    started = time.monotonic()
    queue: WorkQueue[str] = WorkQueue(
        "test", lambda key: passes.append((key, time.monotonic() - started)), workers=2
    )
    try:
        threads_before = threading.active_count()
        for index in range(200):
            queue.add_after(f"app-{index}", 0.2)
        assert threading.active_count() == threads_before  # no thread per delayed key
        queue.add_after("moved", 5.0)
        queue.add_after("moved", 0.05)  # replaces the 5 s delay
        deadline = time.monotonic() + 5
        while len(passes) < 201 and time.monotonic() < deadline:
            time.sleep(0.01)
        keys = [key for key, _ in passes]
        assert sorted(keys) == sorted([f"app-{i}" for i in range(200)] + ["moved"])
        assert keys[0] == "moved"
        assert min(at for key, at in passes if key != "moved") >= 0.2
    finally:
        queue.shutdown()
