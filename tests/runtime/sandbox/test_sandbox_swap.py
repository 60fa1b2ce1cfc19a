"""Revision swap in a running preview runtime (a real process on 127.0.0.1): signed delivery
from the operator's key, verification, whole revisions only, the old one serving on failure."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes.delivery import shared_delivery_key
from tests.runtime.sandbox.test_sandbox_preview import (
    SANDBOX_SOURCE,
    _free_port,
    _Quiet,
    make_bundle,
    publish,
)
from vibeplane.vibeapp.delivery import DeliveryKey, Order, signed
from vibeplane_sandbox import preview

NAMESPACE, APP, APP_UID = "ws-a", "todo", "uid-todo"


@dataclass
class Runtime:
    port: int
    process: subprocess.Popen[bytes]
    dest: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/") -> tuple[int, str, str | None]:
        """(status, body, revision header) of one request."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return (
                    response.status,
                    response.read().decode(),
                    response.headers.get(preview.REVISION_HEADER),
                )
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), None

    def post(self, body: bytes, signature: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            self.base + preview.REVISION_PATH,
            data=body,
            method="POST",
            headers={preview.SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Bundles served on 127.0.0.1, as the object store serves presigned URLs."""
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(SANDBOX_SOURCE), PORT=str(port))
    env.pop("BUNDLE_URL", None)
    env.update(
        {
            preview.ENV_DELIVERY_KEY: shared_delivery_key().public,
            preview.ENV_POD_NAMESPACE: NAMESPACE,
            preview.ENV_POD_NAME: "todo-preview-1",
            preview.ENV_POD_UID: "pod-1",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "vibeplane_sandbox.preview", "--dest", str(tmp_path / "app")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Runtime(port, process, tmp_path / "app")
    deadline = time.monotonic() + 20
    while True:
        try:
            if running.get(preview.READY_PATH)[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, "the runtime exited"
        assert time.monotonic() < deadline, "the runtime never answered"
        time.sleep(0.05)
    yield running
    process.terminate()
    process.wait(timeout=10)


def order(url: str, sha256: str, revision: int, **fields: object) -> Order:
    base = Order(NAMESPACE, APP, APP_UID, revision, sha256, url, time.time_ns() // 1_000_000)
    return replace(base, **fields)  # type: ignore[arg-type]


def deliver(runtime: Runtime, what: Order, key: DeliveryKey | None = None) -> int:
    body, signature = signed(key or shared_delivery_key(), what)
    return runtime.post(body, signature)[0]


def revision_bundle(number: int, *, extra: dict[str, bytes] | None = None) -> bytes:
    """Every file of revision N says N: a response mixing revisions shows."""
    mark = f"revision-{number}".encode()
    members = {"index.html": b"<h1>" + mark + b"</h1>", "app.js": b"// " + mark}
    return make_bundle({**members, **(extra or {})})


def test_a_delivered_revision_swaps_in_and_an_empty_sandbox_says_it_waits(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    assert runtime.get("/")[0] == 503  # nothing delivered yet (a warm sandbox)
    url, digest = publish(files, revision_bundle(1), "r1.tar.gz")
    assert deliver(runtime, order(url, digest, 1)) == 200
    assert runtime.get("/") == (200, "<h1>revision-1</h1>", "1")
    state = json.loads(runtime.get(preview.REVISION_PATH)[1])
    assert state == {"revision": 1, "sha256": digest, "app": APP, "pod": "todo-preview-1/pod-1"}
    # The same order again (an operator that restarted mid-swap): answered, nothing fetched.
    (files[0] / "r1.tar.gz").unlink()
    assert deliver(runtime, order(url, digest, 1)) == 200


def test_a_bundle_whose_sha256_does_not_match_is_refused_and_the_old_one_serves(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    url, digest = publish(files, revision_bundle(1), "r1.tar.gz")
    assert deliver(runtime, order(url, digest, 1)) == 200
    bad_url, _ = publish(files, revision_bundle(2), "r2.tar.gz")
    body, signature = signed(shared_delivery_key(), order(bad_url, "0" * 64, 2))
    status, answer = runtime.post(body, signature)
    assert status == 422
    assert "checksum mismatch" in str(answer["error"])
    assert answer["revision"] == 1
    assert runtime.get("/") == (200, "<h1>revision-1</h1>", "1")
    # A bundle without a main page is refused the same way.
    broken, broken_digest = publish(files, make_bundle({"app.js": b"x"}), "r3.tar.gz")
    assert deliver(runtime, order(broken, broken_digest, 3)) == 422
    assert runtime.get("/app.js")[1] == "// revision-1"


def test_requests_during_twenty_swaps_see_whole_revisions_and_no_errors(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    urls = [publish(files, revision_bundle(n), f"r{n}.tar.gz") for n in range(1, 22)]
    assert deliver(runtime, order(*urls[0], 1)) == 200
    seen: list[tuple[int, str, str | None]] = []
    stop = threading.Event()

    def check(path: str) -> None:
        while not stop.is_set():
            status, body, header = runtime.get(path)
            seen.append((status, body, header))

    threads = [threading.Thread(target=check, args=(p,)) for p in ("/", "/app.js", "/")]
    for thread in threads:
        thread.start()
    try:
        for number in range(2, 22):
            assert deliver(runtime, order(*urls[number - 1], number)) == 200
        # The checkers keep going until one of them has seen the last revision: on a loaded
        # machine the last swap can end while every checker is still inside an older request.
        deadline = time.monotonic() + 30
        while not any(item[2] == "21" for item in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(seen) > 40
    errors = [item for item in seen if item[0] != 200]
    assert errors == []
    mixed = [item for item in seen if f"revision-{item[2]}" not in item[1]]
    assert mixed == []  # each response's file is of the revision its header names
    assert {item[2] for item in seen} >= {"1", "21"}
    assert runtime.get("/") == (200, "<h1>revision-21</h1>", "21")


def test_a_file_revision_n_had_and_n_plus_1_deleted_is_gone_after_the_swap(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    one = publish(files, revision_bundle(1, extra={"old.css": b"body{}"}), "r1.tar.gz")
    assert deliver(runtime, order(*one, 1)) == 200
    assert runtime.get("/old.css")[0] == 200
    two = publish(files, revision_bundle(2), "r2.tar.gz")
    assert deliver(runtime, order(*two, 2)) == 200
    assert runtime.get("/old.css")[0] == 404
    # Rollback is a swap too: the old revision's files come back whole.
    assert deliver(runtime, order(*one, 1)) == 200
    assert runtime.get("/old.css") == (200, "body{}", "1")


def test_delivery_refuses_anyone_but_the_operator(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    url, digest = publish(files, revision_bundle(1), "r1.tar.gz")
    good = order(url, digest, 1)
    body, signature = signed(shared_delivery_key(), good)
    assert runtime.post(body, "")[0] == 403  # unsigned
    assert runtime.post(body, "00" * 256)[0] == 403  # a made-up signature
    assert deliver(runtime, good, key=DeliveryKey.generate()) == 403  # another key
    tampered = body.replace(digest.encode(), hashlib.sha256(b"evil").hexdigest().encode())
    assert runtime.post(tampered, signature)[0] == 403  # signed, then changed
    assert deliver(runtime, order(url, digest, 1, namespace="ws-b")) == 403
    expired = order(url, digest, 1, issued_ms=time.time_ns() // 1_000_000 - 120_000)
    assert deliver(runtime, expired) == 403
    assert runtime.get("/")[0] == 503  # none of them landed
    assert runtime.post(body, signature)[0] == 200
    # A replay of an older order (a rollback someone recorded) is refused.
    older = order(url, digest, 1, issued_ms=good.issued_ms - 1000)
    assert deliver(runtime, older) == 409


def test_a_sandbox_given_one_apps_code_is_never_another_apps(
    runtime: Runtime, files: tuple[Path, str]
) -> None:
    url, digest = publish(files, revision_bundle(1), "r1.tar.gz")
    assert deliver(runtime, order(url, digest, 1)) == 200
    other = order(url, digest, 1, app="other", app_uid="uid-other")
    body, signature = signed(shared_delivery_key(), other)
    status, answer = runtime.post(body, signature)
    assert status == 403
    assert "belongs to app todo" in str(answer["error"])
    assert runtime.get("/")[2] == "1"
