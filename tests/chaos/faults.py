"""Fault injection at the boundaries, and only there.

`FaultProxy` is a pass-through HTTP proxy on 127.0.0.1 (or the host end of the real node's veth,
where preview pods must reach it too): every request goes to the real server
behind it (MinIO, the builtin model server) unchanged, Host header included, so S3 signatures
still verify. On a plan it answers for the server instead: an error, or nothing at all for
longer than the client waits (a hang, then a dropped connection). `S3Faults` answers S3's own
500 InternalError; `ModelFaults` also answers garbage where a model's answer should be.

A seeded random generator decides which request meets a fault. The seed fixes the fractions
and the sequence of draws; which request gets which draw still depends on timing.
"""

from __future__ import annotations

import http.client
import http.server
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Faults that answer nothing: the request is held past the client's timeout, then dropped.
HANGS = frozenset({"hang", "timeout"})
# Headers that describe one connection, not the message: never forwarded as they are.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)


@dataclass(frozen=True)
class Request:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class FaultPlan:
    """What the proxy does to the requests it may fault (all off: a plain pass-through)."""

    fault_fraction: float = 0.0
    """Of requests, those that meet a fault drawn from `kinds` (by weight)."""
    kinds: dict[str, float] = field(default_factory=dict)
    """Fault kind -> weight, for the drawn faults."""
    fail_until: float = 0.0
    """Until this time.monotonic(), every request fails with `burst_kind` (a burst)."""
    burst_kind: str = "500"
    hang_next: int = 0
    """The next so many requests hang."""
    fault_next: int = 0
    """The next so many requests meet a fault drawn from `kinds`, whatever the fraction."""
    delay: float = 0.0
    """Seconds every request the proxy may fault waits before it is answered (a slow server)."""


