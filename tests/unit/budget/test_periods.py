from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vibeplane.budget.periods import period_of


@pytest.mark.parametrize(
    ("kind", "moment", "name", "start", "end"),
    [
        (
            "Monthly",
            datetime(2026, 11, 24, 13, 5, tzinfo=UTC),
            "2026-11",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            "Monthly",
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            "2026-12",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            "Weekly",
            datetime(2026, 11, 24, tzinfo=UTC),
            "2026-W48",
            datetime(2026, 11, 23, tzinfo=UTC),
            datetime(2026, 11, 30, tzinfo=UTC),
        ),
        (
            "Weekly",
            datetime(2027, 1, 1, tzinfo=UTC),
            "2026-W53",
            datetime(2026, 12, 28, tzinfo=UTC),
            datetime(2027, 1, 4, tzinfo=UTC),
        ),
        (
            "Daily",
            datetime(2026, 2, 28, 23, 0, tzinfo=UTC),
            "2026-02-28",
            datetime(2026, 2, 28, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
    ],
)
def test_calendar_aligned(kind, moment, name, start, end) -> None:  # type: ignore[no-untyped-def]
    period = period_of(kind, moment)
    assert (period.name, period.start, period.end) == (name, start, end)
    assert period.contains(moment)
    assert not period.contains(end)
