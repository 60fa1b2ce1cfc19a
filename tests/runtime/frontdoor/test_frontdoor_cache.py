from __future__ import annotations

import pytest

from vibeplane_frontdoor.cache import DecisionCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_answers_live_for_their_ttl_only() -> None:
    clock = Clock()
    cache: DecisionCache[bool] = DecisionCache(10, 5.0, clock)
    cache.put("a", True)
    clock.now = 4.9
    assert cache.get("a") is True
    clock.now = 5.0
    assert cache.get("a") is None
    assert len(cache) == 0


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache: DecisionCache[int] = DecisionCache(3, 60.0, Clock())
    for key in "abc":
        cache.put(key, ord(key))
    assert cache.get("a") == ord("a")  # a is now the most recent
    for number in range(1000):
        cache.put(number, number)
        assert len(cache) <= 3
    assert cache.get("a") is None
    assert [cache.get(n) for n in (997, 998, 999)] == [997, 998, 999]


def test_a_cache_without_room_or_time_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        DecisionCache(0, 1.0, Clock())
