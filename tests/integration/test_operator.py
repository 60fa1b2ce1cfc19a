"""The operator, as a real process, reconciles the three kinds and writes nothing when idle."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import OperatorProcess
from tests.integration.support import (
    GROUP,
    VERSION,
    AuditLog,
    create_object,
    find_condition,
    wait_for,
)
from vibeplane_dev.cluster.local import OPERATOR_USER

pytestmark = pytest.mark.integration


def ready_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    return find_condition(obj, "Ready")


@pytest.fixture
def workspace(api: ApiClient) -> Iterator[str]:
    custom = kubernetes.client.CustomObjectsApi(api)
    name = f"w{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"displayName": "Test team"})
    yield name
    custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


def test_workspace_becomes_ready_with_its_namespace(
    operator: OperatorProcess, api: ApiClient, workspace: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)

    def ready() -> dict[str, Any] | None:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)
        condition = find_condition(obj, "Ready")
        return obj if condition and condition["status"] == "True" else None

    obj = wait_for(ready, timeout=30, what="Workspace Ready")
    condition = find_condition(obj, "Ready")
    assert condition is not None
    assert condition["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["namespace"] == f"ws-{workspace}"
    namespace = kubernetes.client.CoreV1Api(api).read_namespace(f"ws-{workspace}")
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.metadata.owner_references[0].name == workspace


def test_model_deployment_and_vibeapp_get_a_readycondition(
    operator: OperatorProcess, api: ApiClient, namespace: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    create_object(
        api,
        "ModelDeployment",
        "m",
        {
            "model": {"name": "m"},
            "serving": {"builtin": {}},
            "pricing": {"inputPerMillion": "0.5"},
        },
        namespace=namespace,
    )
    create_object(
        api,
        "VibeApp",
        "a",
        {"prompts": ["a todo list with title and due date"]},
        namespace=namespace,
    )
    model = wait_for(
        lambda: (
            ready_of(
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "modeldeployments", "m"
                )
            )
            and custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", "m"
            )
        ),
        timeout=30,
        what="ModelDeployment Ready condition",
    )
    assert model["status"]["servingMode"] == "builtin"
    assert model["status"]["pricing"]["inputPerMillion"] == "0.5"
    assert ready_of(model)["observedGeneration"] == model["metadata"]["generation"]  # type: ignore[index]
    app = wait_for(
        lambda: (
            ready_of(
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "a")
            )
            and custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "a")
        ),
        timeout=30,
        what="VibeApp Ready condition",
    )
    assert app["status"]["phase"] in ("Pending", "Generating")
    assert ready_of(app)["observedGeneration"] == app["metadata"]["generation"]  # type: ignore[index]


def test_a_spec_edit_updates_observed_generation(
    operator: OperatorProcess, api: ApiClient, workspace: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    wait_for(
        lambda: ready_of(custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)),
        timeout=30,
        what="first reconcile",
    )
    custom.patch_cluster_custom_object(
        GROUP, VERSION, "workspaces", workspace, {"spec": {"displayName": "Renamed"}}
    )

    def caught_up() -> bool:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)
        return bool(obj["status"].get("observedGeneration") == obj["metadata"]["generation"] == 2)

    wait_for(caught_up, timeout=30, what="observedGeneration 2")


def test_no_writes_once_converged(
    operator: OperatorProcess, api: ApiClient, workspace: str, audit: AuditLog
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    wait_for(
        lambda: ready_of(custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace)),
        timeout=30,
        what="Workspace Ready",
    )
    time.sleep(2)  # let the writes of convergence land in the log
    mark = audit.mark()
    # The operator resyncs every 3 s in tests: three resyncs of a converged object.
    time.sleep(10)
    writes = [
        event
        for event in audit.writes(mark, OPERATOR_USER)
        if workspace in (event["objectRef"].get("name"), event["objectRef"].get("namespace"))
        or f"ws-{workspace}"
        in (event["objectRef"].get("name"), event["objectRef"].get("namespace"))
    ]
    assert writes == [], [f"{e['verb']} {e['objectRef']}" for e in writes]
    assert "vibeplane_reconciles_total" in operator.metrics()
