"""The preview runtime: serve an app's revision as static files on $PORT, and take the next
revision while it runs.

Runs inside the gVisor sandbox from the image's read-only root filesystem, so it uses the
standard library only (the package's `__init__` imports nothing either):

    python3 -m vibeplane_sandbox.preview [--bundle-url URL --sha256 HEX]
    (or BUNDLE_URL / BUNDLE_SHA256 in the environment; PORT is set by the node)

A revision arrives by delivery: the operator POSTs `/__vibeplane/revision` with the revision's
presigned bundle URL and sha256 (never storage or API credentials), signed with the platform's
delivery key (RSA, PKCS#1 v1.5 over SHA-256). The pod holds only the public key
(VIBEPLANE_DELIVERY_KEY), so nothing in the sandbox, tenant code included, can sign a delivery.
The runtime fetches, verifies and extracts the bundle beside the revision it serves, checks it
has a main page, and swaps: every request resolves the revision's directory once, so no
response mixes two revisions; on any failure the old revision keeps serving. The first
delivery binds the sandbox to its app (a warm sandbox waits unbound): deliveries for any other
app, another namespace, expired or older than the last one accepted are refused.

It listens on 127.0.0.1:$PORT by default; in a pod (its own network namespace) the image sets
PREVIEW_HOST=0.0.0.0. The URL is presigned and short-lived, so it is never logged with its
query string. Exit codes: 0 after a clean shutdown, 2 bad arguments, and for a bundle given at
start: 10 the download failed, 11 the checksum did not match, 12 the archive is unsafe, too
large or has no main page. Each failure logs one line saying which.
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
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, Any

# Copies of `vibeplane.wellknown` (this file runs where the operator's package is not
# installed); tests/unit/test_wellknown.py keeps them equal.
ENV_BUNDLE_URL = "BUNDLE_URL"
ENV_BUNDLE_SHA256 = "BUNDLE_SHA256"
ENV_PORT = "PORT"
ENV_DELIVERY_KEY = "VIBEPLANE_DELIVERY_KEY"
ENV_POD_NAMESPACE = "POD_NAMESPACE"
ENV_POD_NAME = "POD_NAME"
ENV_POD_UID = "POD_UID"
REVISION_PATH = "/__vibeplane/revision"
READY_PATH = "/__vibeplane/ready"
ACTIVITY_PATH = "/__vibeplane/activity"
SIGNATURE_HEADER = "X-Vibeplane-Signature"
REVISION_HEADER = "X-Vibeplane-Revision"
MAX_BUNDLE_BYTES = 50 * 2**20
MAX_EXTRACTED_BYTES = 200 * 2**20
MAX_FILES = 5000
MAX_DELIVERY_BYTES = 16 * 2**10
RETIRED_GRACE_SECONDS = 30.0
"""A replaced revision's files stay this long for requests that resolved it before the swap."""
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
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=destination.parent) as scratch:
        archive = Path(scratch) / "bundle.tar.gz"
        with open(archive, "wb") as target:
            actual = download(url, target)
        if not hmac.compare_digest(actual, expected):
            raise PreviewError(
                EXIT_CHECKSUM, f"checksum mismatch: expected sha256 {expected}, got {actual}"
            )
        staging = Path(scratch) / "app"
        count = extract(archive, staging)
        if not (staging / "index.html").is_file():
            raise PreviewError(EXIT_ARCHIVE, "the bundle has no index.html (the main page)")
        if destination.exists():
            shutil.rmtree(destination)
        # A rename inside one filesystem when the scratch space is beside the destination.
        shutil.move(str(staging), str(destination))
    return count


# ---- delivery: the operator's signature ------------------------------------------------------

# DER prefix of a SHA-256 DigestInfo (RFC 8017, 9.2 note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def parse_public_key(text: str) -> tuple[int, int]:
    """`<e>:<n in hex>` (as the operator writes VIBEPLANE_DELIVERY_KEY) -> (e, n)."""
    exponent, _, modulus = text.strip().partition(":")
    e, n = int(exponent), int(modulus, 16)
    if e < 3 or n.bit_length() < 2048:
        raise ValueError("the delivery key must be RSA with a modulus of at least 2048 bits")
    return e, n


def verify(public: tuple[int, int], message: bytes, signature_hex: str) -> bool:
    """RSASSA-PKCS1-v1_5 with SHA-256: the whole encoded block is rebuilt and compared, so
    nothing of the signature is parsed (no room for forgeries against lax parsers)."""
    e, n = public
    size = (n.bit_length() + 7) // 8
    try:
        signature = int(signature_hex, 16)
    except ValueError:
        return False
    if len(signature_hex) > 2 * size or not 0 < signature < n:
        return False
    block = pow(signature, e, n).to_bytes(size, "big")
    suffix = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(suffix) - 3) + b"\x00" + suffix
    return hmac.compare_digest(block, expected)


