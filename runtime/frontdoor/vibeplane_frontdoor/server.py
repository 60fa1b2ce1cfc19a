"""The front service's HTTP handling: find the app, authenticate, wake, proxy."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from aiohttp import web

from vibeplane_frontdoor import cookies, pages
from vibeplane_frontdoor.cache import DecisionCache
from vibeplane_frontdoor.headers import downstream_response_headers, upstream_request_headers
from vibeplane_frontdoor.hosts import AppRef, index_apps, normalize_host
from vibeplane_frontdoor.kube import Identity, Kube, KubeError
from vibeplane_frontdoor.wake import WAKE_ANNOTATION, WakeGate, format_time

log = logging.getLogger(__name__)

HEALTH_PATH = "/__vibeplane/healthz"
PREVIEW_SERVICE_SUFFIX = "-preview"  # vibeplane.vibeapp.desired.preview_name (tested equal)
PREVIEW_SERVICE_PORT = 80
HIBERNATED = "Hibernated"
# Why a request was sent to sign in, for people and tests (never the cookie's content).
REASON_HEADER = "X-Vibeplane-Auth"


@dataclass(frozen=True)
class Settings:
    key: bytes
    domain: str | None = None
    cookie_ttl: int = cookies.DEFAULT_TTL_SECONDS
    decision_ttl: float = 10.0
    cache_entries: int = 4096
    index_ttl: float = 2.0
    # "service": <app>-preview.<namespace>.svc (in the cluster); "nodeport:<address>": the
    # preview Service's NodePort on a node's address (the front service outside the cluster).
    upstream: str = "service"
    cluster_domain: str = "cluster.local"
    activity_interval: float = 60.0
    wake_interval: float = 5.0


class FrontDoor:
    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        upstream: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.upstream = upstream
        self.clock = clock
        self.monotonic = monotonic
        self.identities: DecisionCache[Identity | None] = DecisionCache(
            settings.cache_entries, settings.decision_ttl, monotonic
        )
        self.access: DecisionCache[bool] = DecisionCache(
            settings.cache_entries, settings.decision_ttl, monotonic
        )
        self.node_ports: DecisionCache[int] = DecisionCache(
            settings.cache_entries, settings.index_ttl, monotonic
        )
        self.wake = WakeGate(clock, settings.activity_interval, settings.wake_interval)
        self._index: dict[str, AppRef] = {}
        self._index_at = float("-inf")
        self._index_lock = asyncio.Lock()
        self.wake_writes = 0  # for tests and the bench: how many annotation writes were made

    # ---- which app ---------------------------------------------------------------------------

    async def app_for(self, host: str) -> AppRef | None:
        fresh = self.monotonic() - self._index_at < self.settings.index_ttl
        if fresh and host in self._index:
            return self._index[host]
        # Unknown hosts refresh at most twice a second: a scan of random hosts cannot turn
        # into a flood of list calls.
        if host not in self._index and self.monotonic() - self._index_at < 0.5:
            return None
        async with self._index_lock:
            if self.monotonic() - self._index_at >= min(0.5, self.settings.index_ttl):
                apps = await self.kube.list_apps()
                self._index = index_apps(apps, self.settings.domain, WAKE_ANNOTATION)
                self._index_at = self.monotonic()
        return self._index.get(host)

    def invalidate_index(self) -> None:
        self._index_at = float("-inf")

    # ---- who, and may they -------------------------------------------------------------------

    async def identity(self, token: str) -> Identity | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self.identities.get(key)
        if cached is not None:
            return cached
        found = await self.kube.token_review(token)
        if found is not None:  # refusals are not cached: a fresh token works at once
            self.identities.put(key, found)
        return found

    async def allowed(self, identity: Identity, app: AppRef) -> bool:
        key = (identity, app.namespace, app.name)
        cached = self.access.get(key)
        if cached is not None:
            return cached
        decision = await self.kube.may_get_app(identity, app.namespace, app.name)
        self.access.put(key, decision)
        return decision

    # ---- requests ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == HEALTH_PATH:
            return web.Response(text="ok")
        host = normalize_host(request.headers.get("Host"))
        app = await self.app_for(host) if host else None
        if host is None or app is None:
            return web.Response(status=404, text="no app is served at this host\n")
        secure = request.headers.get("X-Forwarded-Proto", request.scheme) == "https"
        if request.path == pages.SIGNIN_PATH:
            return await self.signin(request, host, app, secure)

        refusal = ""
        raw = request.cookies.get(cookies.COOKIE_NAME)
        if raw:
            try:
                cookies.verify(raw, self.settings.key, host, self.clock())
                return await self.serve(request, app)
            except cookies.CookieRefused as error:
                refusal = f"cookie refused: {error}"
        token = _bearer(request)
        if token:
            identity = await self.identity(token)
            if identity is None:
                return _unauthenticated(request, "token not accepted by the cluster")
            if not await self.allowed(identity, app):
                return _forbidden(identity, app)
            return await self.serve(request, app)
        return _unauthenticated(request, refusal or "anonymous")

    async def signin(
        self, request: web.Request, host: str, app: AppRef, secure: bool
    ) -> web.StreamResponse:
        """GET shows the form (or, with a bearer token, signs in at once); POST takes a token."""
        if request.method == "POST":
            form = await request.post()
            token = str(form.get("token") or "").strip()
            next_path = pages.safe_next(str(form.get("next") or "/"))
        else:
            token = _bearer(request) or ""
            next_path = pages.safe_next(request.query.get("next"))
        if not token:
            return _html(pages.signin_page(next_path, request.query.get("reason", "")), 200)
        identity = await self.identity(token)
        if identity is None:
            return _html(
                pages.signin_page(next_path, "The cluster did not accept that token."), 401
            )
        if not await self.allowed(identity, app):
            return _forbidden(identity, app)
        session = cookies.Session(
            host, identity.username, int(self.clock()) + self.settings.cookie_ttl
        )
        value = cookies.sign(session, self.settings.key)
        response = web.Response(status=303, headers={"Location": next_path})
        response.headers["Set-Cookie"] = cookies.set_cookie_header(
            value, self.settings.cookie_ttl, secure
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def serve(self, request: web.Request, app: AppRef) -> web.StreamResponse:
        hibernated = app.phase == HIBERNATED
        if self.wake.claim(app.key, app.wake, hibernated):
            try:
                await self.kube.annotate(
                    app.namespace, app.name, WAKE_ANNOTATION, format_time(self.clock())
                )
                self.wake_writes += 1
                self.invalidate_index()
            except KubeError as error:
                self.wake.forget(app.key)
                log.warning("could not write the wake annotation of %s/%s: %s", *app.key, error)
        if hibernated:
            return _starting(app)
        try:
            base = await self.upstream_base(app)
        except KubeError as error:
            log.warning("no upstream for %s/%s: %s", *app.key, error)
            return _starting(app)
        if base is None:
            return _starting(app)
        try:
            return await self.proxy(request, base)
        except (aiohttp.ClientConnectionError, TimeoutError):
            self.invalidate_index()  # it may have just hibernated, or not be running yet
            return _starting(app)

    async def upstream_base(self, app: AppRef) -> str | None:
        service = app.name + PREVIEW_SERVICE_SUFFIX
        mode, _, address = self.settings.upstream.partition(":")
        if mode == "nodeport":
            port = self.node_ports.get(app.key)
            if port is None:
                port = await self.kube.node_port(app.namespace, service)
                if port is None:
                    return None
                self.node_ports.put(app.key, port)
            return f"http://{address}:{port}"
        domain = self.settings.cluster_domain
        return f"http://{service}.{app.namespace}.svc.{domain}:{PREVIEW_SERVICE_PORT}"

    async def proxy(self, request: web.Request, base: str) -> web.StreamResponse:
        client = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For")
        headers = upstream_request_headers(
            request.headers.items(),
            f"{forwarded}, {client}" if forwarded else client,
            request.headers.get("Host", ""),
            request.headers.get("X-Forwarded-Proto", request.scheme),
        )
        body = request.content if request.can_read_body else None
        async with self.upstream.request(
            request.method,
            base + request.rel_url.raw_path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in downstream_response_headers(upstream.headers.items()):
                response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _html(text: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unauthenticated(request: web.Request, reason: str) -> web.StreamResponse:
    """GET/HEAD go to the sign-in page (and a refused cookie is cleared); anything else is a
    401 naming the same page."""
    target = f"{pages.SIGNIN_PATH}?next={quote(request.rel_url.raw_path_qs, safe='')}"
    headers = {REASON_HEADER: reason, "Cache-Control": "no-store"}
    if request.method in ("GET", "HEAD"):
        response: web.StreamResponse = web.Response(
            status=302, headers={**headers, "Location": target}
        )
    else:
        headers["WWW-Authenticate"] = 'Bearer realm="vibeplane"'
        response = web.Response(status=401, text=f"sign in at {target}\n", headers=headers)
    if reason.startswith("cookie refused"):
        response.headers["Set-Cookie"] = cookies.clear_cookie_header()
    return response


def _forbidden(identity: Identity, app: AppRef) -> web.Response:
    return _html(
        pages.forbidden_page(identity.username, app.name, app.namespace),
        403,
        {REASON_HEADER: "forbidden"},
    )


def _starting(app: AppRef) -> web.Response:
    return _html(
        pages.starting_page(app.name),
        503,
        {"Retry-After": str(pages.STARTING_RELOAD_SECONDS), REASON_HEADER: "starting"},
    )


def make_app(front: FrontDoor) -> web.Application:
    application = web.Application(client_max_size=64 * 2**20)
    application.router.add_route("*", "/{tail:.*}", front.handle)
    return application
