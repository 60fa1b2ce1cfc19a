"""The kubelet log endpoint the API server proxies `kubectl logs` to."""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from vibeplane_sandbox.kubeletserver import KubeletServer, LogSource, ensure_certificate


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, threading.Event]]:
    """A server for one container log: (base URL, the log file, 'still running' flag)."""
    log = tmp_path / "container.log"
    log.write_text("one\ntwo\nthree\n")
    running = threading.Event()

    def locate(namespace: str, pod: str, container: str, previous: bool) -> LogSource | None:
        if (namespace, pod, container, previous) == ("ns", "web", "app", False):
            return LogSource(log, running.is_set)
        return None

    cert, key = ensure_certificate(tmp_path, "test-node")
    assert ensure_certificate(tmp_path, "test-node") == (cert, key)  # made once
    server = KubeletServer(0, locate, cert, key)
    server.start()
    yield f"https://127.0.0.1:{server.port}", log, running
    server.stop()


def _get(url: str) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as the API server without --kubelet-certificate-authority
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_logs_and_tail(served: tuple[str, Path, threading.Event]) -> None:
    base, _, _ = served
    assert _get(f"{base}/containerLogs/ns/web/app") == (200, b"one\ntwo\nthree\n")
    assert _get(f"{base}/containerLogs/ns/web/app?tailLines=2") == (200, b"two\nthree\n")
    assert _get(f"{base}/containerLogs/ns/web/app?limitBytes=3") == (200, b"one")
    assert _get(f"{base}/healthz") == (200, b"ok")


def test_unknown_container_and_paths_are_404(served: tuple[str, Path, threading.Event]) -> None:
    base, _, _ = served
    assert _get(f"{base}/containerLogs/ns/web/other")[0] == 404
    assert _get(f"{base}/containerLogs/ns/web/app?previous=true")[0] == 404
    assert _get(f"{base}/exec/ns/web/app")[0] == 404


def test_follow_streams_until_the_container_stops(
    served: tuple[str, Path, threading.Event],
) -> None:
    base, log, running = served
    running.set()

    def later() -> None:
        time.sleep(0.5)
        with open(log, "a") as out:
            out.write("four\n")
        time.sleep(0.5)
        running.clear()

    threading.Thread(target=later, daemon=True).start()
    status, body = _get(f"{base}/containerLogs/ns/web/app?follow=true&tailLines=1")
    assert (status, body) == (200, b"three\nfour\n")
