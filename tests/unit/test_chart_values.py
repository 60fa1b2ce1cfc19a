"""The chart's values, schema and operator settings agree (pure: no Helm, no cluster).

Helm itself validates values against values.schema.json (tests/integration/test_chart.py runs
it); here a small validator of the keywords the schema uses checks the defaults, so a default
that the schema refuses, or a key the schema does not declare, fails in the unit tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from vibeplane.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vibeplane"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())

SUPPORTED = {
    "type",
    "properties",
    "additionalProperties",
    "required",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "items",
    "minItems",
    "anyOf",
}
ANNOTATIONS = {"$schema", "title", "description"}
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in a schema (property names excluded)."""
    if isinstance(schema, list):
        return set().union(*(keywords(item) for item in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key == "properties":
            found |= set().union(*(keywords(v) for v in value.values())) if value else set()
        elif key in ("items", "additionalProperties", "anyOf"):
            found |= keywords(value)
    return found


def problems(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Where `value` breaks `schema` (the keywords in SUPPORTED), as 'path: why'."""
    where = path or "/"
    options = schema.get("anyOf")
    if options and all(problems(value, option, path) for option in options):
        return [f"{where}: matches no anyOf option"]
    expected = schema.get("type")
    if expected is not None:
        ok = isinstance(value, TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            return [f"{where}: {type(value).__name__}, want {expected}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            found.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{where}: longer than {schema['maxLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: above {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            found.append(f"{where}: not above {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{where}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                found += problems(item, schema["items"], f"{path}/{index}")
    if isinstance(value, dict):
        declared = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}: {key} is required")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in declared:
                found += problems(item, declared[key], f"{path}/{key}")
            elif extra is False:
                found.append(f"{where}: {key} is not allowed")
            elif isinstance(extra, dict):
                found += problems(item, extra, f"{path}/{key}")
    return found


def test_the_schema_uses_only_keywords_this_validator_checks() -> None:
    assert keywords(SCHEMA) - SUPPORTED - ANNOTATIONS == set()
    assert SCHEMA["additionalProperties"] is False


def test_the_default_values_satisfy_the_schema() -> None:
    assert problems(VALUES, SCHEMA) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"replicas": "abc"}, "/replicas: str, want integer"),
        ({"replicas": -1}, "/replicas: below 0"),
        ({"replicsa": 1}, "/: replicsa is not allowed"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_the_validator_refuses_bad_values(change: dict[str, Any], problem: str) -> None:
    found = problems({**VALUES, **change}, SCHEMA)
    assert any(p.startswith(problem) for p in found), found


def test_every_values_object_is_closed_unless_it_is_a_free_form_map() -> None:
    """additionalProperties false wherever the chart reads known keys, so typos are refused;
    open only where values pass through to Kubernetes, whose API server validates them."""
    pass_through = {"global", "affinity", "seLinuxOptions", "appArmorProfile"}
    open_objects = []

    def walk(schema: dict[str, Any], path: str) -> None:
        if schema.get("type") == "object" and "additionalProperties" not in schema:
            open_objects.append(path)
        for key, child in schema.get("properties", {}).items():
            walk(child, f"{path}/{key}")

    walk(SCHEMA, "")
    unexpected = [p for p in open_objects if p.rsplit("/", 1)[-1] not in pass_through]
    assert unexpected == [], f"objects that accept any key: {unexpected}"


def _template_env_names() -> set[str]:
    text = (CHART / "templates" / "deployment.yaml").read_text()
    return set(re.findall(r"- name: (VIBEPLANE_[A-Z0-9_]+)", text))


def test_the_chart_sets_every_operator_setting() -> None:
    settings = {f"VIBEPLANE_{field.name.upper()}" for field in dataclasses.fields(OperatorSettings)}
    assert settings - _template_env_names() == set()


def test_every_variable_the_chart_sets_is_read_by_the_operator() -> None:
    """A name the operator never reads would be a silent no-op: each one appears in the
    operator's source, as the literal name or as the setting name it is derived from."""
    source = "\n".join(path.read_text() for path in (ROOT / "operator" / "vibeplane").rglob("*.py"))
    unread = [
        name
        for name in sorted(_template_env_names())
        if name not in source and f'"{name.removeprefix("VIBEPLANE_").lower()}"' not in source
    ]
    assert unread == []


def test_no_wildcards_in_the_rbac_templates() -> None:
    for path in (CHART / "templates").glob("*.yaml"):
        documents = path.read_text()
        if "rbac.authorization.k8s.io/v1" not in documents:
            continue
        assert not re.search(r"""["']\*["']|-\s+\*\s*$""", documents, re.MULTILINE), path.name


def test_one_default_preview_image_in_settings_chart_and_readme() -> None:
    image = OperatorSettings().preview_image
    assert VALUES["preview"]["image"] == image
    assert f"docker build -t {image} runtime/sandbox" in (ROOT / "README.md").read_text()
