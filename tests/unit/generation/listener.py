"""An OpenAI-style server on 127.0.0.1 that counts the connections and requests reaching it:
the witness that a refused destination was never sent anything."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ANSWER = {
    "model": "m",
    "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}


@dataclass
class Listener:
    """An OpenAI-style server on 127.0.0.1 that counts what reaches it."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Host header) of each request."""


@pytest.fixture
def listener() -> Iterator[Listener]:
    with serve("127.0.0.1") as seen:
        yield seen


@contextlib.contextmanager
def serve(host: str) -> Iterator[Listener]:
    """A listener on `host` (a loopback address) and a free port, for the block."""
    seen = Listener()

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            seen.connections += 1
            super().setup()

        def _answer(self, body: dict[str, Any]) -> None:
            seen.requests.append((self.path, self.headers.get("Host", "")))
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer({"data": [{"id": "m"}]})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer(ANSWER)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    seen.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
