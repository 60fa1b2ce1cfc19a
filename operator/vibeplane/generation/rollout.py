"""Adapters and rollouts, pure: which model name a generation asks for, and when a candidate
adapter is promoted or rolled back.

Which model name (`choose`)
---------------------------
1. The workspace's own private adapter on this base model (adapter.workspace == the
   workspace): its apps are generated with what it trained on its own records.
2. A rollout: decided (status.rollout.phase Promoted/RolledBack) -> the winner for everyone;
   measuring (Canary, Pinned) -> the candidate for `canaryPercent` of generations, the
   incumbent (an adapter, or the base model) for the rest. The split hashes the generation's
   key, so a retry of the same generation stays in its arm and the share holds per key, not
   per process.
3. Otherwise the base model.

The rule (`decide`)
-------------------
Success is a generation whose revision passed validation without a fix-up. With n and s the
generations and successes of each arm, p = s / n, the pooled rate P and
se = sqrt(P (1 - P) (1/n_candidate + 1/n_incumbent)):

- nothing is decided before both arms have `minSamples` generations;
- RollBack when the candidate is worse: (p_c - p_i) / se < -z;
- Promote when it is not worse by more than `margin` (non-inferiority):
  (p~_c - p~_i + margin) / se~ > z, with Agresti and Caffo's adjustment (one success and one
  failure added to each arm: p~ = (s + 1) / (n + 2), se~ = sqrt(sum p~ (1 - p~) / (n + 2))),
  so that arms without spread (10/10 against 10/10) still carry the uncertainty of their size
  instead of a zero standard error: a perfect candidate against a perfect incumbent is
  promoted once n + 2 > sqrt(2) z / margin per arm (n >= 115 at margin 0.02, n >= 10 at 0.2);
- otherwise keep measuring, up to `maxSamples` per arm, then RollBack (it did not show it is at
  least as good).

The test is looked at on every reconcile once the minimum is reached; repeated looks raise the
error rates above the nominal one-sided level of `z` (1.645: 5 %), which the minimum sample and
a stricter z (2.326: 1 %) bound in practice. A candidate failing half its apps against an
incumbent at 90 % is rolled back at the first look (z < -6 at 100 per arm).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Arm = Literal["base", "private", "incumbent", "candidate"]
Phase = Literal["Canary", "Pinned", "Promoted", "RolledBack"]
Decision = Literal["Continue", "Promote", "RollBack"]
SHARE_BUCKETS = 10_000


@dataclass(frozen=True)
class AdapterView:
    """An adapter as the router sees it."""

    name: str
    workspace: str | None = None


@dataclass(frozen=True)
class RolloutView:
    """A rollout as the router sees it: the spec's arms and share, the status's phase."""

    candidate: str
    incumbent: str | None = None
    canary_percent: int = 10
    phase: Phase = "Canary"


def in_canary(key: str, percent: int) -> bool:
    """Whether the generation `key` falls in the first `percent` % of the hash space."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % SHARE_BUCKETS
    return bucket < percent * SHARE_BUCKETS // 100


def choose(
    base: str,
    adapters: Sequence[AdapterView],
    rollout: RolloutView | None,
    workspace: str,
    key: str,
) -> tuple[str, Arm]:
    """The model name to ask for and which arm it is (see the module doc)."""
    for adapter in adapters:
        if workspace and adapter.workspace == workspace:
            return adapter.name, "private"
    if rollout is None:
        return base, "base"
    incumbent = rollout.incumbent or base
    if rollout.phase == "Promoted":
        return rollout.candidate, "candidate"
    if rollout.phase == "RolledBack":
        return incumbent, "incumbent"
    if in_canary(key, rollout.canary_percent):
        return rollout.candidate, "candidate"
    return incumbent, "incumbent"


@dataclass(frozen=True)
class Tally:
    """What one arm has measured."""

    generations: int = 0
    successes: int = 0
    cost: Decimal = Decimal(0)
    """Total cost of its generations."""
    latency_seconds: float = 0.0
    """Total model latency of its generations."""

    @property
    def rate(self) -> float | None:
        return self.successes / self.generations if self.generations else None

    @property
    def cost_per_app(self) -> Decimal | None:
        return self.cost / self.generations if self.generations else None

    @property
    def mean_latency(self) -> float | None:
        return self.latency_seconds / self.generations if self.generations else None

    def add(self, success: bool, cost: Decimal, latency_seconds: float) -> Tally:
        return Tally(
            self.generations + 1,
            self.successes + int(success),
            self.cost + cost,
            self.latency_seconds + latency_seconds,
        )


@dataclass(frozen=True)
class Rule:
    """The decision rule's parameters (spec.rollout)."""

    min_samples: int = 100
    max_samples: int = 2000
    margin: float = 0.02
    z: float = 1.645


@dataclass(frozen=True)
class Verdict:
    """The rule's answer, with its numbers."""

    decision: Decision
    z_score: float | None
    """(p_c - p_i) / se: negative when the candidate does worse."""
    message: str


def _rate(tally: Tally) -> str:
    return f"{tally.successes}/{tally.generations} ({(tally.rate or 0.0):.1%})"


def _noninferiority(candidate: Tally, incumbent: Tally, margin: float) -> float:
    """(p~_c - p~_i + margin) / se~, Agresti-Caffo adjusted (see the module doc)."""

    def adjusted(tally: Tally) -> tuple[float, float]:
        rate = (tally.successes + 1) / (tally.generations + 2)
        return rate, rate * (1 - rate) / (tally.generations + 2)

    (p_c, v_c), (p_i, v_i) = adjusted(candidate), adjusted(incumbent)
    return (p_c - p_i + margin) / math.sqrt(v_c + v_i)


def decide(incumbent: Tally, candidate: Tally, rule: Rule) -> Verdict:
    """Promote, roll back, or keep measuring (see the module doc)."""
    numbers = f"candidate {_rate(candidate)}, incumbent {_rate(incumbent)}"
    fewest = min(incumbent.generations, candidate.generations)
    if fewest < rule.min_samples:
        return Verdict(
            "Continue",
            None,
            f"{numbers}: waiting for {rule.min_samples} generations per arm",
        )
    p_c, p_i = (
        candidate.successes / candidate.generations,
        incumbent.successes / incumbent.generations,
    )
    pooled = (candidate.successes + incumbent.successes) / (
        candidate.generations + incumbent.generations
    )
    variance = pooled * (1 - pooled) * (1 / candidate.generations + 1 / incumbent.generations)
    # Both arms all successes (or all failures): no difference to test; a floor keeps z finite
    # (it is 0 then).
    se = math.sqrt(variance) if variance > 0 else 1e-9
    z = (p_c - p_i) / se
    z_noninferior = _noninferiority(candidate, incumbent, rule.margin)
    stated = f"{numbers}, z {z:.2f}"
    if z < -rule.z:
        return Verdict("RollBack", z, f"{stated} < -{rule.z:g}: the candidate does worse")
    if z_noninferior > rule.z:
        return Verdict(
            "Promote",
            z,
            f"{stated}; non-inferiority (margin {rule.margin:g}) z {z_noninferior:.2f} > "
            f"{rule.z:g}: "
            "at least as good",
        )
    if fewest >= rule.max_samples:
        return Verdict(
            "RollBack", z, f"{stated}: not shown at least as good within {rule.max_samples}"
        )
    return Verdict("Continue", z, f"{stated}: not decided yet")


__all__ = [
    "AdapterView",
    "RolloutView",
    "Rule",
    "Tally",
    "Verdict",
    "choose",
    "decide",
    "in_canary",
]
