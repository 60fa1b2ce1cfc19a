"""Conditions per the Kubernetes API conventions, as pure functions.

A condition's lastTransitionTime moves only when its status changes, so recomputing the same
state yields the same conditions and, with `status_patch`, no write at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vibeplane.timestamps import format_time, now_text

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class ConditionSpec:
    """A condition as a reconcile computes it, before timestamps."""

    type: str
    status: Status
    reason: str
    message: str = ""


def rfc3339(moment: datetime) -> str:
    """A time as the API server writes it (seconds precision, UTC)."""
    return format_time(moment)


def now_rfc3339() -> str:
    """The current time as the API server writes it (seconds precision, UTC)."""
    return now_text()


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None,
    computed: Sequence[ConditionSpec],
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """The conditions to store: `computed`, keeping transition times of unchanged statuses.

    Conditions of other types already present are kept as they are, in their order, so
    that another controller's conditions on the same object survive.
    """
    previous = {str(item.get("type")): item for item in existing or ()}
    result: dict[str, dict[str, Any]] = {
        key: dict(value) for key, value in previous.items() if key not in {c.type for c in computed}
    }
    for condition in computed:
        before = previous.get(condition.type)
        changed = before is None or before.get("status") != condition.status
        transition = now if changed or before is None else before.get("lastTransitionTime", now)
        entry: dict[str, Any] = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "lastTransitionTime": transition,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        result[condition.type] = entry
    order = [str(item.get("type")) for item in existing or ()]
    order += [c.type for c in computed if c.type not in order]
    return [result[key] for key in order if key in result]


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    """Whether the condition of the given type is present and True."""
    condition = find(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def status_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `desired` whose values differ from `current`: empty when nothing changed.

    Keys set to None in `desired` are removed from the status (a merge patch's null).
    """
    current = current or {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if value is None:
            if key in current:
                patch[key] = None
        elif current.get(key) != value:
            patch[key] = value
    return patch
