"""The preview runtime: download from a local HTTP server, verify, extract safely, serve."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vibeplane_sandbox import preview
from vibeplane_sandbox.preview import PreviewError

SANDBOX_SOURCE = Path(preview.__file__).resolve().parents[1]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served on 127.0.0.1 (returns it and its base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_bundle(members: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info)
    return buffer.getvalue()


def publish(files: tuple[Path, str], data: bytes, name: str = "app.tar.gz") -> tuple[str, str]:
    root, base = files
    (root / name).write_bytes(data)
    return f"{base}/{name}?X-Amz-Signature=topsecret", hashlib.sha256(data).hexdigest()


def test_fetch_extracts_a_good_bundle(files: tuple[Path, str], tmp_path: Path) -> None:
    url, digest = publish(files, make_bundle({"index.html": b"<h1>hi</h1>", "js/app.js": b"1"}))
    destination = tmp_path / "app"
    assert preview.fetch(url, digest, destination) == 2
    assert (destination / "index.html").read_bytes() == b"<h1>hi</h1>"
    assert (destination / "js" / "app.js").read_bytes() == b"1"


def test_checksum_mismatch_is_refused_and_nothing_lands(
    files: tuple[Path, str], tmp_path: Path
) -> None:
    url, _ = publish(files, make_bundle({"index.html": b"x"}))
    destination = tmp_path / "app"
    with pytest.raises(PreviewError, match="checksum mismatch") as caught:
        preview.fetch(url, "0" * 64, destination)
    assert caught.value.code == preview.EXIT_CHECKSUM
    assert not destination.exists()


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.html", "path traversal"),
        ("a/../../evil.html", "path traversal"),
        ("/etc/evil", "absolute path"),
    ],
)
def test_traversal_is_refused(
    files: tuple[Path, str], tmp_path: Path, name: str, match: str
) -> None:
    url, digest = publish(files, make_bundle({"index.html": b"ok", name: b"evil"}))
    with pytest.raises(PreviewError, match=match) as caught:
        preview.fetch(url, digest, tmp_path / "app")
    assert caught.value.code == preview.EXIT_ARCHIVE
    assert not (tmp_path / "evil.html").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_links_and_devices_are_refused(
    files: tuple[Path, str], tmp_path: Path, kind: bytes
) -> None:
    link = tarfile.TarInfo("escape")
    link.type = kind
    link.linkname = "/etc/passwd"
    url, digest = publish(files, make_bundle({"index.html": b"ok"}, extra=[link]))
    with pytest.raises(PreviewError, match="unsafe archive") as caught:
        preview.fetch(url, digest, tmp_path / "app")
    assert caught.value.code == preview.EXIT_ARCHIVE


def test_download_errors_say_so_without_the_signature(files: tuple[Path, str]) -> None:
    _, base = files
    with pytest.raises(PreviewError, match="HTTP 404") as caught:
        preview.fetch(f"{base}/missing.tar.gz?X-Amz-Signature=topsecret", "a" * 64, Path("/x"))
    assert caught.value.code == preview.EXIT_DOWNLOAD
    assert "topsecret" not in str(caught.value)


def test_redact_drops_query_and_credentials() -> None:
    assert (
        preview.redact("https://user:pw@s3.local:9000/b/k.tar.gz?X-Amz-Signature=s")
        == "https://s3.local:9000/b/k.tar.gz"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_preview(url: str, digest: str, port: int, dest: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(SANDBOX_SOURCE), PORT=str(port))
    env.update(BUNDLE_URL=url, BUNDLE_SHA256=digest)
    return subprocess.Popen(
        [sys.executable, "-m", "vibeplane_sandbox.preview", "--dest", str(dest)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_the_module_serves_the_app_on_port(files: tuple[Path, str], tmp_path: Path) -> None:
    url, digest = publish(files, make_bundle({"index.html": b"<h1>served</h1>"}))
    port = _free_port()
    process = _run_preview(url, digest, port, tmp_path / "app")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.read() == b"<h1>served</h1>"
                    assert response.headers["X-Content-Type-Options"] == "nosniff"
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "preview never served"
                time.sleep(0.1)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0
    assert "topsecret" not in output
    assert "revision 0 (1 files" in output


def test_the_module_exits_non_zero_on_a_bad_checksum(
    files: tuple[Path, str], tmp_path: Path
) -> None:
    url, _ = publish(files, make_bundle({"index.html": b"x"}))
    process = _run_preview(url, "f" * 64, _free_port(), tmp_path / "app")
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == preview.EXIT_CHECKSUM
    assert "preview: error: checksum mismatch" in output


def test_the_module_needs_a_url_and_digest_or_a_delivery_key() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BUNDLE_") and k != preview.ENV_DELIVERY_KEY
    }
    env["PYTHONPATH"] = str(SANDBOX_SOURCE)
    result = subprocess.run(
        [sys.executable, "-m", "vibeplane_sandbox.preview"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == preview.EXIT_USAGE
    assert "or a delivery key" in result.stderr
