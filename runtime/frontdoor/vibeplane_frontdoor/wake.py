"""When a visit writes the wake annotation: one write per app under a burst.

The operator hibernates a preview idle for longer than its idleTimeout, reading the newest of
`status.lastActivity` and the `vibeplane.io/wake` annotation (a time). So the front service
makes gateway-seen activity count by the same annotation: a visit to a running app refreshes
it at most once per `activity_interval`; a visit to a hibernated app wakes it at most once per
`wake_interval` (short: an app with a short idleTimeout may hibernate again soon after). The
decision is taken and recorded in one step on the event loop, so concurrent visits cannot both
write; the annotation's own time counts too (another replica, or a person, may have written).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime

WAKE_ANNOTATION = "vibeplane.io/wake"  # vibeplane.wellknown.ANNOTATION_WAKE (tested equal)
MAX_REMEMBERED = 10_000


def format_time(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp()


class WakeGate:
    def __init__(
        self,
        clock: Callable[[], float],
        activity_interval: float = 60.0,
        wake_interval: float = 5.0,
    ) -> None:
        self._clock = clock
        self.activity_interval = activity_interval
        self.wake_interval = wake_interval
        self._written: dict[Hashable, float] = {}

    def claim(self, key: Hashable, annotation: str, hibernated: bool) -> bool:
        """Whether this visit writes the annotation now (and, if so, records that it does)."""
        now = self._clock()
        seen = [t for t in (self._written.get(key), parse_time(annotation)) if t is not None]
        last = max(seen, default=None)
        interval = self.wake_interval if hibernated else self.activity_interval
        if last is not None and now - last < interval:
            return False
        self._written[key] = now
        if len(self._written) > MAX_REMEMBERED:
            horizon = now - max(self.activity_interval, self.wake_interval)
            self._written = {k: t for k, t in self._written.items() if t >= horizon}
        return True

    def forget(self, key: Hashable) -> None:
        """The write failed: the next visit tries again."""
        self._written.pop(key, None)
