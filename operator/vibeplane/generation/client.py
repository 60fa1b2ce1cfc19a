"""A small synchronous client for OpenAI-compatible chat-completions endpoints.

The operator talks to every model the same way: the builtin model server, a KServe
InferenceService and a rented frontier endpoint all speak `POST {base}/chat/completions`.
This client is deliberately minimal and dependency-free (stdlib `http.client` + `json`): the
operator image stays light, and every failure is mapped to exactly one `ModelCallError` with a
`reason` usable as a Kubernetes condition reason and a `retryable` flag the router acts on.

It blocks: call it from sync handlers or through `asyncio.to_thread`, never on the event loop.

`timeout` is a deadline for the whole call (connect, send, wait, read), not a per-socket-
operation timeout, so a server that trickles bytes cannot hold a worker forever.

Secrets: the API key travels only in the `Authorization` header. It is never put in an
exception's message, and anything quoted from a response (an error body may echo request
headers) has the key scrubbed out. URLs in messages lose their user-info and query string,
which some providers use for keys. Exceptions are raised `from None`, so no underlying
exception (whose text might hold a header) is chained into tracebacks.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

from vibeplane.generation.egress import EgressPolicy, EgressRefused
from vibeplane.generation.format import content_text

ModelCallReason: TypeAlias = Literal[
    "Timeout",
    "ConnectionFailed",
    "ServerError",
    "ClientError",
    "UnparseableResponse",
    "EgressRefused",
]

# Responses are read whole; a generated app is far below this, a runaway stream is not.
MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
_EXCERPT_CHARS: Final = 300
_USER_AGENT: Final = "vibeplane-operator"
# 408 Request Timeout and 429 Too Many Requests say "later", unlike other 4xx.
_RETRYABLE_CLIENT_STATUSES: Final = frozenset({408, 429})


class ModelCallError(Exception):
    """A failed model call. `reason` is CamelCase (a condition reason); `retryable` says
    whether the same call may succeed later (timeouts, connection failures, 5xx, 408, 429)
    or needs a change first (401, 404, a malformed response). Never contains the API key."""

    def __init__(
        self,
        reason: ModelCallReason,
        message: str,
        retryable: bool,
        status: int | None = None,
    ) -> None:
        super().__init__(reason, message, retryable)
        self.reason: ModelCallReason = reason
        self.message = message
        self.retryable = retryable
        self.status = status

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class ChatResult:
    """A chat completion: the answer's text and the usage the server reported."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    latency_s: float
    # "stop", or "length" when the answer was cut at max_tokens; None if not reported.
    finish_reason: str | None = None


def _scrub(text: str, api_key: str | None) -> str:
    if api_key:
        text = text.replace(api_key, "[redacted]")
    return text


