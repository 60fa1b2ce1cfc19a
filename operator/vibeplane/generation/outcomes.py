"""Measured outcomes of generations, from the VibeApp path to the ModelDeployment controller,
kept on the API server so that no restart, crash or leader change loses or doubles them.

When a revision's validation settles (its preview answered, or did not), the VibeApp reconciler
posts the revision's record: it is added, by compare-and-swap, to the totals per served model
(the base model or an adapter) in the ModelDeployment's outcomes ConfigMap, together with the
generation's key, so a post repeated after a crash is counted once (the last KEEP_KEYS keys are
kept: a repeat comes within seconds). The ConfigMap is `outcomes-<ModelDeployment uid>` in the
platform namespace, beside the budget ledgers and for the same reasons: tenants cannot read or
forge the counts a promotion rests on, and a ModelDeployment created again under the same name
starts afresh. The ModelDeployment reconciler reads the totals (level-based) and derives its
status from them: economics (cost per generated app) and the rollout's arms (totals since the
candidate started). One write per settled generation, the rate of the ledger's settle; none at
rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from vibeplane.kube.client import Conflict, KubeClient
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME
from vibeplane.wellknown import ANNOTATION_MODELDEPLOYMENT, LABEL_COMPONENT

log = logging.getLogger(__name__)

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
MAX_ATTEMPTS = 20
COMPONENT_OUTCOMES = "outcomes"


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


def totals_of(kube: KubeClient, namespace: str, model_uid: str) -> dict[str, Totals]:
    """The totals per served model of a ModelDeployment (none yet: empty); `namespace` is the
    platform namespace."""
    return parse(kube.get("v1", "ConfigMap", config_map_name(model_uid), namespace))[0]


class OutcomeStore:
    """Posts outcomes into their model's ConfigMap (see the module doc)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        uid_of: Callable[[str, str], str | None],
        on_post: Callable[[ModelKey], None] | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        """The platform namespace, where outcomes ConfigMaps live."""
        self.uid_of = uid_of
        """(namespace, name) of a ModelDeployment -> its uid, None when it is gone."""
        self.on_post = on_post
        """Called after a post (the manager re-queues the ModelDeployment)."""

    def post(self, record: Mapping[str, Any], passed: bool) -> None:
        found = outcome_of(record, passed)
        if found is None:
            return
        (namespace, model), outcome = found
        key = str(record.get("key") or "")
        uid = self.uid_of(namespace, model)
        if not key or not uid:
            log.info("outcome of %r not counted: no key, or %s/%s is gone", key, namespace, model)
            return
        name = config_map_name(uid)
        for _ in range(MAX_ATTEMPTS):
            live = self.kube.get("v1", "ConfigMap", name, self.namespace)
            totals, keys = parse(live)
            folded = fold(totals, keys, key, outcome)
            if folded is None:
                break
            try:
                self.kube.write(self._manifest(namespace, model, name, live, *folded))
            except Conflict:
                continue
            break
        else:
            log.warning("outcome of %s not counted: %s kept changing", key, name)
            return
        if self.on_post is not None:
            self.on_post((namespace, model))

    def _manifest(
        self,
        namespace: str,
        model: str,
        name: str,
        live: Mapping[str, Any] | None,
        totals: Mapping[str, Totals],
        keys: list[str],
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": {LABEL_COMPONENT: COMPONENT_OUTCOMES, LABEL_MANAGED_BY: MANAGER_NAME},
            "annotations": {ANNOTATION_MODELDEPLOYMENT: f"{namespace}/{model}"},
        }
        if live is not None:
            metadata["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        document = {
            "models": {served: value.to_wire() for served, value in sorted(totals.items())},
            "keys": keys,
        }
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {OUTCOMES_KEY: json.dumps(document, sort_keys=True, separators=(",", ":"))},
        }


__all__ = [
    "KEEP_KEYS",
    "ModelKey",
    "Outcome",
    "OutcomeStore",
    "Totals",
    "config_map_name",
    "fold",
    "outcome_of",
    "parse",
    "totals_of",
]
