from __future__ import annotations

import pytest

from vibeplane.kube.client import contains, same_value


@pytest.mark.parametrize(
    ("live", "desired"),
    [("1", "1000m"), ("1Gi", "1024Mi"), (2, "2"), ("500m", "0.5"), ("1k", "1000")],
)
def test_quantities_compare_by_value(live: object, desired: object) -> None:
    assert same_value(live, desired)


@pytest.mark.parametrize(("live", "desired"), [("1", "2"), ("1Gi", "1G"), ("a", "b"), (True, 1)])
def test_different_values(live: object, desired: object) -> None:
    assert not same_value(live, desired)


def test_contains_ignores_fields_the_server_adds() -> None:
    live = {
        "metadata": {"name": "n", "uid": "u", "labels": {"a": "1", "b": "2"}},
        "spec": {"hard": {"cpu": "1"}, "x": [1, 2]},
    }
    assert contains(live, {"metadata": {"name": "n", "labels": {"a": "1"}}})
    assert contains(live, {"spec": {"hard": {"cpu": "1000m"}}})
    assert not contains(live, {"spec": {"x": [1]}})
    assert not contains(live, {"metadata": {"labels": {"c": "3"}}})
