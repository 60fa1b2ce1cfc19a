"""The operator's chat client: against the real builtin model server, and against a tiny
local HTTP server that injects faults (time-outs, 5xx, 401, garbage) at the boundary."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import pytest

from tests.runtime.modelserver.modelserver_support import (
    ModelServer,
    free_port,
    require_modelserver,
    running_modelserver,
)
from vibeplane.generation.client import ChatResult, ModelCallError, chat, probe
from vibeplane.generation.format import apply_output, build_messages, parse_output
from vibeplane_modelserver.builtin import generate_from_messages

JSON = "application/json"
SECRET = "sk-vibeplane-TEST-secret-0123456789"
MESSAGES = [{"role": "user", "content": "a todo list"}]
GOOD_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "served-name",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def assert_no_secret(error: ModelCallError) -> None:
    """The key is nowhere in what an error shows: str, repr, args, traceback."""
    shown = [
        str(error),
        repr(error),
        error.message,
        repr(error.args),
        "".join(traceback.format_exception(error)),
    ]
    for text in shown:
        assert SECRET not in text


def call_error(fn: Callable[[], object]) -> ModelCallError:
    with pytest.raises(ModelCallError) as info:
        fn()
    assert_no_secret(info.value)
    return info.value


# ---------------------------------------------------------------------------------------------
# The happy path, against the real model server


@pytest.fixture(scope="module")
def modelserver(artifacts: Path) -> Iterator[ModelServer]:
    require_modelserver()
    with running_modelserver("builtin", artifacts / "modelserver-client.log") as server:
        yield server


def test_chat_with_the_builtin_model_server(modelserver: ModelServer) -> None:
    messages = build_messages(["a list of books with title and author"], None)
    result = chat(modelserver.openai_base, "builtin", messages, None, timeout=30, max_tokens=None)
    assert isinstance(result, ChatResult)
    assert result.text == generate_from_messages(messages).text
    files = apply_output({}, parse_output(result.text))
    assert {"index.html", "style.css", "app.js"} <= set(files)
    assert result.model == "builtin"
    assert result.prompt_tokens > 500
    assert result.completion_tokens > 100
    assert result.finish_reason == "stop"
    assert 0 < result.latency_s < 30


def test_chat_sends_max_tokens(modelserver: ModelServer) -> None:
    messages = build_messages(["a list of books"], None)
    result = chat(modelserver.openai_base + "/", "builtin", messages, SECRET, 30, max_tokens=7)
    assert result.completion_tokens == 7
    assert result.finish_reason == "length"


def test_chat_unknown_model_is_a_client_error(modelserver: ModelServer) -> None:
    error = call_error(lambda: chat(modelserver.openai_base, "nope", MESSAGES, SECRET, 30, None))
    assert error.reason == "ClientError"
    assert error.status == 404
    assert not error.retryable
    assert "not served here" in error.message


def test_probe_the_builtin_model_server(modelserver: ModelServer) -> None:
    probe(modelserver.openai_base, None, 10)
    probe(modelserver.openai_base, SECRET, 10, model="builtin")
    error = call_error(lambda: probe(modelserver.openai_base, SECRET, 10, model="other"))
    assert error.reason == "ClientError"
    assert "'other'" in error.message


# ---------------------------------------------------------------------------------------------
# Faults, injected by a tiny local server: the path's first segment picks the behaviour

Behaviour: TypeAlias = Callable[["FaultHandler"], None]


class FaultHandler(BaseHTTPRequestHandler):
    behaviours: ClassVar[dict[str, Behaviour]] = {}

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length)
        self._dispatch()

    def _dispatch(self) -> None:
        name = self.path.strip("/").split("/")[0]
        # A client that gave up first, as it should, leaves a broken pipe behind.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.behaviours[name](self)

    def send(
        self, status: int, body: bytes | dict[str, Any], ctype: str = "application/json"
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def behaviour(name: str) -> Callable[[Behaviour], Behaviour]:
    """Register the decorated function as what the fault server does for `/<name>/...`."""

    def register(fn: Behaviour) -> Behaviour:
        FaultHandler.behaviours[name] = fn
        return fn

    return register


@behaviour("ok")
def _ok(h: FaultHandler) -> None:
    if h.path.endswith("/models"):
        h.send(200, {"object": "list", "data": [{"id": "served-name", "object": "model"}]})
    else:
        h.send(200, GOOD_ANSWER)


@behaviour("slow")
def _slow(h: FaultHandler) -> None:
    time.sleep(3)
    h.send(200, GOOD_ANSWER)


@behaviour("drip")
def _drip(h: FaultHandler) -> None:
    # Each byte comes quickly, the whole answer never does: only a deadline catches it.
    data = json.dumps(GOOD_ANSWER).encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    for i in range(len(data)):
        h.wfile.write(data[i : i + 1])
        h.wfile.flush()
        time.sleep(0.1)


@behaviour("500")
def _error500(h: FaultHandler) -> None:
    h.send(500, {"error": {"message": "CUDA out of memory", "type": "server_error"}})


@behaviour("503")
def _error503(h: FaultHandler) -> None:
    h.send(503, b"<html>upstream unavailable</html>", "text/html")


@behaviour("401")
def _error401(h: FaultHandler) -> None:
    # A careless server that echoes the credentials it got.
    auth = h.headers.get("Authorization", "")
    h.send(401, {"error": {"message": f"invalid key in {auth!r}", "type": "invalid_request"}})


@behaviour("429")
def _error429(h: FaultHandler) -> None:
    h.send(429, {"error": {"message": "rate limited", "type": "requests"}})


@behaviour("redirect")
def _redirect(h: FaultHandler) -> None:
    h.send_response(302)
    h.send_header("Location", "http://elsewhere.invalid/")
    h.send_header("Content-Length", "0")
    h.end_headers()


@behaviour("garbage")
def _garbage(h: FaultHandler) -> None:
    h.send(200, b"<html>this is not JSON " + SECRET.encode() + b"</html>", "text/html")


@behaviour("list")
def _list(h: FaultHandler) -> None:
    h.send(200, b"[1, 2, 3]")


@behaviour("nochoices")
def _nochoices(h: FaultHandler) -> None:
    h.send(200, {"id": "x", "object": "chat.completion"})


@behaviour("nousage")
def _nousage(h: FaultHandler) -> None:
    h.send(200, {k: v for k, v in GOOD_ANSWER.items() if k != "usage"})


@behaviour("badusage")
def _badusage(h: FaultHandler) -> None:
    h.send(200, {**GOOD_ANSWER, "usage": {"prompt_tokens": "3", "completion_tokens": -1}})


@behaviour("hangup")
def _hangup(h: FaultHandler) -> None:
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


@behaviour("nothttp")
def _nothttp(h: FaultHandler) -> None:
    h.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    h.close_connection = True


@pytest.fixture(scope="module")
def faults() -> Iterator[str]:
    """The fault server's base URL; `{faults}/<behaviour>/v1` is an OpenAI base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_fault_server_answers_well_when_asked(faults: str) -> None:
    result = chat(f"{faults}/ok/v1", "asked-name", MESSAGES, SECRET, 5, 10)
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("hi", 3, 1)
    assert result.model == "served-name"
    probe(f"{faults}/ok/v1", SECRET, 5, model="served-name")


