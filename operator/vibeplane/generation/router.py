"""The model router: which ModelDeployments one generation tries, in which order.

Pure policy: ModelDeployment bodies and a workspace in, the choices out; no client, no clock.
It sits below the kinds because the VibeApp path uses it (`vibeplane.vibeapp.models` feeds it
from the ModelDeployment watch cache and reads API keys at call time). The caller tries the
choices in order and falls through to the next on a `ModelCallError` (timeout, 5xx,
unparseable output) without charging the failed attempt.

Policy
------
1. The preferred model: the app's `spec.model` when set (refused with `ModelNotAllowed` when
   the workspace does not allow it: an explicit choice is never silently replaced), else the
   workspace's `models.default`, else the platform default (setting `default_model`).
2. Then the preferred model's `routing.fallbacks`, transitively and breadth first, then (only
   when the app names no model) every other allowed model by `routing.priority` (lower
   first), then name. An app that names a model gets that model or what its ModelDeployment
   declares may stand in for it, never an unrelated one: that would silently change what
   the app is generated with, and what it costs.
3. Only allowed, Ready models with a URL are returned; the rest are named in the error when
   nothing is left (`NoModelAvailable`).
4. Past the workspace's soft budget limit with `budget.onExceeded: Downgrade`, the cheapest
   of those models goes first: by output price, then input price, then tier (small first).

Allowed: the workspace's own ModelDeployments (in its namespace: its admins made them and
it pays for them), and of the shared ones `models.allowed` when the workspace lists any. An
empty list means "the platform default only", and the platform default's fallback chain with
it: the fallbacks are the platform's own choice of what stands in for its default, so a
workspace that restricts nothing is not left without a model when the default is down. A
workspace `models.default` with an empty `allowed` is allowed too.

Name resolution: a ModelDeployment in the workspace's own namespace first (a tenant's
dedicated model), else the platform namespace (shared models). Fallback names resolve the
same way, from the workspace's point of view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from vibeplane.api.common import decimal_of
from vibeplane.api.modeldeployment import Limits, ModelDeploymentSpec, Pricing, Routing
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.generation.rollout import AdapterView, Phase, RolloutView
from vibeplane.kube.conditions import find

Tier = Literal["small", "medium", "large"]
TIER_RANK: Mapping[str, int] = {"small": 0, "medium": 1, "large": 2}
CandidateKey = tuple[str, str]
"""(namespace, name) of a ModelDeployment."""
ChoiceReason = Literal[
    "AppModel", "WorkspaceDefault", "PlatformDefault", "Fallback", "Alternative", "Downgrade"
]


@dataclass(frozen=True)
class Prices:
    """Prices per million tokens and per GPU-hour, exact."""

    input_per_million: Decimal = Decimal(0)
    output_per_million: Decimal = Decimal(0)
    gpu_hour: Decimal = Decimal(0)


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret in the candidate's own namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class ModelCandidate:
    """What the router knows of one ModelDeployment."""

    name: str
    namespace: str
    url: str | None
    """The OpenAI base URL (status.url)."""
    served_model: str
    """What to send as `model`."""
    ready: bool
    tier: Tier = "medium"
    pricing: Prices = field(default_factory=Prices)
    priority: int = 100
    fallbacks: tuple[str, ...] = ()
    api_key_secret_ref: SecretRef | None = None
    output_tokens: int = Limits().output_tokens
    min_output_tokens: int = Limits().min_output_tokens
    """The floor of a bounded generation (see `Limits.min_output_tokens`)."""
    context_tokens: int = Limits().context_tokens
    external: bool = False
    """Served by an external endpoint its spec names (serving.external)."""
    adapters: tuple[AdapterView, ...] = ()
    """LoRA adapters served on it, asked for by name (vibeplane.generation.rollout)."""
    rollout: RolloutView | None = None
    """A candidate adapter on canary, or the rollout's decision."""
    not_ready: str = ""
    """Why it is not Ready (the Ready condition's reason and message), for error messages."""

    @property
    def key(self) -> CandidateKey:
        return (self.namespace, self.name)

    @property
    def usable(self) -> bool:
        return self.ready and bool(self.url)


@dataclass(frozen=True)
class RouteChoice:
    """One model to try, and why it is in the list at this place."""

    candidate: ModelCandidate
    reason: ChoiceReason
    message: str = ""


@dataclass(frozen=True)
class RouteError:
    """Why no model can be tried: NoModelAvailable or ModelNotAllowed."""

    reason: Literal["NoModelAvailable", "ModelNotAllowed"]
    message: str


@dataclass(frozen=True)
class Route:
    """The models to try, in order; empty exactly when `error` says why."""

    choices: tuple[RouteChoice, ...] = ()
    error: RouteError | None = None

    @property
    def first(self) -> RouteChoice | None:
        return self.choices[0] if self.choices else None


