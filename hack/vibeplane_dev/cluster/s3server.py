"""A real S3-compatible server on loopback: MinIO, built from its Go module, run as a process.

Used by `vibeplane up` and the test suite as the embedded object store. Its credentials are
generated once per state directory; a KMS key is configured so that server-side encryption
(SSE-S3) requests are honoured, as they would be on a production store.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from vibeplane_dev.cluster.build import ensure_tool
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.processes import ManagedProcess

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


class LocalS3:
    """MinIO on 127.0.0.1, state under the cluster's home."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig.from_env()
        self.home = self.config.home.parent / "s3"
        self.process = ManagedProcess("minio", self.home / "run", self.home / "logs")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.config.s3_port}"

    def credentials(self) -> dict[str, str]:
        """Access key, secret key and KMS key, made on first use and kept with the data."""
        path = self.home / "credentials.json"
        if not path.is_file():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps(
                    {
                        "accessKey": "vibeplane-" + secrets.token_hex(4),
                        "secretKey": secrets.token_urlsafe(30),
                        "kmsKey": "vibeplane-key:"
                        + base64.b64encode(secrets.token_bytes(32)).decode(),
                    }
                )
            )
            path.chmod(0o600)
        data: dict[str, str] = json.loads(path.read_text())
        return data

    def client_environment(self) -> dict[str, str]:
        """What an S3 client (the operator) needs in its environment to use this server."""
        creds = self.credentials()
        return {
            "VIBEPLANE_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": creds["accessKey"],
            "AWS_SECRET_ACCESS_KEY": creds["secretKey"],
            "AWS_REGION": "us-east-1",
        }

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/minio/health/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def up(self, progress: Progress = _noop) -> str:
        """Start MinIO unless it runs; return its endpoint."""
        binary = ensure_tool("minio", self.config.cache, progress)
        if self.process.running() and self.ready():
            return self.endpoint
        creds = self.credentials()
        env = dict(
            os.environ,
            MINIO_ROOT_USER=creds["accessKey"],
            MINIO_ROOT_PASSWORD=creds["secretKey"],
            MINIO_KMS_SECRET_KEY=creds["kmsKey"],
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
        )
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        progress("starting MinIO")
        self.process.start(
            [
                str(binary),
                "server",
                str(data),
                "--address",
                f"127.0.0.1:{self.config.s3_port}",
                "--quiet",
            ],
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.process.running():
                break
            if self.ready():
                return self.endpoint
            time.sleep(0.25)
        raise RuntimeError(f"MinIO did not become ready; its log ends:\n{self.process.log_tail()}")

    def down(self) -> bool:
        return self.process.stop()
