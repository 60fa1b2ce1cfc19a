"""Pure: which of a ModelDeployment's adapters can be served now, and where their weights are.

An adapter names its weights (`uri`) or the ModelTraining that produced them (`training`, in
the same namespace): then it is served once that run has Succeeded, from the URI in its status.
Until then it is pending: left out of the LLMInferenceService and of routing (a rollout whose
candidate is pending routes everything to the incumbent), and named in AdaptersReady.

A ModelTraining may also offer its adapter to a deployment (its spec.output.modelDeployment):
once it has succeeded, the adapter is served there without being listed in spec (the operator
never writes spec; status.adapters lists it), and a rollout without a named candidate takes the
newest such run as its candidate: a finished run becomes a candidate by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
    candidate: str | None = None
    """The rollout's candidate when the spec names none: the newest offered adapter."""

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.served]


@dataclass(frozen=True)
class Offered:
    """A succeeded ModelTraining's adapter, offered to a deployment."""

    name: str
    uri: str
    training: str
    created: str


def offered(deployment: str, trainings: Iterable[Mapping[str, Any]]) -> list[Offered]:
    """The adapters of succeeded ModelTrainings whose output names `deployment`, oldest
    first (by creation, then name)."""
    found: list[Offered] = []
    for run in trainings:
        metadata = run.get("metadata") or {}
        output = (run.get("spec") or {}).get("output") or {}
        status = run.get("status") or {}
        uri, name = status.get("adapterUri"), output.get("adapterName")
        if (
            output.get("modelDeployment") == deployment
            and status.get("phase") == "Succeeded"
            and isinstance(uri, str)
            and uri
            and isinstance(name, str)
            and name
        ):
            found.append(
                Offered(
                    name, uri, str(metadata.get("name")), str(metadata.get("creationTimestamp"))
                )
            )
    return sorted(found, key=lambda o: (o.created, o.training))


def resolve(
    spec: api.ModelDeploymentSpec,
    training: Callable[[str], Mapping[str, Any] | None],
    offers: Iterable[Offered] = (),
) -> Resolved:
    """`training(name)`: the ModelTraining of that name in the model's namespace, or None;
    `offers`: the adapters succeeded runs offer this deployment (`offered`), oldest first.
    An offer under a name the spec lists is left out: the spec's adapter wins."""
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
    listed = {adapter.name for adapter in spec.adapters}
    newest = {offer.name: offer for offer in offers if offer.name not in listed}
    extra = sorted(newest.values(), key=lambda o: (o.created, o.training))
    served.extend((offer.name, offer.uri) for offer in extra)
    automatic = spec.rollout is not None and spec.rollout.candidate is None
    candidate = extra[-1].name if automatic and extra else None
    return Resolved(tuple(served), tuple(pending), candidate)


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


__all__ = ["PENDING_RECHECK_SECONDS", "Offered", "Resolved", "condition", "offered", "resolve"]
