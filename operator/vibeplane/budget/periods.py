"""Calendar-aligned budget periods in UTC (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vibeplane.api.workspace import BudgetPeriodKind

PeriodKind = BudgetPeriodKind


@dataclass(frozen=True)
class Period:
    """One budget period: [start, end)."""

    name: str
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def period_of(kind: PeriodKind, moment: datetime) -> Period:
    """The period of the given kind that contains `moment` (UTC calendar: months, ISO weeks
    starting Monday, days)."""
    moment = moment.astimezone(UTC)
    if kind == "Daily":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return Period(start.strftime("%Y-%m-%d"), start, start + timedelta(days=1))
    if kind == "Weekly":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return Period(f"{year}-W{week:02d}", start, start + timedelta(days=7))
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return Period(start.strftime("%Y-%m"), start, end)
