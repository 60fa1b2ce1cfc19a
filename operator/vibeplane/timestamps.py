"""Times as the API server writes them: one format, one parser.

Status times, annotations and records use RFC 3339 in UTC with seconds precision
("2026-12-03T09:30:00Z"), as the API server writes metav1.Time; Leases use MicroTime.
Reading is lenient (an offset, fractions, no zone at all as UTC), because people write some of
these times by hand (the wake annotation); what cannot be read is None, never an exception.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

RFC3339: Final = "%Y-%m-%dT%H:%M:%SZ"
MICRO_RFC3339: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """`moment` as the API server writes a time (UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime(RFC3339)


def now_text() -> str:
    """The current time, written as `format_time` does."""
    return format_time(datetime.now(UTC))


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC), as Leases hold."""
    return moment.astimezone(UTC).strftime(MICRO_RFC3339)


def parse_time(text: str | None) -> datetime | None:
    """A time as we or people write it (RFC 3339 / ISO 8601, e.g. `date -u +%FT%TZ`), UTC
    when no offset is given; None when absent or unreadable."""
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
