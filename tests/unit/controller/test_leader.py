"""Leader election's decisions (pure), and the elector against an in-memory Lease.

The in-memory lock keeps the one property of the API server the protocol relies on: an update
carrying a stale resourceVersion is refused (409). Real Leases on the real control plane are
in tests/integration/test_leader.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from tests.fakes.clock import FakeClock, until
from vibeplane.controller.leader import (
    Action,
    ElectionTiming,
    LeaderElector,
    LeaseConflict,
    LeaseRecord,
    Observation,
    decide,
    expired,
    leadership_lost,
    micro_time,
    next_record,
    observe,
    released,
)

TIMING = ElectionTiming(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = "2025-01-01T00:00:00.000000Z"


def held_by(holder: str, renew_time: str = WALL) -> LeaseRecord:
    return LeaseRecord(holder, 15, WALL, renew_time, 3)


# ---- decisions ---------------------------------------------------------------------------------


def test_no_lease_is_created() -> None:
    assert decide(None, "me", now=100) is Action.CREATE


def test_our_own_lease_is_renewed_even_when_it_looks_expired() -> None:
    seen = Observation(held_by("me"), "1", seen_at=0)
    assert decide(seen, "me", now=1000) is Action.RENEW


def test_a_released_lease_is_taken_at_once() -> None:
    seen = Observation(released(held_by("other"), WALL), "1", seen_at=100)
    assert decide(seen, "me", now=100) is Action.ACQUIRE


def test_another_holder_is_waited_for_a_whole_lease_duration_from_our_observation() -> None:
    seen = Observation(held_by("other"), "1", seen_at=100)
    assert decide(seen, "me", now=100) is Action.WAIT
    assert decide(seen, "me", now=114.9) is Action.WAIT
    assert decide(seen, "me", now=115) is Action.ACQUIRE


def test_expiry_ignores_the_remote_renew_time() -> None:
    """A holder whose clock runs a day behind is not expired while it keeps renewing, and
    one whose clock runs ahead is expired once it stops: only changes we see count."""
    yesterday = held_by("other", renew_time="2024-12-31T00:00:00.000000Z")
    first = observe(None, yesterday, "1", now=100)
    assert not expired(first, now=101)
    tomorrow = held_by("other", renew_time="2025-01-02T00:00:00.000000Z")
    seen = observe(first, tomorrow, "2", now=110)
    assert seen.seen_at == 110
    assert not expired(seen, now=124)
    assert expired(observe(seen, tomorrow, "2", now=125), now=125)


def test_observing_the_same_record_keeps_the_clock() -> None:
    first = observe(None, held_by("other"), "1", now=100)
    again = observe(first, held_by("other"), "1", now=112)
    assert again.seen_at == 100
    renewed = observe(again, held_by("other", renew_time="2025-01-01T00:00:02.000000Z"), "2", 113)
    assert renewed.seen_at == 113
    assert renewed.resource_version == "2"


def test_records_for_each_action() -> None:
    created = next_record(None, Action.CREATE, "me", TIMING, WALL)
    assert created == LeaseRecord("me", 15, WALL, WALL, 0)
    later = "2025-01-01T00:00:05.000000Z"
    renewed = next_record(created, Action.RENEW, "me", TIMING, later)
    assert renewed == LeaseRecord("me", 15, WALL, later, 0)
    taken = next_record(held_by("other"), Action.ACQUIRE, "me", TIMING, later)
    assert taken == LeaseRecord("me", 15, later, later, 4)
    with pytest.raises(ValueError, match="standing by"):
        next_record(created, Action.WAIT, "me", TIMING, later)


def test_a_released_record_names_nobody_and_keeps_the_count() -> None:
    later = "2025-01-01T00:01:00.000000Z"
    assert released(held_by("me"), later) == LeaseRecord("", 1, later, later, 3)


def test_leadership_is_lost_at_the_renew_deadline() -> None:
    assert not leadership_lost(last_renewed=100, now=109.9, timing=TIMING)
    assert leadership_lost(last_renewed=100, now=110, timing=TIMING)


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "message"),
    [
        (10, 10, 2, "longer than the renew deadline"),
        (15, 2, 2, "longer than 1.2 x the retry period"),
    ],
)
def test_unsafe_timings_are_refused(lease: float, renew: float, retry: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ElectionTiming(lease, renew, retry)


def test_the_spec_round_trips_and_a_missing_holder_is_nobody() -> None:
    record = held_by("me")
    assert LeaseRecord.from_spec(record.to_spec()) == record
    assert LeaseRecord.from_spec({"leaseDurationSeconds": 15}).holder == ""
    assert LeaseRecord.from_spec(None) == LeaseRecord()


def test_micro_time_is_utc_with_microseconds() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    assert micro_time(moment) == "2025-03-04T05:06:07.000890Z"


# ---- the elector against an in-memory Lease ------------------------------------------------------


class MemoryLock:
    """A Lease with the API server's optimistic concurrency: a stale resourceVersion is 409."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.unreachable = False
        self.writes: list[LeaseRecord] = []
        self._lock = threading.Lock()

    def get(self, timeout: float) -> tuple[LeaseRecord, str] | None:
        if self.unreachable:
            raise ConnectionRefusedError("API server unreachable")
        with self._lock:
            return None if self.record is None else (self.record, str(self.version))

    def create(self, record: LeaseRecord, timeout: float) -> str:
        with self._lock:
            if self.record is not None:
                raise LeaseConflict("exists")
            return self._write(record)

    def update(self, record: LeaseRecord, resource_version: str, timeout: float) -> str:
        with self._lock:
            if resource_version != str(self.version):
                raise LeaseConflict("stale resourceVersion")
            return self._write(record)

    def _write(self, record: LeaseRecord) -> str:
        self.record = record
        self.version += 1
        self.writes.append(record)
        return str(self.version)


