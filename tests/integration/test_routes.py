"""The front door on the real API server with Gateway API's real CRDs: a preview's host
claimed once (racing claimers: one wins), its HTTPRoute and the workspace's ReferenceGrant
server-side applied, nothing written when converged, Routed from the route's status, a
missing Gateway a condition with nothing written, claims released with their app."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.support import create_object
from vibeplane.api.vibeapp import Publish
from vibeplane.controller.cache import ObjectCache
from vibeplane.kube.client import ApiServerClient, Manifest
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp import desired, routes
from vibeplane.vibeapp.frontdoor import FrontDoor
from vibeplane.vibeapp.publish import secret_name

pytestmark = pytest.mark.integration
GATEWAY_GROUP, V1 = "gateway.networking.k8s.io", "v1"


class CountingClient(ApiServerClient):
    """The real client, counting what it writes."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def apply(
        self,
        desired: Manifest,
        field_manager: str,
        live: Manifest | None = None,
        lookup: bool = True,
    ) -> Manifest | None:
        stored = super().apply(desired, field_manager, live, lookup)
        if stored is not None:
            self.writes.append(f"apply {desired['kind']}/{desired['metadata']['name']}")
        return stored

    def create(self, desired: Manifest) -> Manifest | None:
        stored = super().create(desired)
        if stored is not None:  # a refused create (the name exists) changed nothing
            self.writes.append(f"create {desired['kind']}/{desired['metadata']['name']}")
        return stored


@pytest.fixture
def app(api: ApiClient, namespace: str) -> Iterator[tuple[str, str, str, str]]:
    """A VibeApp and a Workspace to own the route and the grant: (app, uid, ws, ws uid)."""
    workspace = f"routes-{uuid.uuid4().hex[:6]}"
    ws = create_object(api, "Workspace", workspace, {})
    body = create_object(api, "VibeApp", "todo", {"prompts": ["a todo list"]}, namespace=namespace)
    yield "todo", body["metadata"]["uid"], workspace, ws["metadata"]["uid"]
    kubernetes.client.CustomObjectsApi(api).delete_cluster_custom_object(
        "vibeplane.io", "v1alpha1", "workspaces", workspace
    )


