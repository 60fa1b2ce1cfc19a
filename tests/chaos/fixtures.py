"""The chaos runs' own fixtures and sizes (imported into conftest.py, which says why each
is what it is)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.chaos.faults import ModelFaults, S3Faults
from tests.integration.conftest import (
    S3,
    TEST_EGRESS_ALLOW,
    ModelServer,
    OperatorProcess,
    apply_builtin_model,
)
from tests.integration.support import GROUP, VERSION, find_condition, wait_for
from vibeplane.settings import OperatorSettings
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import (
    NodeNetwork,
    real_node_operator_environment,
    real_node_selected,
)

PLATFORM = OperatorSettings().platform_namespace


@dataclass(frozen=True)
class Form:
    """The size of a chaos run."""

    name: str
    apps: int
    """Apps that live to the end, spread over `workspaces`."""
    workspaces: int
    deleted_apps: int
    """Apps deleted during the run, in a workspace of their own."""
    prompts: int
    """Prompts per app: the first at creation, the others appended during the run."""
    previews: int
    """Apps (of those that live) with a preview under gVisor; the others run without one."""
    kills: int
    """SIGKILLs of the operator, at random points."""
    apiserver_restarts: int
    s3_bursts: int
    """Periods of `burst_seconds` in which every S3 request of the operator gets a 500."""
    s3_hangs: int
    """S3 requests held past the operator's read timeout."""
    window: float
    """Seconds the disruptions are spread over."""
    converge_timeout: float
    """Seconds the run has to converge once the disruptions stop."""
    test_timeout: int
    burst_seconds: float = 2.5
    s3_fault_fraction: float = 0.03
    """Of the operator's S3 requests, those answered with a 500 all through the window."""
    model_fault_fraction: float = 0.25
    """Of the chat calls, those that time out or answer garbage (tests.chaos.faults)."""
    model_latency: float = 1.0
    """Up to this many seconds added to every chat call, so kills also land mid-call."""
    conflict_pause: float = 0.02
    """Seconds between two rounds of competing writes."""


SHORT = Form(
    "short",
    apps=7,
    workspaces=3,
    deleted_apps=1,
    prompts=2,
    previews=2,
    kills=4,
    apiserver_restarts=1,
    s3_bursts=1,
    s3_hangs=1,
    window=30,
    converge_timeout=90,
    test_timeout=300,
)
LONG = Form(
    "long",
    apps=45,
    workspaces=9,
    deleted_apps=5,
    prompts=3,
    previews=8,
    kills=20,
    apiserver_restarts=3,
    s3_bursts=3,
    s3_hangs=3,
    window=180,
    converge_timeout=300,
    test_timeout=1200,
)
# The operator's model timeout in a chaos run, and how long a "timeout" fault holds a call.
MODEL_TIMEOUT = 5.0
MODEL_HANG = MODEL_TIMEOUT + 2
# The operator's S3 client gives up on a read after 30 s (vibeplane.storage.s3): a hang
# outlasts it, so the operator must time out, never wait forever.
S3_HANG = 35.0


REPORTS = pytest.StashKey[list[str]]()
"""Lines each chaos run reports; conftest shows them in the terminal summary."""


def chaos_form(config: pytest.Config) -> Form:
    """The long form with --chaos-long or VIBEPLANE_CHAOS=long, else the short one."""
    long = config.getoption("--chaos-long") or os.environ.get("VIBEPLANE_CHAOS") == "long"
    return LONG if long else SHORT


@pytest.fixture(scope="module")
def form(request: pytest.FixtureRequest) -> Form:
    return chaos_form(request.config)


@pytest.fixture(scope="module")
def seed() -> int:
    """VIBEPLANE_CHAOS_SEED replays a run's schedule; else a fresh one (printed, reported)."""
    return int(os.environ.get("VIBEPLANE_CHAOS_SEED") or random.SystemRandom().randrange(10**6))


