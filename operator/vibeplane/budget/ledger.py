"""The budget ledger of a workspace: pure state and operations.

Design
------
A workspace's spend is recorded in one ledger document (see `vibeplane.budget.store` for where
it lives and how it is written). Every operation is a pure function from the old document to
the new one, and the store applies it with compare-and-swap on the API server (a write that
carries the resourceVersion it read, retried on conflict). So:

- **Nothing lives only in memory**: an operator restart re-reads the document.
- **Concurrent reservations cannot overspend**: each reservation checks
  settled + reserved + its own maximum against the hard limit inside one CAS; two operators
  (or two threads) racing for the last headroom conflict and one re-checks and is refused.
  Only usage beyond what was reserved (a model that overran its reservation) can exceed the
  limit, by at most that overrun: one request's margin.
- **Never counted twice**: every operation carries an idempotency key (the VibeApp path
  uses app uid + revision + attempt). A settled or released key is remembered for the
  current and previous period, so a retried settle (after a crash, a conflict, a timeout)
  is a no-op, and a retried reserve returns the existing reservation.
- **Never lost**: settle charges the actual usage even when its reservation is gone (expired,
  or made before a period rollover), and a reservation whose generation never settles stops
  counting against the limit after `RESERVATION_TTL`, but its key stays open so a late settle
  still charges.
- **Period rollover**: the document's period is replaced by the current one, the closed
  period's totals move to `history` (kept for billing; the document outlives the workspace),
  reservations carry over and settle into the period in which they settle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from vibeplane.budget.periods import Period

RESERVATION_TTL = timedelta(hours=1)
HISTORY_PERIODS = 24


@dataclass(frozen=True)
class Amount:
    """Tokens, money and GPU-hours together."""

    tokens: int = 0
    money: Decimal = Decimal(0)
    gpu_hours: Decimal = Decimal(0)

    def __add__(self, other: Amount) -> Amount:
        return Amount(
            self.tokens + other.tokens,
            self.money + other.money,
            self.gpu_hours + other.gpu_hours,
        )

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "money": _dec(self.money), "gpuHours": _dec(self.gpu_hours)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Amount:
        data = data or {}
        return cls(
            int(data.get("tokens", 0)),
            Decimal(str(data.get("money", "0"))),
            Decimal(str(data.get("gpuHours", "0"))),
        )


def _dec(value: Decimal) -> str:
    """Canonical decimal text: no exponent, no trailing zeros ("1.5", "0")."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


@dataclass(frozen=True)
class Limits:
    """Hard limits per period; None means unlimited."""

    tokens: int | None = None
    money: Decimal | None = None
    gpu_hours: Decimal | None = None
    soft_percent: int = 80

    def exceeded_by(self, amount: Amount) -> list[str]:
        """The limits `amount` goes over."""
        over = []
        if self.tokens is not None and amount.tokens > self.tokens:
            over.append("tokens")
        if self.money is not None and amount.money > self.money:
            over.append("money")
        if self.gpu_hours is not None and amount.gpu_hours > self.gpu_hours:
            over.append("gpuHours")
        return over

    def used_percent(self, amount: Amount) -> int | None:
        """The highest share of any set limit that `amount` uses (None without limits)."""
        shares = []
        for used, limit in (
            (Decimal(amount.tokens), self.tokens),
            (amount.money, self.money),
            (amount.gpu_hours, self.gpu_hours),
        ):
            if limit is not None:
                shares.append(Decimal(100) if limit == 0 else used * 100 / Decimal(limit))
        return int(max(shares)) if shares else None

    def remaining(self, amount: Amount) -> dict[str, Any]:
        """What is left for each limit that is set (never below zero)."""
        left: dict[str, Any] = {}
        if self.tokens is not None:
            left["tokens"] = max(0, self.tokens - amount.tokens)
        if self.money is not None:
            left["money"] = _dec(max(Decimal(0), self.money - amount.money))
        if self.gpu_hours is not None:
            left["gpuHours"] = _dec(max(Decimal(0), self.gpu_hours - amount.gpu_hours))
        return left


@dataclass(frozen=True)
class Reservation:
    amount: Amount
    created: datetime
    period: str


