"""One format and one parser for the times the operator writes and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vibeplane.timestamps import format_time, micro_time, parse_time

T = datetime(2026, 12, 3, 9, 30, 5, 123456, tzinfo=UTC)


def test_format_is_the_api_servers() -> None:
    assert format_time(T) == "2026-12-03T09:30:05Z"
    assert format_time(T.astimezone(timezone(timedelta(hours=2)))) == "2026-12-03T09:30:05Z"
    assert micro_time(T) == "2026-12-03T09:30:05.123456Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T09:30:05Z",
        "2026-12-03T11:30:05+02:00",
        "2026-12-03T09:30:05",
        " 2026-12-03T09:30:05Z ",
    ],
)
def test_parse_reads_what_we_and_people_write(text: str) -> None:
    assert parse_time(text) == T.replace(microsecond=0)


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-03T09:30:05Z"])
def test_what_cannot_be_read_is_none(text: str | None) -> None:
    assert parse_time(text) is None


def test_round_trip() -> None:
    assert parse_time(format_time(T)) == T.replace(microsecond=0)
    assert parse_time(micro_time(T)) == T
