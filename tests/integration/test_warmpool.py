"""Warm pools on the real control plane, with sandboxes on the session's node: a new app adopts
an idle started sandbox and gets its revision by delivery, the pool refills, an adopted sandbox
serves its app only, and a pool of 0 keeps none (every other test here runs without one: the
session's operator defaults to 0, so the cold path stays covered)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import S3, OperatorProcess
from tests.integration.support import GROUP, VERSION, create_object, find_condition, wait_for
from vibeplane.vibeapp.delivery import DeliveryKey, Order, signed
from vibeplane.wellknown import REVISION_PATH, SIGNATURE_HEADER

pytestmark = pytest.mark.integration
IDLE = "vibeplane.io/pool=idle"


def _workspace(api: ApiClient, spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    custom = kubernetes.client.CustomObjectsApi(api)
    name = f"wp{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"budget": {"tokens": 5_000_000}, **spec})

    def ready() -> dict[str, Any] | None:
        body = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
        condition = find_condition(body, "Ready")
        return dict(body) if condition and condition["status"] == "True" else None

    yield wait_for(ready, timeout=30, what="workspace Ready")
    custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


@pytest.fixture
def pooled(api: ApiClient, operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    yield from _workspace(api, {"warmPool": 1})


def _ready_idle(core: Any, namespace: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=IDLE).items
    return [
        pod
        for pod in pods
        if not pod.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def _order(key: DeliveryKey, url: str, namespace: str, app: str, uid: str) -> int:
    """POST a validly signed order to a sandbox; its HTTP status."""
    order = Order(namespace, app, uid, 1, "0" * 64, "http://127.0.0.1:9/x", time.time_ns() // 10**6)
    body, signature = signed(key, order)
    request = urllib.request.Request(
        url.rstrip("/") + REVISION_PATH,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_new_app_adopts_a_warm_sandbox_and_the_pool_refills(
    api: ApiClient, pooled: dict[str, Any], s3: S3, preview_node: str
) -> None:
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace, workspace = pooled["status"]["namespace"], pooled["metadata"]["name"]
    condition = wait_for(
        lambda: find_condition(
            custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", workspace), "WarmPool"
        ),
        timeout=30,
        what="WarmPool condition",
    )
    assert (condition["status"], condition["reason"]) == ("True", "Kept")
    [warm] = wait_for(lambda: _ready_idle(core, namespace), timeout=120, what="a warm sandbox")
    assert warm.spec.runtime_class_name == "gvisor"

    create_object(api, "VibeApp", "first", {"prompts": ["a todo list"]}, namespace)

    def running() -> dict[str, Any] | None:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "first")
        return dict(body) if (body.get("status") or {}).get("phase") == "Running" else None

    app = wait_for(running, timeout=120, what="first Running")
    # The warm sandbox took it: relabelled and owned by the app, its Deployment at 0, no other.
    taken = core.read_namespaced_pod(warm.metadata.name, namespace)
    assert taken.metadata.labels["vibeplane.io/app"] == "first"
    assert "vibeplane.io/pool" not in taken.metadata.labels
    [owner] = taken.metadata.owner_references
    assert (owner.kind, owner.uid) == ("VibeApp", app["metadata"]["uid"])
    assert app["status"]["delivered"]["sandbox"].startswith(f"{warm.metadata.name}/")
    assert apps.read_namespaced_deployment("first-preview", namespace).spec.replicas == 0
    pods = core.list_namespaced_pod(namespace, label_selector="vibeplane.io/app=first").items
    assert [p.metadata.name for p in pods] == [warm.metadata.name]
    url = app["status"]["url"]
    with urllib.request.urlopen(url, timeout=5) as response:
        assert "todo" in response.read().decode().lower()

    # The pool refills in the background: another idle sandbox, never the adopted one.
    [fresh] = wait_for(lambda: _ready_idle(core, namespace), timeout=120, what="pool refilled")
    assert fresh.metadata.name != warm.metadata.name

    # The adopted sandbox serves this app in this workspace only, whoever signs: another app
    # of the namespace, or an app of another workspace, is refused before anything is fetched.
    key = DeliveryKey.loads((s3.server.config.home / "delivery-key.json").read_text())
    assert _order(key, url, namespace, "second", str(uuid.uuid4())) == 403
    assert _order(key, url, "ws-elsewhere", "first", app["metadata"]["uid"]) == 403
    with urllib.request.urlopen(url, timeout=5) as response:
        assert "todo" in response.read().decode().lower()

    # A pool of 0 keeps none: the idle sandbox goes, the adopted one stays with its app.
    custom.patch_cluster_custom_object(
        GROUP, VERSION, "workspaces", workspace, {"spec": {"warmPool": 0}}
    )
    wait_for(
        lambda: not core.list_namespaced_pod(namespace, label_selector=IDLE).items,
        timeout=60,
        what="pool emptied",
    )
    assert (
        core.read_namespaced_pod(warm.metadata.name, namespace).metadata.labels["vibeplane.io/app"]
        == "first"
    )
