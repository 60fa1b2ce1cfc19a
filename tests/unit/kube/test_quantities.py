"""Quantities compare by value, as the API server stores them."""

from __future__ import annotations

import pytest

from vibeplane.kube.quantities import same_value


@pytest.mark.parametrize(
    ("live", "desired"),
    [("1", "1000m"), ("1Gi", "1024Mi"), (2, "2"), ("500m", "0.5"), ("1k", "1000"),
     # Finer than a milli-unit: the API server stores it rounded up.
     ("1m", "0.5m"), ("1m", "1e-400"), ("1001m", "1.0000000001"), ("2m", "1.5m")],
)  # fmt: skip
def test_quantities_compare_by_value(live: object, desired: object) -> None:
    assert same_value(live, desired)


@pytest.mark.parametrize(
    ("live", "desired"),
    [("1", "2"), ("1Gi", "1G"), ("a", "b"), (True, 1), ("1m", "2m"), ("2m", "1m")],
)
def test_different_values(live: object, desired: object) -> None:
    assert not same_value(live, desired)
