"""Types shared by the v1alpha1 kinds: quantities, decimals, durations, conditions.

Each constrained type carries both a pydantic validator (the operator re-validates what it
reads) and the OpenAPI schema the CRD generator emits, so the API server refuses bad input
before the operator ever sees it, with the same rule and the same words.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "vibeplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Kubernetes' own quantity grammar (k8s.io/apimachinery resource.Quantity), without a sign:
# a quota or a limit is never negative.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DECIMAL_PATTERN = r"^[0-9]{1,12}([.][0-9]{1,6})?$"  # [.]: CEL strings reject "\."
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError("a quantity is a number or a string such as '500m' or '2Gi'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"quantity must not be negative, got {value}")
        return value
    if not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a non-negative Kubernetes quantity such as '500m' or '2Gi'"
        )
    return value


def _check_decimal(value: str) -> str:
    if not re.fullmatch(DECIMAL_PATTERN, value):
        raise ValueError(f"{value!r} is not a decimal string such as '250' or '19.99'")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            # The int-or-string shape must be exactly this to be structural; the sign check
            # goes in a CEL rule, which also gives the clearer message.
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-validations": [
                {
                    "rule": "type(self) == int ? self >= 0 : !self.startsWith('-')",
                    "message": "a quantity must not be negative",
                }
            ],
        }
    ),
]
"""A non-negative Kubernetes resource quantity: an integer or a string such as "500m", "2Gi"."""

DecimalString = Annotated[
    str,
    AfterValidator(_check_decimal),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 20,
            "x-kubernetes-validations": [
                {
                    "rule": f"self.matches('{DECIMAL_PATTERN}')",
                    "message": 'must be a non-negative decimal string such as "250" or "19.99"'
                    " (no currency symbols or words)",
                }
            ],
        }
    ),
]
"""Money or a price as a decimal string ("19.99"): exact, unlike a float."""

Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32),
]
"""A Go-style duration such as "30m", "1h30m" or "45s"."""

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(duration: str) -> float:
    """The seconds of a Duration ("1h30m" -> 5400.0); the schema has checked its form."""
    total, number = 0.0, ""
    index = 0
    while index < len(duration):
        char = duration[index]
        if char.isdigit():
            number += char
            index += 1
            continue
        unit = "ms" if duration[index : index + 2] == "ms" else char
        total += float(number) * _DURATION_UNITS[unit]
        number = ""
        index += len(unit)
    return total


def owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    """One of our objects as the controlling owner of a child: the child goes when it goes."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


DNSLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]


def decimal_of(value: str | None) -> Decimal:
    """The exact value of a DecimalString; an absent value is zero."""
    if value is None:
        return Decimal(0)
    try:
        return Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - the schema refuses these first
        raise ValueError(f"{value!r} is not a decimal") from error


class KubeModel(BaseModel):
    """Base for every API object part: camelCase on the wire, docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, without unset fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """One aspect of the object's state, per the Kubernetes API conventions."""

    type: str = Field(max_length=316)
    """The aspect this condition describes, in CamelCase (Ready, BudgetExceeded, ...)."""
    status: ConditionStatus
    """Whether the condition holds: True, False or Unknown."""
    reason: str = Field(max_length=1024)
    """A CamelCase word that says why, for machines."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition was computed from."""
    last_transition_time: datetime | None = None
    """When status last changed."""


Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]
"""Conditions keyed by type, so server-side apply merges them one by one."""


class SecretKeyRef(KubeModel):
    """A key of a Secret in the object's own namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    """The Secret's name."""
    key: str = Field(min_length=1, max_length=253)
    """The key inside the Secret's data."""