def _price_key(candidate: ModelCandidate) -> tuple[Decimal, Decimal, int, int, str, str]:
    return (
        candidate.pricing.output_per_million,
        candidate.pricing.input_per_million,
        TIER_RANK.get(candidate.tier, len(TIER_RANK)),
        candidate.priority,
        candidate.namespace,
        candidate.name,
    )


def route(
    *,
    requested: str | None,
    workspace: WorkspaceSpec | None,
    namespace: str,
    past_soft_limit: bool,
    default_model: str,
    platform_namespace: str,
    candidates: Mapping[CandidateKey, ModelCandidate],
) -> Route:
    """The ordered models to try for one generation (see the module doc for the policy).

    `namespace` is the workspace's (the app's) namespace; `workspace` None means no workspace
    restrictions (e.g. a platform-owned app): everything the platform default reaches.
    """

    def resolve(name: str) -> ModelCandidate | None:
        return candidates.get((namespace, name)) or candidates.get((platform_namespace, name))

    models = workspace.models if workspace is not None else None
    explicit = list(dict.fromkeys(models.allowed)) if models is not None else []
    workspace_default = models.default if models is not None else None

    def chain(start: str) -> list[str]:
        """`start` and its fallbacks, transitively, breadth first, without repeats."""
        order, queue = [start], [start]
        while queue:
            found = resolve(queue.pop(0))
            for name in found.fallbacks if found is not None else ():
                if name not in order:
                    order.append(name)
                    queue.append(name)
        return order

    if explicit:
        allowed = set(explicit)
    else:
        allowed = set(chain(default_model))
        if workspace_default:
            allowed.add(workspace_default)
    own = {
        name
        for candidate_namespace, name in candidates
        if candidate_namespace == namespace and namespace != platform_namespace
    }
    allowed |= own

    preferred: tuple[str, ChoiceReason] | None
    if requested:
        if requested not in allowed:
            return Route(
                error=RouteError(
                    "ModelNotAllowed",
                    f"model {requested!r} is not allowed in this workspace (allowed: "
                    f"{', '.join(sorted(allowed)) or 'none'}); change spec.model, the "
                    "workspace's models.allowed, or create the ModelDeployment in "
                    f"{namespace}",
                )
            )
        preferred = (requested, "AppModel")
    elif workspace_default:
        preferred = (workspace_default, "WorkspaceDefault")
    else:
        preferred = (default_model, "PlatformDefault") if default_model in allowed else None

    ordered: list[tuple[str, ChoiceReason, str]] = []
    if preferred is not None:
        first, *fallbacks = chain(preferred[0])
        ordered.append((first, preferred[1], ""))
        ordered += [(name, "Fallback", f"a fallback of {first}") for name in fallbacks]
    listed = {name for name, _, _ in ordered}

    def priority(name: str) -> tuple[int, str]:
        found = resolve(name)
        return (found.priority if found is not None else 1 << 30, name)

    if not requested:
        ordered += [
            (name, "Alternative", "another allowed model")
            for name in sorted(allowed - listed, key=priority)
        ]

    choices: list[RouteChoice] = []
    skipped: list[str] = []
    seen: set[CandidateKey] = set()
    for name, reason, message in ordered:
        if name not in allowed:
            skipped.append(f"{name}: not allowed in this workspace")
            continue
        found = resolve(name)
        if found is None:
            skipped.append(f"{name}: not found in {namespace} or {platform_namespace}")
            continue
        if found.key in seen:
            continue
        seen.add(found.key)
        if not found.usable:
            skipped.append(
                f"{name} ({found.namespace}): not Ready"
                + (f" ({found.not_ready})" if found.not_ready else "")
            )
            continue
        choices.append(RouteChoice(found, reason, message))

    if not choices:
        return Route(
            error=RouteError(
                "NoModelAvailable",
                "no allowed model is Ready"
                + (f": {'; '.join(skipped)}" if skipped else " (no model is allowed)"),
            )
        )
    downgrade = (
        past_soft_limit
        and workspace is not None
        and workspace.budget is not None
        and workspace.budget.on_exceeded == "Downgrade"
    )
    if downgrade:
        cheapest = min(choices, key=lambda choice: _price_key(choice.candidate))
        if cheapest is not choices[0]:
            choices.remove(cheapest)
            choices.insert(
                0,
                RouteChoice(
                    cheapest.candidate,
                    "Downgrade",
                    "the cheapest allowed model: the workspace is past its soft budget limit",
                ),
            )
    return Route(tuple(choices))


# ---- from ModelDeployment bodies ---------------------------------------------------------


