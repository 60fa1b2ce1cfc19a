"""The few API calls of the front service, asynchronous (aiohttp), with its own identity.

Its identity needs: create tokenreviews and subjectaccessreviews (system:auth-delegator),
list vibeapps, patch vibeapps (the wake annotation), get services (the NodePort upstream).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
VIBEAPPS = "/apis/vibeplane.io/v1alpha1"


@dataclass(frozen=True)
class Identity:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def review_user(self) -> dict[str, Any]:
        return {
            "user": self.username,
            "uid": self.uid,
            "groups": list(self.groups),
            "extra": {key: list(values) for key, values in self.extra},
        }


@dataclass
class Connection:
    server: str
    ssl_context: ssl.SSLContext
    token_file: Path | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def auth_headers(self) -> dict[str, str]:
        if self.token_file is not None:  # re-read: projected tokens rotate
            return {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}
        return dict(self.headers)

    @classmethod
    def in_cluster(cls) -> Connection:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        context = ssl.create_default_context(cafile=str(IN_CLUSTER / "ca.crt"))
        server = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
        return cls(server, context, token_file=IN_CLUSTER / "token")

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Connection:
        config = yaml.safe_load(path.read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        ssl_context = ssl.create_default_context()
        if "certificate-authority-data" in cluster:
            data = base64.b64decode(cluster["certificate-authority-data"]).decode()
            ssl_context.load_verify_locations(cadata=data)
        elif "certificate-authority" in cluster:
            ssl_context.load_verify_locations(cafile=cluster["certificate-authority"])
        headers: dict[str, str] = {}
        if "token" in user:
            headers["Authorization"] = f"Bearer {user['token']}"
        elif "client-certificate" in user:
            ssl_context.load_cert_chain(user["client-certificate"], user["client-key"])
        elif "client-certificate-data" in user:
            with tempfile.TemporaryDirectory() as scratch:  # ssl reads files only
                cert, key = Path(scratch) / "c", Path(scratch) / "k"
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                ssl_context.load_cert_chain(str(cert), str(key))
        return cls(str(cluster["server"]).rstrip("/"), ssl_context, headers=headers)


class KubeError(RuntimeError):
    pass


class Kube:
    def __init__(self, connection: Connection, session: aiohttp.ClientSession) -> None:
        self.connection = connection
        self.session = session

    async def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        headers = {**self.connection.auth_headers(), "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        async with self.session.request(
            method,
            self.connection.server + path,
            data=data,
            headers=headers,
            ssl=self.connection.ssl_context,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            text = await response.text()
            if response.status == 404:
                return None
            if response.status >= 300:
                raise KubeError(f"{method} {path}: {response.status} {text[:300]}")
            return json.loads(text)

    async def token_review(self, token: str) -> Identity | None:
        """Who the token belongs to, or None when the cluster does not accept it."""
        review = await self._call(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = (review or {}).get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        extra = tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items()))
        return Identity(
            str(user.get("username", "")),
            str(user.get("uid", "")),
            tuple(user.get("groups") or ()),
            extra,
        )

    async def may_get_app(self, identity: Identity, namespace: str, name: str) -> bool:
        review = await self._call(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    **identity.review_user(),
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": "get",
                        "group": "vibeplane.io",
                        "resource": "vibeapps",
                        "name": name,
                    },
                },
            },
        )
        return bool(((review or {}).get("status") or {}).get("allowed"))

    async def list_apps(self) -> list[dict[str, Any]]:
        listing = await self._call("GET", f"{VIBEAPPS}/vibeapps")
        return list((listing or {}).get("items") or [])

    async def annotate(self, namespace: str, name: str, key: str, value: str) -> None:
        await self._call(
            "PATCH",
            f"{VIBEAPPS}/namespaces/{namespace}/vibeapps/{name}",
            {"metadata": {"annotations": {key: value}}},
            content_type="application/merge-patch+json",
        )

    async def node_port(self, namespace: str, service: str) -> int | None:
        found = await self._call("GET", f"/api/v1/namespaces/{namespace}/services/{service}")
        for port in ((found or {}).get("spec") or {}).get("ports") or []:
            if port.get("nodePort"):
                return int(port["nodePort"])
        return None
