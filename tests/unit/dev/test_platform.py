"""The values `vibeplane up` installs the chart with on the real node (pure: no Helm, no
cluster): values-local.yaml and the machine's file together satisfy the chart's schema, and
the gateway's names reach the operator as chart values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.test_chart_values import SCHEMA, VALUES, problems
from vibeplane_dev import platform
from vibeplane_dev.cluster import gateway

BUILT = {
    "operator": (Path("/cache/operator.tar"), "vibeplane.local/operator:0123456789abcdef"),
    "modelserver": (Path("/cache/modelserver.tar"), "vibeplane.local/modelserver:fedcba9876543210"),
    "frontdoor": (Path("/cache/frontdoor.tar"), "vibeplane.local/frontdoor:00112233aabbccdd"),
}


def _values(
    home: Path, monkeypatch: pytest.MonkeyPatch, *, with_gateway: bool
) -> dict[str, object]:
    monkeypatch.setenv("VIBEPLANE_HOME", str(home))
    monkeypatch.setenv("VIBEPLANE_S3_PORT", "19999")
    monkeypatch.setenv("VIBEPLANE_GATEWAY", "traefik" if with_gateway else "")
    local = yaml.safe_load(platform.LOCAL_VALUES.read_text())
    machine = platform.local_values(platform.Platform.local(), BUILT)
    return platform.merge_values(local, machine)


@pytest.mark.parametrize("with_gateway", [False, True])
def test_the_local_values_satisfy_the_charts_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_gateway: bool
) -> None:
    values = _values(tmp_path, monkeypatch, with_gateway=with_gateway)
    # Helm validates the defaults with both files merged over them.
    assert problems(platform.merge_values(VALUES, values), SCHEMA) == []


def test_the_images_built_here_are_never_pulled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _values(tmp_path, monkeypatch, with_gateway=False)
    assert values["image"] == {
        "repository": "vibeplane.local/operator",
        "tag": "0123456789abcdef",
        "pullPolicy": "Never",
    }
    modelserver = values["modelserver"]
    assert isinstance(modelserver, dict)
    assert modelserver["enabled"] is True  # values-local.yaml's, kept by the merge
    assert modelserver["image"]["tag"] == "fedcba9876543210"


def test_the_gateway_reaches_the_operator_as_chart_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = _values(tmp_path, monkeypatch, with_gateway=False)
    assert "gateway" not in without  # the chart's defaults: no routes
    assert "frontDoor" not in without  # and no front service
    values = _values(tmp_path, monkeypatch, with_gateway=True)
    assert values["gateway"] == {
        "name": gateway.GATEWAY_NAME,
        "listener": gateway.LISTENER,
        "frontService": {"name": gateway.FRONTDOOR_SERVICE, "port": 80},
    }
    operator, preview = values["operator"], values["preview"]
    assert isinstance(operator, dict)
    assert isinstance(preview, dict)
    assert operator["gatewayNamespace"] == gateway.GATEWAY_NAMESPACE
    assert operator["generationWorkers"] == 2  # values-local.yaml's, beside the gateway's
    assert preview["domain"] == gateway.DOMAIN
    assert preview["nodeAddress"]  # the machine's, beside the gateway's
    # The routes lead to the release's front service pod, in the image built here.
    assert values["frontDoor"] == {
        "enabled": True,
        "image": {
            "repository": "vibeplane.local/frontdoor",
            "tag": "00112233aabbccdd",
            "pullPolicy": "Never",
        },
    }


def test_values_merge_as_helm_merges_values_files() -> None:
    merged = platform.merge_values(
        {"a": {"b": 1, "c": [1, 2]}, "d": "x"}, {"a": {"c": [3], "e": 2}, "d": "y"}
    )
    assert merged == {"a": {"b": 1, "c": [3], "e": 2}, "d": "y"}
