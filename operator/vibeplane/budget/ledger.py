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
- **Refuse only what cannot fit**: a generation asks for its prompt plus up to the model's
  output limit (an `Ask`). When that does not fit, it gets the largest output bound that does,
  down to the model's floor; the caller sends that bound as the call's `max_tokens`, so the
  real cost cannot pass the reservation. Below the floor it is refused, with the numbers
  (`Refusal`).
- **Fair resumption**: a refused generation joins the document's `waiting` line (oldest
  first). Admission keeps room for every older waiter that fits now, inside the same CAS, so a
  younger arrival cannot take the headroom an older one is being woken for; `admittable` says
  which waiters fit, in order, so only those are woken (no thundering herd). A waiter that
  stops asking (its app was deleted) leaves the line after `WAITER_TTL`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from vibeplane.budget.periods import Period

RESERVATION_TTL = timedelta(hours=1)
HISTORY_PERIODS = 24
WAITER_TTL = timedelta(minutes=15)
"""A waiter not heard from for this long (its app deleted or moved on) leaves the line."""
WAITER_REFRESH = timedelta(minutes=3)
"""A waiter asking again refreshes its place only this often (each refresh is a write)."""
MILLION = Decimal(1_000_000)


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


def token_cost(
    tokens_in: int, tokens_out: int, input_per_million: Decimal, output_per_million: Decimal
) -> Decimal:
    """Money for tokens at per-million prices, to 6 places. Monotone in every argument, so a
    call that uses no more tokens at no higher prices never costs more than its reservation."""
    cost = (Decimal(tokens_in) * input_per_million + Decimal(tokens_out) * output_per_million) / (
        MILLION
    )
    return cost.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Ask:
    """What one generation may cost: its prompt plus up to `max_output` tokens at the given
    prices (the highest of the models it may fall through to). A reservation may be bounded
    down to `min_output` tokens (the model's floor): less would not be a useful answer."""

    prompt_tokens: int
    max_output: int
    min_output: int
    input_per_million: Decimal = Decimal(0)
    output_per_million: Decimal = Decimal(0)
    model: str = ""
    """For messages only."""

    @property
    def floor(self) -> int:
        return max(0, min(self.min_output, self.max_output))

    def amount(self, output_tokens: int) -> Amount:
        return Amount(
            self.prompt_tokens + output_tokens,
            token_cost(
                self.prompt_tokens, output_tokens, self.input_per_million, self.output_per_million
            ),
        )


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

    def largest_output(self, ask: Ask, used: Amount) -> int | None:
        """The most output tokens, between the ask's floor and its maximum, whose reservation
        fits beside `used`; None when not even the floor fits. (Costs grow with the bound, so
        a binary search finds the exact largest one, with the same rounding settle uses.)"""
        low, high = ask.floor, ask.max_output
        if self.exceeded_by(used + ask.amount(low)):
            return None
        while low < high:
            middle = (low + high + 1) // 2
            if self.exceeded_by(used + ask.amount(middle)):
                high = middle - 1
            else:
                low = middle
        return low

    def take(self, ask: Ask, used: Amount) -> Amount | None:
        """What `ask` would reserve beside `used` (None: refused)."""
        output = self.largest_output(ask, used)
        return None if output is None else ask.amount(output)

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
    output_tokens: int | None = None
    """The output bound granted (the call's max_tokens); None for a fixed amount."""


@dataclass(frozen=True)
class Waiter:
    """A refused generation waiting for the budget, in line by `since`."""

    since: datetime
    seen: datetime
    """When it last asked (it leaves the line `WAITER_TTL` after)."""
    app: str
    """namespace/name of the app to wake."""
    ask: Ask
    """What it asked for (it will take that much, or what remains down to its floor)."""


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
    waiting: dict[str, Waiter] = field(default_factory=dict)
    """Refused generations waiting for the budget, by key."""

    def reserved(self, now: datetime) -> Amount:
        """What live (unexpired) reservations hold."""
        total = Amount()
        for reservation in self.reservations.values():
            if now - reservation.created < RESERVATION_TTL:
                total = total + reservation.amount
        return total

    def line(self, now: datetime) -> list[tuple[str, Waiter]]:
        """The live waiters, oldest first."""
        live = [(k, w) for k, w in self.waiting.items() if now - w.seen < WAITER_TTL]
        return sorted(live, key=lambda item: (item[1].since, item[0]))


Decision = Literal["reserved", "existing", "already-closed", "refused"]


@dataclass(frozen=True)
class Refusal:
    """The numbers of a refusal: what the generation needs, and where the budget stands."""

    ask: Ask | None
    needs: Amount
    """At the least (the prompt and the model's floor; the fixed amount without an Ask)."""
    limits: Limits
    settled: Amount
    reserved: Amount
    """Held by generations in flight."""
    held: Amount
    """Kept for older waiters that fit (they go first)."""
    period: str