def test_timeout_waiting_for_the_answer(faults: str) -> None:
    started = time.monotonic()
    error = call_error(lambda: chat(f"{faults}/slow/v1", "m", MESSAGES, SECRET, 0.5, None))
    assert time.monotonic() - started < 2.5
    assert (error.reason, error.retryable) == ("Timeout", True)


def test_timeout_is_a_deadline_for_the_whole_call(faults: str) -> None:
    started = time.monotonic()
    error = call_error(lambda: chat(f"{faults}/drip/v1", "m", MESSAGES, SECRET, 1.0, None))
    assert time.monotonic() - started < 3
    assert (error.reason, error.retryable) == ("Timeout", True)


def test_probe_times_out_too(faults: str) -> None:
    error = call_error(lambda: probe(f"{faults}/slow/v1", SECRET, 0.5))
    assert error.reason == "Timeout"


@pytest.mark.parametrize(
    ("name", "reason", "retryable", "status", "detail"),
    [
        ("500", "ServerError", True, 500, "CUDA out of memory"),
        # A page is not an error message: never quoted (a tenant chooses the URL).
        ("503", "ServerError", True, 503, "HTTP 503: (33 bytes, not shown)"),
        ("401", "ClientError", False, 401, "[redacted]"),
        ("429", "ClientError", True, 429, "rate limited"),
        ("redirect", "ClientError", False, 302, "redirects are not followed"),
        ("garbage", "UnparseableResponse", False, 200, "not JSON"),
        ("list", "UnparseableResponse", False, 200, "not a JSON object"),
        ("nochoices", "UnparseableResponse", False, 200, "no choices"),
        ("nousage", "UnparseableResponse", False, 200, "no usage"),
        ("badusage", "UnparseableResponse", False, 200, "usage counts"),
    ],
)
def test_http_faults_map_to_one_error_type(
    faults: str, name: str, reason: str, retryable: bool, status: int, detail: str
) -> None:
    error = call_error(lambda: chat(f"{faults}/{name}/v1", "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable, error.status) == (reason, retryable, status)
    assert detail in error.message
    assert f"/{name}/v1/chat/completions" in error.message
    assert "<html>" not in error.message  # a page is never quoted


def test_probe_reports_http_faults(faults: str) -> None:
    assert call_error(lambda: probe(f"{faults}/401/v1", SECRET, 5)).reason == "ClientError"
    assert call_error(lambda: probe(f"{faults}/500/v1", SECRET, 5)).reason == "ServerError"
    error = call_error(lambda: probe(f"{faults}/garbage/v1", SECRET, 5))
    assert error.reason == "UnparseableResponse"


def test_connection_closed_without_an_answer(faults: str) -> None:
    error = call_error(lambda: chat(f"{faults}/hangup/v1", "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable) == ("ConnectionFailed", True)


def test_an_answer_that_is_not_http(faults: str) -> None:
    error = call_error(lambda: chat(f"{faults}/nothttp/v1", "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable) == ("UnparseableResponse", False)


def test_connection_refused() -> None:
    port = free_port()  # bound and released: nothing listens there now
    error = call_error(lambda: chat(f"http://127.0.0.1:{port}/v1", "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable) == ("ConnectionFailed", True)
    assert call_error(lambda: probe(f"http://127.0.0.1:{port}/v1", SECRET, 5)).reason == (
        "ConnectionFailed"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://127.0.0.1/v1",
        "127.0.0.1:8080/v1",
        "http:///v1",
        "http://[::1/v1",
        "http://127.0.0.1:port/v1",
        "http://127.0.0.1:9/v\u00e9",
        "http://127.0.0.1:9/v 1",
    ],
)
def test_invalid_base_urls(base_url: str) -> None:
    error = call_error(lambda: chat(base_url, "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable) == ("ClientError", False)


def test_urls_in_messages_lose_credentials_and_query(faults: str) -> None:
    port = faults.rsplit(":", 1)[1]
    base = f"http://user:{SECRET}@127.0.0.1:{port}/500/v1?key={SECRET}"
    error = call_error(lambda: chat(base, "m", MESSAGES, None, 5, None))
    assert error.reason == "ServerError"
    assert f"http://127.0.0.1:{port}/500/v1" in error.message


@pytest.mark.parametrize("key", [SECRET + "\n", "", "sk-\u00e9t\u00e9-" + SECRET])
def test_api_keys_a_header_cannot_carry_are_refused_without_quoting(faults: str, key: str) -> None:
    error = call_error(lambda: chat(f"{faults}/ok/v1", "m", MESSAGES, key, 5, None))
    assert (error.reason, error.retryable) == ("ClientError", False)
    assert "API key" in error.message


def test_the_key_is_sent_as_a_bearer_token(faults: str) -> None:
    # The 401 behaviour quotes the Authorization header back; the client scrubs it.
    error = call_error(lambda: chat(f"{faults}/401/v1", "m", MESSAGES, SECRET, 5, None))
    assert "Bearer [redacted]" in error.message


@pytest.fixture(scope="module")
def untrusted_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fault server's behaviours over TLS with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *request, *subject, *files], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_not_retried(untrusted_https: str) -> None:
    error = call_error(lambda: chat(f"{untrusted_https}/ok/v1", "m", MESSAGES, SECRET, 5, None))
    assert (error.reason, error.retryable) == ("ConnectionFailed", False)
    assert "certificate" in error.message
