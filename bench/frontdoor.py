"""The front service's cost per request against a plain proxied request, same run.

Each request goes to the same recording upstream (the preview's place) through:
- plain: the front service's proxy alone (no authentication): the baseline;
- cookie: a signed session cookie (HMAC check, no API call);
- cached: a bearer token whose TokenReview and SubjectAccessReview are in the decision cache;
- uncached: a bearer token with both caches emptied before each request (two API calls).
The API server is the real local control plane; tokens are real ServiceAccount tokens of a
workspace member. Prints p50/p99 in milliseconds and the ratio to the plain proxy.

    .venv/bin/python -m bench.frontdoor --requests 400
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
from aiohttp import web

from bench.common import api as admin_api
from bench.common import cluster as start_cluster
from vibeplane_frontdoor import cookies
from vibeplane_frontdoor.cache import DecisionCache
from vibeplane_frontdoor.kube import Connection, Kube
from vibeplane_frontdoor.server import FrontDoor, Settings, make_app

KEY = b"bench-key-0123456789abcdef0123456789"
DOMAIN = "vibeplane.localhost"


def _listener() -> socket.socket:
    for port in range(31000 + uuid.uuid4().int % 1500, 32767):
        sock = socket.socket()
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return sock
        sock.close()
    raise RuntimeError("no free port in the NodePort range")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def _measure(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    count: int,
    before: Any = None,
) -> list[float]:
    samples = []
    for _ in range(count):
        if before is not None:
            before()
        start = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    local = start_cluster()
    client = admin_api(local)
    core = kubernetes.client.CoreV1Api(client)
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    namespace = f"bench-fd-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    listener = _listener()
    try:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "member"}})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "member"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "vibeplane-workspace-viewer",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "member", "namespace": namespace}],
            },
        )
        custom.create_namespaced_custom_object(
            "vibeplane.io",
            "v1alpha1",
            namespace,
            "vibeapps",
            {
                "apiVersion": "vibeplane.io/v1alpha1",
                "kind": "VibeApp",
                "metadata": {"name": "todo"},
                "spec": {"prompts": ["a todo list"]},
            },
        )
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": "todo-preview"},
                "spec": {
                    "type": "NodePort",
                    "selector": {"app": "none"},
                    "ports": [{"port": 80, "nodePort": listener.getsockname()[1]}],
                },
            },
        )
        token = core.create_namespaced_service_account_token(
            "member", namespace, {"spec": {"expirationSeconds": 3600}}
        ).status.token
        asyncio.run(_run(args.requests, local.config.admin_kubeconfig, listener, namespace, token))
    finally:
        listener.close()
        core.delete_namespace(namespace)


async def _run(
    count: int, kubeconfig: Path, listener: socket.socket, namespace: str, token: str
) -> None:
    host = f"todo-{namespace}.{DOMAIN}"

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello " * 100)

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", hello)
    runners = [web.AppRunner(upstream_app)]
    await runners[0].setup()
    await web.SockSite(runners[0], listener).start()
    async with (
        aiohttp.ClientSession() as api_session,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as proxy_session,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client,
    ):
        settings = Settings(key=KEY, domain=DOMAIN, upstream="nodeport:127.0.0.1")
        front = FrontDoor(
            settings, Kube(Connection.from_kubeconfig(kubeconfig), api_session), proxy_session
        )
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"

        async def plain(request: web.Request) -> web.StreamResponse:
            return await front.proxy(request, base)

        plain_app = web.Application()
        plain_app.router.add_route("*", "/{tail:.*}", plain)
        urls = []
        for application in (make_app(front), plain_app):
            runner = web.AppRunner(application)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/")  # type: ignore[union-attr]
        door, plain_url = urls
        session = cookies.sign(cookies.Session(host, "bench", int(time.time()) + 3600), KEY)

        def empty_caches() -> None:
            front.identities = DecisionCache(4096, 10, time.monotonic)
            front.access = DecisionCache(4096, 10, time.monotonic)

        bearer = {"Host": host, "Authorization": f"Bearer {token}"}
        cases = {
            "plain proxy (baseline)": (plain_url, {"Host": host}, None),
            "cookie": (door, {"Host": host, "Cookie": f"{cookies.COOKIE_NAME}={session}"}, None),
            "token, cached decision": (door, bearer, None),
            "token, uncached (TokenReview + SAR)": (door, bearer, empty_caches),
        }
        for url, headers, before in cases.values():  # warm up connections and caches
            await _measure(client, url, headers, 20, before)
        figures = {}
        for name, (url, headers, before) in cases.items():
            figures[name] = _percentiles(await _measure(client, url, headers, count, before))
        base_p50, base_p99 = figures["plain proxy (baseline)"]
        columns = f"{'p50 ms':>8} {'p99 ms':>8} {'p50 x':>7} {'p99 x':>7}"
        print(f"{'path':40} {columns}  ({count} requests each)")
        for name, (p50, p99) in figures.items():
            print(f"{name:40} {p50:8.2f} {p99:8.2f} {p50 / base_p50:7.2f} {p99 / base_p99:7.2f}")
        print(f"(wake writes during the run: {front.wake_writes}; activity writes are per minute)")
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    main()
