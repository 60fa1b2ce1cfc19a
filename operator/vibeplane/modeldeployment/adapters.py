"""Pure: which of a ModelDeployment's adapters can be served now, and where their weights are.

An adapter names its weights (`uri`) or the ModelTraining that produced them (`training`, in
the same namespace): then it is served once that run has Succeeded, from the URI in its status.
Until then it is pending: left out of the LLMInferenceService and of routing (a rollout whose
candidate is pending routes everything to the incumbent), and named in AdaptersReady.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vibeplane.api import modeldeployment as api
from vibeplane.kube.conditions import ConditionSpec

PENDING_RECHECK_SECONDS = 30.0
"""How soon a ModelDeployment with a pending adapter looks at its training again."""


@dataclass(frozen=True)
class Resolved:
    """Adapters served now as (name, uri), and why the others are not."""

    served: tuple[tuple[str, str], ...]
    pending: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.served]


def resolve(
    spec: api.ModelDeploymentSpec, training: Callable[[str], Mapping[str, Any] | None]
) -> Resolved:
    """`training(name)`: the ModelTraining of that name in the model's namespace, or None."""
    served: list[tuple[str, str]] = []
    pending: list[str] = []
    for adapter in spec.adapters:
        if adapter.uri is not None:
            served.append((adapter.name, adapter.uri))
            continue
        run = training(str(adapter.training))
        status = (run or {}).get("status") or {}
        uri = status.get("adapterUri")
        if run is None:
            pending.append(f"{adapter.name}: ModelTraining {adapter.training} not found")
        elif status.get("phase") != "Succeeded" or not isinstance(uri, str) or not uri:
            phase = status.get("phase") or "Pending"
            pending.append(f"{adapter.name}: ModelTraining {adapter.training} is {phase}")
        else:
            served.append((adapter.name, uri))
    return Resolved(tuple(served), tuple(pending))


def condition(resolved: Resolved) -> ConditionSpec:
    if resolved.pending:
        return ConditionSpec(
            "AdaptersReady", "False", "AdaptersPending", "; ".join(resolved.pending)[:1000]
        )
    return ConditionSpec(
        "AdaptersReady",
        "True",
        "AdaptersReady",
        f"{len(resolved.served)} adapter(s) served: {', '.join(resolved.names)}"[:1000],
    )


__all__ = ["PENDING_RECHECK_SECONDS", "Resolved", "condition", "resolve"]