@pytest.fixture(autouse=True)
def claims_namespace(api: ApiClient, namespace: str) -> Iterator[str]:
    """Claims live in a namespace of their own (not the platform namespace, where the leader's
    Lease is): one per test, beside the test's namespace."""
    core = kubernetes.client.CoreV1Api(api)
    name = _claims(namespace)
    core.create_namespace({"metadata": {"name": name, "labels": {"vibeplane.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


def _claims(namespace: str) -> str:
    return f"{namespace}-hosts"


def _door(namespace: str, **changes: Any) -> tuple[FrontDoor, CountingClient]:
    base: dict[str, Any] = {
        "platform_namespace": namespace,
        "claims_namespace": _claims(namespace),
        "gateway_namespace": namespace,
        "gateway_name": "vibeplane",
        "gateway_listener": "http",
        "preview_domain": "apps.test",
        "custom_domain_suffixes": ("example.com",),
    }
    settings = OperatorSettings(**{**base, **changes})
    kube = CountingClient()
    cache = ObjectCache(kube, on_change=lambda _: None)
    door = FrontDoor(settings, cache, kube, "vibeplane-vibeapp")
    door.watch()
    cache.prime()
    return door, kube


def _gateway(api: ApiClient, namespace: str) -> dict[str, Any]:
    custom = kubernetes.client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GATEWAY_GROUP}/{V1}",
        "kind": "Gateway",
        "metadata": {"name": "vibeplane", "namespace": namespace},
        "spec": {
            "gatewayClassName": "vibeplane-test",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GATEWAY_GROUP, V1, namespace, "gateways", body
    )
    return created


def test_a_missing_gateway_is_a_condition_and_nothing_is_written(
    api: ApiClient, namespace: str, app: tuple[str, str, str, str]
) -> None:
    name, uid, workspace, workspace_uid = app
    door, kube = _door(namespace)
    plan = door.preview(name, namespace, uid, workspace, workspace_uid)
    assert (plan.condition.status, plan.condition.reason) == ("False", "GatewayNotFound")
    assert kube.writes == []
    assert plan.url is None


def test_preview_route_claimed_applied_routed_and_quiet_when_converged(
    api: ApiClient, namespace: str, app: tuple[str, str, str, str]
) -> None:
    name, uid, workspace, workspace_uid = app
    _gateway(api, namespace)
    door, kube = _door(namespace)
    plan = door.preview(name, namespace, uid, workspace, workspace_uid)
    host = f"todo-{namespace}.apps.test"
    assert plan.url == f"http://{host}/"
    assert plan.condition.reason == "Pending"
    assert kube.writes == [
        f"create Lease/{host}",
        f"apply ReferenceGrant/{routes.reference_grant_name(namespace)}",
        "apply HTTPRoute/todo-preview",
    ]
    custom = kubernetes.client.CustomObjectsApi(api)
    route = custom.get_namespaced_custom_object(
        GATEWAY_GROUP, V1, namespace, "httproutes", "todo-preview"
    )
    assert route["spec"]["hostnames"] == [host]

    # Converged: a second reconcile (and a fresh operator's) writes nothing.
    kube.writes.clear()
    door.preview(name, namespace, uid, workspace, workspace_uid)
    assert kube.writes == []
    fresh, fresh_kube = _door(namespace)
    fresh.preview(name, namespace, uid, workspace, workspace_uid)
    assert fresh_kube.writes == []

    # The Gateway's controller reports on the route: Routed follows.
    status = {
        "parents": [
            {
                "parentRef": {
                    "group": GATEWAY_GROUP,
                    "kind": "Gateway",
                    "name": "vibeplane",
                    "namespace": namespace,
                    "sectionName": "http",
                },
                "controllerName": "example.io/test-gateway",
                "conditions": [
                    _condition("Accepted", "True", route),
                    _condition("ResolvedRefs", "True", route),
                ],
            }
        ]
    }
    custom.patch_namespaced_custom_object_status(
        GATEWAY_GROUP, V1, namespace, "httproutes", "todo-preview", {"status": status}
    )
    fresh, fresh_kube = _door(namespace)
    plan = fresh.preview(name, namespace, uid, workspace, workspace_uid)
    assert (plan.condition.status, plan.condition.reason) == ("True", "Accepted")
    assert fresh_kube.writes == []

    # Deleted: its claim goes, so the host is free again.
    assert fresh.release(name, namespace) == 1
    assert (
        ApiServerClient().get("coordination.k8s.io/v1", "Lease", host, _claims(namespace)) is None
    )


def _condition(kind: str, status: str, route: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": kind,
        "message": "",
        "observedGeneration": route["metadata"]["generation"],
        "lastTransitionTime": "2026-12-03T12:00:00Z",
    }


def test_racing_claims_of_one_host_have_one_winner(namespace: str) -> None:
    door, _ = _door(namespace)
    host = f"race-{uuid.uuid4().hex[:6]}.apps.test"
    results: dict[str, bool] = {}
    start = threading.Barrier(8)

    def claim(app: str) -> None:
        start.wait()
        results[app] = door.claim(host, app, namespace, f"uid-{app}")

    threads = [threading.Thread(target=claim, args=(f"app{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [app for app, won in results.items() if won]
    assert len(winners) == 1, results
    lease = ApiServerClient().get("coordination.k8s.io/v1", "Lease", host, _claims(namespace))
    assert routes.claim_holder(lease) == (namespace, winners[0])
    # The holder claiming again keeps it; another never takes it over.
    assert door.claim(host, winners[0], namespace, "uid")
    loser = next(app for app in results if app not in winners)
    assert not door.claim(host, loser, namespace, "uid")


PREVIEW = desired.PreviewSettings("gvisor", "preview:test", ("python3", "-m", "x"), False)
REVISIONS = [
    {"number": 1, "sha256": "ab" * 32, "validation": "Passed"},
    {"number": 2, "sha256": "cd" * 32, "validation": "Failed"},
]


def _publish(door: FrontDoor, app: tuple[str, str, str, str], namespace: str, **spec: Any) -> Any:
    name, uid, _, _ = app
    return door.publish(
        name,
        namespace,
        uid,
        Publish(**{"revision": 1, "hostnames": ["shop.example.com"], **spec}),
        REVISIONS,
        None,
        datetime.now(UTC),
        lambda revision: ("2099-01-01T00:00:00Z", "http://127.0.0.1:1/bundle"),
        PREVIEW,
    )


def test_bad_publish_input_is_a_condition_and_nothing_is_written(
    api: ApiClient, namespace: str, app: tuple[str, str, str, str]
) -> None:
    _gateway(api, namespace)
    door, kube = _door(namespace)
    other, _ = _door(namespace)
    assert other.claim("taken.example.com", "someone", "ws-else", "uid-else")
    cases = {
        "InvalidHostname": {"hostnames": ["Not A Host"]},
        "HostnameNotAllowed": {"hostnames": ["shop.other.org"]},
        "HostnameReserved": {"hostnames": ["www.apps.test"]},
        "HostnameTaken": {"hostnames": ["taken.example.com"]},
        "RevisionNotFound": {"revision": 9},
        "RevisionNotValidated": {"revision": 2},
    }
    for reason, spec in cases.items():
        plan = _publish(door, app, namespace, **spec)
        assert (plan.condition.status, plan.condition.reason) == ("False", reason), spec
    missing, missing_kube = _door(namespace, gateway_name="absent")
    plan = _publish(missing, app, namespace)
    assert plan.condition.reason == "GatewayNotFound"
    assert kube.writes == []
    assert missing_kube.writes == []
    holder = ApiServerClient().get(
        "coordination.k8s.io/v1", "Lease", "taken.example.com", _claims(namespace)
    )
    assert routes.claim_holder(holder) == ("ws-else", "someone")


def test_publish_claims_applies_and_is_quiet_when_converged(
    api: ApiClient, namespace: str, app: tuple[str, str, str, str]
) -> None:
    _gateway(api, namespace)
    door, kube = _door(namespace, publish_tls="certificate", certificate_issuer="test-ca")
    plan = _publish(door, app, namespace, hostnames=["shop.example.com", "todo.apps.test"])
    assert plan.condition.reason == "RollingOut"
    assert plan.url == "https://shop.example.com/"
    kinds = sorted(write.split("/")[0] for write in kube.writes)
    assert kinds == [
        "apply Certificate",
        "apply Deployment",
        "apply HTTPRoute",
        "apply ListenerSet",
        "apply Service",
        "create Lease",
        "create Lease",
    ]
    kube.writes.clear()
    _publish(door, app, namespace, hostnames=["shop.example.com", "todo.apps.test"])
    assert kube.writes == []
    deployment = ApiServerClient().get("apps/v1", "Deployment", "todo-published", namespace)
    assert deployment is not None
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _claimed(namespace: str) -> dict[str, tuple[str, str] | None]:
    leases = ApiServerClient().list_objects(
        "coordination.k8s.io/v1",
        "Lease",
        _claims(namespace),
        "app.kubernetes.io/component=hostname-claim",
    )
    return {lease["metadata"]["name"]: routes.claim_holder(lease) for lease in leases}


def test_dropped_hostnames_and_unpublish_free_their_claims_and_objects(
    api: ApiClient, namespace: str, app: tuple[str, str, str, str]
) -> None:
    name, uid, workspace, workspace_uid = app
    _gateway(api, namespace)
    door, kube = _door(namespace, publish_tls="certificate", certificate_issuer="test-ca")
    me = (namespace, name)
    preview = door.preview(name, namespace, uid, workspace, workspace_uid).host
    both = ["shop.example.com", "blog.example.com"]
    plan = _publish(door, app, namespace, hostnames=both)
    assert door.settle_claims(name, namespace, Publish(revision=1, hostnames=both), True) == 0
    assert _claimed(namespace) == {preview: me, "shop.example.com": me, "blog.example.com": me}

    # blog.example.com dropped from the spec: the route follows, and its claim goes.
    shop = Publish(revision=1, hostnames=["shop.example.com"])
    plan = _publish(door, app, namespace, hostnames=shop.hostnames)
    assert plan.revision
    assert door.settle_claims(name, namespace, shop, applied=True) == 1
    assert _claimed(namespace) == {preview: me, "shop.example.com": me}
    assert door.live_published_hosts(name, namespace) == ["shop.example.com"]
    certificates = ApiServerClient().list_objects("cert-manager.io/v1", "Certificate", namespace)
    assert [c["spec"]["dnsNames"] for c in certificates] == [["shop.example.com"]]
    other, _ = _door(namespace)
    assert other.claim("blog.example.com", "another", namespace, "uid-another")

    # A refused change keeps what production serves, and its claim.
    refused = Publish(revision=9, hostnames=["new.example.com"])
    plan = _publish(door, app, namespace, revision=9, hostnames=refused.hostnames)
    assert plan.condition.reason == "RevisionNotFound"
    kube.writes.clear()
    assert door.settle_claims(name, namespace, refused, applied=False) == 0
    assert kube.writes == []
    assert _claimed(namespace)["shop.example.com"] == me

    # Publish removed: the route, Service, Deployment, ListenerSet and Certificates go, then
    # every claim but the preview's.
    client = ApiServerClient()
    assert client.get(
        "cert-manager.io/v1", "Certificate", secret_name("todo", "shop.example.com"), namespace
    )
    assert door.unpublish(name, namespace) == 5
    for api_version, kind in (
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("gateway.networking.k8s.io/v1", "ListenerSet"),
    ):
        assert client.get(api_version, kind, "todo-published", namespace) is None, kind
    assert client.list_objects("cert-manager.io/v1", "Certificate", namespace) == []
    assert door.settle_claims(name, namespace, None, applied=False) == 1
    assert _claimed(namespace) == {preview: me, "blog.example.com": (namespace, "another")}
    # Converged: nothing more to delete or release.
    kube.writes.clear()
    assert door.unpublish(name, namespace) == 0
    assert door.settle_claims(name, namespace, None, applied=False) == 0
    # The leader's Lease lives in the platform namespace; no claim is ever written there.
    assert client.list_objects("coordination.k8s.io/v1", "Lease", namespace) == []
