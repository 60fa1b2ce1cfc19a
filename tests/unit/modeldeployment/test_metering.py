"""GPU-hour metering: readings held between looks, exact decimals, no unobserved time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.modeldeployment import metering
from vibeplane.modeldeployment.metering import Reading, accrue

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


def test_the_first_reading_charges_nothing() -> None:
    accrual = accrue(None, 2, 1, T0)
    assert accrual is not None
    assert accrual.gpu_hours == 0
    assert accrual.start is None
    assert accrual.reading == Reading(T0, 2, 1)


def test_an_hour_of_two_replicas_of_four_gpus_is_eight_gpu_hours() -> None:
    accrual = accrue(Reading(T0, 2, 4), 2, 4, T0 + timedelta(hours=1), max_gap=timedelta(hours=2))
    assert accrual is not None
    assert accrual.gpu_hours == Decimal(8)
    assert accrual.start == T0
    assert accrual.end == T0 + timedelta(hours=1)


def test_the_previous_level_holds_until_a_change_is_seen() -> None:
    # 3 replicas of 1 GPU for 90 s, then seen at 1 replica: charged at 3.
    accrual = accrue(Reading(T0, 3, 1), 1, 1, T0 + timedelta(seconds=90))
    assert accrual is not None
    assert accrual.gpu_hours == Decimal("0.075")
    assert accrual.reading.replicas == 1


def test_a_steady_level_is_recorded_once_per_interval() -> None:
    previous = Reading(T0, 1, 1)
    assert accrue(previous, 1, 1, T0 + timedelta(seconds=59)) is None
    accrual = accrue(previous, 1, 1, T0 + timedelta(seconds=60))
    assert accrual is not None
    assert accrual.gpu_hours == Decimal("0.016667")


def test_a_change_of_level_is_recorded_at_once() -> None:
    accrual = accrue(Reading(T0, 1, 1), 2, 1, T0 + timedelta(seconds=5))
    assert accrual is not None
    assert accrual.gpu_hours == Decimal("0.001389")


def test_idle_at_zero_records_nothing() -> None:
    assert accrue(Reading(T0, 0, 1), 0, 1, T0 + timedelta(days=3)) is None
    assert accrue(Reading(T0, 4, 0), 4, 0, T0 + timedelta(days=3)) is None


def test_a_long_gap_is_charged_at_most_max_gap() -> None:
    accrual = accrue(Reading(T0, 1, 2), 1, 2, T0 + timedelta(hours=5))
    assert accrual is not None
    assert accrual.gpu_hours == Decimal("0.5")  # 15 minutes of 2 GPUs


def test_a_clock_going_backwards_charges_nothing_and_restarts() -> None:
    accrual = accrue(Reading(T0, 1, 1), 1, 1, T0 - timedelta(minutes=5))
    assert accrual is not None
    assert accrual.gpu_hours == 0
    assert accrual.start is None
    assert accrual.reading.at == T0 - timedelta(minutes=5)


def test_readings_are_whole_seconds_so_they_survive_status() -> None:
    accrual = accrue(None, 1, 1, T0 + timedelta(microseconds=750_000))
    assert accrual is not None
    assert accrual.reading.at == T0
    text = metering.format_time(accrual.reading.at)
    assert text == "2026-11-24T10:00:00Z"
    assert metering.parse_time(text) == T0
    assert metering.parse_time("yesterday") is None


def test_interval_keys_name_the_start() -> None:
    assert metering.interval_key("uid-1", T0) == "gpu:uid-1:20261124T100000Z"


def test_money_is_gpu_hours_times_price() -> None:
    assert metering.money(Decimal("0.016667"), Decimal("2.50")) == Decimal("0.041668")


@settings(max_examples=200, deadline=None)
@given(
    level=st.tuples(st.integers(0, 8), st.integers(0, 8)),
    cuts=st.lists(st.integers(60, 600), min_size=1, max_size=12),
)
def test_charging_in_steps_adds_up_to_charging_at_once(
    level: tuple[int, int], cuts: list[int]
) -> None:
    """A steady level looked at every few minutes charges what one look at the end would,
    up to the rounding of each step (half a millionth of a GPU-hour each)."""
    replicas, gpus = level
    reading = Reading(T0, replicas, gpus)
    total = Decimal(0)
    now = T0
    for seconds in cuts:
        now += timedelta(seconds=seconds)
        accrual = accrue(reading, replicas, gpus, now)
        if accrual is None:
            continue
        assert accrual.gpu_hours >= 0
        total += accrual.gpu_hours
        reading = accrual.reading
    exact = Decimal(replicas * gpus * sum(cuts)) / 3600
    assert abs(total - exact) <= Decimal("0.0000005") * len(cuts)


@settings(max_examples=200, deadline=None)
@given(
    replicas=st.integers(0, 50),
    gpus=st.integers(0, 16),
    seconds=st.integers(-3600, 86400),
)
def test_never_negative_never_beyond_max_gap(replicas: int, gpus: int, seconds: int) -> None:
    accrual = accrue(Reading(T0, replicas, gpus), 1, 1, T0 + timedelta(seconds=seconds))
    if accrual is None:
        return
    assert 0 <= accrual.gpu_hours <= Decimal(replicas * gpus) / 4 + Decimal("0.000001")
