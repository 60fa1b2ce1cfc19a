"""A tenant's objects in S3 are reachable only through the URL the operator signs for them.

The operator keeps each workspace's bundles, revision indexes and training records under its
own keys (storage/s3.py) and gives a preview one presigned URL, for one object, for an hour.
Against the real S3 server (MinIO on loopback), with the URL the operator actually put in
B's preview Deployment:
- it reads B's bundle, byte for byte what B's status names;
- the same signature with the path edited to A's bundle, A's index, B's own index, or to a
  listing of the bucket or of A's prefix, is refused: the signature covers the key, the
  method and the query, not a prefix;
- PUT or DELETE with it is refused, and B's bundle is unchanged after;
- without a signature nothing is readable or listable, and an expired URL is refused;
- no preview pod carries storage credentials: not in the pod spec (env, envFrom, volumes,
  service-account token), nor in the environment of the sandboxed process on the node.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import S3
from tests.security.support import Platform, Tenant
from vibeplane.storage.s3 import app_prefix
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import existing_real_node, real_node_selected

pytestmark = pytest.mark.integration
# The port, the platform's public delivery key, and the pod's own names (by fieldRef).
PREVIEW_ENV = {"PORT", "VIBEPLANE_DELIVERY_KEY", "POD_NAMESPACE", "POD_NAME", "POD_UID"}


def _http(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _bundle_url(s3: S3, tenant: Tenant) -> str:
    """A presigned URL of the tenant's bundle, as the operator delivers it to its preview."""
    return s3.store.presigned_get(_key(tenant), 600)


def _key(tenant: Tenant) -> str:
    """The tenant's bundle key, as its status names it (s3://bucket/key)."""
    return str(tenant.app["status"]["revisions"][0]["artifactUri"]).split("/", 3)[3]


