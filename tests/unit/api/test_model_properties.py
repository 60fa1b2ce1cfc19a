"""Property tests of the v1alpha1 models: whatever the API server hands the operator.

A spec either validates or raises pydantic's ValidationError (which the reconcile loop turns
into a Ready=False/InvalidSpec condition, see tests/unit/kube/test_invalid_specs.py); any
other exception would be a reconcile that fails forever. A spec that validates survives the
trip to the wire and back unchanged, so what the operator writes (or compares) is what it
read. Inputs come from two sources: JSON of any shape, and specs written from the CRD's own
schema with boundary values and near misses (schema_strategies.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tests.unit.api.schema_strategies import specs
from vibeplane.api import ALL_KINDS
from vibeplane.api.meta import KindInfo

# JSON as the API server can return it: no NaN or infinities, integers of any size.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


def _field_names(model: type[BaseModel]) -> list[str]:
    """The wire names of a model's fields (and the Python names, which also validate)."""
    names = []
    for name, info in model.model_fields.items():
        names += [name, info.alias or name]
    return names


def _json_specs(info: KindInfo) -> st.SearchStrategy[Any]:
    """Any JSON, mostly objects keyed by the kind's real field names."""
    keys = st.sampled_from(_field_names(info.spec)) | st.text(max_size=12)
    return JSON | st.dictionaries(keys, JSON, max_size=6)


def _validate(info: KindInfo, data: Any) -> BaseModel | None:
    """The model, or None when pydantic refuses; anything else raised fails the test."""
    try:
        return info.spec.model_validate(data)
    except ValidationError as error:
        problems = error.errors()
    assert problems, "a ValidationError names at least one problem"
    return None


def _round_trips(info: KindInfo, spec: BaseModel) -> None:
    wire = spec.to_wire()  # type: ignore[attr-defined]
    # What the operator writes and compares is plain JSON...
    assert json.loads(json.dumps(wire)) == wire
    # ...that reads back as the same spec, by alias and through JSON text.
    assert info.spec.model_validate(wire) == spec
    assert info.spec.model_validate_json(json.dumps(wire)) == spec
    dumped = spec.model_dump(by_alias=True, mode="json")
    assert info.spec.model_validate(dumped) == spec


KINDS = pytest.mark.parametrize("info", ALL_KINDS, ids=lambda info: info.kind)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@KINDS
def test_any_json_validates_or_raises_validation_error(info: KindInfo) -> None:
    @PROPERTY
    @given(_json_specs(info))
    def check(data: Any) -> None:
        spec = _validate(info, data)
        if spec is not None:
            _round_trips(info, spec)

    check()


@KINDS
def test_specs_near_the_schema_validate_or_raise_and_round_trip(info: KindInfo) -> None:
    validated = []

    @PROPERTY
    @given(specs(info))
    def check(data: dict[str, Any]) -> None:
        spec = _validate(info, data)
        if spec is not None:
            validated.append(spec)
            _round_trips(info, spec)

    check()
    # The strategy reaches valid specs, not only refusals: the round trip was exercised.
    assert validated, f"no valid {info.kind} spec was generated"
