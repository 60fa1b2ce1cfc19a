"""Measured outcomes of generations, pure: what a revision record says, and the totals per
served model they add up to (written by `outcome_store`, read by the ModelDeployment).

The store and the reasons it lives on the API server: `vibeplane.generation.outcome_store`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


OUTCOMES_KEY = "outcomes.json"
KEEP_KEYS = 512
"""Generation keys remembered per model: a post repeated after a crash (the revision's status
write lost) comes within seconds, far fewer generations later."""


@dataclass(frozen=True)
class Totals:
    """What one served model (base or adapter) has measured, ever."""

    generations: int = 0
    successes: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)
    latency_seconds: float = 0.0

    def add(self, outcome: Outcome) -> Totals:
        return Totals(
            self.generations + 1,
            self.successes + int(outcome.success),
            self.tokens_in + outcome.tokens_in,
            self.tokens_out + outcome.tokens_out,
            self.cost + outcome.cost,
            round(self.latency_seconds + outcome.latency_seconds, 3),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "generations": self.generations,
            "successes": self.successes,
            "tokensIn": self.tokens_in,
            "tokensOut": self.tokens_out,
            "cost": format(self.cost.normalize(), "f") if self.cost else "0",
            "latencySeconds": self.latency_seconds,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Totals:
        try:
            cost = Decimal(str(data.get("cost") or "0"))
        except InvalidOperation:
            cost = Decimal(0)
        return cls(
            int(data.get("generations") or 0),
            int(data.get("successes") or 0),
            int(data.get("tokensIn") or 0),
            int(data.get("tokensOut") or 0),
            cost,
            float(data.get("latencySeconds") or 0.0),
        )


def config_map_name(model_uid: str) -> str:
    """The outcomes ConfigMap of the ModelDeployment with this uid."""
    return f"outcomes-{model_uid}"


def parse(config_map: Mapping[str, Any] | None) -> tuple[dict[str, Totals], list[str]]:
    """The totals per served model and the remembered keys in an outcomes ConfigMap."""
    raw = ((config_map or {}).get("data") or {}).get(OUTCOMES_KEY)
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = {}
    models = document.get("models") or {}
    totals = {
        str(name): Totals.from_wire(value)
        for name, value in models.items()
        if isinstance(value, Mapping)
    }
    keys = [str(key) for key in document.get("keys") or []]
    return totals, keys


def fold(
    totals: Mapping[str, Totals], keys: list[str], key: str, outcome: Outcome
) -> tuple[dict[str, Totals], list[str]] | None:
    """`outcome` added under `key`; None when that key was counted already."""
    if key in keys:
        return None
    after = dict(totals)
    after[outcome.served_model] = after.get(outcome.served_model, Totals()).add(outcome)
    return after, [*keys, key][-KEEP_KEYS:]


__all__ = [
    "KEEP_KEYS",
    "ModelKey",
    "Outcome",
    "Totals",
    "config_map_name",
    "fold",
    "outcome_of",
    "parse",
]
