"""Pure: a ModelDeployment's measured outcomes folded into its status.

- economics: generated apps, tokens, token cost and GPU cost, and cost per generated app
  ((token cost + GPU-hours x gpuHour) / apps), the figure a platform holds against a frontier
  API's per app;
- rollout: each arm's tally on the same traffic (the candidate adapter against the incumbent),
  the rule's verdict (vibeplane.generation.rollout.decide) or the action the spec asks for, the
  phase, and the Event to post when it changes.

Totals live in status (previous status + what is new), so a restart keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from vibeplane.api import modeldeployment as api
from vibeplane.generation.outcomes import Outcome
from vibeplane.generation.rollout import Rule, Tally, decide
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.modeldeployment.desired import served_model as base_model
from vibeplane.timestamps import format_time

MONEY_PLACES = Decimal("0.000001")


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except InvalidOperation:
        return Decimal(0)


def _text(value: Decimal) -> str:
    text = format(value.quantize(MONEY_PLACES).normalize(), "f")
    return text


def economics(
    previous: Mapping[str, Any] | None,
    outcomes: Sequence[Outcome],
    gpu_hours: str,
    pricing: api.Pricing,
) -> dict[str, Any]:
    """status.economics: the previous totals plus `outcomes`; GPU cost from the metered
    GPU-hours (status.metering.gpuHours) at the current price."""
    before = previous or {}
    apps = int(before.get("apps") or 0) + len(outcomes)
    tokens_in = int(before.get("tokensIn") or 0) + sum(o.tokens_in for o in outcomes)
    tokens_out = int(before.get("tokensOut") or 0) + sum(o.tokens_out for o in outcomes)
    token_cost = _decimal(before.get("tokenCost")) + sum((o.cost for o in outcomes), Decimal(0))
    hours = _decimal(gpu_hours)
    gpu_cost = hours * _decimal(pricing.gpu_hour)
    return api.ModelEconomics(
        apps=apps,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        token_cost=_text(token_cost),
        gpu_hours=_text(hours),
        gpu_cost=_text(gpu_cost),
        cost_per_app=_text((token_cost + gpu_cost) / apps) if apps else None,
    ).to_wire()


def _tally(arm: Mapping[str, Any] | None) -> Tally:
    arm = arm or {}
    generations = int(arm.get("generations") or 0)
    cost_per_app = _decimal(arm.get("costPerApp"))
    latency = float(arm.get("latencySeconds") or 0.0)
    return Tally(
        generations,
        int(arm.get("successes") or 0),
        cost_per_app * generations,
        latency * generations,
    )


def _arm(model: str, tally: Tally) -> dict[str, Any]:
    return api.ArmStatus(
        model=model,
        generations=tally.generations,
        successes=tally.successes,
        success_rate=f"{tally.rate:.4f}" if tally.rate is not None else None,
        cost_per_app=_text(tally.cost_per_app) if tally.cost_per_app is not None else None,
        latency_seconds=f"{tally.mean_latency:.3f}" if tally.mean_latency is not None else None,
    ).to_wire()


@dataclass(frozen=True)
class RolloutResult:
    """status.rollout, the Rollout condition, and an Event to post (type, reason, message)
    when the phase changed to a decision."""

    status: dict[str, Any] | None
    condition: ConditionSpec | None
    event: tuple[Literal["Normal", "Warning"], str, str] | None = None


def rollout(
    spec: api.ModelDeploymentSpec,
    previous: Mapping[str, Any] | None,
    outcomes: Sequence[Outcome],
    now: datetime,
    automatic: str | None = None,
) -> RolloutResult:
    """Fold `outcomes` into the arms and apply the spec's action or the rule.

    `automatic`: the candidate when the spec names none (the newest succeeded ModelTraining
    offered to this deployment). Its incumbent is the spec's, else the one recorded for it,
    else the candidate the previous rollout promoted (the winner stays the bar), else the base
    model."""
    if spec.rollout is None:
        return RolloutResult(None, None)
    before = previous or {}
    if spec.rollout.candidate is None and automatic is None:
        condition = ConditionSpec(
            "RolloutDecided",
            "False",
            "NoCandidate",
            "no succeeded ModelTraining offers an adapter to this deployment yet "
            "(its spec.output.modelDeployment)",
        )
        return RolloutResult(None, condition)
    wanted = spec.rollout
    candidate_name = wanted.candidate or automatic or ""
    same = before.get("candidate") == candidate_name
    incumbent_model = wanted.incumbent or base_model(spec)
    if automatic is not None and wanted.incumbent is None:
        recorded = str((before.get("incumbent") or {}).get("model") or "")
        if same and recorded:
            incumbent_model = recorded
        elif not same and before.get("phase") == "Promoted" and before.get("candidate"):
            incumbent_model = str(before["candidate"])
        elif not same and recorded:
            incumbent_model = recorded
    incumbent = _tally(before.get("incumbent") if same else None)
    candidate = _tally(before.get("candidateArm") if same else None)
    for outcome in outcomes:
        if outcome.served_model == candidate_name:
            candidate = candidate.add(outcome.success, outcome.cost, outcome.latency_seconds)
        elif outcome.served_model == incumbent_model:
            incumbent = incumbent.add(outcome.success, outcome.cost, outcome.latency_seconds)
    rule = Rule(
        min_samples=wanted.min_samples,
        max_samples=wanted.max_samples,
        margin=float(wanted.margin),
        z=float(wanted.z_threshold),
    )
    verdict = decide(incumbent, candidate, rule)
    was = before.get("phase") if same else None
    decided_at = before.get("decidedAt") if same else None
    if wanted.action == "Promote":
        phase, message = "Promoted", f"promoted by spec.rollout.action; {verdict.message}"
    elif wanted.action == "Abort":
        phase, message = "RolledBack", f"aborted by spec.rollout.action; {verdict.message}"
    elif was in ("Promoted", "RolledBack"):
        phase, message = str(was), str(before.get("decision") or verdict.message)
    elif wanted.action == "Pin":
        phase, message = "Pinned", f"pinned by spec.rollout.action; {verdict.message}"
    elif verdict.decision == "Promote":
        phase, message = "Promoted", verdict.message
    elif verdict.decision == "RollBack":
        phase, message = "RolledBack", verdict.message
    else:
        phase, message = "Canary", verdict.message
    decided = phase in ("Promoted", "RolledBack")
    event = None
    if decided and was != phase:
        decided_at = format_time(now)
        kind: Literal["Normal", "Warning"] = "Normal" if phase == "Promoted" else "Warning"
        event = (
            kind,
            "AdapterPromoted" if phase == "Promoted" else "AdapterRolledBack",
            f"{candidate_name}: {message}",
        )
    status = {
        "candidate": candidate_name,
        "phase": phase,
        "canaryPercent": 0 if decided else wanted.canary_percent,
        "incumbent": _arm(incumbent_model, incumbent),
        "candidateArm": _arm(candidate_name, candidate),
        "zScore": f"{verdict.z_score:.3f}" if verdict.z_score is not None else None,
        "decision": message,
        "decidedAt": decided_at if decided else None,
    }
    condition = ConditionSpec(
        "RolloutDecided", "True" if decided else "False", phase, f"{candidate_name}: {message}"
    )
    return RolloutResult({k: v for k, v in status.items() if v is not None}, condition, event)


__all__ = ["RolloutResult", "economics", "rollout"]