@pytest.fixture(scope="module")
def s3_faults(
    s3: S3, seed: int, cluster: LocalCluster, chaos_preview_node: str
) -> Iterator[S3Faults]:
    """In front of MinIO where previews fetch their bundles too (their presigned URLs name it):
    bound once the node, and with it the address pods reach, is up."""
    host = _pod_reachable_host(cluster)
    proxy = S3Faults(s3.server.endpoint, seed, hang_seconds=S3_HANG, host=host)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def model_faults(model_server: ModelServer, form: Form, seed: int) -> Iterator[ModelFaults]:
    upstream = model_server.openai_base.removesuffix("/openai/v1")
    proxy = ModelFaults(upstream, seed + 2, hang_seconds=MODEL_HANG, latency=form.model_latency)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def chaos_preview_node(preview_node: str) -> str:
    """The session's preview node (one per session: the integration tests share it)."""
    return preview_node


def _pod_reachable_host(cluster: LocalCluster) -> str:
    """The address preview pods reach the host on: the host end of the real node's veth (the
    node's relays bind there too), or loopback for the stand-in, which runs on the host."""
    if real_node_selected():
        return NodeNetwork.for_home(cluster.config.home.parent).host_ip
    return "127.0.0.1"


@pytest.fixture(scope="module")
def chaos_operator(
    cluster: LocalCluster,
    api: ApiClient,
    s3: S3,
    s3_faults: S3Faults,
    model_faults: ModelFaults,
    artifacts: Path,
) -> Iterator[OperatorProcess]:
    """Our operator, alone on the cluster: its object store and builtin model are the fault
    proxies; every other operator of the session is stopped until it is done."""
    others = list(OperatorProcess.running)
    for other in others:
        other.stop()
    # Straight into artifacts: pytest removes all but its three newest temporary folders, those
    # of other sessions of the same user too, so a long run's may vanish under it.
    log = artifacts / "chaos-operator.log"
    log.unlink(missing_ok=True)
    process = OperatorProcess(
        cluster,
        log,
        {
            **s3.environment,
            # Previews on the real node: NodePort URLs and the object store's allowance.
            **(real_node_operator_environment(s3.server.config) if real_node_selected() else {}),
            "VIBEPLANE_S3_ENDPOINT": s3_faults.url,
            "VIBEPLANE_BUILTIN_MODEL_URL": f"{model_faults.url}/openai/v1",
            "VIBEPLANE_MODEL_TIMEOUT": str(MODEL_TIMEOUT),
            "VIBEPLANE_MODEL_EGRESS_ALLOW": json.dumps(TEST_EGRESS_ALLOW),
            # One delivery key across the chaos operator's kills, as the chart's Secret keeps
            # it: without it every restart signs with a new key and rolls every preview pod.
            "VIBEPLANE_DELIVERY_KEY_FILE": str(s3.server.config.home / "delivery-key.json"),
        },
    )
    # Chaos slows everything: a preview gets longer to answer before it counts as failed.
    process.env["VIBEPLANE_PREVIEW_READY_TIMEOUT"] = "120"
    if real_node_selected():  # previews' bundles come through the proxy: allow them there
        process.env["VIBEPLANE_OBJECT_STORE_EGRESS"] = f"{s3_faults.host}/32:{s3_faults.port}"
    try:
        process.start()
        _builtin_model_behind(api, f"{model_faults.url}/openai/v1")
        yield process
    finally:
        process.stop()
        for other in others:
            other.start()


def _builtin_model_behind(api: ApiClient, url: str) -> None:
    """The platform's builtin ModelDeployment, Ready at the model proxy (as the session's
    operator fixture makes it, pointed elsewhere)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    apply_builtin_model(api)

    def ready_at_proxy() -> bool:
        body = custom.get_namespaced_custom_object(
            GROUP, VERSION, PLATFORM, "modeldeployments", "builtin"
        )
        condition = find_condition(body, "Ready")
        return bool(
            (body.get("status") or {}).get("url") == url
            and condition
            and condition["status"] == "True"
        )

    wait_for(ready_at_proxy, timeout=60, what="the builtin model Ready behind the proxy")
