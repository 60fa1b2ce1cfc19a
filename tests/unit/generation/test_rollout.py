"""Canary routing and the promote/rollback rule, on generations routed like the router does."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import pytest

from vibeplane.generation.rollout import (
    AdapterView,
    RolloutView,
    Rule,
    Tally,
    choose,
    decide,
)

ADAPTERS = (AdapterView("cand"), AdapterView("acme-own", workspace="acme"))


@pytest.mark.parametrize("percent", [5, 10, 25, 50])
def test_the_canary_share_holds_within_five_percent_over_1000_generations(percent: int) -> None:
    rollout = RolloutView("cand", None, percent, "Canary")
    arms = [
        choose("base1", ADAPTERS, rollout, "team", f"ws-team/app-{i}/1")[1] for i in range(1000)
    ]
    share = arms.count("candidate") / 1000
    assert abs(share - percent / 100) <= 0.05
    assert set(arms) == {"candidate", "incumbent"}


def test_a_retry_of_the_same_generation_stays_in_its_arm() -> None:
    rollout = RolloutView("cand", "old", 50, "Canary")
    first = [choose("b", ADAPTERS, rollout, "team", f"k{i}") for i in range(200)]
    assert first == [choose("b", ADAPTERS, rollout, "team", f"k{i}") for i in range(200)]
    assert {name for name, _ in first} == {"cand", "old"}


def test_a_workspace_gets_its_private_adapter_and_only_its_own() -> None:
    rollout = RolloutView("cand", None, 50, "Canary")
    assert choose("b", ADAPTERS, rollout, "acme", "k") == ("acme-own", "private")
    assert choose("b", ADAPTERS, None, "other", "k") == ("b", "base")


def test_a_decided_rollout_sends_everyone_to_the_winner() -> None:
    promoted = RolloutView("cand", None, 10, "Promoted")
    rolled_back = RolloutView("cand", "old", 10, "RolledBack")
    assert {choose("b", ADAPTERS, promoted, "t", f"k{i}")[0] for i in range(100)} == {"cand"}
    assert {choose("b", ADAPTERS, rolled_back, "t", f"k{i}")[0] for i in range(100)} == {"old"}


def simulate(
    succeeds: Callable[[str, random.Random], bool], rule: Rule, percent: int = 20
) -> tuple[str, Tally, Tally, str]:
    """Route generations, let the test's model succeed or fail, tally each arm and ask the
    rule after every one, as the controller would; stop at the first decision."""
    rng = random.Random(17)
    rollout = RolloutView("cand", None, percent, "Canary")
    tallies = {"incumbent": Tally(), "candidate": Tally()}
    for i in range(200_000):
        model, arm = choose("base1", ADAPTERS, rollout, "team", f"ws-team/app-{i}/1")
        tallies[arm] = tallies[arm].add(succeeds(model, rng), Decimal("0.01"), 2.0)
        verdict = decide(tallies["incumbent"], tallies["candidate"], rule)
        if verdict.decision != "Continue":
            return verdict.decision, tallies["incumbent"], tallies["candidate"], verdict.message
    raise AssertionError("no decision")


def test_a_candidate_failing_half_its_apps_is_rolled_back() -> None:
    def model(name: str, rng: random.Random) -> bool:
        return rng.random() < (0.5 if name == "cand" else 0.9)

    decision, incumbent, candidate, message = simulate(model, Rule(min_samples=100))
    assert decision == "RollBack"
    assert candidate.generations == 100  # at the first look
    assert (candidate.rate or 0) < 0.65 < 0.8 < (incumbent.rate or 0)
    assert message.startswith("candidate ")
    assert "the candidate does worse" in message


@pytest.mark.parametrize("candidate_rate", [0.9, 0.95])
def test_a_candidate_at_least_as_good_is_promoted(candidate_rate: float) -> None:
    def model(name: str, rng: random.Random) -> bool:
        return rng.random() < (candidate_rate if name == "cand" else 0.9)

    decision, _, candidate, message = simulate(
        model, Rule(min_samples=100, max_samples=5000, margin=0.03)
    )
    assert decision == "Promote", message
    assert "at least as good" in message
    assert candidate.generations >= 100


def test_nothing_is_decided_below_the_minimum_sample() -> None:
    verdict = decide(Tally(99, 99), Tally(99, 0), Rule(min_samples=100))
    assert verdict.decision == "Continue"
    assert verdict.z_score is None


def test_undecided_at_the_maximum_is_rolled_back() -> None:
    # Slightly worse, not significantly: never shown at least as good.
    verdict = decide(Tally(200, 180), Tally(200, 172), Rule(min_samples=50, max_samples=200))
    assert verdict.decision == "RollBack"
    assert "not shown at least as good within 200" in verdict.message


def test_arms_without_spread_still_carry_the_uncertainty_of_their_size() -> None:
    # 10/10 against 10/10 is not yet "at least as good" within 2 points; within 20 it is.
    assert decide(Tally(10, 10), Tally(10, 10), Rule(min_samples=10)).decision == "Continue"
    assert decide(Tally(10, 10), Tally(10, 10), Rule(min_samples=10, margin=0.2)).decision == (
        "Promote"
    )
    assert decide(Tally(9, 9), Tally(9, 9), Rule(min_samples=9, margin=0.2)).decision == (
        "Continue"
    )
    # A worse incumbent never makes the candidate harder to promote.
    assert decide(Tally(10, 9), Tally(10, 10), Rule(min_samples=10, margin=0.2)).decision == (
        "Promote"
    )