class FaultProxy:
    """A pass-through proxy to `upstream` that injects the faults its `plan` says."""

    def __init__(
        self,
        upstream: str,
        seed: int,
        hang_seconds: float,
        applies: Callable[[Request], bool] = lambda _: True,
        host: str = "127.0.0.1",
    ) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream {upstream!r} needs a host and a port")
        self.upstream = (parts.hostname, parts.port)
        self.host = host
        self.hang_seconds = hang_seconds
        self.applies = applies
        self.plan = FaultPlan()
        self.injected: Counter[str] = Counter()
        """Faults answered, by kind."""
        self.passed = 0
        """Requests forwarded to the real server."""
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue as boto3 asks

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # ---- the plan -----------------------------------------------------------------------------

    def set_plan(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self.plan, name, value)

    def burst(self, seconds: float, kind: str = "500") -> None:
        """Fail every request for `seconds` from now."""
        self.set_plan(fail_until=time.monotonic() + seconds, burst_kind=kind)

    def hang(self, requests: int = 1) -> None:
        """Hang the next `requests` requests."""
        with self._lock:
            self.plan.hang_next += requests

    def calm(self, keep_armed_hangs: bool = False) -> None:
        """Pass everything through from now on; with `keep_armed_hangs`, hangs armed by `hang`
        that no request has met yet still meet the next ones (a hang armed late in a window
        whose clients were slow, as on a loaded machine, would otherwise never happen)."""
        with self._lock:
            self.plan = FaultPlan(hang_next=self.plan.hang_next if keep_armed_hangs else 0)

    def _draw(self) -> str | None:
        with self._lock:
            plan = self.plan
            if plan.hang_next > 0:
                plan.hang_next -= 1
                return "hang"
            if time.monotonic() < plan.fail_until:
                return plan.burst_kind
            if not plan.kinds:
                return None
            if plan.fault_next > 0:
                plan.fault_next -= 1
            elif self._random.random() >= plan.fault_fraction:
                return None
            kinds, weights = zip(*sorted(plan.kinds.items()), strict=True)
            drawn: str = self._random.choices(kinds, weights)[0]
            return drawn

    # ---- one request ----------------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        request = Request(
            handler.command, handler.path, dict(handler.headers.items()), _read_body(handler)
        )
        applies = self.applies(request)
        if applies:
            self.arrived(request)
            with self._lock:
                delay = self.plan.delay
            self._closing.wait(delay)
        kind = self._draw() if applies else None
        if kind in HANGS:
            self._count(kind)
            self.observe(request, kind, None)
            # Held past the client's timeout, then dropped without an answer.
            self._closing.wait(self.hang_seconds)
            handler.close_connection = True
            return
        try:
            response = self.fault(kind, request) if kind is not None else None
            if response is None:
                response = self.forward(request)
                response = self.corrupt(kind, request, response) if kind is not None else response
        except OSError as error:  # the server behind is down: say so, as a gateway would
            response = Response(502, [("Content-Type", "text/plain")], str(error).encode())
        if kind is not None:
            self._count(kind)
        else:
            with self._lock:
                self.passed += 1
        self.observe(request, kind, response)
        _send(handler, request, response)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def forward(self, request: Request) -> Response:
        """The real server's answer to `request`."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            headers.pop("Expect", None)  # the body is here already: no 100-continue upstream
            connection.request(request.method, request.path, body=request.body, headers=headers)
            upstream = connection.getresponse()
            body = upstream.read()
            return Response(upstream.status, upstream.getheaders(), body)
        finally:
            connection.close()

    def fault(self, kind: str, request: Request) -> Response | None:
        """The answer for a fault of `kind` instead of the server's; None: ask the server and
        let `corrupt` change its answer."""
        raise NotImplementedError(kind)

    def corrupt(self, kind: str, request: Request, response: Response) -> Response:
        """The server's answer changed by a fault of `kind` (see `fault`)."""
        raise NotImplementedError(kind)

    def arrived(self, request: Request) -> None:
        """Called with every request the proxy may fault, as it arrives."""

    def observe(self, request: Request, fault: str | None, response: Response | None) -> None:
        """Called with every request and what it got (None: no answer)."""

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body as sent: by length, or chunked (then forwarded re-framed)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: dropped
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _send(
    handler: http.server.BaseHTTPRequestHandler, request: Request, response: Response
) -> None:
    handler.send_response(response.status)
    length = len(response.body)
    for name, value in response.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in ("date", "server"):
            continue
        if lowered == "content-length":
            if request.method == "HEAD":
                length = int(value)  # a HEAD answer tells the length of a body it does not send
            continue
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(length))
    try:
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(response.body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client gave up (it timed out, or was killed)


# ---- S3 ---------------------------------------------------------------------------------------

S3_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    "<Message>We encountered an internal error, please try again. (injected)</Message>"
    "<Resource>{path}</Resource><RequestId>chaos</RequestId></Error>"
)


def signed_by_header(request: Request) -> bool:
    """A request of an S3 client (the operator's boto3), not a presigned URL. Previews fetch
    their bundle by presigned URL: a failed fetch is the preview's validation path, which
    other tests cover; here only the operator's S3 boundary meets faults."""
    return "X-Amz-Signature=" not in request.path and "Authorization" in request.headers


