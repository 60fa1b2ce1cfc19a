"""Secrets never leave where they belong, and a model is never told any of the operator's.

The secrets: the planted API key of A's rented model (in a Secret of A's namespace), the
object store's credentials and the operator's own Kubernetes credentials (its kubeconfig's
client key), and anything else in the operator's environment named like a key, token or
password. After the suite's apps were generated and served, none of them appears in:
- any vibeplane object (status included), any Event, the budget ledgers;
- the operator's log file, its /metrics, the model server's /metrics;
- any object the operator wrote to S3 (bundles unpacked, revision indexes, training records);
- the workloads in tenant namespaces (the access key ID excepted: a presigned URL names it).
The search is shown to work by finding each secret where it legitimately is (the Secret, the
Authorization header of A's own provider, the operator's process environment, its key file).

A's prompt asks the model to print the environment, the service-account token and the
kubeconfig, and A's model does whatever it is told (its app is everything it was told). The
whole request it received is exactly the documented chat request for that prompt (system
prompt and the user's prompt, nothing else), holds none of the secrets, and carries the
planted key only in the Authorization header to A's own provider. The app it wrote, stored in
S3 and served from the gVisor preview, holds none either; the builtin model, asked the same,
declines, and the app says so.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient

from tests.integration.conftest import S3, ModelServer, OperatorProcess
from tests.integration.support import GROUP, VERSION, find_condition
from tests.security.support import ASKED, INJECTION, Platform, get_app
from vibeplane.api import ALL_KINDS
from vibeplane.generation.format import build_messages
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp.delivery import DeliveryKey
from vibeplane_dev.cluster.local import LocalCluster

pytestmark = pytest.mark.integration
CREDENTIAL_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
PRESIGNED_SIGNATURE = "X-Amz-Signature="


def forms(secret: str) -> set[str]:
    """The ways a leaked secret could be written: as is, base64 (as in a Secret's data),
    URL-quoted, and JSON-escaped."""
    data = secret.encode()
    return {
        secret,
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode(),
        urllib.parse.quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    }


def found(secrets: Mapping[str, str], haystacks: Mapping[str, str | bytes]) -> list[str]:
    """'<secret> in <where>' for every secret found in any of its forms."""
    hits = []
    for where, haystack in haystacks.items():
        text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
        for name, secret in secrets.items():
            if any(form in text for form in forms(secret)):
                hits.append(f"{name} in {where}")
    return hits


def _pem_lines(path: Path) -> list[str]:
    """The base64 lines of a PEM file: any one of them leaked gives part of the key away."""
    return [line for line in path.read_text().splitlines() if line and "-----" not in line]


def operator_secrets(operator: OperatorProcess, cluster: LocalCluster) -> dict[str, str]:
    """What the operator holds that nobody else may see."""
    secrets = {
        f"operator env {name}": value
        for name, value in operator.env.items()
        if CREDENTIAL_NAME.search(name) and len(value) >= 8
    }
    config = yaml.safe_load(cluster.config.kubeconfig("operator").read_text())
    for user in config["users"]:
        credentials = user["user"]
        if "client-key" in credentials:
            lines = _pem_lines(Path(credentials["client-key"]))
            secrets["operator client key (first line)"] = lines[0]
            secrets["operator client key (last line)"] = lines[-1]
        if "client-key-data" in credentials:
            secrets["operator client key data"] = credentials["client-key-data"]
        if "token" in credentials:
            secrets["operator token"] = credentials["token"]
    delivery_key_file = operator.env.get("VIBEPLANE_DELIVERY_KEY_FILE")
    if delivery_key_file and Path(delivery_key_file).exists():
        # The delivery signing key's private exponent (hex): whoever holds it can swap code in.
        key = DeliveryKey.loads(Path(delivery_key_file).read_text())
        secrets["operator delivery key (d)"] = f"{key.d:x}"
    return secrets


@pytest.fixture(scope="module")
def secrets(platform: Platform, operator: OperatorProcess, cluster: LocalCluster) -> dict[str, str]:
    everything = {
        "A's planted API key": platform.planted_key,
        **operator_secrets(operator, cluster),
    }
    assert "operator env AWS_SECRET_ACCESS_KEY" in everything  # the object store's, for real
    assert any(name.startswith("operator client key") for name in everything)
    return everything


# ---- where secrets must never be --------------------------------------------------------


def _our_objects(api: ApiClient) -> dict[str, str]:
    custom = kubernetes.client.CustomObjectsApi(api)
    haystacks = {}
    for info in ALL_KINDS:
        for item in custom.list_cluster_custom_object(GROUP, VERSION, info.plural)["items"]:
            metadata = item["metadata"]
            where = f"{info.kind} {metadata.get('namespace', '')}/{metadata['name']}"
            haystacks[where] = json.dumps(item)
    return haystacks


def _events(api: ApiClient) -> dict[str, str]:
    # Raw JSON: the client's models refuse some Events the API server holds (no eventTime).
    core = kubernetes.client.CoreV1Api(api).list_event_for_all_namespaces
    modern = kubernetes.client.EventsV1Api(api).list_event_for_all_namespaces
    return {
        "core/v1 Events": core(_preload_content=False).data.decode(),
        "events.k8s.io Events": modern(_preload_content=False).data.decode(),
    }


def _ledgers(api: ApiClient) -> dict[str, str]:
    maps = kubernetes.client.CoreV1Api(api).list_namespaced_config_map(
        OperatorSettings().platform_namespace
    )
    ledgers = json.dumps(api.sanitize_for_serialization(maps.items))
    return {"platform ConfigMaps (ledgers)": ledgers}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def _unpacked(key: str, data: bytes) -> dict[str, bytes]:
    """A stored object, and for a bundle each file in it."""
    haystacks = {f"s3 {key}": data}
    if key.endswith(".tar.gz"):
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as bundle:
            for member in bundle.getmembers():
                handle = bundle.extractfile(member)
                if handle is not None:
                    haystacks[f"s3 {key}:{member.name}"] = handle.read()
    return haystacks


def _stored_objects(s3: S3) -> dict[str, bytes]:
    """Every object in the bucket, bundles unpacked."""
    haystacks: dict[str, bytes] = {}
    for key in s3.store.keys(""):
        haystacks.update(_unpacked(key, s3.store.get(key) or b""))
    return haystacks


def _tenant_workloads(api: ApiClient, platform: Platform) -> dict[str, str]:
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    haystacks = {}
    for tenant in (platform.a, platform.b):
        for what, items in (
            ("Pods", core.list_namespaced_pod(tenant.namespace).items),
            ("Deployments", apps.list_namespaced_deployment(tenant.namespace).items),
            ("ConfigMaps", core.list_namespaced_config_map(tenant.namespace).items),
            ("Services", core.list_namespaced_service(tenant.namespace).items),
        ):
            haystacks[f"{what} of {tenant.namespace}"] = json.dumps(
                api.sanitize_for_serialization(items)
            )
    return haystacks


def test_the_search_finds_secrets_where_they_belong(
    api: ApiClient,
    platform: Platform,
    operator: OperatorProcess,
    cluster: LocalCluster,
    secrets: dict[str, str],
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    secret = core.read_namespaced_secret("provider-key", platform.a.namespace)
    in_secret = found({"key": platform.planted_key}, {"the Secret": json.dumps(secret.data)})
    assert in_secret == ["key in the Secret"]
    assert operator.process is not None
    environ = Path(f"/proc/{operator.process.pid}/environ").read_bytes()
    assert "operator env AWS_SECRET_ACCESS_KEY in the operator's environment" in found(
        secrets, {"the operator's environment": environ}
    )
    user = yaml.safe_load(cluster.config.kubeconfig("operator").read_text())["users"][0]["user"]
    key_file = Path(user["client-key"]).read_text()
    assert "operator client key (first line) in its key file" in found(
        secrets, {"its key file": key_file}
    )


def test_no_secret_in_objects_events_logs_metrics_or_storage(
    api: ApiClient,
    s3: S3,
    platform: Platform,
    operator: OperatorProcess,
    model_server: ModelServer,
    secrets: dict[str, str],
) -> None:
    haystacks: dict[str, str | bytes] = {
        **_our_objects(api),
        **_events(api),
        **_ledgers(api),
        "the operator's log": operator.log.read_bytes(),
        "the operator's /metrics": operator.metrics(),
        "the model server's /metrics": _get(model_server.metrics_url),
        **_stored_objects(s3),
    }
    # Non-empty: the search ran over the suite's own objects, records and bundles.
    assert f"VibeApp {platform.a.namespace}/{platform.a.app_name}" in haystacks
    assert any(f".{platform.a.app['metadata']['uid']}." in where for where in haystacks)
    assert any(where.endswith(":context.txt") for where in haystacks)
    assert found(secrets, haystacks) == []
    # Presigned URLs are credentials for an hour: only the preview's Deployment holds one.
    leaked = [w for w, h in haystacks.items() if PRESIGNED_SIGNATURE.encode() in _bytes(h)]
    assert leaked == []


def _bytes(haystack: str | bytes) -> bytes:
    return haystack.encode() if isinstance(haystack, str) else haystack


def test_tenant_workloads_hold_no_secret_of_the_operator(
    api: ApiClient, platform: Platform, operator: OperatorProcess, secrets: dict[str, str]
) -> None:
    # A presigned URL names the access key ID (not a secret: the signature is the proof).
    not_in_urls = {k: v for k, v in secrets.items() if not k.endswith("AWS_ACCESS_KEY_ID")}
    workloads = _tenant_workloads(api, platform)
    assert found(not_in_urls, workloads) == []
    assert "operator delivery key (d)" in not_in_urls  # searched for, and absent
    # Positive control: the public half of that key is in the preview pods, and found.
    key = DeliveryKey.loads(Path(operator.env["VIBEPLANE_DELIVERY_KEY_FILE"]).read_text())
    assert found({"public delivery key": key.public}, workloads)


# ---- what the model is told ---------------------------------------------------------------


def test_the_model_is_told_the_prompt_and_nothing_of_the_operator(
    platform: Platform, secrets: dict[str, str]
) -> None:
    requests = platform.provider.requests
    assert requests, "A's provider was never called"
    not_sent = {k: v for k, v in secrets.items() if k != "A's planted API key"}
    for headers, body in requests:
        # Exactly the documented request: the system prompt and the user's prompt.
        assert body["messages"] == build_messages([INJECTION], None, "static")
        assert set(body) == {"model", "messages", "stream", "max_tokens"}
        assert body["model"] == "frontier-large"
        assert found(secrets, {"the request body": json.dumps(body)}) == []
        text = json.dumps(body)
        assert "-----BEGIN" not in text
        assert "eyJhbGciOi" not in text  # a JWT (a service-account token) header
        # The planted key goes to its own provider, in the Authorization header only.
        assert headers.get("Authorization") == f"Bearer {platform.planted_key}"
        others = {k: v for k, v in headers.items() if k != "Authorization"}
        assert found(secrets, {"the other headers": json.dumps(others)}) == []
        assert found(not_sent, {"the Authorization header": headers["Authorization"]}) == []


def test_what_the_obedient_model_wrote_is_served_and_holds_nothing(
    api: ApiClient, s3: S3, platform: Platform, secrets: dict[str, str]
) -> None:
    app = get_app(api, platform.a.namespace, platform.a.app_name)
    url = app["status"]["url"].rstrip("/") + "/context.txt"
    served = _get(url).decode()
    # The model's app is all it was told (the prompt included): a secret would be here.
    assert "service account token" in served
    assert json.loads(served) == build_messages([INJECTION], None, "static")
    key = str(app["status"]["revisions"][0]["artifactUri"]).split("/", 3)[3]
    bundle = {f"bundle {key}": s3.store.get(key) or b""}
    assert found(secrets, {"the served context.txt": served, **bundle}) == []


def test_the_builtin_model_declines_and_the_app_says_why(
    api: ApiClient, s3: S3, platform: Platform, secrets: dict[str, str]
) -> None:
    app = get_app(api, platform.b.namespace, ASKED)
    revision = app["status"]["revisions"][0]
    if revision.get("sha256"):  # it wrote an app after all: it holds nothing either
        key = str(revision["artifactUri"]).split("/", 3)[3]
        assert found(secrets, _unpacked(key, s3.store.get(key) or b"")) == []
        return
    generated = find_condition(app, "Generated")
    assert generated is not None
    assert (generated["status"], generated["reason"]) == ("False", "ModelDeclined")
    assert generated["message"]
    assert app["status"]["phase"] == "Failed"
