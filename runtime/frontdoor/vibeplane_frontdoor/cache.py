"""A small bounded cache of access decisions with a time to live.

TokenReviews and SubjectAccessReviews cost a round trip to the API server each; a burst of
requests (a page and its assets) asks the same question many times. Answers are kept for
seconds, never longer than their TTL, and the oldest are dropped beyond `max_entries` so a
flood of distinct tokens cannot grow memory without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class DecisionCache(Generic[V]):
    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float]) -> None:
        if max_entries < 1 or ttl_seconds <= 0:
            raise ValueError("a decision cache needs max_entries >= 1 and ttl_seconds > 0")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = (self._clock() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
