from __future__ import annotations

from vibeplane_frontdoor.wake import WakeGate, format_time, parse_time


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_visits_to_a_hibernated_app_writes_once() -> None:
    clock = Clock(1_000_000.0)
    gate = WakeGate(clock, activity_interval=60, wake_interval=5)
    old = format_time(clock.now - 3600)
    claims = [gate.claim(("ns", "app"), old, hibernated=True) for _ in range(100)]
    assert claims.count(True) == 1
    clock.now += 5
    assert gate.claim(("ns", "app"), old, hibernated=True)  # still asleep: ask again


def test_activity_on_a_running_app_writes_at_most_once_per_interval() -> None:
    clock = Clock(1_000_000.0)
    gate = WakeGate(clock, activity_interval=60, wake_interval=5)
    recent = format_time(clock.now - 30)  # written by someone else half a minute ago
    assert not gate.claim("k", recent, hibernated=False)
    clock.now += 30
    assert gate.claim("k", recent, hibernated=False)
    clock.now += 59
    assert not gate.claim("k", recent, hibernated=False)


def test_a_failed_write_is_retried_by_the_next_visit() -> None:
    gate = WakeGate(Clock(100.0))
    assert gate.claim("k", "", hibernated=True)
    gate.forget("k")
    assert gate.claim("k", "", hibernated=True)


def test_times_round_trip_and_garbage_is_ignored() -> None:
    assert parse_time(format_time(1_700_000_000)) == 1_700_000_000
    assert parse_time("soon") is None
    assert parse_time("2026-01-01T00:00:00") is None  # no zone: not a moment
