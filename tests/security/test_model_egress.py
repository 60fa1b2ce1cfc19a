"""A tenant's external model cannot make the operator reach loopback or cluster destinations.

Against the real API server and the session's operator, in a tenant namespace (any namespace
but the platform's): models whose baseURL names a loopback address, `localhost` or a cluster
Service name are Ready=False with reason EgressRefused, and a listener on that very address and
port (run by the test) is never connected to. The session's operator allows exactly 127.0.0.1,
the way a platform allows its LLM gateway (models.egress.allow): a model there is checked and
Ready, which shows the allowlist admits what it names and nothing next to it.

Only loopback is used here (tests send nothing elsewhere); link-local (169.254.169.254),
private names and the cluster's ranges are refused before any connection in
tests/unit/generation/test_client_egress.py, with an injected resolver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import OperatorProcess
from tests.integration.support import GROUP, VERSION, find_condition, wait_for
from tests.unit.generation.listener import Listener, serve


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    with serve("127.0.0.1") as one, serve("127.0.0.2") as two:
        yield {"127.0.0.1": one, "127.0.0.2": two}


def _model(api: ApiClient, namespace: str, base_url: str) -> str:
    name = f"egress-{uuid.uuid4().hex[:6]}"
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modeldeployments",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"name": "m"},
                "serving": {"external": {"baseURL": base_url, "model": "m"}},
            },
        },
    )
    return name


def _ready(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    def checked() -> dict[str, Any] | None:
        obj = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", name
        )
        return find_condition(obj, "Ready")

    return wait_for(checked, timeout=30, what=f"the Ready condition of {name}")


def test_tenant_models_on_loopback_and_cluster_names_are_refused_unsent(
    api: ApiClient,
    operator: OperatorProcess,
    namespace: str,
    listeners: dict[str, Listener],
) -> None:
    one, two = listeners["127.0.0.1"], listeners["127.0.0.2"]
    refused = {
        f"http://localhost:{one.port}/v1": "is a cluster-internal or host-local name",
        f"http://127.0.0.2:{two.port}/v1": "127.0.0.2, a loopback address",
        f"http://kubernetes.default.svc:{one.port}/v1": "is a cluster-internal or host-local name",
    }
    names = {url: _model(api, namespace, url) for url in refused}
    allowed = _model(api, namespace, f"http://127.0.0.1:{one.port}/v1")
    for url, fragment in refused.items():
        ready = _ready(api, namespace, names[url])
        assert (ready["status"], ready["reason"]) == ("False", "EgressRefused"), ready
        assert fragment in ready["message"]
    assert _ready(api, namespace, allowed)["status"] == "True"
    # The allowed model's checks, and nothing else connected.
    assert one.connections == len(one.requests) >= 1
    assert {path for path, _ in one.requests} == {"/v1/models"}
    assert (two.connections, two.requests) == (0, [])