def never_lost(reason: str) -> None:
    raise AssertionError(f"lost leadership unexpectedly: {reason}")


def elector(lock: MemoryLock, identity: str, clock: FakeClock) -> LeaderElector:
    return LeaderElector(lock, identity, TIMING, on_lost=never_lost, clock=clock)


def test_one_candidate_leads_and_the_other_writes_nothing() -> None:
    lock, clock = MemoryLock(), FakeClock()
    first, second = elector(lock, "a", clock), elector(lock, "b", clock)
    assert first.try_acquire_or_renew()
    writes = len(lock.writes)
    for _ in range(7):  # 14 s of renewals by the leader and attempts by the standby
        clock.advance(2)
        assert first.try_acquire_or_renew()
        assert not second.try_acquire_or_renew()
    assert first.leading
    assert not second.leading
    assert {record.holder for record in lock.writes[writes:]} == {"a"}
    assert second.holder == "a"


def test_a_dead_leader_is_replaced_after_the_lease_duration() -> None:
    lock, clock = MemoryLock(), FakeClock()
    first, second = elector(lock, "a", clock), elector(lock, "b", clock)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()  # sees a's record now
    # a dies: nothing renews; b takes over only once 15 s passed since it saw the last change.
    clock.advance(14.9)
    assert not second.try_acquire_or_renew()
    clock.advance(0.1)
    assert second.try_acquire_or_renew()
    assert lock.record is not None
    assert lock.record.holder == "b"
    assert lock.record.transitions == 1


def test_of_two_candidates_racing_for_one_expired_lease_only_one_wins() -> None:
    lock, clock = MemoryLock(), FakeClock()
    old = elector(lock, "old", clock)
    assert old.try_acquire_or_renew()
    racers = [elector(lock, name, clock) for name in ("b", "c")]
    for racer in racers:
        assert not racer.try_acquire_or_renew()
    clock.advance(15)
    # Both read the same resourceVersion before either writes, as in a real race.
    reads = [lock.get(1) for _ in racers]
    original_get = lock.get
    pending = iter(reads)
    lock.get = lambda timeout: next(pending)  # type: ignore[method-assign]
    outcomes = [racer.try_acquire_or_renew() for racer in racers]
    lock.get = original_get  # type: ignore[method-assign]
    assert outcomes == [True, False]
    assert lock.record is not None
    assert lock.record.holder == "b"
    assert not racers[1].leading


def test_a_released_lease_is_taken_on_the_next_attempt() -> None:
    lock, clock = MemoryLock(), FakeClock()
    first, second = elector(lock, "a", clock), elector(lock, "b", clock)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()
    assert first.release()
    assert not first.leading
    assert lock.record is not None
    assert lock.record.holder == ""
    assert second.try_acquire_or_renew()  # no lease duration to wait out
    assert not first.release()  # no longer ours: nothing to release


