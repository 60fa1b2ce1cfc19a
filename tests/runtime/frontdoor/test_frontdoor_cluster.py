"""The front service against the real API server: real ServiceAccount tokens reviewed by the
cluster (TokenReview), real RBAC deciding (SubjectAccessReview), the wake annotation written
on a real VibeApp. The front service runs with its own ServiceAccount and only the rights the
chart gives it (rights listed in FRONTDOOR_RULES). The preview behind it is a recording HTTP
server reached the way the front service reaches previews from outside the cluster: the
preview Service's NodePort (here on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest
import requests
import yaml
from aiohttp import web
from kubernetes.client import ApiClient

from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_frontdoor import cookies
from vibeplane_frontdoor.kube import Connection, Kube
from vibeplane_frontdoor.server import FrontDoor, Settings, make_app
from vibeplane_frontdoor.wake import WAKE_ANNOTATION, WakeGate, format_time

pytestmark = pytest.mark.integration

GROUP, VERSION = "vibeplane.io", "v1alpha1"
DOMAIN = "vibeplane.localhost"
KEY = b"integration-test-key-0123456789abcdef"
FRONTDOOR_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
    {"apiGroups": [GROUP], "resources": ["vibeapps"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
]


@dataclass
class Upstream:
    """The preview's stand-in: answers 'hello from <app>' and remembers what it received."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        return web.Response(text="hello from todo")


@dataclass
class Door:
    url: str
    front: FrontDoor
    upstream: Upstream
    tokens: dict[str, str]
    host: str
    other_host: str
    namespace: str

    def get(self, path: str = "/", host: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Host": host or self.host, **kwargs.pop("headers", {})}
        return requests.get(
            self.url + path, headers=headers, allow_redirects=False, timeout=10, **kwargs
        )


def _loop_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return loop, thread


def _node_port_listener() -> socket.socket:
    """A listening socket on 127.0.0.1 in the NodePort range (the Service will name it)."""
    for port in range(31000 + uuid.uuid4().int % 1500, 32767):
        sock = socket.socket()
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return sock
        sock.close()
    raise RuntimeError("no free port in the NodePort range")


def _token(core: Any, namespace: str, name: str) -> str:
    request = {"spec": {"expirationSeconds": 3600}}
    return str(core.create_namespaced_service_account_token(name, namespace, request).status.token)


def _kubeconfig(path: Path, cluster: LocalCluster, token: str) -> Path:
    ca = Path(
        yaml.safe_load(cluster.config.admin_kubeconfig.read_text())["clusters"][0]["cluster"][
            "certificate-authority"
        ]
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": cluster.config.server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def door(
    api: ApiClient, cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Door]:
    core = kubernetes.client.CoreV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    suffix = uuid.uuid4().hex[:6]
    ns_a, ns_b, ns_door = f"fd-a-{suffix}", f"fd-b-{suffix}", f"fd-door-{suffix}"
    role = f"vibeplane-frontdoor-test-{suffix}"
    for ns in (ns_a, ns_b, ns_door):
        core.create_namespace({"metadata": {"name": ns, "labels": {"vibeplane.io/test": "true"}}})
    listener = _node_port_listener()
    loop, _ = _loop_thread()
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []
    try:
        for ns in (ns_a, ns_b):
            core.create_namespaced_service_account(ns, {"metadata": {"name": "member"}})
            rbac.create_namespaced_role_binding(
                ns,
                {
                    "metadata": {"name": "member-viewer"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "vibeplane-workspace-viewer",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "member", "namespace": ns}],
                },
            )
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                "vibeapps",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "VibeApp",
                    "metadata": {"name": "todo"},
                    "spec": {"prompts": ["a todo list"]},
                },
            )
        core.create_namespaced_service_account(ns_door, {"metadata": {"name": "frontdoor"}})
        rbac.create_cluster_role({"metadata": {"name": role}, "rules": FRONTDOOR_RULES})
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": "frontdoor", "namespace": ns_door}],
            }
        )
        node_port = listener.getsockname()[1]
        core.create_namespaced_service(
            ns_a,
            {
                "metadata": {"name": "todo-preview"},
                "spec": {
                    "type": "NodePort",
                    "selector": {"app": "none"},
                    "ports": [{"port": 80, "nodePort": node_port}],
                },
            },
        )
        upstream = Upstream(node_port)
        tokens = {
            "member": _token(core, ns_a, "member"),
            "other": _token(core, ns_b, "member"),
            "frontdoor": _token(core, ns_door, "frontdoor"),
        }
        kubeconfig = _kubeconfig(
            tmp_path_factory.mktemp("fd") / "kubeconfig", cluster, tokens["frontdoor"]
        )
        settings = Settings(
            key=KEY, domain=DOMAIN, upstream="nodeport:127.0.0.1", activity_interval=3600
        )

        async def start() -> tuple[FrontDoor, int]:
            up_app = web.Application()
            up_app.router.add_route("*", "/{tail:.*}", upstream.handle)
            up_runner = web.AppRunner(up_app)
            await up_runner.setup()
            await web.SockSite(up_runner, listener).start()
            api_session = aiohttp.ClientSession()
            proxy_session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
            front = FrontDoor(
                settings, Kube(Connection.from_kubeconfig(kubeconfig), api_session), proxy_session
            )
            runner = web.AppRunner(make_app(front))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.extend([up_runner, runner])
            sessions.extend([api_session, proxy_session])
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return front, port

        front, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        yield Door(
            f"http://127.0.0.1:{port}",
            front,
            upstream,
            tokens,
            f"todo-{ns_a}.{DOMAIN}",
            f"todo-{ns_b}.{DOMAIN}",
            ns_a,
        )
    finally:

        async def stop() -> None:
            for runner in runners:
                await runner.cleanup()
            for session in sessions:
                await session.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        listener.close()
        for ns in (ns_a, ns_b, ns_door):
            core.delete_namespace(ns)
        with contextlib.suppress(kubernetes.client.exceptions.ApiException):
            rbac.delete_cluster_role(role)
            rbac.delete_cluster_role_binding(role)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_workspace_member_gets_the_app_and_no_credential_reaches_it(door: Door) -> None:
    response = door.get("/index.html", headers=_bearer(door.tokens["member"]))
    assert response.status_code == 200
    assert response.text == "hello from todo"
    seen = door.upstream.seen[-1]
    assert "Authorization" not in seen
    assert door.tokens["member"] not in repr(seen)