@dataclass(frozen=True)
class Ledger:
    """The whole ledger document of one workspace."""

    workspace: str
    period: Period
    settled: Amount = Amount()
    reservations: dict[str, Reservation] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)
    """Settled or released keys -> the period they closed in (idempotency)."""
    history: tuple[dict[str, Any], ...] = ()
    """Closed periods: {"period", "start", "end", "tokens", "money", "gpuHours"}."""

    def reserved(self, now: datetime) -> Amount:
        """What live (unexpired) reservations hold."""
        total = Amount()
        for reservation in self.reservations.values():
            if now - reservation.created < RESERVATION_TTL:
                total = total + reservation.amount
        return total


Decision = Literal["reserved", "existing", "already-closed", "refused"]


@dataclass(frozen=True)
class ReserveResult:
    decision: Decision
    over: tuple[str, ...] = ()

    @property
    def admitted(self) -> bool:
        return self.decision in ("reserved", "existing")


def roll_over(ledger: Ledger, current: Period) -> Ledger:
    """Move to `current` if the ledger is still in an older period."""
    if ledger.period.name == current.name:
        return ledger
    closed = {
        "period": ledger.period.name,
        "start": ledger.period.start.isoformat(),
        "end": ledger.period.end.isoformat(),
        **ledger.settled.to_json(),
    }
    # Keys of the closed period stay one more period: a late retry is still recognised.
    keep = {key: period for key, period in ledger.done.items() if period == ledger.period.name}
    return replace(
        ledger,
        period=current,
        settled=Amount(),
        done=keep,
        history=(*ledger.history, closed)[-HISTORY_PERIODS:],
        reservations={
            key: reservation
            for key, reservation in ledger.reservations.items()
            # Reservations whose generation never came back are dropped a day after expiry.
            if current.start - reservation.created < RESERVATION_TTL + timedelta(days=1)
        },
    )


def reserve(
    ledger: Ledger, key: str, amount: Amount, limits: Limits, now: datetime
) -> tuple[Ledger, ReserveResult]:
    """Hold `amount` for one generation if it fits under the hard limits."""
    if key in ledger.done:
        return ledger, ReserveResult("already-closed")
    if key in ledger.reservations:
        return ledger, ReserveResult("existing")
    over = limits.exceeded_by(ledger.settled + ledger.reserved(now) + amount)
    if over:
        return ledger, ReserveResult("refused", tuple(over))
    reservation = Reservation(amount, now, ledger.period.name)
    return replace(ledger, reservations={**ledger.reservations, key: reservation}), ReserveResult(
        "reserved"
    )


def settle(ledger: Ledger, key: str, actual: Amount) -> tuple[Ledger, bool]:
    """Charge the actual usage once. True if this call charged it."""
    if key in ledger.done:
        return ledger, False
    reservations = {k: v for k, v in ledger.reservations.items() if k != key}
    return (
        replace(
            ledger,
            settled=ledger.settled + actual,
            reservations=reservations,
            done={**ledger.done, key: ledger.period.name},
        ),
        True,
    )


def release(ledger: Ledger, key: str) -> tuple[Ledger, bool]:
    """Give a reservation back without charging (the generation failed). True if released."""
    if key in ledger.done:
        return ledger, False
    reservations = {k: v for k, v in ledger.reservations.items() if k != key}
    return (
        replace(ledger, reservations=reservations, done={**ledger.done, key: ledger.period.name}),
        True,
    )


# ---- the document ------------------------------------------------------------------------


def to_document(ledger: Ledger) -> dict[str, Any]:
    """The JSON document stored (canonical: equal ledgers give equal documents)."""
    return {
        "workspace": ledger.workspace,
        "period": {
            "name": ledger.period.name,
            "start": ledger.period.start.isoformat(),
            "end": ledger.period.end.isoformat(),
        },
        "settled": ledger.settled.to_json(),
        "reservations": {
            key: {
                **reservation.amount.to_json(),
                "created": reservation.created.isoformat(),
                "period": reservation.period,
            }
            for key, reservation in sorted(ledger.reservations.items())
        },
        "done": dict(sorted(ledger.done.items())),
        "history": list(ledger.history),
    }


def from_document(document: dict[str, Any]) -> Ledger:
    period = document["period"]
    return Ledger(
        workspace=document["workspace"],
        period=Period(
            period["name"],
            datetime.fromisoformat(period["start"]),
            datetime.fromisoformat(period["end"]),
        ),
        settled=Amount.from_json(document.get("settled")),
        reservations={
            key: Reservation(
                Amount.from_json(value),
                datetime.fromisoformat(value["created"]),
                value.get("period", period["name"]),
            )
            for key, value in (document.get("reservations") or {}).items()
        },
        done=dict(document.get("done") or {}),
        history=tuple(document.get("history") or ()),
    )
