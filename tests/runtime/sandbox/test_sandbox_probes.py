"""Probes against 127.0.0.1, with kubelet's thresholds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vibeplane_sandbox.probes import Prober, ProbeSpec, http_get, run_probe, tcp_socket


class _Handler(BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:
        ok = self.path == "/" and type(self).healthy and self.headers["X-Probe"] == "yes"
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def port() -> Iterator[int]:
    _Handler.healthy = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed: int = probe.getsockname()[1]
        return closed


HANDLER = {"path": "/", "port": "http", "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}


def test_http_and_tcp_probes(port: int) -> None:
    assert http_get(port, HANDLER, 1) == (True, "HTTP 200")
    ok, message = http_get(port, {"path": "/missing"}, 1)
    assert not ok
    assert "503" in message
    assert tcp_socket(port, 1)[0]
    assert not tcp_socket(_closed_port(), 1)[0]
    grpc = ProbeSpec("readiness", {"grpc": {"port": 1}})
    assert run_probe(grpc, port, None) == (
        False,
        "this probe type is not supported by the local node (use httpGet or tcpSocket)",
    )


def test_prober_applies_thresholds(port: int) -> None:
    changes: list[tuple[str, bool, str]] = []
    spec = ProbeSpec(
        "readiness", {"httpGet": HANDLER}, period=0.05, failure_threshold=3, success_threshold=2
    )
    prober = Prober(spec, port, lambda *change: changes.append(change)).start()
    try:
        deadline = time.monotonic() + 10
        while prober.result is not True:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _Handler.healthy = False
        while prober.result is not False:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        prober.stop()
    assert [(kind, result) for kind, result, _ in changes] == [
        ("readiness", True),
        ("readiness", False),
    ]


def test_an_initial_verdict_is_kept_until_the_probe_disagrees(port: int) -> None:
    spec = ProbeSpec("readiness", {"httpGet": HANDLER}, initial_delay=5)
    prober = Prober(spec, port, lambda *change: None, initial=True).start()
    prober.stop()
    assert prober.result is True
