"""Pure: a ModelDeployment's measured outcomes folded into its status.

- economics: generated apps, tokens, token cost and GPU cost, and cost per generated app
  ((token cost + GPU-hours x gpuHour) / apps), the figure a platform holds against a frontier
  API's per app;
- rollout: each arm's tally on the same traffic (the candidate adapter against the incumbent),
  the rule's verdict (vibeplane.generation.rollout.decide) or the action the spec asks for, the
  phase, and the Event to post when it changes.

Totals live in the model's outcomes ConfigMap (vibeplane.generation.outcomes), written once
per settled generation by compare-and-swap; everything here is derived from them and from the
previous status (the rollout's baselines and its decision), so a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from vibeplane.api import modeldeployment as api
from vibeplane.generation.outcomes import Totals
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


def economics(totals: Mapping[str, Totals], gpu_hours: str, pricing: api.Pricing) -> dict[str, Any]:
    """status.economics from the totals of every model served (the base model and its
    adapters); GPU cost from the metered GPU-hours (status.metering.gpuHours) at the current
    price."""
    apps = sum(t.generations for t in totals.values())
    token_cost = sum((t.cost for t in totals.values()), Decimal(0))
    hours = _decimal(gpu_hours)
    gpu_cost = hours * _decimal(pricing.gpu_hour)
    return api.ModelEconomics(
        apps=apps,
        tokens_in=sum(t.tokens_in for t in totals.values()),
        tokens_out=sum(t.tokens_out for t in totals.values()),
        token_cost=_text(token_cost),
        gpu_hours=_text(hours),
        gpu_cost=_text(gpu_cost),
        cost_per_app=_text((token_cost + gpu_cost) / apps) if apps else None,
    ).to_wire()


def _baseline(totals: Totals) -> dict[str, Any]:
    return api.ArmBaseline(
        generations=totals.generations,
        successes=totals.successes,
        cost=format(totals.cost.normalize(), "f") if totals.cost else "0",
        latency_seconds=str(totals.latency_seconds),
    ).to_wire()


def _since(totals: Totals, baseline: Mapping[str, Any]) -> Tally:
    """The arm: the model's totals less its totals when the rollout started."""
    return Tally(
        max(0, totals.generations - int(baseline.get("generations") or 0)),
        max(0, totals.successes - int(baseline.get("successes") or 0)),
        max(Decimal(0), totals.cost - _decimal(baseline.get("cost"))),
        max(0.0, totals.latency_seconds - float(baseline.get("latencySeconds") or 0.0)),
    )


def _arm(model: str, tally: Tally, baseline: Mapping[str, Any]) -> dict[str, Any]:
    return api.ArmStatus(
        model=model,
        generations=tally.generations,
        successes=tally.successes,
        success_rate=f"{tally.rate:.4f}" if tally.rate is not None else None,
        cost_per_app=_text(tally.cost_per_app) if tally.cost_per_app is not None else None,
        latency_seconds=f"{tally.mean_latency:.3f}" if tally.mean_latency is not None else None,
        counted_from=api.ArmBaseline.model_validate(baseline),
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
    totals: Mapping[str, Totals],
    now: datetime,
    automatic: str | None = None,
) -> RolloutResult:
    """Each arm from its model's totals since the rollout started (the baselines recorded in
    status when the candidate or incumbent changed), then the spec's action or the rule.

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
    recorded_incumbent = before.get("incumbent") or {}
    same = same and recorded_incumbent.get("model") == incumbent_model
    incumbent_totals = totals.get(incumbent_model, Totals())
    candidate_totals = totals.get(candidate_name, Totals())
    # A new rollout counts from the totals now; one under way from where it started.
    incumbent_from = (recorded_incumbent.get("countedFrom") if same else None) or _baseline(
        incumbent_totals
    )
    candidate_from = (
        (before.get("candidateArm") or {}).get("countedFrom") if same else None
    ) or _baseline(candidate_totals)
    incumbent = _since(incumbent_totals, incumbent_from)
    candidate = _since(candidate_totals, candidate_from)
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
        "incumbent": _arm(incumbent_model, incumbent, incumbent_from),
        "candidateArm": _arm(candidate_name, candidate, candidate_from),
        "zScore": f"{verdict.z_score:.3f}" if verdict.z_score is not None else None,
        "decision": message,
        "decidedAt": decided_at if decided else None,
    }
    condition = ConditionSpec(
        "RolloutDecided", "True" if decided else "False", phase, f"{candidate_name}: {message}"
    )
    return RolloutResult({k: v for k, v in status.items() if v is not None}, condition, event)


__all__ = ["RolloutResult", "economics", "rollout"]