def _safe_url(url: str) -> str:
    """`url` without user-info, query and fragment: fit for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _excerpt(body: bytes, api_key: str | None) -> str:
    """The server's error message, when it gave one the OpenAI way (`error.message`, `error`,
    `detail` in a JSON object); otherwise only the body's size.

    A body that is not such an error is never quoted: a model's URL comes from a tenant, so a
    quoted page would let a tenant read, through the operator's status, whatever the operator
    can reach (another tenant's preview, a cluster-internal service).
    """
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        data = None
    text: str | None = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(error, str):
            text = error
        elif isinstance(data.get("detail"), str):
            text = data["detail"]
    if text is None:
        return f"({len(body)} bytes, not shown)" if body else ""
    text = " ".join(text.split())
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return _scrub(text, api_key)


def _check_api_key(api_key: str | None) -> None:
    # http.client would refuse a header value with control characters in an exception that
    # quotes the value; refuse it first, without quoting.
    if api_key is not None and (
        api_key == "" or any(ord(c) < 0x20 or ord(c) > 0x7E for c in api_key)
    ):
        raise ModelCallError(
            "ClientError",
            "the API key is empty or has characters an HTTP header cannot carry "
            "(check the Secret for a trailing newline)",
            retryable=False,
        )


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _request(
    method: str,
    url: str,
    api_key: str | None,
    timeout: float,
    payload: bytes | None = None,
    egress: EgressPolicy | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one HTTP exchange within `timeout` seconds in all.

    With `egress` (a tenant's model), the host is resolved once and checked, the connection
    goes to that address, and the connected peer is checked again before anything is sent."""
    _check_api_key(api_key)
    where = _safe_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ModelCallError("ClientError", f"invalid URL {where}", retryable=False) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelCallError(
            "ClientError", f"invalid URL {where}: want http(s)://host[:port]/path", False
        )
    deadline = time.monotonic() + timeout
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    except http.client.InvalidURL:
        # A host with spaces or control characters ("http://my host/v1" passes the CRD's
        # rule): refused here, before any connection.
        raise ModelCallError("ClientError", f"invalid URL {where}: bad host", False) from None
    if egress is not None:
        _pin(connection, egress, parts.hostname, port or connection.default_port, where)
    headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=payload, headers=headers)
        sock = connection.sock
        if sock is not None:
            sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        # The response closes the socket once it has read the whole body: stop there.
        while not response.isclosed():
            if sock is not None:
                sock.settimeout(_remaining(deadline))
            chunk = response.read1(65536)  # one recv at most: the deadline holds
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ModelCallError(
                    "UnparseableResponse",
                    f"{method} {where}: the response exceeds {MAX_RESPONSE_BYTES} bytes",
                    retryable=False,
                    status=response.status,
                )
            chunks.append(chunk)
        return response.status, b"".join(chunks)
    except EgressRefused as refused:
        raise ModelCallError("EgressRefused", refused.message, retryable=False) from None
    except TimeoutError:
        raise ModelCallError(
            "Timeout", f"{method} {where}: no complete answer within {timeout:g}s", True
        ) from None
    except ssl.SSLCertVerificationError as e:
        raise ModelCallError(
            "ConnectionFailed",
            f"{method} {where}: TLS certificate not trusted: "
            + _scrub(str(e.verify_message or e), api_key),
            retryable=False,
        ) from None
    except http.client.RemoteDisconnected:
        raise ModelCallError(
            "ConnectionFailed", f"{method} {where}: the server closed the connection", True
        ) from None
    except (http.client.BadStatusLine, http.client.LineTooLong):
        raise ModelCallError(
            "UnparseableResponse", f"{method} {where}: the answer is not HTTP", False
        ) from None
    except (http.client.InvalidURL, ValueError) as e:
        # A path http.client cannot send (control or non-ASCII characters).
        detail = _scrub(str(e) or type(e).__name__, api_key)
        raise ModelCallError("ClientError", f"{method} {where}: {detail}", False) from None
    except (OSError, http.client.HTTPException) as e:
        detail = _scrub(str(e) or type(e).__name__, api_key)
        raise ModelCallError(
            "ConnectionFailed", f"{method} {where}: {type(e).__name__}: {detail}", True
        ) from None
    finally:
        connection.close()


def _pin(
    connection: http.client.HTTPConnection,
    egress: EgressPolicy,
    host: str,
    port: int,
    where: str,
) -> None:
    """Make `connection` connect to the address `egress` checked, and check the peer.

    The Host header and TLS (SNI, certificate) still use the name: only the lookup is ours."""
    try:
        address = egress.pin(host, port)
    except EgressRefused as refused:
        raise ModelCallError("EgressRefused", refused.message, retryable=False) from None
    except OSError as error:
        raise ModelCallError("ConnectionFailed", f"{where}: {error}", True) from None

    def connect(
        _address: tuple[str, int], timeout: float, source: tuple[str, int] | None = None
    ) -> socket.socket:
        sock = socket.create_connection((address, port), timeout, source)
        try:
            egress.check_address(host, str(sock.getpeername()[0]))
        except EgressRefused:
            sock.close()
            raise
        return sock

    connection._create_connection = connect  # type: ignore[attr-defined]


def _raise_for_status(status: int, body: bytes, what: str, api_key: str | None) -> None:
    if 200 <= status < 300:
        return
    detail = _excerpt(body, api_key)
    message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    if status >= 500:
        raise ModelCallError("ServerError", message, retryable=True, status=status)
    if 400 <= status < 500:
        retryable = status in _RETRYABLE_CLIENT_STATUSES
        raise ModelCallError("ClientError", message, retryable=retryable, status=status)
    # 1xx, 3xx: redirects are not followed (they could carry the key to another host).
    raise ModelCallError(
        "ClientError", message + " (redirects are not followed)", False, status=status
    )


