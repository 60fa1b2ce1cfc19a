"""The ledger's operations: exactly-once charges, no overspend, rollover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.budget.ledger import (
    RESERVATION_TTL,
    Amount,
    Ledger,
    Limits,
    from_document,
    release,
    reserve,
    roll_over,
    settle,
    to_document,
)
from vibeplane.budget.periods import period_of

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOVEMBER = period_of("Monthly", NOW)


def fresh() -> Ledger:
    return Ledger(workspace="w", period=NOVEMBER)


def test_reserve_settle_release_are_idempotent() -> None:
    limits = Limits(tokens=1000)
    ledger, result = reserve(fresh(), "k1", Amount(600), limits, NOW)
    assert result.decision == "reserved"
    ledger, result = reserve(ledger, "k1", Amount(600), limits, NOW)
    assert result.decision == "existing"
    ledger, refused = reserve(ledger, "k2", Amount(600), limits, NOW)
    assert refused.decision == "refused"
    assert refused.over == ("tokens",)
    ledger, charged = settle(ledger, "k1", Amount(300, Decimal("0.03")))
    assert charged
    ledger, again = settle(ledger, "k1", Amount(300, Decimal("0.03")))
    assert not again
    assert ledger.settled == Amount(300, Decimal("0.03"))
    ledger, result = reserve(ledger, "k1", Amount(1), limits, NOW)
    assert result.decision == "already-closed"
    ledger, _ = reserve(ledger, "k3", Amount(700), limits, NOW)
    ledger, released = release(ledger, "k3")
    assert released
    assert ledger.reserved(NOW) == Amount()
    assert ledger.settled.tokens == 300


def test_settle_without_reservation_still_charges() -> None:
    ledger, charged = settle(fresh(), "late", Amount(5))
    assert charged
    assert ledger.settled.tokens == 5


def test_expired_reservations_stop_counting() -> None:
    limits = Limits(tokens=100)
    ledger, _ = reserve(fresh(), "stuck", Amount(100), limits, NOW)
    assert not reserve(ledger, "next", Amount(1), limits, NOW)[1].admitted
    later = NOW + RESERVATION_TTL + timedelta(seconds=1)
    assert reserve(ledger, "next", Amount(1), limits, later)[1].admitted
    ledger, charged = settle(ledger, "stuck", Amount(80))  # the late settle is not lost
    assert charged
    assert ledger.settled.tokens == 80


def test_rollover_moves_totals_to_history_and_keeps_reservations() -> None:
    just_before = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    ledger, _ = reserve(fresh(), "in-flight", Amount(50), Limits(), just_before)
    ledger, _ = reserve(ledger, "abandoned", Amount(50), Limits(), NOW - timedelta(days=3))
    ledger, _ = settle(ledger, "done", Amount(10, Decimal("1.25")))
    december = period_of("Monthly", datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    rolled = roll_over(ledger, december)
    assert rolled.period == december
    assert rolled.settled == Amount()
    assert rolled.history[-1] == {
        "period": "2026-11",
        "start": "2026-11-01T00:00:00+00:00",
        "end": "2026-12-01T00:00:00+00:00",
        "tokens": 10,
        "money": "1.25",
        "gpuHours": "0",
    }
    assert set(rolled.reservations) == {"in-flight"}  # long-expired ones are dropped
    assert settle(rolled, "done", Amount(10))[1] is False  # a retried settle is still recognised
    rolled, _ = settle(rolled, "in-flight", Amount(40))
    assert rolled.settled.tokens == 40  # charged in the period it settled in
    assert roll_over(rolled, december) is rolled


def test_document_round_trip_is_canonical() -> None:
    ledger, _ = reserve(fresh(), "a", Amount(5, Decimal("0.50")), Limits(), NOW)
    ledger, _ = settle(ledger, "b", Amount(1, Decimal("2.000"), Decimal("0.25")))
    document = to_document(ledger)
    assert document["settled"] == {"tokens": 1, "money": "2", "gpuHours": "0.25"}
    assert to_document(from_document(document)) == document


def test_limits_report_percent_and_remaining() -> None:
    limits = Limits(tokens=1000, money=Decimal("10"), soft_percent=80)
    used = Amount(100, Decimal("9"))
    assert limits.used_percent(used) == 90
    assert limits.remaining(used) == {"tokens": 900, "money": "1"}
    assert Limits().used_percent(used) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reserve", "settle", "release"]),
            st.integers(0, 7),
            st.integers(0, 400),
        ),
        max_size=60,
    )
)
def test_no_sequence_overspends_or_double_charges(operations: list[tuple[str, int, int]]) -> None:
    """Whatever order operations come in (retries included), reservations never push
    settled + reserved past the limit, and each key is charged at most once."""
    limits = Limits(tokens=1000)
    ledger = fresh()
    charged: dict[str, int] = {}
    for operation, index, tokens in operations:
        key = f"k{index}"
        if operation == "reserve":
            before = ledger.settled.tokens + ledger.reserved(NOW).tokens
            ledger, result = reserve(ledger, key, Amount(tokens), limits, NOW)
            if result.decision == "reserved":
                assert before + tokens <= 1000
        elif operation == "settle":
            ledger, did = settle(ledger, key, Amount(tokens))
            if did:
                assert key not in charged
                charged[key] = tokens
        else:
            ledger, _ = release(ledger, key)
    assert ledger.settled.tokens == sum(charged.values())