def test_a_standby_stops_waiting_when_told_to() -> None:
    lock, clock = MemoryLock(), FakeClock()
    assert elector(lock, "a", clock).try_acquire_or_renew()
    standby = LeaderElector(
        lock, "b", ElectionTiming(0.6, 0.4, 0.1), on_lost=never_lost, clock=clock
    )
    stop = threading.Event()
    result: list[bool] = []
    campaign = threading.Thread(target=lambda: result.append(standby.acquire(stop)))
    campaign.start()
    assert until(lambda: clock.sleeping == 1)  # it tried, and waits for its next attempt
    stop.set()
    campaign.join(5)
    assert result == [False]
    assert [record.holder for record in lock.writes] == ["a"]


# Short timings on a fake clock: each renewal happens when the test moves the clock.
FAST = ElectionTiming(lease_duration=3.0, renew_deadline=2.0, retry_period=0.25)


def run_leader(
    lock: MemoryLock, clock: FakeClock
) -> tuple[LeaderElector, list[str], threading.Event]:
    """A leader renewing in its thread on `clock`; what it reports when it loses."""
    reasons: list[str] = []
    lost = threading.Event()

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    leader = LeaderElector(lock, "a", FAST, on_lost=on_lost, clock=clock)
    assert leader.acquire(threading.Event())
    leader.start_renewing()
    assert until(lambda: clock.sleeping == 1)
    return leader, reasons, lost


def next_period(clock: FakeClock, lost: threading.Event) -> None:
    """Move one retry period on and let the renewal thread make its attempt: it is back in its
    wait (one more wait begun) or it has given up."""
    waits = clock.waits
    clock.advance(FAST.retry_period)
    assert until(lambda: lost.is_set() or (clock.waits > waits and clock.sleeping == 1))


def test_the_leader_keeps_renewing() -> None:
    lock, clock = MemoryLock(), FakeClock()
    leader, reasons, lost = run_leader(lock, clock)
    for _ in range(3):
        next_period(clock, lost)
    assert len(lock.writes) == 4  # the acquisition and three renewals
    assert leader.release()
    assert reasons == []
    assert lock.record is not None
    assert lock.record.holder == ""


def test_a_leader_that_cannot_renew_stops_before_the_lease_expires() -> None:
    lock, clock = MemoryLock(), FakeClock()
    leader, reasons, lost = run_leader(lock, clock)
    cut_off = clock.monotonic()
    lock.unreachable = True
    while not lost.is_set():
        assert clock.monotonic() - cut_off < FAST.lease_duration, "still leading"
        next_period(clock, lost)
    elapsed = clock.monotonic() - cut_off
    assert reasons == ["not renewed for 2 s"]
    assert FAST.renew_deadline <= elapsed < FAST.lease_duration  # before a standby could lead
    assert not leader.leading


def test_a_leader_that_was_frozen_stops_without_asking_the_api_server() -> None:
    """Woken past its deadline (SIGSTOP, a paused VM), it stops on its own clock: no request
    first, during which its other threads would go on as the leader."""
    lock, clock = MemoryLock(), FakeClock()
    leader, reasons, lost = run_leader(lock, clock)
    requests = []
    original_get = lock.get

    def counted_get(timeout: float) -> tuple[LeaseRecord, str] | None:
        requests.append(timeout)
        return original_get(timeout)

    lock.get = counted_get  # type: ignore[method-assign]
    clock.advance(FAST.renew_deadline)  # the process slept through its deadline
    assert lost.wait(5)
    assert reasons == ["not renewed for 2 s"]
    assert requests == []
    assert not leader.leading


def test_a_leader_that_sees_another_holder_stops_at_once() -> None:
    lock, clock = MemoryLock(), FakeClock()
    leader, reasons, lost = run_leader(lock, clock)
    with lock._lock:
        lock._write(LeaseRecord("intruder", 15, WALL, WALL, 1))
    next_period(clock, lost)
    assert lost.wait(5)
    assert reasons == ["'intruder' holds the Lease"]
    assert not leader.release()  # never releases what it does not hold


def test_health_follows_the_attempts() -> None:
    lock, clock = MemoryLock(), FakeClock()
    candidate = elector(lock, "a", clock)
    assert candidate.healthy()
    clock.advance(100)
    assert not candidate.healthy()
    candidate.try_acquire_or_renew()
    assert candidate.healthy()