def _parse_json(body: bytes, what: str, api_key: str | None, status: int) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        raise ModelCallError(
            "UnparseableResponse",
            f"{what}: the answer is not JSON {_excerpt(body, api_key)}",
            retryable=False,
            status=status,
        ) from None
    if not isinstance(data, dict):
        raise ModelCallError(
            "UnparseableResponse", f"{what}: the answer is not a JSON object", False, status
        )
    return data


def _content_text(content: object) -> str | None:
    """The answer's text; None when `content` is no text a chat answer can hold."""
    if content is None:
        return ""
    if isinstance(content, str | list):
        return content_text(content)
    return None


def _count(usage: Mapping[str, object], key: str) -> int | None:
    value = usage.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def chat(
    base_url: str,
    model: str,
    messages: Sequence[Mapping[str, object]],
    api_key: str | None,
    timeout: float,
    max_tokens: int | None = None,
    *,
    temperature: float | None = None,
    egress: EgressPolicy | None = None,
) -> ChatResult:
    """One non-streamed chat completion from `{base_url}/chat/completions`.

    `base_url` is the OpenAI base URL, e.g. `http://127.0.0.1:8080/openai/v1`. Raises
    `ModelCallError`; an answer without usage counts is `UnparseableResponse`, since the
    budget ledger cannot settle a generation it cannot count.
    """
    url = base_url.rstrip("/") + "/chat/completions"
    what = f"POST {_safe_url(url)}"
    request: dict[str, object] = {"model": model, "messages": list(messages), "stream": False}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    if temperature is not None:
        request["temperature"] = temperature
    payload = json.dumps(request).encode()
    started = time.monotonic()
    status, body = _request("POST", url, api_key, timeout, payload, egress)
    latency = time.monotonic() - started
    _raise_for_status(status, body, what, api_key)
    data = _parse_json(body, what, api_key, status)

    def bad(problem: str) -> ModelCallError:
        return ModelCallError("UnparseableResponse", f"{what}: {problem}", False, status)

    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if "error" in data:
            raise bad(f"the answer is an error: {_excerpt(body, api_key)}")
        raise bad("the answer has no choices")
    message = choices[0].get("message")
    text = _content_text(message.get("content")) if isinstance(message, dict) else None
    if text is None:
        raise bad("the first choice has no message content")
    usage = data.get("usage")
    if not isinstance(usage, dict):
        raise bad("the answer has no usage counts")
    prompt_tokens, completion_tokens = (
        _count(usage, "prompt_tokens"),
        _count(usage, "completion_tokens"),
    )
    if prompt_tokens is None or completion_tokens is None:
        raise bad("the usage counts are missing or not non-negative integers")
    finish_reason = choices[0].get("finish_reason")
    answered_model = data.get("model")
    return ChatResult(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        model=answered_model if isinstance(answered_model, str) and answered_model else model,
        latency_s=latency,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
    )


def probe(
    base_url: str,
    api_key: str | None,
    timeout: float,
    model: str | None = None,
    egress: EgressPolicy | None = None,
) -> None:
    """Check that `base_url` is an OpenAI-compatible API that accepts `api_key`.

    A cheap `GET {base_url}/models`, for an external endpoint's Ready condition. With
    `model`, also checks that the listing names it (when the listing has `data` at all).
    Raises `ModelCallError`.
    """
    url = base_url.rstrip("/") + "/models"
    what = f"GET {_safe_url(url)}"
    status, body = _request("GET", url, api_key, timeout, egress=egress)
    _raise_for_status(status, body, what, api_key)
    data = _parse_json(body, what, api_key, status)
    listed = data.get("data")
    if model is not None and isinstance(listed, list):
        ids = {item.get("id") for item in listed if isinstance(item, dict)}
        if model not in ids:
            raise ModelCallError(
                "ClientError",
                f"{what}: the endpoint does not list the model {model!r}",
                retryable=False,
                status=status,
            )
