"""Kubernetes quantities ("250m", "1Gi") compared by value, as the API server stores them."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([numkMGTPE]i?|[eE][+-]?[0-9]+)?$")
_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def _quantity_value(value: object) -> Decimal | None:
    """The numeric value of a Kubernetes quantity, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIX[suffix]
    except (InvalidOperation, KeyError):
        return None


def same_value(live: object, desired: object) -> bool:
    """Equal, or equal as quantities: the API server rewrites "1000m" as "1"."""
    if isinstance(live, bool) or isinstance(desired, bool):
        return type(live) is type(desired) and live == desired
    if live == desired:
        return True
    live_quantity, desired_quantity = _quantity_value(live), _quantity_value(desired)
    if live_quantity is None or desired_quantity is None:
        return False
    return live_quantity == _stored_precision(desired_quantity)


MILLI = Decimal("0.001")


def _stored_precision(value: Decimal) -> Decimal:
    """What the API server keeps of a quantity: finer than a milli-unit is rounded up to one
    ("0.5m" is stored as "1m"), so a desired "0.5m" must compare equal to a live "1m"."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or exponent >= -3:
        return value
    with localcontext(prec=max(28, len(value.as_tuple().digits) + 3)):
        return value.quantize(MILLI, rounding=ROUND_CEILING)
