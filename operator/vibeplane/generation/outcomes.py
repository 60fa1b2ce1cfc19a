"""Measured outcomes of generations, handed from the VibeApp path to the ModelDeployment
controller: one in-process board, built once in the manager.

When a revision's validation settles (its preview answered, or did not), the VibeApp reconciler
posts the revision's record here; the ModelDeployment reconciler of the model that generated it
takes what is new and folds it into its status (economics: cost per generated app; rollout:
each arm's successes). Status holds the totals, so they survive restarts and leader changes;
only outcomes posted and not yet folded when the process dies are lost (counted at most once,
never twice).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ModelKey = tuple[str, str]
"""(namespace, name) of a ModelDeployment."""


@dataclass(frozen=True)
class Outcome:
    """One settled generation."""

    served_model: str
    """The model name asked for: the base model or an adapter."""
    success: bool
    """Its revision passed validation, and was not a fix-up of a failed one."""
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_seconds: float


def outcome_of(record: Mapping[str, Any], passed: bool) -> tuple[ModelKey, Outcome] | None:
    """The outcome of a revision record (generate.py `_record`), or None when it does not say
    which ModelDeployment generated it (records written before this existed)."""
    namespace, name = record.get("modelNamespace"), record.get("model")
    if not isinstance(namespace, str) or not isinstance(name, str) or not namespace or not name:
        return None
    try:
        cost = Decimal(str(record.get("cost") or "0"))
    except InvalidOperation:
        cost = Decimal(0)
    served = record.get("servedModel")
    return (namespace, name), Outcome(
        served_model=served if isinstance(served, str) and served else name,
        success=passed and not record.get("fixUp"),
        tokens_in=int(record.get("tokensIn") or 0),
        tokens_out=int(record.get("tokensOut") or 0),
        cost=cost,
        latency_seconds=float(record.get("latencySeconds") or 0.0),
    )


class OutcomeBoard:
    """Outcomes per ModelDeployment, posted by one controller and taken by another."""

    def __init__(self, on_post: Callable[[ModelKey], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: dict[ModelKey, list[Outcome]] = defaultdict(list)
        self.on_post = on_post
        """Called after a post (the manager re-queues the ModelDeployment)."""

    def post(self, record: Mapping[str, Any], passed: bool) -> None:
        found = outcome_of(record, passed)
        if found is None:
            return
        key, outcome = found
        with self._lock:
            self._pending[key].append(outcome)
        if self.on_post is not None:
            self.on_post(key)

    def take(self, key: ModelKey) -> list[Outcome]:
        """What was posted for `key` since the last take."""
        with self._lock:
            return self._pending.pop(key, [])


__all__ = ["ModelKey", "Outcome", "OutcomeBoard", "outcome_of"]