@dataclass(frozen=True)
class ReserveResult:
    decision: Decision
    over: tuple[str, ...] = ()
    output_tokens: int | None = None
    """The output bound granted (send it as max_tokens); None for a fixed amount."""
    bounded: bool = False
    """Less than the model's whole output limit was granted: the answer may be cut off."""
    refusal: Refusal | None = None

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
    ledger: Ledger,
    key: str,
    request: Amount | Ask,
    limits: Limits,
    now: datetime,
    app: str | None = None,
) -> tuple[Ledger, ReserveResult]:
    """Hold what one generation may cost if it fits under the hard limits.

    A fixed `Amount` fits whole or not at all; an `Ask` gets the largest output bound that
    fits, from its maximum down to its floor. Room is kept for every older waiter that fits,
    so the line is served oldest first. Refused with `app` (namespace/name), the generation
    joins the line (or keeps its place) to be woken when it fits.
    """
    if key in ledger.done:
        return ledger, ReserveResult("already-closed")
    if key in ledger.reservations:
        existing = ledger.reservations[key]
        return ledger, ReserveResult("existing", output_tokens=existing.output_tokens)
    line = ledger.line(now)
    mine = ledger.waiting.get(key)
    since = mine.since if mine is not None else now
    used = ledger.settled + ledger.reserved(now)
    held = Amount()
    for other_key, other in line:
        if (other.since, other_key) >= (since, key):
            break
        held = held + (limits.take(other.ask, used + held) or Amount())
    waiting = {k: w for k, w in line}  # the stale leave the line whenever we write
    if isinstance(request, Ask):
        output = limits.largest_output(request, used + held)
        amount = request.amount(output) if output is not None else request.amount(request.floor)
        fits = output is not None
    else:
        output, amount = None, request
        fits = not limits.exceeded_by(used + held + amount)
    if not fits:
        refusal = Refusal(
            request if isinstance(request, Ask) else None,
            amount,
            limits,
            ledger.settled,
            ledger.reserved(now),
            held,
            ledger.period.name,
        )
        over = tuple(limits.exceeded_by(used + held + amount))
        result = ReserveResult("refused", over, refusal=refusal)
        if app is None or not isinstance(request, Ask):
            return ledger, result
        if mine is None or now - mine.seen >= WAITER_REFRESH or mine.ask != request:
            waiting[key] = Waiter(since, now, app, request)
        elif key not in waiting:
            waiting[key] = mine
        return replace(ledger, waiting=dict(sorted(waiting.items()))), result
    waiting.pop(key, None)
    reservation = Reservation(amount, now, ledger.period.name, output)
    bounded = isinstance(request, Ask) and output is not None and output < request.max_output
    return replace(
        ledger, reservations={**ledger.reservations, key: reservation}, waiting=waiting
    ), ReserveResult("reserved", output_tokens=output, bounded=bounded)


def admittable(ledger: Ledger, limits: Limits, now: datetime) -> list[tuple[str, Waiter]]:
    """The waiters that fit now, oldest first, each counted at what it would take (its whole
    ask, or what remains down to its floor) after the ones before it: the ones to wake, and
    no others. `reserve` keeps the same room for them."""
    used = ledger.settled + ledger.reserved(now)
    fitting = []
    for key, waiter in ledger.line(now):
        if key in ledger.reservations or key in ledger.done:
            continue
        taken = limits.take(waiter.ask, used)
        if taken is not None:
            used = used + taken
            fitting.append((key, waiter))
    return fitting


def leave_line(ledger: Ledger, prefix: str) -> Ledger:
    """Take every waiter whose key starts with `prefix` out of the line (its app is gone)."""
    waiting = {k: w for k, w in ledger.waiting.items() if not k.startswith(prefix)}
    return ledger if len(waiting) == len(ledger.waiting) else replace(ledger, waiting=waiting)


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
            waiting={k: w for k, w in ledger.waiting.items() if k != key},
        ),
        True,
    )


def release(ledger: Ledger, key: str) -> tuple[Ledger, bool]:
    """Give a reservation back without charging (the generation failed). True if released."""
    if key in ledger.done:
        return ledger, False
    reservations = {k: v for k, v in ledger.reservations.items() if k != key}
    return (
        replace(
            ledger,
            reservations=reservations,
            done={**ledger.done, key: ledger.period.name},
            waiting={k: w for k, w in ledger.waiting.items() if k != key},
        ),
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
                **(
                    {"outputTokens": reservation.output_tokens}
                    if reservation.output_tokens is not None
                    else {}
                ),
            }
            for key, reservation in sorted(ledger.reservations.items())
        },
        "done": dict(sorted(ledger.done.items())),
        "history": list(ledger.history),
        **(
            {
                "waiting": {
                    key: {
                        "since": waiter.since.isoformat(),
                        "seen": waiter.seen.isoformat(),
                        "app": waiter.app,
                        "ask": _ask_json(waiter.ask),
                    }
                    for key, waiter in sorted(ledger.waiting.items())
                }
            }
            if ledger.waiting
            else {}
        ),
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
                _optional_int(value.get("outputTokens")),
            )
            for key, value in (document.get("reservations") or {}).items()
        },
        done=dict(document.get("done") or {}),
        history=tuple(document.get("history") or ()),
        waiting={
            key: Waiter(
                datetime.fromisoformat(value["since"]),
                datetime.fromisoformat(value["seen"]),
                str(value.get("app", "")),
                _ask_of(value.get("ask") or {}),
            )
            for key, value in (document.get("waiting") or {}).items()
        },
    )


def _optional_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _ask_json(ask: Ask) -> dict[str, Any]:
    return {
        "promptTokens": ask.prompt_tokens,
        "maxOutput": ask.max_output,
        "minOutput": ask.min_output,
        "inputPerMillion": _dec(ask.input_per_million),
        "outputPerMillion": _dec(ask.output_per_million),
        "model": ask.model,
    }


def _ask_of(data: dict[str, Any]) -> Ask:
    return Ask(
        int(data.get("promptTokens", 0)),
        int(data.get("maxOutput", 0)),
        int(data.get("minOutput", 0)),
        Decimal(str(data.get("inputPerMillion", "0"))),
        Decimal(str(data.get("outputPerMillion", "0"))),
        str(data.get("model", "")),
    )