def test_a_member_of_another_workspace_is_forbidden(door: Door) -> None:
    before = len(door.upstream.seen)
    response = door.get(headers=_bearer(door.tokens["other"]))
    assert response.status_code == 403
    assert "system:serviceaccount:fd-b-" in response.text
    # and the other member's own app opens for them, the first one's does not
    assert door.get(host=door.other_host, headers=_bearer(door.tokens["other"])).status_code != 403
    assert door.get(host=door.other_host, headers=_bearer(door.tokens["member"])).status_code == 403
    assert len(door.upstream.seen) == before


def test_anonymous_is_sent_to_sign_in(door: Door) -> None:
    response = door.get("/page?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/__vibeplane/signin?next=%2Fpage%3Fx%3D1"
    assert door.get(response.headers["Location"]).status_code == 200  # the form
    post = requests.post(
        door.url + "/__vibeplane/signin",
        data={"token": "not-a-token", "next": "/"},
        headers={"Host": door.host},
        allow_redirects=False,
        timeout=10,
    )
    assert post.status_code == 401


def test_signing_in_sets_a_cookie_for_this_host_that_then_suffices(door: Door) -> None:
    response = requests.post(
        door.url + "/__vibeplane/signin",
        data={"token": door.tokens["member"], "next": "/page"},
        headers={"Host": door.host},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/page"
    value = response.cookies[cookies.COOKIE_NAME]
    assert "Domain" not in response.headers["Set-Cookie"]
    page = door.get("/page", cookies={cookies.COOKIE_NAME: value, "theme": "dark"})
    assert page.status_code == 200
    forwarded = door.upstream.seen[-1].get("Cookie", "")
    assert forwarded == "theme=dark"  # the session cookie stays here


@pytest.mark.parametrize("kind", ["forged", "expired", "other-app"])
def test_forged_expired_and_other_app_cookies_are_refused(door: Door, kind: str) -> None:
    user = "system:serviceaccount:x:member"
    session = {
        "forged": (cookies.Session(door.host, user, int(time.time()) + 600), b"f" * 32),
        "expired": (cookies.Session(door.host, user, int(time.time()) - 1), KEY),
        "other-app": (cookies.Session(door.other_host, user, int(time.time()) + 600), KEY),
    }[kind]
    value = cookies.sign(*session)
    before = len(door.upstream.seen)
    response = door.get(cookies={cookies.COOKIE_NAME: value})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/__vibeplane/signin")
    assert response.headers["X-Vibeplane-Auth"].startswith("cookie refused")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert len(door.upstream.seen) == before


def test_decisions_are_cached(door: Door) -> None:
    door.front.identities = type(door.front.identities)(16, 60, time.monotonic)
    door.front.access = type(door.front.access)(16, 60, time.monotonic)
    for _ in range(5):
        assert door.get(headers=_bearer(door.tokens["member"])).status_code == 200
    assert len(door.front.identities) == 1
    assert len(door.front.access) == 1


def test_a_burst_of_visits_to_a_hibernated_app_wakes_it_with_one_write(
    api: ApiClient, door: Door, without_other_operators: None
) -> None:
    # The session's operator, where one runs, would reconcile the phase set here by hand back
    # to Running before the burst; without it the app stays Hibernated throughout.
    custom = kubernetes.client.CustomObjectsApi(api)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, door.namespace, "vibeapps", "todo", {"status": {"phase": "Hibernated"}}
    )
    # Hibernated because idle for an hour: the last wake (this module's earlier visits wrote
    # it as activity) is an hour old, in the API and in the front service's memory.
    an_hour_ago = format_time(time.time() - 3600)
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        door.namespace,
        "vibeapps",
        "todo",
        {"metadata": {"annotations": {WAKE_ANNOTATION: an_hour_ago}}},
    )
    door.front.wake = WakeGate(time.time)
    door.front.invalidate_index()
    writes = door.front.wake_writes

    async def burst() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as session:

            async def one() -> tuple[int, str]:
                async with session.get(
                    door.url + "/", headers={"Host": door.host, **_bearer(door.tokens["member"])}
                ) as response:
                    return response.status, await response.text()

            return await asyncio.gather(*(one() for _ in range(20)))

    answers = asyncio.run(burst())
    assert door.front.wake_writes == writes + 1
    # Nothing makes it Running here: every visit of the burst sees the starting page.
    assert all(status == 503 for status, _ in answers), answers
    assert all("Starting todo" in text and "http-equiv='refresh'" in text for _, text in answers)
    app = custom.get_namespaced_custom_object(GROUP, VERSION, door.namespace, "vibeapps", "todo")
    assert app["metadata"]["annotations"][WAKE_ANNOTATION] > an_hour_ago
