"""A clock that moves only when a test says so, for the controller runtime's waits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from vibeplane.controller.clock import Waitable

POLL = 0.002
"""How often (real seconds) a waiter looks at the fake time: a wait ends within this of the
test's `advance`, never because real time passed."""


class FakeClock:
    """Implements `vibeplane.controller.clock.Clock`; `advance` moves both of its clocks."""

    def __init__(
        self, start: float = 1000.0, wall: datetime = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    ) -> None:
        self._start = start
        self._now = start
        self._wall = wall
        self._lock = threading.Lock()
        self.waits = 0
        """Waits with a timeout begun so far: a thread that looped back to its wait has one more."""
        self.sleeping = 0
        """Threads waiting with a timeout now."""

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> datetime:
        with self._lock:
            return self._wall + timedelta(seconds=self._now - self._start)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        if timeout is None:
            return waitable.wait(None)
        with self._lock:
            deadline = self._now + timeout
            self.waits += 1
            self.sleeping += 1
        try:
            while self.monotonic() < deadline:
                if waitable.wait(POLL):
                    return True
            return False
        finally:
            with self._lock:
                self.sleeping -= 1


def until(predicate: object, timeout: float = 5.0) -> bool:
    """Whether `predicate()` turns true within `timeout` real seconds: for what another
    thread does once the fake clock moved (a bound, not a wait for time to pass)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(POLL)
    return bool(callable(predicate) and predicate())
