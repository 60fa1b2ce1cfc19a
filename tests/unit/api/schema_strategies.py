"""Hypothesis strategies that write objects from a CRD's own OpenAPI schema.

The values stay close to the contract: mostly what the schema allows, with the boundaries
(lengths, minimum and maximum) and a share of near misses just past them, so that a sample
holds both objects the API server takes and objects it refuses. What matters is which side
of the line each one lands on, for the API server and for the operator's pydantic models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from vibeplane.api.crdgen import crd
from vibeplane.api.meta import KindInfo

Schema = Mapping[str, Any]

# Strings the schema's rules are most likely to disagree on: empty, whitespace, control
# characters, non-ASCII, signs and exponents.
AWKWARD_TEXT = st.sampled_from(
    ["", " ", "a b", "\t", "x\n", "\x00", "\u202e", "é", "😀", "-1", "+1", "1e3", "0", ".5"]
)
_MATCHES = re.compile(r"self\.matches\('(.*)'\)")


def spec_schema(info: KindInfo) -> Schema:
    """The OpenAPI schema of `spec` in the CRD generated for `info`."""
    root = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: Schema = root["properties"]["spec"]
    return schema


def _regex_of(node: Schema) -> str | None:
    """The pattern a string must match: `pattern`, or a CEL `self.matches('...')` rule."""
    if "pattern" in node:
        return str(node["pattern"])
    for rule in node.get("x-kubernetes-validations") or []:
        found = _MATCHES.fullmatch(rule["rule"])
        if found:
            # CEL string literals escape backslashes; Python's re wants them once.
            return found.group(1).replace("\\\\", "\\")
    return None


def mostly(
    valid: st.SearchStrategy[Any], near_miss: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """`valid` nine times in ten: objects have many fields, and each may miss. (Shrinks
    towards valid, so a failure is reported with the fewest near misses.)"""
    return st.integers(0, 9).flatmap(lambda n: near_miss if n == 9 else valid)


def _text(node: Schema) -> st.SearchStrategy[str]:
    if "enum" in node:
        return mostly(st.sampled_from(node["enum"]), AWKWARD_TEXT)
    low = int(node.get("minLength", 0))
    high = int(node.get("maxLength", 40))
    regex = _regex_of(node)
    valid = (
        st.from_regex(regex, fullmatch=True).filter(lambda s: low <= len(s) <= high)
        if regex is not None
        else st.text(min_size=low, max_size=min(high, 40)) | st.just("a" * high)
    )
    near_miss = AWKWARD_TEXT | st.just("a" * (high + 1))
    if regex is not None:
        near_miss |= st.from_regex(regex, fullmatch=True).map(lambda s: s + " x")
    return mostly(valid, near_miss)


def _integer(node: Schema) -> st.SearchStrategy[int]:
    low = node.get("minimum")
    high = node.get("maximum")
    lower = int(low) if low is not None else -(2**63)
    upper = int(high) if high is not None else 2**63 - 1
    edges = [lower, upper, *(n for n in (0, 1, 2**31) if lower <= n <= upper)]
    valid = st.sampled_from(edges) | st.integers(lower, min(upper, lower + 10**6))
    near_miss = st.sampled_from([lower - 1, upper + 1])
    return mostly(valid, near_miss)


def _quantity(node: Schema) -> st.SearchStrategy[int | str]:
    regex = str(node["pattern"])
    valid = st.integers(0, 2**63 - 1) | st.from_regex(regex, fullmatch=True).filter(
        lambda s: len(s) < 40
    )
    near_miss = AWKWARD_TEXT | st.sampled_from(["-1", "1e18E", "1k", "1.5 Gi", "-5"])
    return mostly(valid, near_miss)


def values(node: Schema) -> st.SearchStrategy[Any]:
    """Values for one schema node, mostly inside its contract and some just outside."""
    if node.get("x-kubernetes-int-or-string"):
        strategy: st.SearchStrategy[Any] = _quantity(node)
    elif node.get("type") == "string":
        strategy = _text(node)
    elif node.get("type") == "integer":
        strategy = _integer(node)
    elif node.get("type") == "boolean":
        strategy = st.booleans()
    elif node.get("type") == "array":
        most = int(node.get("maxItems", 4))
        items = values(node["items"])
        strategy = st.lists(items, max_size=min(most, 4))
        if most <= 20:  # one past maxItems, where that is small enough to write
            strategy = mostly(strategy, st.lists(items, min_size=most + 1, max_size=most + 1))
    elif node.get("type") == "object":
        strategy = _object(node)
    else:  # pragma: no cover - every node of our CRDs has a type
        raise AssertionError(f"no strategy for {node}")
    if node.get("nullable"):
        strategy = mostly(strategy, st.none())
    return strategy


def _object(node: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties: Mapping[str, Schema] = node.get("properties") or {}
    if not properties and isinstance(node.get("additionalProperties"), dict):
        return st.dictionaries(
            mostly(
                st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), st.sampled_from(["", "a b"])
            ),
            values(node["additionalProperties"]),
            max_size=3,
        )
    required = set(node.get("required") or [])
    rules = " ".join(rule["rule"] for rule in node.get("x-kubernetes-validations") or [])
    if ".filter(x, x).size() == 1" in rules:  # exactly one of the properties
        one_of = st.sampled_from(sorted(properties)).flatmap(
            lambda name: st.fixed_dictionaries({name: values(properties[name])})
        )
        return mostly(one_of, _fields(properties, required))
    return _fields(properties, required)


def _fields(
    properties: Mapping[str, Schema], required: set[str]
) -> st.SearchStrategy[dict[str, Any]]:
    strategy = st.fixed_dictionaries(
        {name: values(child) for name, child in properties.items() if name in required},
        optional={
            name: values(child) for name, child in properties.items() if name not in required
        },
    )
    if required:  # sometimes a required field is missing
        first = sorted(required)[0]
        strategy = mostly(
            strategy, strategy.map(lambda v: {k: x for k, x in v.items() if k != first})
        )
    return strategy


def specs(info: KindInfo) -> st.SearchStrategy[dict[str, Any]]:
    """Specs of one kind, from its generated CRD."""
    return _object(spec_schema(info))
