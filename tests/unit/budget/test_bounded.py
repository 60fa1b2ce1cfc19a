"""Reservations that fit the remaining budget, the waiting line, and the numbers of a refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.budget.explain import money, price, refusal_message
from vibeplane.budget.ledger import (
    WAITER_TTL,
    Amount,
    Ask,
    Ledger,
    Limits,
    admittable,
    from_document,
    leave_line,
    release,
    reserve,
    roll_over,
    settle,
    to_document,
    token_cost,
)
from vibeplane.budget.periods import period_of

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DECEMBER = period_of("Monthly", NOW)
BUILTIN = Ask(805, 8192, 1024, Decimal("0.10"), Decimal("0.40"), "builtin")
BUDGET = Limits(money=Decimal("0.005"))


def fresh() -> Ledger:
    return Ledger(workspace="w", period=DECEMBER)


def test_a_whole_reservation_when_it_fits() -> None:
    ledger, result = reserve(fresh(), "a", BUILTIN, BUDGET, NOW, app="ns/a")
    assert (result.decision, result.output_tokens, result.bounded) == ("reserved", 8192, False)
    assert ledger.reservations["a"].amount == BUILTIN.amount(8192)
    assert ledger.reservations["a"].output_tokens == 8192


def test_what_remains_is_reserved_down_to_the_floor_and_the_bound_is_exact() -> None:
    ledger, _ = reserve(fresh(), "a", BUILTIN, BUDGET, NOW)
    ledger, result = reserve(ledger, "b", BUILTIN, BUDGET, NOW)
    assert result.decision == "reserved"
    assert result.bounded
    bound = result.output_tokens
    assert bound is not None
    assert BUILTIN.floor <= bound < BUILTIN.max_output
    first = ledger.reservations["a"].amount
    assert not BUDGET.exceeded_by(first + BUILTIN.amount(bound))
    # One token more would not have fit: the bound is the largest that does.
    assert BUDGET.exceeded_by(first + BUILTIN.amount(bound + 1))
    # Asking again returns the same bound (a retried attempt sends the same max_tokens).
    assert reserve(ledger, "b", BUILTIN, BUDGET, NOW)[1].output_tokens == bound


def test_below_the_floor_it_is_refused_with_the_numbers() -> None:
    ledger, _ = reserve(fresh(), "a", BUILTIN, BUDGET, NOW)
    ledger, _ = settle(ledger, "a", Amount(3855, Decimal("0.0046")))
    ledger, result = reserve(ledger, "b", BUILTIN, BUDGET, NOW, app="ns/b")
    assert result.decision == "refused"
    assert result.over == ("money",)
    assert result.refusal is not None
    message = refusal_message(result.refusal)
    assert "needs at least 0.00049 (1,024 output tokens, the floor of builtin, at 0.40" in message
    assert "up to 0.00336 (8,192 output tokens at 0.40 per million)" in message
    assert "0.00040 remains of 0.005 for 2026-12 (0.00460 settled, 0 reserved" in message
    assert [key for key, _ in ledger.line(NOW)] == ["b"]


def test_a_token_budget_says_tokens() -> None:
    limits = Limits(tokens=1800)
    _, result = reserve(fresh(), "a", BUILTIN, limits, NOW)
    assert result.decision == "refused"
    assert result.refusal is not None
    message = refusal_message(result.refusal)
    assert "needs at least 1,829 tokens" in message
    assert "1,800 tokens remain of 1,800 for 2026-12" in message


def test_the_line_is_served_oldest_first_and_wakes_only_who_fits() -> None:
    ledger, _ = reserve(fresh(), "a", BUILTIN, BUDGET, NOW)
    ledger, _ = reserve(ledger, "b", BUILTIN, BUDGET, NOW)
    for index, name in enumerate("cdef"):
        ledger, result = reserve(
            ledger, name, BUILTIN, BUDGET, NOW + timedelta(seconds=index), app=f"ns/{name}"
        )
        assert result.decision == "refused"
    assert admittable(ledger, BUDGET, NOW) == []
    ledger, _ = settle(ledger, "a", Amount(3855, Decimal("0.00136")))
    # The room freed fits one: the oldest is woken, and a younger one may not take it.
    assert [key for key, _ in admittable(ledger, BUDGET, NOW)] == ["c"]
    ledger, younger = reserve(ledger, "f", BUILTIN, BUDGET, NOW, app="ns/f")
    assert younger.decision == "refused"
    assert younger.refusal is not None
    assert younger.refusal.held.money > 0
    assert "kept for apps waiting longer" in refusal_message(younger.refusal)
    ledger, oldest = reserve(ledger, "c", BUILTIN, BUDGET, NOW, app="ns/c")
    assert oldest.decision == "reserved"
    assert "c" not in ledger.waiting
    # A raised limit wakes as many as now fit, in order.
    raised = Limits(money=Decimal("0.02"))
    assert [key for key, _ in admittable(ledger, raised, NOW)] == ["d", "e", "f"]


def test_a_waiter_that_stops_asking_leaves_the_line() -> None:
    ledger, _ = reserve(fresh(), "a", BUILTIN, Limits(money=Decimal("0.0001")), NOW, app="x/a")
    assert ledger.line(NOW)
    assert not ledger.line(NOW + WAITER_TTL)
    assert leave_line(ledger, "a").waiting == {}
    ledger, _ = release(ledger, "a")
    assert ledger.waiting == {}


def test_the_waiting_line_round_trips() -> None:
    ledger, _ = reserve(fresh(), "a", BUILTIN, BUDGET, NOW)
    ledger, _ = reserve(ledger, "b", BUILTIN, BUDGET, NOW)
    ledger, _ = reserve(ledger, "c", BUILTIN, BUDGET, NOW, app="ns/c")
    document = to_document(ledger)
    assert document["waiting"]["c"]["app"] == "ns/c"
    assert from_document(document) == ledger
    assert to_document(from_document(document)) == document


def test_numbers_read_like_money() -> None:
    assert money(Decimal("0.0033573")) == "0.00336"
    assert money(Decimal("0.00028")) == "0.00028"
    assert money(Decimal("0.000004")) == "0.000004"
    assert money(Decimal("0.00002")) == "0.00002"
    assert money(Decimal("0.0000043")) == "0.0000043"
    assert money(Decimal(0)) == "0"
    assert price(Decimal("0.4")) == "0.40"
    assert price(Decimal("0.125")) == "0.125"


# ---- the property: concurrent arrivals on a compare-and-swap store --------------------------


@dataclass
class CasStore:
    """The ledger document behind compare-and-swap, as `LedgerStore.update` uses it."""

    ledger: Ledger
    version: int = 0
    versions: list[Ledger] = field(default_factory=list)

    def write(self, read_version: int, after: Ledger) -> bool:
        if read_version != self.version:
            return False  # 409: recompute on the fresh copy
        if after != self.ledger:
            self.ledger, self.version = after, self.version + 1
            self.versions.append(after)
        return True


asks = st.builds(
    Ask,
    prompt_tokens=st.integers(0, 2000),
    max_output=st.integers(16, 8192),
    min_output=st.integers(16, 4096),
    input_per_million=st.decimals("0", "2", places=1),
    output_per_million=st.decimals("0", "2", places=1),
)


@settings(max_examples=300, deadline=None)
@given(
    money_limit=st.one_of(st.none(), st.decimals("0", "0.05", places=4)),
    token_limit=st.one_of(st.none(), st.integers(0, 40_000)),
    arrivals=st.lists(asks, min_size=2, max_size=12),
    schedule=st.lists(
        st.tuples(st.integers(0, 1000), st.integers(0, 100)), min_size=40, max_size=200
    ),
)
def test_no_interleaving_settles_above_the_limit_or_refuses_what_fits(
    money_limit: Decimal | None,
    token_limit: int | None,
    arrivals: list[Ask],
    schedule: list[tuple[int, int]],
) -> None:
    """Generations arrive and race (each reads, computes, and writes only if nobody wrote in
    between); admitted ones settle what they used (never more than their bound), some are
    cut off or fail. On every version: the settled spend is within the hard limits, and every
    refusal is of a generation whose floor did not fit in what the settled spend, the
    reservations in flight and the older waiters that fit left over."""
    limits = Limits(tokens=token_limit, money=money_limit)
    store = CasStore(fresh())
    # Each generation: its phase ("new", "read", "running", "done") and what it read.
    phase = ["new"] * len(arrivals)
    read: dict[int, tuple[int, Ledger]] = {}
    granted: dict[int, int] = {}
    clock = [NOW]

    def key(index: int) -> str:
        return f"app{index}:1:0"

    def step(index: int, draw: int) -> None:
        ask = arrivals[index]
        if phase[index] in ("new", "waiting"):
            read[index] = (store.version, store.ledger)
            phase[index] = "read"
            return
        if phase[index] == "read":
            version, before = read[index]
            after, result = reserve(before, key(index), ask, limits, clock[0], app=f"ns/{index}")
            if not store.write(version, after):
                phase[index] = "new"  # conflict: read again
                return
            taken = _taken_before(before, key(index), limits, clock[0])
            if result.decision in ("reserved", "existing"):
                bound = result.output_tokens
                assert bound is not None
                assert ask.floor <= bound <= ask.max_output
                # It fits beside what older waiters that fit would take (oldest first), and
                # one more token would not (the largest bound that fits).
                assert not limits.exceeded_by(taken + ask.amount(bound))
                assert bound == ask.max_output or limits.exceeded_by(taken + ask.amount(bound + 1))
                granted[index] = bound
                phase[index] = "running"
            else:
                assert result.decision == "refused"
                assert limits.exceeded_by(taken + ask.amount(ask.floor)), "refused what fits"
                phase[index] = "waiting"
            return
        if phase[index] == "running":
            bound = granted[index]
            if draw % 7 == 0:
                store.ledger, _ = release(store.ledger, key(index))
            else:
                # The model used at most the bound (max_tokens), on a prompt the estimate covers.
                used_out = bound if draw % 5 == 0 else bound * draw // 100  # 0 mod 5: cut off
                used_in = ask.prompt_tokens * (50 + draw // 2) // 100
                cost = token_cost(used_in, used_out, ask.input_per_million, ask.output_per_million)
                store.ledger, _ = settle(store.ledger, key(index), Amount(used_in + used_out, cost))
            store.version += 1
            store.versions.append(store.ledger)
            phase[index] = "done"

    for turn, draw in schedule:
        index = turn % len(arrivals)
        if phase[index] != "done":
            step(index, draw)
            clock[0] += timedelta(seconds=1)
    for version in store.versions:
        assert not limits.exceeded_by(version.settled), version.settled


def _taken_before(before: Ledger, key: str, limits: Limits, now: datetime) -> Amount:
    """The settled spend, the live reservations, and what the waiters older than `key` that
    fit would take (computed here afresh): what a generation's reservation must fit beside."""
    used = before.settled + before.reserved(now)
    mine = before.waiting.get(key)
    since = mine.since if mine is not None and now - mine.seen < WAITER_TTL else now
    older = sorted(
        (w.since, k, w)
        for k, w in before.waiting.items()
        if now - w.seen < WAITER_TTL and (w.since, k) < (since, key)
    )
    for _, _, waiter in older:
        low, high = waiter.ask.floor, waiter.ask.max_output
        if limits.exceeded_by(used + waiter.ask.amount(low)):
            continue
        while low < high:  # the largest output that fits
            middle = (low + high + 1) // 2
            if limits.exceeded_by(used + waiter.ask.amount(middle)):
                high = middle - 1
            else:
                low = middle
        used = used + waiter.ask.amount(low)
    return used


def test_a_new_period_admits_the_line_in_order() -> None:
    """Waiters that keep asking (every few minutes) are still in line when the period ends."""
    late = datetime(2026, 12, 31, 23, 55, tzinfo=UTC)
    ledger, _ = reserve(fresh(), "a", BUILTIN, BUDGET, late)
    ledger, _ = settle(ledger, "a", Amount(3855, Decimal("0.0049")))
    for index, name in enumerate("bcd"):
        ledger, _ = reserve(
            ledger, name, BUILTIN, BUDGET, late + timedelta(seconds=index), app=f"ns/{name}"
        )
    assert admittable(ledger, BUDGET, late) == []
    january = period_of("Monthly", datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    rolled = roll_over(ledger, january)
    assert rolled.settled == Amount()
    # 0.005 holds one whole reservation (0.00336) and what remains, bounded, for the next.
    assert [key for key, _ in admittable(rolled, BUDGET, january.start)] == ["b", "c"]
