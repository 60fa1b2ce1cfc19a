"""bench.preview's starts: the preview runtime as a plain process and as a preview pod on the
real node, from the same bundle served on the node's network; and how it asks a URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bench.node import pod_start, serve_on_node_network

from bench import preview
from tests.integration.conftest import api, cluster, preview_node  # noqa: F401
from vibeplane.generation.format import apply_output, parse_output
from vibeplane.storage.bundles import build
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import real_node_selected
from vibeplane_modelserver.builtin import generate


def test_a_plain_and_a_real_node_start_of_the_same_bundle(
    cluster: LocalCluster,  # noqa: F811
    preview_node: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    if not real_node_selected():
        pytest.skip("bench.preview measures the real node (NODE=standin selects the stand-in)")
    bundle = build(apply_output({}, parse_output(generate(["a todo list"], None).text)))
    url = serve_on_node_network(bundle.data, cluster)
    plain = preview.plain_start(url, bundle.sha256)
    on_node = pod_start(cluster, url, bundle.sha256, tmp_path)
    assert 0 < plain < 60
    assert 0 < on_node < 180


@pytest.fixture
def host_echo() -> Iterator[tuple[int, list[str]]]:
    """A server on 127.0.0.1 that answers 200 only for the gateway's host name."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            ok = self.headers.get("Host", "").startswith("todo-ws-demo.vibeplane.localhost")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()


def test_a_gateway_url_is_asked_on_loopback_with_its_host_name(
    host_echo: tuple[int, list[str]],
) -> None:
    port, seen = host_echo
    assert preview.answers(f"http://todo-ws-demo.vibeplane.localhost:{port}/")
    assert seen == [f"todo-ws-demo.vibeplane.localhost:{port}"]
    assert not preview.answers(f"http://127.0.0.1:{port}/")  # a plain address goes as it is
