"""A work queue with client-go's semantics, for reconciles that run off the event loop.

- A key is queued at most once: events that arrive while it waits coalesce into one run.
- A key is never processed by two workers at once; one added while it is being processed
  runs again right after, so no event is lost.
- Failed keys come back after an exponential, per-key backoff.
- Delayed keys (requeue after N seconds, backoff, gathering a burst) wait in one heap served
  by one thread, not a timer thread each: a thousand apps waiting on their readiness or idle
  checks would otherwise be a thousand threads.

Kopf's watch handlers only add keys, so the event loop never waits on a reconcile, and any
number of watches (the kind itself, its children, the budget ledger) can ask for the same
object to be reconciled without piling up work.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from vibeplane.controller.clock import SYSTEM_CLOCK, Clock

Key = TypeVar("Key", bound=Hashable)

log = logging.getLogger(__name__)


class WorkQueue(Generic[Key]):
    """Deduplicating, rate-limited queue processed by a fixed pool of threads."""

    def __init__(
        self,
        name: str,
        process: Callable[[Key], None],
        workers: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = name
        self._clock = clock
        self._process = process
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._queue: deque[Key] = deque()
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._failures: dict[Key, int] = {}
        # Delayed keys: when each is due (one entry per key and purpose; a heap entry whose
        # time is no longer the key's is stale and skipped).
        self._after: dict[Key, float] = {}
        self._gathering: dict[Key, float] = {}
        self._heap: list[tuple[float, int, bool, Key]] = []
        self._sequence = itertools.count()
        self._delays = threading.Condition()
        self._delayer = threading.Thread(
            target=self._delay_loop, name=f"{name}-delays", daemon=True
        )
        self._condition = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()
        self._delayer.start()

    def add(self, key: Key) -> None:
        """Queue `key` unless it is already waiting."""
        with self._condition:
            if self._stopping or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._condition.notify()

    def add_after(self, key: Key, delay: float) -> None:
        """Queue `key` after `delay` seconds (a later call replaces an earlier one)."""
        self._schedule(key, delay, gather=False)

    def add_within(self, key: Key, window: float) -> None:
        """Queue `key` at most `window` seconds from now; calls meanwhile join that one pass, so
        a burst of events (ten apps appearing in a workspace) costs one reconcile, not ten."""
        with self._condition:
            if key in self._dirty:
                return
        self._schedule(key, window, gather=True)

    def _schedule(self, key: Key, delay: float, gather: bool) -> None:
        due = self._clock.monotonic() + delay
        with self._delays:
            if self._stopping:
                return
            pending = self._gathering if gather else self._after
            if gather and key in pending:
                return  # the pass already planned takes this request too
            pending[key] = due
            heapq.heappush(self._heap, (due, next(self._sequence), gather, key))
            self._delays.notify()

    def _delay_loop(self) -> None:
        while True:
            with self._delays:
                while not self._stopping:
                    wait = self._heap[0][0] - self._clock.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._clock.wait(self._delays, wait)
                if self._stopping:
                    return
                due, _, gather, key = heapq.heappop(self._heap)
                pending = self._gathering if gather else self._after
                if pending.get(key) != due:
                    continue  # replaced by a later add_after
                del pending[key]
            self.add(key)

    def __len__(self) -> int:
        with self._condition:
            return len(self._queue)

    def delayed(self) -> int:
        """How many keys wait for their time (requeue after, backoff, a gathering window)."""
        with self._delays:
            return len(self._after) + len(self._gathering)

    def idle(self) -> bool:
        """Nothing waiting and nothing being processed (timers aside)."""
        with self._condition:
            return not self._queue and not self._processing

    def shutdown(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        with self._delays:
            self._delays.notify_all()

    def join(self, timeout: float) -> bool:
        """After `shutdown`: wait for the workers to finish what they are processing; whether
        they all did within `timeout` seconds (keys still queued are not processed)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                key = self._queue.popleft()
                self._dirty.discard(key)
                self._processing.add(key)
            failed = False
            try:
                self._process(key)
            except Exception:
                failed = True
                log.exception("%s: processing %r failed", self.name, key)
            with self._condition:
                self._processing.discard(key)
                if key in self._dirty:
                    self._queue.append(key)
                    self._condition.notify()
                if failed:
                    attempts = self._failures.get(key, 0) + 1
                    self._failures[key] = attempts
                else:
                    self._failures.pop(key, None)
            if failed:
                delay = min(self._max_delay, self._base_delay * 2 ** (attempts - 1))
                self.add_after(key, delay)
