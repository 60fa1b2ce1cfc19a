"""Generate the CustomResourceDefinitions from the pydantic models.

The models are the one source of truth. Pydantic's JSON schema is close to what the API server
wants but not quite: a CRD needs a *structural* schema, so this module inlines `$ref`s, turns
`anyOf [X, null]` into `nullable`, drops titles and `null` defaults, and keeps the
`x-kubernetes-*` extensions the models declare (CEL rules, int-or-string, list types).

`vibeplane manifests` (what `make crds` runs) writes them with the workspace ClusterRoles
(`vibeplane.manifests`), through `write` here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from vibeplane.api import ALL_KINDS
from vibeplane.api.meta import KindInfo

Schema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs", "examples"}

# `namespace` is a CEL reserved word: rules in CRDs spell the field `__namespace__`.
_WORKSPACE_ROOT_RULES = [
    {
        "rule": "has(self.spec) && has(self.spec.__namespace__) || size(self.metadata.name) <= 60",
        "message": "a Workspace without spec.namespace gets namespace ws-<name>, so its name "
        "must be at most 60 characters",
    }
]
_WORKSPACE_SPEC_RULES = [
    {
        "rule": "has(oldSelf.__namespace__) == has(self.__namespace__) && "
        "(!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)",
        "message": "spec.namespace is immutable: create a new Workspace to move a tenant",
    }
]


class SchemaError(ValueError):
    """The models use a construct that has no structural-schema equivalent."""


def structural_schema(model: type[Any]) -> Schema:
    """The structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), path=model.__name__)


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        resolved = _convert(target, defs, path)
        # The field's own keys (its description, its CEL rules) win over the type's.
        siblings = _convert(node, defs, path)
        rules = resolved.get("x-kubernetes-validations", []) + siblings.pop(
            "x-kubernetes-validations", []
        )
        resolved.update(siblings)
        if rules:
            resolved["x-kubernetes-validations"] = rules
        return resolved

    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = node.pop("anyOf")
        concrete = [branch for branch in branches if branch.get("type") != "null"]
        if len(concrete) != 1:
            raise SchemaError(f"{path}: unions other than X | None are not structural")
        inner = _convert(concrete[0], defs, path)
        outer = _convert(node, defs, path)
        inner.update(outer)
        if len(concrete) < len(branches):
            inner["nullable"] = True
        return inner

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and (value is None or value == [] or value == {}):
            continue
        if key == "description":
            # Docstrings wrap lines; kubectl explain re-wraps, so store one paragraph.
            out[key] = " ".join(value.split())
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            if not value:
                # The API server drops an empty map: leave it out, so the file is what the
                # server stores (a fixed point for server-side apply and GitOps diffs).
                out["type"] = "object"
                continue
            out[key] = {
                name: _convert(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, defs, f"{path}[]")
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_defaults(value) for key, value in node.items() if key != "default"}
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    return node


def crd(info: KindInfo) -> Schema:
    """The CustomResourceDefinition of one kind."""
    spec = structural_schema(info.spec)
    # The API server defaults status too: a default there would differ from what the
    # operator writes, and every reconcile would "fix" it again.
    status = _without_defaults(structural_schema(info.status))
    spec["description"] = " ".join((info.spec.__doc__ or "").split())
    status["description"] = " ".join((info.status.__doc__ or "").split())
    root: Schema = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The API version: vibeplane.io/v1alpha1.",
            },
            "kind": {"type": "string", "description": f"The kind: {info.kind}."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if info.kind == "Workspace":
        root["x-kubernetes-validations"] = _WORKSPACE_ROOT_RULES
        spec["x-kubernetes-validations"] = (
            spec.get("x-kubernetes-validations", []) + _WORKSPACE_SPEC_RULES
        )
    else:
        root["required"] = ["spec"]

    columns = [
        {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            **({"description": column.description} if column.description else {}),
            **({"priority": column.priority} if column.priority else {}),
        }
        for column in info.printer_columns
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "vibeplane"},
        },
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "scope": info.scope,
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def file_name(info: KindInfo) -> str:
    """kubebuilder's naming: <group>_<plural>.yaml."""
    return f"{info.group}_{info.plural}.yaml"


def render(info: KindInfo) -> str:
    """One CRD as the YAML committed under crds/."""
    header = "# Generated by `make crds` from operator/vibeplane/api; do not edit.\n"
    return header + yaml.safe_dump(crd(info), sort_keys=False, width=100, allow_unicode=True)


def rendered_files(kinds: Iterable[KindInfo] = ALL_KINDS) -> dict[str, str]:
    """File name -> content for every kind."""
    return {file_name(info): render(info) for info in kinds}


def write(directories: Iterable[Path]) -> list[Path]:
    """Write every CRD into each directory, removing stale generated files."""
    written = []
    files = rendered_files()
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("vibeplane.io_*.yaml"):
            if stale.name not in files:
                stale.unlink()
        for name, content in files.items():
            path = directory / name
            path.write_text(content)
            written.append(path)
    return written
