from __future__ import annotations

from vibeplane.kube.conditions import ConditionSpec, merge_conditions, status_patch

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def test_transition_time_moves_only_when_status_changes() -> None:
    first = merge_conditions([], [ConditionSpec("Ready", "False", "Pending", "wait")], 1, T0)
    same = merge_conditions(first, [ConditionSpec("Ready", "False", "Pending", "wait")], 1, T1)
    assert same == first
    reworded = merge_conditions(first, [ConditionSpec("Ready", "False", "Other", "x")], 2, T1)
    assert reworded[0]["lastTransitionTime"] == T0
    assert reworded[0]["observedGeneration"] == 2
    flipped = merge_conditions(first, [ConditionSpec("Ready", "True", "Done")], 2, T1)
    assert flipped[0]["lastTransitionTime"] == T1


def test_other_conditions_are_kept_in_order() -> None:
    existing = [
        {"type": "Foreign", "status": "True", "reason": "X", "lastTransitionTime": T0},
        {"type": "Ready", "status": "True", "reason": "Ok", "lastTransitionTime": T0},
    ]
    merged = merge_conditions(
        existing, [ConditionSpec("Ready", "True", "Ok"), ConditionSpec("New", "False", "N")], 3, T1
    )
    assert [c["type"] for c in merged] == ["Foreign", "Ready", "New"]
    assert merged[0] == existing[0]


def test_status_patch_is_empty_when_nothing_changed() -> None:
    current = {"phase": "Running", "revision": 2, "conditions": [{"type": "Ready"}]}
    assert status_patch(current, dict(current)) == {}
    assert status_patch(current, {"phase": "Failed"}) == {"phase": "Failed"}
    assert status_patch(current, {"revision": None}) == {"revision": None}
    assert status_patch(current, {"url": None}) == {}
