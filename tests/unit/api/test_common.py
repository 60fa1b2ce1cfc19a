"""The shared API helpers: durations next to their type, owner references."""

from __future__ import annotations

import pytest

from vibeplane.api.common import duration_seconds, owner_reference


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("30m", 1800.0), ("1h30m", 5400.0), ("45s", 45.0), ("250ms", 0.25), ("1h1m1s", 3661.0)],
)
def test_duration_seconds(duration: str, seconds: float) -> None:
    assert duration_seconds(duration) == seconds


def test_owner_reference_makes_ours_the_controller() -> None:
    assert owner_reference("VibeApp", "todo", "u-1") == {
        "apiVersion": "vibeplane.io/v1alpha1",
        "kind": "VibeApp",
        "name": "todo",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
