"""Budget numbers in words: what a refused generation needs and what remains (pure).

The same sentences serve a refused app's condition and its workspace's, so both say the same
thing in the same figures.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from vibeplane.budget.ledger import Amount, Ask, Limits, Refusal


def money(value: Decimal) -> str:
    """5 decimal places, or 2 significant digits when that shows nothing: "0.00336",
    "0.00028", "0.00002", "0.0000043"."""
    if value == 0:
        return "0"
    places = max(5, -value.adjusted() + 1)
    text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")
    return text.rstrip("0") if places > 5 else text


def price(value: Decimal) -> str:
    """A per-million price as people write it: "0.40", "2.50", "0.125"."""
    if value == value.quantize(Decimal("0.01")):
        return format(value.quantize(Decimal("0.01")), "f")
    return format(value.normalize(), "f")


def _limit(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _what(ask: Ask | None, needs: Amount, money_view: bool) -> str:
    if ask is None:
        return money(needs.money) if money_view else f"{needs.tokens:,} tokens"
    low = ask.amount(ask.floor)
    high = ask.amount(ask.max_output)
    model = f" of {ask.model}" if ask.model else ""
    if money_view:
        return (
            f"at least {money(low.money)} ({ask.floor:,} output tokens, the floor{model}, at "
            f"{price(ask.output_per_million)} per million, and a prompt of about "
            f"{ask.prompt_tokens:,} tokens at {price(ask.input_per_million)}) and up to "
            f"{money(high.money)} ({ask.max_output:,} output tokens at "
            f"{price(ask.output_per_million)} per million)"
        )
    return (
        f"at least {low.tokens:,} tokens (a prompt of about {ask.prompt_tokens:,} and "
        f"{ask.floor:,} output tokens, the floor{model}) and up to {high.tokens:,}"
    )


def refusal_message(refusal: Refusal, subject: str = "this generation") -> str:
    """Why a generation was refused, in numbers, for every limit it would pass."""
    limits, ask = refusal.limits, refusal.ask
    taken = refusal.settled + refusal.reserved + refusal.held
    parts: list[str] = []
    for name in limits.exceeded_by(taken + refusal.needs) or ["money"]:
        if name == "money" and limits.money is not None:
            left = max(Decimal(0), limits.money - taken.money)
            parts.append(
                f"needs {_what(ask, refusal.needs, True)}; {money(left)} remains of "
                f"{_limit(limits.money)} for {refusal.period} "
                + _standing(refusal, lambda a: money(a.money))
            )
        elif name == "tokens" and limits.tokens is not None:
            left_tokens = max(0, limits.tokens - taken.tokens)
            parts.append(
                f"needs {_what(ask, refusal.needs, False)}; {left_tokens:,} tokens remain of "
                f"{limits.tokens:,} for {refusal.period} "
                + _standing(refusal, lambda a: f"{a.tokens:,}")
            )
        elif name == "gpuHours" and limits.gpu_hours is not None:
            parts.append(
                f"the GPU-hour budget is spent: {_limit(refusal.settled.gpu_hours)} of "
                f"{_limit(limits.gpu_hours)} used for {refusal.period}"
            )
    return f"the workspace budget cannot cover {subject}: " + "; and ".join(parts)


def _standing(refusal: Refusal, show: Callable[[Amount], str]) -> str:
    text = (
        f"({show(refusal.settled)} settled, {show(refusal.reserved)} reserved by generations "
        "in flight"
    )
    if refusal.held != Amount():
        text += f", {show(refusal.held)} kept for apps waiting longer"
    return text + ")"


def headroom_message(limits: Limits, taken: Amount, period: str) -> str:
    """What remains, in the words of a refusal ("0.00228 remains of 0.005 for 2026-12")."""
    parts = []
    if limits.money is not None:
        parts.append(
            f"{money(max(Decimal(0), limits.money - taken.money))} remains of "
            f"{_limit(limits.money)}"
        )
    if limits.tokens is not None:
        parts.append(f"{max(0, limits.tokens - taken.tokens):,} tokens remain of {limits.tokens:,}")
    return (" and ".join(parts) or "no limit is set") + f" for {period}"