class S3Faults(FaultProxy):
    """In front of MinIO: answers S3's 500 InternalError, or hangs."""

    def __init__(
        self, upstream: str, seed: int, hang_seconds: float, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(upstream, seed, hang_seconds, applies=signed_by_header, host=host)

    def fault(self, kind: str, request: Request) -> Response | None:
        if kind != "500":
            raise ValueError(f"no S3 fault {kind!r}")
        body = S3_ERROR.format(path=request.path.split("?")[0]).encode()
        return Response(500, [("Content-Type", "application/xml")], body)


# ---- the model --------------------------------------------------------------------------------

CLOSING_TAG = re.compile(r"^</[a-z]+>[ \t]*$", re.MULTILINE)
MODEL_FAULTS = {
    "timeout": 0.25,  # no answer before the operator's model timeout
    "500": 0.2,  # the server failed (retryable)
    "not-json": 0.2,  # 200 with bytes that are no JSON at all
    "truncated": 0.25,  # the real answer cut inside a file: the output format is broken
    "words": 0.1,  # an answer in words, no files: charged, no revision
}


@dataclass(frozen=True)
class ModelCall:
    """One chat request the proxy saw: for which app and revision, and what it got."""

    app: str | None
    revision: int | None
    fault: str | None
    tokens: int
    """The usage tokens of the answer the operator received (0 without usage)."""


class ModelFaults(FaultProxy):
    """In front of the real builtin model server: faults only chat completions (the Ready
    probe's model listing passes), adds a little latency to every call so operator kills land
    mid-call too, and records every call: for which app and revision it was, told by its
    prompt (the last message) from `prompts`, which the test fills with unique prompts."""

    def __init__(self, upstream: str, seed: int, hang_seconds: float, latency: float) -> None:
        super().__init__(upstream, seed, hang_seconds, applies=_is_chat)
        self.latency = latency
        self.prompts: dict[str, tuple[str, int]] = {}
        """Prompt -> (app, revision)."""
        self.calls: list[ModelCall] = []
        """Every chat call, once answered (or held, for a timeout)."""
        self.arrivals: list[tuple[str | None, int | None]] = []
        """(app, revision) of every chat call, as it arrives."""
        self._latency_random = random.Random(seed + 1)

    def forward(self, request: Request) -> Response:
        if _is_chat(request):
            with self._lock:
                delay = self._latency_random.uniform(0, self.latency)
            time.sleep(delay)
        return super().forward(request)

    def fault(self, kind: str, request: Request) -> Response | None:
        if kind == "500":
            body = json.dumps({"error": {"message": "injected server error"}}).encode()
            return Response(500, [("Content-Type", "application/json")], body)
        if kind == "not-json":
            return Response(200, [("Content-Type", "application/json")], b"\x00\xff<html>oops")
        if kind in ("truncated", "words"):
            return None  # made from the real answer
        raise ValueError(f"no model fault {kind!r}")

    def corrupt(self, kind: str, request: Request, response: Response) -> Response:
        document = json.loads(response.body)
        content = str(document["choices"][0]["message"]["content"])
        if kind == "words":
            content = "I would rather not write this app today."
        else:  # cut inside the last block, before its closing tag: no longer the format
            closings = list(CLOSING_TAG.finditer(content))
            content = content[: closings[-1].start()] if closings else content[: len(content) // 2]
        document["choices"][0]["message"]["content"] = content
        return Response(response.status, response.headers, json.dumps(document).encode())

    def _attribute(self, request: Request) -> tuple[str | None, int | None]:
        try:
            prompt = str(json.loads(request.body)["messages"][-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            prompt = ""
        return self.prompts.get(prompt, (None, None))

    def arrived(self, request: Request) -> None:
        attribution = self._attribute(request)
        with self._lock:
            self.arrivals.append(attribution)

    def observe(self, request: Request, fault: str | None, response: Response | None) -> None:
        if not _is_chat(request):
            return
        app, revision = self._attribute(request)
        tokens = 0
        if response is not None and response.status == 200:
            try:
                usage = json.loads(response.body)["usage"]
                tokens = int(usage["prompt_tokens"]) + int(usage["completion_tokens"])
            except (ValueError, KeyError, TypeError):
                tokens = 0
        call = ModelCall(app, revision, fault, tokens)
        with self._lock:
            self.calls.append(call)

    def calls_for(self, app: str, revision: int) -> list[ModelCall]:
        with self._lock:
            return [c for c in self.calls if c.app == app and c.revision == revision]


def _is_chat(request: Request) -> bool:
    return request.method == "POST" and request.path.rstrip("/").endswith("/chat/completions")
