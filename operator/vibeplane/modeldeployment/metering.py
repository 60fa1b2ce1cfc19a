"""GPU-hour metering of KServe deployments, as pure functions.

Why readings and not a rate: the operator cannot see a GPU's bill, only how many predictor
replicas run at the moments it looks. So it keeps one reading (time, replicas, GPUs per
replica) in the ModelDeployment's status and, at the next look, charges the time since the
reading at the reading's level (sample and hold): a change of replicas closes the interval at
the moment it is seen, and a steady level is closed at least every `interval`, so the ledger
trails the truth by at most that much.

Rules that keep it honest:
- nothing is charged for time the operator did not watch: a gap longer than `max_gap` (the
  operator was down) is charged as `max_gap` at the last level, never more;
- a clock that went backwards charges nothing and restarts the reading;
- a level of zero that stays zero records nothing (a scaled-to-zero model writes no status);
- amounts are exact decimals, rounded to a millionth of a GPU-hour (3.6 ms of one GPU), so
  the idempotency key of an interval (`interval_key`) always names the same amount's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from vibeplane import timestamps

INTERVAL = timedelta(seconds=60)
"""A steady level is charged at least this often (also the reconcile's requeue while running)."""
MAX_GAP = timedelta(minutes=15)
"""The longest unobserved time charged at the last level."""
QUANTUM = Decimal("0.000001")
MILLISECONDS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Reading:
    """What ran at one moment: `replicas` predictor replicas of `gpus` GPUs each."""

    at: datetime
    replicas: int
    gpus: int

    @property
    def level(self) -> int:
        """GPUs in use."""
        return max(0, self.replicas) * max(0, self.gpus)


@dataclass(frozen=True)
class Accrual:
    """The GPU-hours of [start, end) at the previous reading's level, and the new reading."""

    gpu_hours: Decimal
    start: datetime | None
    """The previous reading's time (None for the first reading: nothing is charged)."""
    end: datetime
    reading: Reading
    """The reading to record; the next interval starts here."""


def truncate(moment: datetime) -> datetime:
    """Whole seconds in UTC: readings round-trip through status (RFC 3339) unchanged."""
    return moment.astimezone(UTC).replace(microsecond=0)


def gpu_hours(level: int, elapsed: timedelta) -> Decimal:
    """`level` GPUs for `elapsed`, in GPU-hours rounded to a millionth."""
    if level <= 0 or elapsed <= timedelta(0):
        return Decimal(0)
    milliseconds = elapsed // timedelta(milliseconds=1)
    return (Decimal(level * milliseconds) / MILLISECONDS_PER_HOUR).quantize(
        QUANTUM, rounding=ROUND_HALF_UP
    )


def accrue(
    previous: Reading | None,
    replicas: int,
    gpus: int,
    now: datetime,
    interval: timedelta = INTERVAL,
    max_gap: timedelta = MAX_GAP,
) -> Accrual | None:
    """The charge since `previous` and the reading to record, or None when there is nothing
    to record yet (same level, and less than `interval` since the reading, or idle at zero)."""
    now = truncate(now)
    current = Reading(now, replicas, gpus)
    if previous is None:
        return Accrual(Decimal(0), None, now, current)
    if now < previous.at:  # the clock went backwards: charge nothing, start again from now
        return Accrual(Decimal(0), None, now, current)
    same_level = previous.replicas == replicas and previous.gpus == gpus
    if same_level and previous.level == 0:
        return None
    if same_level and now - previous.at < interval:
        return None
    elapsed = min(now - previous.at, max_gap)
    return Accrual(gpu_hours(previous.level, elapsed), previous.at, now, current)


def money(hours: Decimal, gpu_hour_price: Decimal) -> Decimal:
    """What `hours` GPU-hours cost, rounded to a millionth."""
    return (hours * gpu_hour_price).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def interval_key(uid: str, start: datetime) -> str:
    """The ledger's idempotency key of the interval that starts at `start`.

    Keyed on the start only: a reconcile retried after a crash between the charge and the
    status write recomputes the same start, and the ledger refuses the second charge (the
    time since the first attempt is lost rather than counted twice)."""
    return f"gpu:{uid}:{truncate(start).strftime('%Y%m%dT%H%M%SZ')}"


def format_time(moment: datetime) -> str:
    """RFC 3339 as the API server writes it."""
    return timestamps.format_time(truncate(moment))


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time from status, or None when it is not one."""
    parsed = timestamps.parse_time(text)
    return None if parsed is None else truncate(parsed)
