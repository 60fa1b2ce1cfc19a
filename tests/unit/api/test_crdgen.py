"""The CRDs are generated from the models, structural, and committed up to date."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vibeplane.api import ALL_KINDS
from vibeplane.api.crdgen import crd, file_name, rendered_files

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("directory", ["crds", "charts/vibeplane/crds"])
def test_committed_crds_match_the_models(directory: str) -> None:
    committed = {path.name: path.read_text() for path in (ROOT / directory).glob("*.yaml")}
    assert committed == rendered_files(), f"{directory} is stale: run `make crds`"


def _walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], f"{path}[]")


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda info: info.kind)
def test_schema_is_structural_and_documented(info: Any) -> None:
    root = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = yaml.safe_dump(root)
    assert "$ref" not in text
    assert "type: 'null'" not in text
    assert "type: null" not in text
    for path, node in _walk(root["properties"]["spec"], ".spec"):
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert node.get("description") or path.endswith("[]"), f"{path} has no description"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf beyond int-or-string"
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda info: info.kind)
def test_no_empty_properties_the_api_server_would_drop(info: Any) -> None:
    # `properties: {}` is dropped by the API server: the file would never equal what it
    # stores, and server-side apply by another manager conflicts on .spec.versions.
    root = crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(root):
        assert node.get("properties", None) != {}, f"{path} has empty properties"


def test_names_columns_and_subresources() -> None:
    by_kind = {info.kind: crd(info) for info in ALL_KINDS}
    assert by_kind["Workspace"]["spec"]["scope"] == "Cluster"
    assert by_kind["ModelDeployment"]["spec"]["scope"] == "Namespaced"
    short = {kind: doc["spec"]["names"]["shortNames"] for kind, doc in by_kind.items()}
    assert short == {
        "Workspace": ["ws"],
        "ModelDeployment": ["md"],
        "VibeApp": ["va"],
        "ModelTraining": ["mt"],
    }
    for doc in by_kind.values():
        version = doc["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert doc["spec"]["names"]["categories"] == ["vibeplane"]
    columns = [
        c["name"] for c in by_kind["VibeApp"]["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert columns == ["Phase", "Rev", "URL", "Cost", "Age"]
    columns = [
        c["name"] for c in by_kind["Workspace"]["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert columns == ["Namespace", "Used %", "Apps", "Ready", "Age"]


def test_file_names_follow_kubebuilder() -> None:
    assert [file_name(info) for info in ALL_KINDS] == [
        "vibeplane.io_workspaces.yaml",
        "vibeplane.io_modeldeployments.yaml",
        "vibeplane.io_vibeapps.yaml",
        "vibeplane.io_modeltrainings.yaml",
    ]
