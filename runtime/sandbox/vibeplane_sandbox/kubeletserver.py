"""The slice of kubelet's HTTPS API that `kubectl logs` needs, on 127.0.0.1 only.

The API server proxies `pods/log` to `https://<node InternalIP>:<kubeletEndpoint.Port>/
containerLogs/{namespace}/{pod}/{container}`. The local control plane verifies kubelets against
its CA (`--kubelet-certificate-authority`) and presents its own client certificate: the local
platform gives this server a certificate of that CA (`--tls-cert-file`) and the CA to check
clients with (`client_ca`), so only the API server reads logs here. Without a certificate given,
a self-signed one is made (for an API server that does not verify kubelets); without
`client_ca`, anyone on the machine who can reach 127.0.0.1 can read the node's container logs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vibeplane_sandbox.runtime import tail


@dataclass(frozen=True)
class LogSource:
    """Where one container's log is and whether it may still grow (for follow)."""

    path: Path
    running: Callable[[], bool]


Locate = Callable[[str, str, str, bool], LogSource | None]


def ensure_certificate(directory: Path, node_name: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for 127.0.0.1 and localhost, made once."""
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@kubelet")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(node_name),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[0].lower() in ("true", "1")


def _int(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    return int(values[0]) if values and values[0].lstrip("-").isdigit() else None


class _Handler(BaseHTTPRequestHandler):
    server: KubeletServer
    server_version = "vibeplane-node"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _plain(self, status: HTTPStatus, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            self._plain(HTTPStatus.OK, "ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._plain(HTTPStatus.NOT_FOUND, "only /containerLogs is served by the local node")
            return
        query = urllib.parse.parse_qs(url.query)
        _, namespace, pod, container = parts
        source = self.server.locate(namespace, pod, container, _flag(query, "previous"))
        if source is None:
            self._plain(
                HTTPStatus.NOT_FOUND, f"container {container!r} of pod {namespace}/{pod} not found"
            )
            return
        self._stream(source, _int(query, "tailLines"), _int(query, "limitBytes"), query)

    def _stream(
        self,
        source: LogSource,
        lines: int | None,
        limit: int | None,
        query: dict[str, list[str]],
    ) -> None:
        data = tail(source.path, lines, limit)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(data)
        if not _flag(query, "follow"):
            return
        sent = len(data)
        try:
            offset = source.path.stat().st_size
        except OSError:
            return
        while not self.server.stopping.is_set():
            running = source.running()
            try:
                with open(source.path, "rb") as log:
                    log.seek(offset)
                    chunk = log.read(65536)
            except OSError:
                return
            if chunk:
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                self.wfile.write(chunk)
                self.wfile.flush()
                offset += len(chunk)
                sent += len(chunk)
                if limit is not None and sent >= limit:
                    return
            elif not running:
                return
            else:
                time.sleep(0.2)


class KubeletServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1:port serving /containerLogs and /healthz."""

    daemon_threads = True

    def __init__(
        self,
        port: int,
        locate: Locate,
        cert: Path,
        key: Path,
        client_ca: Path | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.locate = locate
        self.stopping = threading.Event()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the request's thread, so a slow or silent client
        # never holds up accept().
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="kubelet-server", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
