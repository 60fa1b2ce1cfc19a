"""Private previews through the gateway, end to end on the local platform: Traefik (built from
its Go module) in the real node's namespace routes an app's host to the front service, which
asks the cluster who the person is and whether they may `get` the app, then proxies to the
preview running in gVisor on the real node. People are ServiceAccounts with real tokens, made
members of their Workspace by its spec (the operator binds their roles).

Until the operator writes preview HTTPRoutes itself (issue 14, operator side), the test writes
the route and ReferenceGrant the operator will write, the same shape."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import requests
from kubernetes.client import ApiClient

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    OperatorProcess,
    _free_port,
    api,
    cluster,
    model_server,
    operator,
    preview_node,
    s3,
)
from tests.integration.support import GROUP, VERSION, create_object, wait_for
from tests.security.support import custom, make_workspace, wait_app
from vibeplane_dev.cluster import gateway
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import existing_real_node, real_node_selected
from vibeplane_frontdoor import cookies

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real_node_selected(), reason="the gateway runs on the real node"),
    # Traefik's cold build is long (see the README): `make gateway-build` (part of
    # `NODE=real make up`) builds it once; `make test` does not pay for it.
    pytest.mark.skipif(
        not gateway.traefik_path(ClusterConfig.from_env().cache).is_file(),
        reason="Traefik is not built: make gateway-build",
    ),
]


@dataclass
class Site:
    port: int
    host: str
    other_host: str
    namespace: str
    other_namespace: str
    tokens: dict[str, str]
    key: bytes

    def get(self, host: str | None = None, path: str = "/", **kwargs: Any) -> requests.Response:
        headers = {"Host": host or self.host, **kwargs.pop("headers", {})}
        return requests.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=15,
            **kwargs,
        )


def _route(namespace: str, app: str) -> list[dict[str, Any]]:
    """What the operator writes for a preview (vibeplane.vibeapp.routes)."""
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": f"{app}-preview", "namespace": namespace},
            "spec": {
                "parentRefs": [
                    {
                        "name": gateway.GATEWAY_NAME,
                        "namespace": gateway.GATEWAY_NAMESPACE,
                        "sectionName": gateway.LISTENER,
                    }
                ],
                "hostnames": [gateway.app_host(app, namespace)],
                "rules": [
                    {
                        "backendRefs": [
                            {
                                "name": gateway.FRONTDOOR_SERVICE,
                                "namespace": gateway.FRONTDOOR_NAMESPACE,
                                "port": 80,
                            }
                        ]
                    }
                ],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {
                "name": f"routes-from-{namespace}",
                "namespace": gateway.FRONTDOOR_NAMESPACE,
            },
            "spec": {
                "from": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "HTTPRoute",
                        "namespace": namespace,
                    }
                ],
                "to": [{"group": "", "kind": "Service", "name": gateway.FRONTDOOR_SERVICE}],
            },
        },
    ]


def _apply(client: ApiClient, documents: list[dict[str, Any]]) -> None:
    dynamic = kubernetes.dynamic.DynamicClient(client)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        resource.server_side_apply(
            body=document,
            namespace=document["metadata"].get("namespace"),
            field_manager="test-gateway",
            force_conflicts=True,
        )


def _route_accepted(client: ApiClient, namespace: str, name: str) -> bool:
    route = custom(client).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
    )
    for parent in (route.get("status") or {}).get("parents") or []:
        conditions = {c["type"]: c["status"] for c in parent.get("conditions") or []}
        if conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True":
            return True
    return False


def _front_service_answers(port: int, host: str) -> bool | None:
    try:
        response = requests.get(
            f"http://127.0.0.1:{port}/__vibeplane/healthz", headers={"Host": host}, timeout=5
        )
    except requests.RequestException:
        return None
    return (response.status_code == 200 and response.text == "ok") or None


@pytest.fixture(scope="module")
def site(
    api: ApiClient,  # noqa: F811
    cluster: LocalCluster,  # noqa: F811
    operator: OperatorProcess,  # noqa: F811
    preview_node: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    core = kubernetes.client.CoreV1Api(api)
    people = f"gw-people-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": people}})
    for name in ("alice", "bob"):
        core.create_namespaced_service_account(people, {"metadata": {"name": name}})

    def member(name: str) -> dict[str, Any]:
        user = f"system:serviceaccount:{people}:{name}"
        return {
            "members": [{"kind": "User", "name": user, "role": "viewer"}],
            "budget": {"tokens": 5_000_000, "money": "100"},
        }

    ws_a = make_workspace(api, "gw-a", member("alice"))
    ws_b = make_workspace(api, "gw-b", member("bob"))
    ns_a, ns_b = ws_a["status"]["namespace"], ws_b["status"]["namespace"]
    local = gateway.LocalGateway(
        cluster.config,
        existing_real_node(cluster.config),
        tmp_path_factory.mktemp("gateway"),
        port=_free_port(),
        front_port=_free_port(),
    )
    try:
        local.up(
            cluster.kubectl,
            [sys.executable, str(Path(sys.executable).parent / "vibeplane-frontdoor")],
        )
        wait_for(
            lambda: local.programmed(cluster.kubectl) or None,
            timeout=120,
            what="Gateway Programmed",
        )
        create_object(api, "VibeApp", "todo", {"prompts": ["a todo list with due dates"]}, ns_a)
        create_object(api, "VibeApp", "notes", {"prompts": ["a todo list with due dates"]}, ns_b)
        wait_app(api, ns_a, "todo", ("Running",))
        wait_app(api, ns_b, "notes", ("Running",))
        for namespace, app in ((ns_a, "todo"), (ns_b, "notes")):
            _apply(api, _route(namespace, app)[::-1])  # the grant first
            wait_for(
                lambda n=namespace, a=app: _route_accepted(api, n, f"{a}-preview") or None,
                timeout=60,
                what=f"HTTPRoute {namespace}/{app}-preview accepted",
            )
            # Accepted in status comes before Traefik serves the new configuration.
            host = gateway.app_host(app, namespace)
            wait_for(
                lambda h=host: _front_service_answers(local.port, h),  # type: ignore[misc]
                timeout=60,
                what=f"the front service answering for {app} through the gateway",
            )
        tokens = {
            name: core.create_namespaced_service_account_token(
                name, people, {"spec": {"expirationSeconds": 3600}}
            ).status.token
            for name in ("alice", "bob")
        }
        yield Site(
            local.port,
            gateway.app_host("todo", ns_a),
            gateway.app_host("notes", ns_b),
            ns_a,
            ns_b,
            tokens,
            gateway.frontdoor_key(local.home).read_bytes().strip(),
        )
    finally:
        local.down()
        for workspace in (ws_a, ws_b):
            custom(api).delete_cluster_custom_object(
                GROUP, VERSION, "workspaces", workspace["metadata"]["name"]
            )
        core.delete_namespace(people)


def _cold_start_seconds(client: ApiClient, namespace: str, app: str) -> float:
    """A preview pod's own start on this node: created -> Ready (the API's second resolution)."""
    pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod(
        namespace, label_selector=f"vibeplane.io/app={app}"
    )
    pod = pods.items[0]
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    return float((ready.last_transition_time - pod.metadata.creation_timestamp).total_seconds())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_workspace_member_gets_the_app_through_the_gateway(site: Site) -> None:
    response = site.get(headers=_bearer(site.tokens["alice"]))
    assert response.status_code == 200
    assert "<html" in response.text.lower()


def test_a_member_of_another_workspace_gets_403(site: Site) -> None:
    assert site.get(headers=_bearer(site.tokens["bob"])).status_code == 403
    assert site.get(site.other_host, headers=_bearer(site.tokens["bob"])).status_code == 200


def test_anonymous_is_sent_to_sign_in_and_a_signed_in_member_gets_a_cookie(site: Site) -> None:
    anonymous = site.get()
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/__vibeplane/signin?next=")
    signin = site.get(path="/__vibeplane/signin?next=/", headers=_bearer(site.tokens["alice"]))
    assert signin.status_code == 303
    value = signin.cookies[cookies.COOKIE_NAME]
    assert site.get(cookies={cookies.COOKIE_NAME: value}).status_code == 200
    # the same cookie on the other app's host opens nothing there
    assert site.get(site.other_host, cookies={cookies.COOKIE_NAME: value}).status_code == 302


@pytest.mark.parametrize("kind", ["forged", "expired", "other-app"])
def test_forged_expired_and_other_app_cookies_are_refused(site: Site, kind: str) -> None:
    user = "system:serviceaccount:x:alice"
    now = int(time.time())
    session, key = {
        "forged": (cookies.Session(site.host, user, now + 600), b"f" * 32),
        "expired": (cookies.Session(site.host, user, now - 1), site.key),
        "other-app": (cookies.Session(site.other_host, user, now + 600), site.key),
    }[kind]
    response = site.get(cookies={cookies.COOKIE_NAME: cookies.sign(session, key)})
    assert response.status_code == 302
    assert response.headers["X-Vibeplane-Auth"].startswith("cookie refused")


def test_a_hibernated_app_wakes_on_one_visit(
    api: ApiClient,  # noqa: F811
    site: Site,
    artifacts: Path,
) -> None:
    objects = custom(api)
    # 30 s without a visit hibernates it (the operator's own rule, unchanged).
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        site.namespace,
        "vibeapps",
        "todo",
        {"spec": {"preview": {"idleTimeout": "30s"}}},
    )
    wait_app(api, site.namespace, "todo", ("Hibernated",), timeout=180)
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    start = time.monotonic()
    first = site.get(headers=_bearer(site.tokens["alice"]))
    assert first.status_code == 503
    assert "http-equiv='refresh'" in first.text
    visits = 1
    while True:
        response = site.get(headers=_bearer(site.tokens["alice"]))
        visits += 1
        if response.status_code == 200:
            break
        assert response.status_code == 503, response.text[:300]
        assert time.monotonic() - start < 180, "the app did not wake in 3 minutes"
        time.sleep(0.5)
    seconds = time.monotonic() - start
    assert "<html" in response.text.lower()
    cold = _cold_start_seconds(api, site.other_namespace, "notes")
    (artifacts / "wake-on-visit.txt").write_text(
        f"hibernated app, first visit -> app served: {seconds:.1f} s ({visits} requests)\n"
        f"cold preview start of a sibling app (pod created -> Ready): {cold:.0f} s\n"
        f"ratio: {seconds / max(cold, 1):.2f}\n"
    )
    app = objects.get_namespaced_custom_object(GROUP, VERSION, site.namespace, "vibeapps", "todo")
    assert app["metadata"]["annotations"]["vibeplane.io/wake"] >= before
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        site.namespace,
        "vibeapps",
        "todo",
        {"spec": {"preview": {"idleTimeout": "30m"}}},
    )