def _edited(url: str, path: str, extra_query: str = "") -> str:
    """`url` with its signature kept and its path (and query) changed."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query + extra_query, ""))


def _code(body: bytes) -> str:
    """The S3 error code of a refusal (<Code>...</Code>)."""
    text = body.decode(errors="replace")
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else text[:80]


def test_a_presigned_url_reads_its_own_object_and_nothing_else(
    api: ApiClient, s3: S3, platform: Platform
) -> None:
    a, b = platform.a, platform.b
    url = _bundle_url(s3, b)
    bucket = s3.store.settings.bucket
    status, body = _http("GET", url)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == b.app["status"]["revisions"][0]["sha256"]

    a_prefix = app_prefix(a.name, a.app["metadata"]["uid"])
    b_prefix = app_prefix(b.name, b.app["metadata"]["uid"])
    attempts = {
        "A's bundle": _edited(url, f"/{bucket}/{_key(a)}"),
        "A's revision index": _edited(url, f"/{bucket}/{a_prefix}revisions.json"),
        "B's own revision index": _edited(url, f"/{bucket}/{b_prefix}revisions.json"),
        "the bucket": _edited(url, f"/{bucket}/"),
        "A's prefix": _edited(url, f"/{bucket}/", f"&list-type=2&prefix={quote(a_prefix)}"),
        "B's bundle, listed": _edited(url, urlsplit(url).path, "&list-type=2"),
    }
    refused = {what: _http("GET", edited) for what, edited in attempts.items()}
    assert {what: status for what, (status, _) in refused.items()} == dict.fromkeys(refused, 403)
    codes = {_code(body) for _, body in refused.values()}
    assert codes <= {"SignatureDoesNotMatch", "AccessDenied"}, codes
    for what, (_, body) in refused.items():
        # An error document (it echoes the key asked for), never a listing.
        assert b"ListBucketResult" not in body, what
        assert b"<Error>" in body, what

    # The URL reads; it does not write or delete, and B's bundle is as it was.
    assert _http("PUT", url, b"overwritten")[0] == 403
    assert _http("DELETE", url)[0] == 403
    stored = s3.store.get(_key(b)) or b""
    assert hashlib.sha256(stored).hexdigest() == b.app["status"]["revisions"][0]["sha256"]


def test_nothing_is_readable_without_a_signature_and_a_signature_expires(
    s3: S3, platform: Platform
) -> None:
    endpoint, bucket, key = s3.server.endpoint, s3.store.settings.bucket, _key(platform.a)
    for path in (f"/{bucket}/{key}", f"/{bucket}/", f"/{bucket}/?list-type=2", "/"):
        status, body = _http("GET", endpoint + path)
        assert status == 403, (path, body[:200])
    short = s3.store.presigned_get(key, 1)
    fresh = s3.store.presigned_get(key, 300)
    time.sleep(2.5)
    status, body = _http("GET", short)
    assert status == 403
    assert _code(body) == "AccessDenied"
    assert b"expired" in body
    assert _http("GET", fresh)[0] == 200  # the same object, with a signature still valid


def test_each_workspace_keeps_its_objects_under_its_own_prefix(s3: S3, platform: Platform) -> None:
    for tenant, other in ((platform.a, platform.b), (platform.b, platform.a)):
        uid = tenant.app["metadata"]["uid"]
        mine = s3.store.keys(f"workspaces/{tenant.name}/")
        assert mine, f"nothing stored for {tenant.name}"
        # workspaces/<workspace>/apps/<app uid>/...: every object names its app.
        assert all(k.split("/")[2] == "apps" for k in mine)
        assert not [k for k in s3.store.keys(f"workspaces/{other.name}/") if uid in k]
        records = [k for k in s3.store.keys("datasets/interactions/") if f".{uid}." in k]
        assert records
        assert all(k.rsplit("/", 1)[1].startswith(f"{tenant.name}.{uid}.") for k in records)
        for record in records:
            assert json.loads(s3.store.get(record) or b"{}")["workspace"] == tenant.name


def _preview_pods(api: ApiClient, tenant: Tenant) -> list[Any]:
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        tenant.namespace, label_selector=f"vibeplane.io/app={tenant.app_name}"
    )
    assert pods.items, f"no preview pod in {tenant.namespace}"
    return list(pods.items)


def _sandbox_configs(basetemp: Path, pod: Any) -> list[dict[str, Any]]:
    """The OCI configs the node made for a pod's containers: containerd's records on the real
    node; on the stand-in, the files it wrote (its state dirs are made under this session's
    base temporary directory by the preview_node fixture)."""
    if real_node_selected():
        node = existing_real_node(LocalCluster().config)
        return [
            node.container_info(status.container_id.removeprefix("containerd://"))["Spec"]
            for status in pod.status.container_statuses or []
        ]
    found = basetemp.glob(f"*/pods/{pod.metadata.uid}/*/*/config.json")
    return [json.loads(path.read_text()) for path in found]


def test_previews_carry_no_storage_credentials(
    api: ApiClient, s3: S3, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret_key = s3.environment["AWS_SECRET_ACCESS_KEY"]
    basetemp = tmp_path_factory.getbasetemp()
    for tenant in (platform.a, platform.b):
        for pod in _preview_pods(api, tenant):
            spec = pod.spec
            assert spec.automount_service_account_token is False
            assert not spec.image_pull_secrets
            for volume in spec.volumes or []:
                assert volume.empty_dir is not None, f"volume {volume.name} is not an emptyDir"
            for container in [*spec.containers, *(spec.init_containers or [])]:
                assert not container.env_from
                assert {e.name for e in container.env or []} == PREVIEW_ENV
                # Only the pod's own names come from elsewhere: no Secret, no ConfigMap.
                assert all(
                    e.value_from is None or e.value_from.field_ref is not None
                    for e in container.env or []
                )
                for mount in container.volume_mounts or []:
                    assert "serviceaccount" not in mount.mount_path
            text = json.dumps(api.sanitize_for_serialization(pod))
            assert secret_key not in text
            # The process in the sandbox: the environment the node gave it.
            configs = _sandbox_configs(basetemp, pod)
            assert configs, f"no sandbox config for {pod.metadata.name} under {basetemp}"
            for config in configs:
                names = {entry.split("=", 1)[0] for entry in config["process"]["env"]}
                # A kubelet always names the API server's Service (KUBERNETES_SERVICE_HOST,
                # KUBERNETES_PORT...): an address, no credential, and a refused destination
                # (tests/security/test_network.py). Nothing else of the platform's.
                names -= {
                    n for n in names if n.startswith(("KUBERNETES_SERVICE", "KUBERNETES_PORT"))
                }
                names.discard("VIBEPLANE_DELIVERY_KEY")  # public: verifies, cannot sign
                assert not {n for n in names if n.startswith(("AWS_", "VIBEPLANE_", "KUBE"))}
                assert secret_key not in json.dumps(config)
                mounts = [m["destination"] for m in config.get("mounts") or []]
                assert not [m for m in mounts if "serviceaccount" in m]