class Refused(Exception):
    """A delivery this sandbox does not take: the HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Served:
    """One installed revision: never changed once swapped in (a plain class: `dataclasses`
    imports `inspect`, a tenth of a second of this runtime's start)."""

    __slots__ = ("directory", "number", "sha256")

    def __init__(self, number: int, sha256: str, directory: Path) -> None:
        self.number, self.sha256, self.directory = number, sha256, directory


class Releases:
    """The revisions of one sandbox: the one served, and the swap to the next.

    Each revision is extracted into its own directory under `root`; a swap replaces the
    reference requests read (one assignment), and a replaced directory is removed only once
    requests that resolved it before the swap are long done."""

    def __init__(
        self,
        root: Path,
        public_key: tuple[int, int] | None = None,
        namespace: str = "",
        pod: str = "",
    ) -> None:
        self.root = root
        self.public_key = public_key
        self.namespace = namespace
        self.pod = pod
        self.current: Served | None = None
        self.app_uid: str | None = None
        self.app: str | None = None
        self.last_issued = 0
        self._retired: list[tuple[float, Path]] = []
        self._lock = threading.Lock()
        self._serial = 0

    def install(self, url: str, sha256: str, number: int) -> Served:
        """Fetch, verify and extract beside the served revision, then swap (PreviewError
        leaves the served revision as it was)."""
        self._serial += 1
        directory = self.root / f"r{number}-{sha256[:12]}-{self._serial}"
        count = fetch(url, sha256, directory)
        served = Served(number, sha256.lower(), directory)
        previous, self.current = self.current, served
        if previous is not None and previous.directory != directory:
            self._retired.append((time.monotonic(), previous.directory))
        self._sweep()
        say(f"revision {number} ({count} files, sha256 {sha256[:12]}) swapped in")
        return served

    def _sweep(self) -> None:
        cutoff = time.monotonic() - RETIRED_GRACE_SECONDS
        keep: list[tuple[float, Path]] = []
        for retired_at, directory in self._retired:
            if retired_at < cutoff:
                shutil.rmtree(directory, ignore_errors=True)
            else:
                keep.append((retired_at, directory))
        self._retired = keep

    def deliver(self, body: bytes, signature: str) -> Served:
        """A signed delivery from the operator: checked, then installed (or Refused)."""
        if self.public_key is None:
            raise Refused(403, "this sandbox takes no deliveries (no delivery key)")
        if not verify(self.public_key, body, signature):
            raise Refused(403, "the delivery's signature does not verify")
        try:
            order = json.loads(body)
            namespace, app, app_uid = order["namespace"], order["app"], order["appUid"]
            number, sha256, url = int(order["revision"]), str(order["sha256"]), order["url"]
            issued, expires = int(order["issued"]), float(order["expires"])
        except (ValueError, KeyError, TypeError) as error:
            raise Refused(400, f"malformed delivery: {error}") from error
        with self._lock:
            if self.namespace and namespace != self.namespace:
                raise Refused(403, f"this sandbox serves namespace {self.namespace}")
            if expires < time.time():
                raise Refused(403, "the delivery has expired")
            if self.app_uid is not None and app_uid != self.app_uid:
                raise Refused(403, f"this sandbox belongs to app {self.app}")
            if issued < self.last_issued:
                raise Refused(409, "a newer delivery was accepted already")
            # Bound from the first genuine delivery on: a sandbox that was given an app's code
            # never serves another app.
            self.app_uid, self.app, self.last_issued = app_uid, app, issued
            current = self.current
            if current is not None and current.sha256 == sha256.lower():
                if current.number != number:
                    current = Served(number, current.sha256, current.directory)
                    self.current = current
                return current
            try:
                return self.install(url, sha256, number)
            except PreviewError as error:
                status = 502 if error.code == EXIT_DOWNLOAD else 422
                raise Refused(status, str(error)) from error

    def describe(self) -> dict[str, Any]:
        current = self.current
        return {
            "revision": current.number if current else None,
            "sha256": current.sha256 if current else None,
            "app": self.app,
            "pod": self.pod,
        }


class _Activity:
    """When a person (not a probe, not the operator asking) last requested a page."""

    last = time.time()


class _Handler(SimpleHTTPRequestHandler):
    server_version = "vibeplane-preview"
    sys_version = ""
    releases: Releases
    _revision: int | None = None

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _person(self) -> None:
        if not self.headers.get("User-Agent", "").startswith("kube-probe/"):
            _Activity.last = time.time()

    def _resolve(self) -> bool:
        """Pin this request to the revision served now (False: nothing to serve yet)."""
        current = self.releases.current
        if current is None:
            self.send_error(503, "no revision delivered yet")
            return False
        self.directory = str(current.directory)
        self._revision = current.number
        return True

    def do_GET(self) -> None:
        if self.path == ACTIVITY_PATH:
            # The operator hibernates an idle preview: it asks here when traffic last came.
            self._json(200, {"lastActivity": int(_Activity.last)})
            return
        if self.path == READY_PATH:
            self._json(200, {"ready": True})
            return
        if self.path == REVISION_PATH:
            self._json(200, self.releases.describe())
            return
        self._person()
        if self._resolve():
            super().do_GET()

    def do_HEAD(self) -> None:
        self._person()
        if self._resolve():
            super().do_HEAD()

    def do_POST(self) -> None:
        if self.path != REVISION_PATH:
            self.send_error(405)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_DELIVERY_BYTES:
            self._json(400, {"error": "a delivery is a JSON body of at most 16 KiB"})
            return
        body = self.rfile.read(length)
        try:
            served = self.releases.deliver(body, self.headers.get(SIGNATURE_HEADER, ""))
        except Refused as refused:
            say(f"delivery refused ({refused.status}): {refused}")
            self._json(refused.status, {"error": str(refused), **self.releases.describe()})
            return
        self._json(200, {**self.releases.describe(), "revision": served.number})

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        # A generated app answers with its own pages: a folder without index.html is a
        # broken app.
        self.send_error(404, "no index.html")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        if self._revision is not None:
            self.send_header(REVISION_HEADER, str(self._revision))
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        headers = getattr(self, "headers", None)
        if headers is not None and headers.get("User-Agent", "").startswith("kube-probe/"):
            return  # a readiness probe every period would drown the app's own lines
        if getattr(self, "path", "") == REVISION_PATH:
            return  # deliveries log their own line
        say(f"{self.address_string()} {format % args}")


def serve(releases: Releases, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A static file server over the served revision of `releases` (not started)."""
    handler = type("Handler", (_Handler,), {"releases": releases})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibeplane-preview", description=__doc__)
    parser.add_argument("--bundle-url", default=os.environ.get(ENV_BUNDLE_URL))
    parser.add_argument("--sha256", default=os.environ.get(ENV_BUNDLE_SHA256))
    parser.add_argument("--port", type=int, default=int(os.environ.get(ENV_PORT) or 8080))
    parser.add_argument("--dest", type=Path, default=Path("/tmp/app"))
    parser.add_argument("--delivery-key", default=os.environ.get(ENV_DELIVERY_KEY))
    parser.add_argument("--namespace", default=os.environ.get(ENV_POD_NAMESPACE, ""))
    parser.add_argument(
        "--host",
        default=os.environ.get("PREVIEW_HOST", "127.0.0.1"),
        help="the address to listen on (loopback on the local node; a pod's own IPs elsewhere)",
    )
    args = parser.parse_args(argv)
    if not args.delivery_key and not (args.bundle_url and args.sha256):
        say(
            "a bundle URL and its sha256 (--bundle-url/--sha256 or env), or a delivery key"
            f" ({ENV_DELIVERY_KEY}) to take revisions from the operator, are required"
        )
        return EXIT_USAGE
    try:
        public = parse_public_key(args.delivery_key) if args.delivery_key else None
    except ValueError as error:
        say(f"error: {ENV_DELIVERY_KEY}: {error}")
        return EXIT_USAGE
    uname = os.uname()
    say(f"kernel {uname.sysname} {uname.release} {uname.version}")
    pod = "/".join(filter(None, (os.environ.get(ENV_POD_NAME), os.environ.get(ENV_POD_UID))))
    releases = Releases(args.dest, public, args.namespace, pod)
    if args.bundle_url and args.sha256:
        say(f"fetching {redact(args.bundle_url)}")
        try:
            releases.install(args.bundle_url, args.sha256, 0)
        except PreviewError as error:
            say(f"error: {error}")
            return error.code
    server = serve(releases, args.port, args.host)

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        say(f"signal {signum}: shutting down")
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    waiting = "" if releases.current else ", waiting for a delivery"
    say(f"serving on http://{args.host}:{args.port}/{waiting}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
