"""The stdlib-only runtimes keep copies of `vibeplane.wellknown`: each must equal it."""

from __future__ import annotations

import ast
from pathlib import Path

from vibeplane import wellknown
from vibeplane.vibeapp.desired import PREVIEW_PORT, preview_name
from vibeplane_frontdoor import server, wake
from vibeplane_sandbox import bundle, manifests, preview

ROOT = Path(__file__).resolve().parents[2]


def test_the_sandbox_copies_equal_the_well_known_names() -> None:
    assert manifests.LOCAL_NODE_LABEL == wellknown.LABEL_LOCAL_NODE
    taint = {
        "key": wellknown.SANDBOX_TAINT_KEY,
        "value": wellknown.SANDBOX_TAINT_VALUE,
        "effect": wellknown.SANDBOX_TAINT_EFFECT,
    }
    assert taint == manifests.TAINT
    assert {**taint, "operator": "Equal"} == manifests.TOLERATION
    assert bundle.PORT_ANNOTATION == wellknown.ANNOTATION_LOCAL_PORT
    assert bundle.RUNTIME_MOUNT == wellknown.PREVIEW_RUNTIME_DIR
    assert preview.ENV_BUNDLE_URL == wellknown.ENV_BUNDLE_URL
    assert preview.ENV_BUNDLE_SHA256 == wellknown.ENV_BUNDLE_SHA256
    assert preview.ENV_PORT == wellknown.ENV_PORT
    assert preview.ENV_DELIVERY_KEY == wellknown.ENV_DELIVERY_KEY
    assert preview.ENV_POD_NAMESPACE == wellknown.ENV_POD_NAMESPACE
    assert preview.ENV_POD_NAME == wellknown.ENV_POD_NAME
    assert preview.ENV_POD_UID == wellknown.ENV_POD_UID
    assert preview.REVISION_PATH == wellknown.REVISION_PATH
    assert preview.READY_PATH == wellknown.READY_PATH
    assert preview.SIGNATURE_HEADER == wellknown.SIGNATURE_HEADER


def test_the_front_service_copies_equal_the_operators_names() -> None:
    assert wake.WAKE_ANNOTATION == wellknown.ANNOTATION_WAKE
    assert preview_name("todo") == "todo" + server.PREVIEW_SERVICE_SUFFIX
    assert PREVIEW_PORT == 8080  # the Service's port 80 targets it by name


def test_the_preview_image_ships_the_runtime_where_the_name_says() -> None:
    dockerfile = (ROOT / "runtime" / "sandbox" / "Dockerfile").read_text()
    assert f"{wellknown.PREVIEW_RUNTIME_DIR}/" in dockerfile


def test_the_operator_writes_no_well_known_literal_of_its_own() -> None:
    """Every `vibeplane.io/...` string of the operator's package lives in wellknown.py, so a
    rename happens in one place (the API group's own names excepted)."""
    names = {value for value in vars(wellknown).values() if isinstance(value, str)}
    package = ROOT / "operator" / "vibeplane"
    stray: list[str] = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "wellknown.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in names
                and "/" in node.value
            ):
                stray.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert stray == []
