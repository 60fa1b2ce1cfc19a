"""The preview runtime: fetch an app bundle, check it, serve it as static files on $PORT.

Runs inside the gVisor sandbox from the host's read-only root filesystem, so it uses the
standard library only (the package's `__init__` imports nothing either):

    python3 -m vibeplane_sandbox.preview --bundle-url URL --sha256 HEX
    (or BUNDLE_URL / BUNDLE_SHA256 in the environment; PORT is set by the node)

It listens on 127.0.0.1:$PORT by default: on the local node the sandbox shares the host's
network stack. In a real pod (its own network namespace) the image sets PREVIEW_HOST=0.0.0.0.

The URL is presigned and short-lived, so it is never logged with its query string. Exit codes:
0 after a clean shutdown, 2 bad arguments, 10 the download failed, 11 the checksum did not
match, 12 the archive is unsafe or too large. Each failure logs one line saying which.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import posixpath
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO

# Copies of `vibeplane.wellknown` (this file runs where the operator's package is not
# installed); tests/unit/test_wellknown.py keeps them equal.
ENV_BUNDLE_URL = "BUNDLE_URL"
ENV_BUNDLE_SHA256 = "BUNDLE_SHA256"
ENV_PORT = "PORT"
MAX_BUNDLE_BYTES = 50 * 2**20
MAX_EXTRACTED_BYTES = 200 * 2**20
MAX_FILES = 5000
EXIT_USAGE, EXIT_DOWNLOAD, EXIT_CHECKSUM, EXIT_ARCHIVE = 2, 10, 11, 12


class PreviewError(Exception):
    """A failure with the exit code that names it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(f"preview: {message}", file=sys.stderr, flush=True)


def redact(url: str) -> str:
    """The URL without its query and credentials: presigned signatures stay out of logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def download(url: str, target: IO[bytes], limit: int = MAX_BUNDLE_BYTES) -> str:
    """Stream `url` into `target`; return the sha256 hex digest of what was written."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PreviewError(EXIT_DOWNLOAD, f"bundle URL must be http(s), got {redact(url)!r}")
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            while chunk := response.read(65536):
                size += len(chunk)
                if size > limit:
                    raise PreviewError(EXIT_DOWNLOAD, f"bundle is larger than {limit} bytes")
                digest.update(chunk)
                target.write(chunk)
    except urllib.error.HTTPError as error:
        raise PreviewError(
            EXIT_DOWNLOAD, f"download of {redact(url)} failed: HTTP {error.code}"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PreviewError(EXIT_DOWNLOAD, f"download of {redact(url)} failed: {reason}") from error
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    """The member's path inside the destination, or PreviewError if it could leave it."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise PreviewError(EXIT_ARCHIVE, f"unsafe archive: absolute path {name!r}")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{name}/" or "\\" in name:
        raise PreviewError(EXIT_ARCHIVE, f"unsafe archive: path traversal in {name!r}")
    if "\x00" in name:
        raise PreviewError(EXIT_ARCHIVE, f"unsafe archive: NUL in {name!r}")
    return normal


def extract(archive: Path, destination: Path) -> int:
    """Extract regular files and directories only; refuse links, devices, traversal.

    Python 3.11's tarfile lacks extraction filters on older patch releases (the host's
    interpreter may be one), so every member is checked and written here, never by
    `extractall`. Returns the number of files written.
    """
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    total = files = 0
    try:
        with tarfile.open(archive, "r:gz") as bundle:
            for member in bundle:
                name = _safe_name(member.name)
                if name in (".", ""):
                    continue
                if not (member.isfile() or member.isdir()):
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise PreviewError(EXIT_ARCHIVE, f"unsafe archive: {kind} {member.name!r}")
                path = (root / name).resolve()
                if path != root and root not in path.parents:
                    raise PreviewError(EXIT_ARCHIVE, f"unsafe archive: {member.name!r} escapes")
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                files += 1
                total += member.size
                if files > MAX_FILES or total > MAX_EXTRACTED_BYTES:
                    raise PreviewError(EXIT_ARCHIVE, "archive too large once extracted")
                path.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(member)
                if source is None:
                    raise PreviewError(EXIT_ARCHIVE, f"unreadable member {member.name!r}")
                with source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out)
                path.chmod(0o644)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise PreviewError(EXIT_ARCHIVE, f"bad archive: {error}") from error
    return files


def fetch(url: str, sha256: str, destination: Path) -> int:
    """Download, verify and extract the bundle; the files land only if all checks pass."""
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise PreviewError(EXIT_USAGE, "--sha256 must be 64 hexadecimal digits")
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        archive = Path(scratch) / "bundle.tar.gz"
        with open(archive, "wb") as target:
            actual = download(url, target)
        if not hmac.compare_digest(actual, expected):
            raise PreviewError(
                EXIT_CHECKSUM, f"checksum mismatch: expected sha256 {expected}, got {actual}"
            )
        staging = Path(scratch) / "app"
        count = extract(archive, staging)
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(staging, destination)
    return count


ACTIVITY_PATH = "/__vibeplane/activity"


class _Activity:
    """When a person (not a probe, not the operator asking) last requested a page."""

    last = time.time()


class _Handler(SimpleHTTPRequestHandler):
    server_version = "vibeplane-preview"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path == ACTIVITY_PATH:
            # The operator hibernates an idle preview: it asks here when traffic last came.
            body = json.dumps({"lastActivity": int(_Activity.last)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not self.headers.get("User-Agent", "").startswith("kube-probe/"):
            _Activity.last = time.time()
        super().do_GET()

    def do_HEAD(self) -> None:
        if not self.headers.get("User-Agent", "").startswith("kube-probe/"):
            _Activity.last = time.time()
        super().do_HEAD()

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        # A generated app answers with its own pages: a folder without index.html is a
        # broken app (and the readiness probe, the revision's validation, must say so).
        self.send_error(404, "no index.html")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        headers = getattr(self, "headers", None)
        if headers is not None and headers.get("User-Agent", "").startswith("kube-probe/"):
            return  # a readiness probe every period would drown the app's own lines
        say(f"{self.address_string()} {format % args}")


def serve(directory: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A static file server over `directory` (not started)."""
    handler = partial(_Handler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibeplane-preview", description=__doc__)
    parser.add_argument("--bundle-url", default=os.environ.get(ENV_BUNDLE_URL))
    parser.add_argument("--sha256", default=os.environ.get(ENV_BUNDLE_SHA256))
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PORT) or 8080))
    parser.add_argument("--dest", type=Path, default=Path("/tmp/app"))
    parser.add_argument(
        "--host",
        default=os.environ.get("PREVIEW_HOST", "127.0.0.1"),
        help="the address to listen on (loopback on the local node; a pod's own IPs elsewhere)",
    )
    args = parser.parse_args(argv)
    if not args.bundle_url or not args.sha256:
        say("a bundle URL and its sha256 are required (--bundle-url/--sha256 or env)")
        return EXIT_USAGE
    uname = os.uname()
    say(f"kernel {uname.sysname} {uname.release} {uname.version}")
    say(f"fetching {redact(args.bundle_url)}")
    try:
        count = fetch(args.bundle_url, args.sha256, args.dest)
    except PreviewError as error:
        say(f"error: {error}")
        return error.code
    server = serve(args.dest, args.port, args.host)

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        say(f"signal {signum}: shutting down")
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    say(f"serving {count} files from {args.dest} on http://{args.host}:{args.port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
