"""The clock the controller runtime reads and waits on, injected so tests drive time.

The work queue's delays and the leader's lease are decided on a monotonic clock and waited out
on a `threading.Event` or `Condition`; both go through a `Clock`, so a unit test that moves a
fake clock forward sees the same decisions without waiting for them on the wall clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Waitable(Protocol):
    """A threading.Event or a threading.Condition (held by the caller)."""

    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations, deadlines)."""
        ...

    def now(self) -> datetime:
        """The wall time, UTC (what is written to objects)."""
        ...

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        """Wait on `waitable` until it is set or notified (True) or `timeout` seconds of this
        clock have passed (False); None waits for the waitable alone."""
        ...


class SystemClock:
    """The process's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, waitable: Waitable, timeout: float | None) -> bool:
        return waitable.wait(timeout)


SYSTEM_CLOCK = SystemClock()