def candidate_from(body: Mapping[str, Any]) -> ModelCandidate | None:
    """The router's view of one ModelDeployment body; None when its spec is invalid."""
    metadata = body.get("metadata") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not name or not namespace:
        return None
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return None
    status: Mapping[str, Any] = body.get("status") or {}
    ready_condition = find(status.get("conditions"), "Ready")
    ready = ready_condition is not None and ready_condition.get("status") == "True"
    not_ready = (
        ""
        if ready
        else (
            f"{ready_condition.get('reason')}: {ready_condition.get('message')}"
            if ready_condition is not None
            else "not reconciled yet"
        )
    )
    pricing = spec.pricing or Pricing()
    limits = spec.limits or Limits()
    routing = spec.routing or Routing()
    external = spec.serving.external
    ref = external.api_key_secret_ref if external is not None else None
    url = status.get("url")
    return ModelCandidate(
        name=name,
        namespace=namespace,
        url=url if isinstance(url, str) and url else None,
        served_model=external.model if external is not None else spec.model.name,
        ready=ready,
        tier=spec.tier,
        pricing=Prices(
            decimal_of(pricing.input_per_million),
            decimal_of(pricing.output_per_million),
            decimal_of(pricing.gpu_hour),
        ),
        priority=routing.priority,
        fallbacks=tuple(routing.fallbacks),
        api_key_secret_ref=SecretRef(ref.name, ref.key) if ref is not None else None,
        output_tokens=limits.output_tokens,
        min_output_tokens=limits.min_output_tokens,
        context_tokens=limits.context_tokens,
        external=external is not None,
        adapters=served_adapters(spec, status),
        rollout=rollout_view(spec, status),
        not_ready=not_ready,
    )


def served_adapters(
    spec: ModelDeploymentSpec, status: Mapping[str, Any]
) -> tuple[AdapterView, ...]:
    """The adapters a generation may ask for: those the controller reports served
    (status.adapters; one from a training that has not succeeded is not, and one a succeeded
    ModelTraining offers is, though the spec does not list it), else those whose spec names
    weights."""
    served = status.get("adapters")
    if isinstance(served, list):
        names = [name for name in served if isinstance(name, str)]
        listed = {a.name: a for a in spec.adapters}
        return tuple(
            AdapterView(name, listed[name].workspace) if name in listed else AdapterView(name)
            for name in names
        )
    return tuple(AdapterView(a.name, a.workspace) for a in spec.adapters if a.uri is not None)


def rollout_view(spec: ModelDeploymentSpec, status: Mapping[str, Any]) -> RolloutView | None:
    """The rollout as routing needs it: the spec's action wins (pin, promote, abort by spec
    take effect at once), else the phase the controller decided for this candidate."""
    rollout = spec.rollout
    if rollout is None:
        return None
    recorded = status.get("rollout") or {}
    # No candidate named: the controller took the newest succeeded ModelTraining's adapter
    # (status.rollout.candidate), with the incumbent it recorded for it.
    automatic = rollout.candidate is None
    candidate = rollout.candidate or recorded.get("candidate")
    incumbent = rollout.incumbent
    if automatic and incumbent is None:
        incumbent = (recorded.get("incumbent") or {}).get("model") or None
    if not isinstance(candidate, str) or candidate not in {
        a.name for a in served_adapters(spec, status)
    }:
        return None  # the candidate is not served (yet): nobody is routed to it
    phase: Phase = "Canary"
    if rollout.action == "Promote":
        phase = "Promoted"
    elif rollout.action == "Abort":
        phase = "RolledBack"
    elif rollout.action == "Pin":
        phase = "Pinned"
    elif recorded.get("candidate") == candidate and recorded.get("phase") in (
        "Promoted",
        "RolledBack",
    ):
        phase = recorded["phase"]
    return RolloutView(
        candidate, incumbent if isinstance(incumbent, str) else None, rollout.canary_percent, phase
    )


def candidates_from(bodies: Iterable[Mapping[str, Any]]) -> dict[CandidateKey, ModelCandidate]:
    """Candidates keyed by (namespace, name), e.g. from the controller's cache:
    `candidates_from(c.body(k) or {} for k in c.known_keys())`."""
    result: dict[CandidateKey, ModelCandidate] = {}
    for body in bodies:
        candidate = candidate_from(body)
        if candidate is not None:
            result[candidate.key] = candidate
    return result


def describe(choices: Sequence[RouteChoice]) -> str:
    """The route in one line, for logs and conditions (never holds keys)."""
    return " -> ".join(
        f"{choice.candidate.namespace}/{choice.candidate.name} ({choice.reason})"
        for choice in choices
    )


__all__ = [
    "ModelCandidate",
    "Prices",
    "Route",
    "RouteChoice",
    "RouteError",
    "SecretRef",
    "candidate_from",
    "candidates_from",
    "describe",
    "route",
]
