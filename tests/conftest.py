"""Shared pytest configuration: the suite's own platform home and ports, and where artifacts
of a run go."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The suite's cluster and node live in a home of their own, on ports of their own, unless the
# caller chose them: a platform that `make up` left running (its operator would reconcile the
# tests' objects, its leftovers would fill the node) never meets the suite, and both can be up
# at once. Set here, before any fixture reads the configuration.
TEST_HOME = Path.home() / ".vibeplane-test"
TEST_DEFAULTS = {
    "VIBEPLANE_HOME": str(TEST_HOME),
    "VIBEPLANE_APISERVER_PORT": "16453",
    "VIBEPLANE_ETCD_PORT": "23793",
    "VIBEPLANE_ETCD_PEER_PORT": "23803",
    "VIBEPLANE_S3_PORT": "19003",
    "VIBEPLANE_MODELSERVER_PORT": "18083",
    "VIBEPLANE_GATEWAY_PORT": "18883",
    "VIBEPLANE_FRONTDOOR_PORT": "18893",
}
for _name, _value in TEST_DEFAULTS.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """A folder for files a run leaves for people to look at (logs, screenshots)."""
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    # Options must be added in the rootdir conftest; tests/chaos reads this one.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        help="run tests/chaos in its long form (50 apps, 20 operator kills); "
        "also VIBEPLANE_CHAOS=long",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    """A failed test that used the cluster gets its nodes' health in the report: a node under
    disk or memory pressure (or tainted) leaves every pod Pending, and a test that waits for a
    pod only sees `None` time out."""
    report: pytest.TestReport = yield
    if report.failed and "cluster" in getattr(item, "fixturenames", ()):
        report.sections.append(("the cluster's nodes", _nodes_health()))
    return report


def _nodes_health() -> str:
    from vibeplane_dev.cluster.local import LocalCluster

    cluster = LocalCluster()
    if not cluster.ready():
        return "the API server does not answer"
    listed = cluster.kubectl("get", "nodes", "-o", "json", "--request-timeout=10s")
    if listed.returncode != 0:
        return f"kubectl get nodes failed: {listed.stderr.strip()}"
    lines = []
    for node in json.loads(listed.stdout)["items"]:
        status = node.get("status", {})
        conditions = [
            f"{c['type']}={c['status']} ({c.get('reason', '')}: {c.get('message', '')})"
            for c in status.get("conditions", [])
            if (c["type"] == "Ready") != (c["status"] == "True")  # unhealthy ones only
        ]
        taints = [f"{t['key']}:{t['effect']}" for t in node.get("spec", {}).get("taints", [])]
        lines.append(
            f"{node['metadata']['name']}: "
            + ("; ".join(conditions) or "Ready, no pressure")
            + (f"; taints {', '.join(taints)}" if taints else "")
        )
    return "\n".join(lines) or "no node registered"
