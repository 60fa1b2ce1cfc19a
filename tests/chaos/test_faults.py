"""The fault proxies themselves: a pass-through that changes nothing, and faults that reach the
operator's code paths they are meant to (no cluster needed)."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos.faults import ModelFaults, S3Faults
from tests.integration.support import StubModel
from vibeplane.generation.client import ModelCallError, chat
from vibeplane.generation.format import OutputFormatError, parse_output

ANSWER = '<file path="index.html">\n<h1>Hello</h1>\n</file>\n<file path="app.js">\nrun()\n</file>\n'
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=chaos"}


@pytest.fixture
def echo() -> Iterator[str]:
    """An upstream that answers every request with what it received, as JSON."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen = {"method": self.command, "path": self.path, "host": self.headers["Host"]}
            data = json.dumps({**seen, "body": body.decode()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_HEAD = do_PUT = do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _request(
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    timeout: float = 5,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def test_pass_through_changes_nothing(echo: str) -> None:
    """Method, path with query, Host (which S3 signatures cover) and body reach the server as
    sent, and a HEAD answer keeps the length of the body it does not send."""
    proxy = S3Faults(echo, seed=1, hang_seconds=1)
    try:
        status, body, _ = _request(proxy.url, "PUT", "/bucket/key?x=1", b"data", headers=SIGNED)
        assert status == 200
        seen = json.loads(body)
        assert seen == {
            "method": "PUT",
            "path": "/bucket/key?x=1",
            "host": proxy.url.removeprefix("http://"),
            "body": "data",
        }
        status, body, headers = _request(proxy.url, "HEAD", "/bucket/key", headers=SIGNED)
        assert (status, body) == (200, b"")
        assert int(headers["Content-Length"]) > 0
        assert proxy.passed == 2
        assert not proxy.injected
    finally:
        proxy.close()


def test_a_burst_answers_s3_internal_errors_for_its_period_only(echo: str) -> None:
    proxy = S3Faults(echo, seed=1, hang_seconds=1)
    try:
        proxy.burst(0.5)
        status, body, _ = _request(proxy.url, "GET", "/bucket/key", headers=SIGNED)
        assert status == 500
        assert b"<Code>InternalError</Code>" in body
        # A presigned URL (a preview fetching its bundle) is not the operator's: it passes.
        status, _, _ = _request(proxy.url, "GET", "/bucket/key?X-Amz-Signature=abc")
        assert status == 200
        time.sleep(0.6)
        status, _, _ = _request(proxy.url, "GET", "/bucket/key", headers=SIGNED)
        assert status == 200
        assert proxy.injected == {"500": 1}
        assert proxy.passed == 2
    finally:
        proxy.close()


def test_the_next_requests_can_be_made_to_fail_whatever_the_fraction(echo: str) -> None:
    proxy = S3Faults(echo, seed=1, hang_seconds=1)
    try:
        proxy.set_plan(fault_fraction=0.0, kinds={"500": 1.0}, fault_next=1)
        statuses = [_request(proxy.url, "GET", "/b/k", headers=SIGNED)[0] for _ in range(3)]
        assert statuses == [500, 200, 200]
    finally:
        proxy.close()


def test_a_hang_outlasts_the_client_and_then_the_proxy_passes_again(echo: str) -> None:
    proxy = S3Faults(echo, seed=1, hang_seconds=3)
    try:
        proxy.hang(1)
        started = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            _request(proxy.url, "GET", "/bucket/key", timeout=0.5, headers=SIGNED)
        assert time.monotonic() - started < 2  # the client's timeout, not the proxy's
        status, _, _ = _request(proxy.url, "GET", "/bucket/key", headers=SIGNED)
        assert status == 200
        assert proxy.injected == {"hang": 1}
    finally:
        proxy.close()


def test_an_armed_hang_outlives_calm_only_when_asked(echo: str) -> None:
    """The chaos run calms the proxies when its window ends but keeps an armed S3 hang for the
    operator's next request; a plain calm drops it."""
    proxy = S3Faults(echo, seed=1, hang_seconds=3)
    try:
        proxy.set_plan(fault_fraction=1.0, kinds={"500": 1.0})
        proxy.hang(1)
        proxy.calm(keep_armed_hangs=True)
        with pytest.raises((TimeoutError, socket.timeout)):
            _request(proxy.url, "GET", "/bucket/key", timeout=0.5, headers=SIGNED)
        assert _request(proxy.url, "GET", "/bucket/key", headers=SIGNED)[0] == 200  # no 500s
        proxy.hang(1)
        proxy.calm()
        assert _request(proxy.url, "GET", "/bucket/key", headers=SIGNED)[0] == 200
        assert proxy.injected == {"hang": 1}
    finally:
        proxy.close()


@pytest.mark.parametrize("kind", ["timeout", "500", "not-json", "truncated", "words"])
def test_each_model_fault_fails_the_way_it_is_meant_to(kind: str) -> None:
    """Through the operator's own client and output parser: a timeout and a 500 are retryable
    call errors, bytes that are no JSON an unparseable answer, a cut answer a broken output
    format, an answer in words one with no files."""
    model = StubModel(lambda _: ANSWER)
    proxy = ModelFaults(model.url.removesuffix("/v1"), seed=1, hang_seconds=2, latency=0)
    messages = [{"role": "user", "content": "change the title to Chaos A1 R2"}]
    proxy.prompts["change the title to Chaos A1 R2"] = ("a1", 2)
    try:
        proxy.set_plan(fault_fraction=1.0, kinds={kind: 1.0})
        if kind in ("timeout", "500", "not-json"):
            with pytest.raises(ModelCallError) as error:
                chat(proxy.url + "/v1", "stub", messages, None, timeout=1)
            reason = {"timeout": "Timeout", "500": "ServerError", "not-json": "UnparseableResponse"}
            assert error.value.reason == reason[kind]
        else:
            answer = chat(proxy.url + "/v1", "stub", messages, None, timeout=5)
            if kind == "truncated":
                with pytest.raises(OutputFormatError):
                    parse_output(answer.text)
            else:
                assert not parse_output(answer.text).actions
        proxy.calm()
        clean = chat(proxy.url + "/v1", "stub", messages, None, timeout=5)
        assert len(parse_output(clean.text).actions) == 2
        assert [(c.app, c.revision, c.fault) for c in proxy.calls] == [
            ("a1", 2, kind),
            ("a1", 2, None),
        ]
    finally:
        proxy.close()
        model.close()
