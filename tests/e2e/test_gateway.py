"""Private previews through the gateway, end to end on the local platform: Traefik (built from
its Go module) in the real node's namespace routes an app's host to the front service, which
asks the cluster who the person is and whether they may `get` the app, then proxies to the
preview running in gVisor on the real node. People are ServiceAccounts with real tokens, made
members of their Workspace by its spec (the operator binds their roles). The routes are the
operator's own: for this module the session's operator is replaced by one configured for the
gateway (its Gateway, listener, domain and front service), as `make up` runs it.

Published apps go straight from the gateway to their own pods: a request loop runs across
publishing revision 1, publishing revision 2 and rolling back to 1, and counts failures."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import kubernetes
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes.client import ApiClient

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    S3,
    ModelServer,
    OperatorProcess,
    _free_port,
    api,
    cluster,
    model_server,
    operator,
    operator_environment,
    preview_node,
    s3,
)
from tests.integration.support import GROUP, VERSION, create_object, wait_for
from tests.security.support import custom, make_workspace, wait_app
from vibeplane_dev.cluster import gateway
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import existing_real_node, real_node_selected
from vibeplane_frontdoor import cookies

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real_node_selected(), reason="the gateway runs on the real node"),
    # Traefik's cold build is long (see the README): `make gateway-build` (part of
    # `NODE=real make up`) builds it once; `make test` does not pay for it.
    pytest.mark.skipif(
        not gateway.traefik_path(ClusterConfig.from_env().cache).is_file(),
        reason="Traefik is not built: make gateway-build",
    ),
]


TLS_SECRET = "vibeplane-gateway-tls"
CUSTOM_HOST = "shop.example.test"


@dataclass
class PlatformTLS:
    """The platform's certificate on the Gateway's HTTPS listener, signed by its own CA."""

    port: int
    ca: Path
    spki: str
    """base64 SHA-256 of the certificate's public key (Chromium's pin for a private CA)."""


def _platform_tls(client: ApiClient, directory: Path) -> PlatformTLS:
    """A CA and a certificate for the custom hostname, the latter as the listener's Secret."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: Any
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        else:
            san = x509.SubjectAlternativeName([x509.DNSName(subject)])
            builder = builder.add_extension(san, False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("vibeplane test CA", ca_key, None, ca_key)
    leaf = certificate(CUSTOM_HOST, leaf_key, ca.subject, ca_key)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = leaf.public_bytes(serialization.Encoding.PEM)
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    core = kubernetes.client.CoreV1Api(client)
    with contextlib.suppress(kubernetes.client.exceptions.ApiException):
        core.create_namespace({"metadata": {"name": gateway.GATEWAY_NAMESPACE}})
    secret = {
        "metadata": {"name": TLS_SECRET, "namespace": gateway.GATEWAY_NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(chain).decode(),
            "tls.key": base64.b64encode(key).decode(),
        },
    }
    with contextlib.suppress(kubernetes.client.exceptions.ApiException):
        core.delete_namespaced_secret(TLS_SECRET, gateway.GATEWAY_NAMESPACE)
    core.create_namespaced_secret(gateway.GATEWAY_NAMESPACE, secret)
    public = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    spki = base64.b64encode(hashlib.sha256(public).digest()).decode()
    return PlatformTLS(_free_port(), ca_path, spki)


@dataclass
class Site:
    port: int
    host: str
    other_host: str
    namespace: str
    other_namespace: str
    tokens: dict[str, str]
    key: bytes
    tls: PlatformTLS

    def get(self, host: str | None = None, path: str = "/", **kwargs: Any) -> requests.Response:
        headers = {"Host": host or self.host, **kwargs.pop("headers", {})}
        return requests.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=15,
            **kwargs,
        )


def _route_accepted(client: ApiClient, namespace: str, name: str) -> bool:
    route = custom(client).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
    )
    for parent in (route.get("status") or {}).get("parents") or []:
        conditions = {c["type"]: c["status"] for c in parent.get("conditions") or []}
        if conditions.get("Accepted") == "True" and conditions.get("ResolvedRefs") == "True":
            return True
    return False


def _routed(client: ApiClient, namespace: str, app: str, host: str) -> bool | None:
    body = custom(client).get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", app)
    status = body.get("status") or {}
    routed = next((c for c in status.get("conditions") or [] if c["type"] == "Routed"), {})
    return (status.get("url") == f"http://{host}/" and routed.get("status") == "True") or None


def _front_service_answers(port: int, host: str) -> bool | None:
    try:
        response = requests.get(
            f"http://127.0.0.1:{port}/__vibeplane/healthz", headers={"Host": host}, timeout=5
        )
    except requests.RequestException:
        return None
    return (response.status_code == 200 and response.text == "ok") or None


def _gateway_settings() -> dict[str, str]:
    """The operator settings charts/vibeplane/templates/deployment.yaml renders from
    gateway.chart_values() (the local gateway's names, its domain, the front service)."""
    values = cast(dict[str, dict[str, Any]], gateway.chart_values())
    front = values["gateway"]["frontService"]
    return {
        "VIBEPLANE_GATEWAY_NAMESPACE": str(values["operator"]["gatewayNamespace"]),
        "VIBEPLANE_GATEWAY_NAME": str(values["gateway"]["name"]),
        "VIBEPLANE_GATEWAY_LISTENER": str(values["gateway"]["listener"]),
        "VIBEPLANE_FRONT_SERVICE_NAME": str(front["name"]),
        "VIBEPLANE_FRONT_SERVICE_PORT": str(front["port"]),
        "VIBEPLANE_PREVIEW_DOMAIN": str(values["preview"]["domain"]),
    }


@pytest.fixture(scope="module")
def routed_operator(
    cluster: LocalCluster,  # noqa: F811
    operator: OperatorProcess,  # noqa: F811
    s3: S3,  # noqa: F811
    model_server: ModelServer,  # noqa: F811
    artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The session's operator stopped for this module; in its place one that writes routes to
    the local gateway (the settings the chart renders from gateway.chart_values() for `make up`;
    this operator is a process, so they are its environment)."""
    others = list(OperatorProcess.running)
    for process in others:
        process.stop()
    log = tmp_path_factory.mktemp("routed-operator") / "operator.log"
    environment = {**operator_environment(s3, model_server), **_gateway_settings()}
    # Routes attach to every listener that admits their hosts: the platform domain on `http`,
    # published custom hostnames on `https` (the certificate on the listener covers them).
    environment["VIBEPLANE_GATEWAY_LISTENER"] = ""
    routed = OperatorProcess(cluster, log, environment)
    routed.start()
    try:
        yield routed
    finally:
        routed.stop()
        (artifacts / "gateway-operator.log").write_bytes(log.read_bytes())
        for process in others:
            process.start()


@pytest.fixture(scope="module")
def site(
    api: ApiClient,  # noqa: F811
    cluster: LocalCluster,  # noqa: F811
    routed_operator: OperatorProcess,
    preview_node: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    core = kubernetes.client.CoreV1Api(api)
    people = f"gw-people-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": people}})
    for name in ("alice", "bob"):
        core.create_namespaced_service_account(people, {"metadata": {"name": name}})

    def member(name: str) -> dict[str, Any]:
        user = f"system:serviceaccount:{people}:{name}"
        return {
            "members": [{"kind": "User", "name": user, "role": "viewer"}],
            "budget": {"tokens": 5_000_000, "money": "100"},
        }

    ws_a = make_workspace(api, "gw-a", member("alice"))
    ws_b = make_workspace(api, "gw-b", member("bob"))
    ns_a, ns_b = ws_a["status"]["namespace"], ws_b["status"]["namespace"]
    tls = _platform_tls(api, tmp_path_factory.mktemp("tls"))
    local = gateway.LocalGateway(
        cluster.config,
        existing_real_node(cluster.config),
        tmp_path_factory.mktemp("gateway"),
        port=_free_port(),
        front_port=_free_port(),
        tls_port=tls.port,
        tls_secret=TLS_SECRET,
    )
    try:
        local.up(
            cluster.kubectl,
            [sys.executable, str(Path(sys.executable).parent / "vibeplane-frontdoor")],
        )
        wait_for(
            lambda: local.programmed(cluster.kubectl) or None,
            timeout=120,
            what="Gateway Programmed",
        )
        create_object(api, "VibeApp", "todo", {"prompts": ["a todo list with due dates"]}, ns_a)
        create_object(api, "VibeApp", "notes", {"prompts": ["a todo list with due dates"]}, ns_b)
        wait_app(api, ns_a, "todo", ("Running",))
        wait_app(api, ns_b, "notes", ("Running",))
        for namespace, app in ((ns_a, "todo"), (ns_b, "notes")):
            # The operator's route (and the workspace's ReferenceGrant), Routed in its status.
            host = gateway.app_host(app, namespace)
            wait_for(
                lambda n=namespace, a=app, h=host: _routed(api, n, a, h),  # type: ignore[misc]
                timeout=90,
                what=f"{namespace}/{app} Routed by the operator's HTTPRoute",
            )
            assert _route_accepted(api, namespace, f"{app}-preview")
            # Accepted in status comes before Traefik serves the new configuration.
            wait_for(
                lambda h=host: _front_service_answers(local.port, h),  # type: ignore[misc]
                timeout=60,
                what=f"the front service answering for {app} through the gateway",
            )
        tokens = {
            name: core.create_namespaced_service_account_token(
                name, people, {"spec": {"expirationSeconds": 3600}}
            ).status.token
            for name in ("alice", "bob")
        }
        yield Site(
            local.port,
            gateway.app_host("todo", ns_a),
            gateway.app_host("notes", ns_b),
            ns_a,
            ns_b,
            tokens,
            gateway.frontdoor_key(local.home).read_bytes().strip(),
            tls,
        )
    finally:
        local.down()
        for workspace in (ws_a, ws_b):
            custom(api).delete_cluster_custom_object(
                GROUP, VERSION, "workspaces", workspace["metadata"]["name"]
            )
        core.delete_namespace(people)


def _cold_start_seconds(client: ApiClient, namespace: str, app: str) -> float:
    """A preview pod's own start on this node: created -> Ready (the API's second resolution)."""
    pods = kubernetes.client.CoreV1Api(client).list_namespaced_pod(
        namespace, label_selector=f"vibeplane.io/app={app}"
    )
    pod = pods.items[0]
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    return float((ready.last_transition_time - pod.metadata.creation_timestamp).total_seconds())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_workspace_member_gets_the_app_through_the_gateway(site: Site) -> None:
    response = site.get(headers=_bearer(site.tokens["alice"]))
    assert response.status_code == 200
    assert "<html" in response.text.lower()


def test_a_member_of_another_workspace_gets_403(site: Site) -> None:
    assert site.get(headers=_bearer(site.tokens["bob"])).status_code == 403
    assert site.get(site.other_host, headers=_bearer(site.tokens["bob"])).status_code == 200


def test_anonymous_is_sent_to_sign_in_and_a_signed_in_member_gets_a_cookie(site: Site) -> None:
    anonymous = site.get()
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/__vibeplane/signin?next=")
    signin = site.get(path="/__vibeplane/signin?next=/", headers=_bearer(site.tokens["alice"]))
    assert signin.status_code == 303
    value = signin.cookies[cookies.COOKIE_NAME]
    assert site.get(cookies={cookies.COOKIE_NAME: value}).status_code == 200
    # the same cookie on the other app's host opens nothing there
    assert site.get(site.other_host, cookies={cookies.COOKIE_NAME: value}).status_code == 302


@pytest.mark.parametrize("kind", ["forged", "expired", "other-app"])
def test_forged_expired_and_other_app_cookies_are_refused(site: Site, kind: str) -> None:
    user = "system:serviceaccount:x:alice"
    now = int(time.time())
    session, key = {
        "forged": (cookies.Session(site.host, user, now + 600), b"f" * 32),
        "expired": (cookies.Session(site.host, user, now - 1), site.key),
        "other-app": (cookies.Session(site.other_host, user, now + 600), site.key),
    }[kind]
    response = site.get(cookies={cookies.COOKIE_NAME: cookies.sign(session, key)})
    assert response.status_code == 302
    assert response.headers["X-Vibeplane-Auth"].startswith("cookie refused")


def test_a_hibernated_app_wakes_on_one_visit(
    api: ApiClient,  # noqa: F811
    site: Site,
    artifacts: Path,
) -> None:
    objects = custom(api)
    # 30 s without a visit hibernates it (the operator's own rule, unchanged).
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        site.namespace,
        "vibeapps",
        "todo",
        {"spec": {"preview": {"idleTimeout": "30s"}}},
    )
    wait_app(api, site.namespace, "todo", ("Hibernated",), timeout=180)
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    start = time.monotonic()
    first = site.get(headers=_bearer(site.tokens["alice"]))
    assert first.status_code == 503
    assert "http-equiv='refresh'" in first.text
    visits = 1
    while True:
        response = site.get(headers=_bearer(site.tokens["alice"]))
        visits += 1
        if response.status_code == 200:
            break
        assert response.status_code == 503, response.text[:300]
        assert time.monotonic() - start < 180, "the app did not wake in 3 minutes"
        time.sleep(0.5)
    seconds = time.monotonic() - start
    assert "<html" in response.text.lower()
    cold = _cold_start_seconds(api, site.other_namespace, "notes")
    (artifacts / "wake-on-visit.txt").write_text(
        f"hibernated app, first visit -> app served: {seconds:.1f} s ({visits} requests)\n"
        f"cold preview start of a sibling app (pod created -> Ready): {cold:.0f} s\n"
        f"ratio: {seconds / max(cold, 1):.2f}\n"
    )
    app = objects.get_namespaced_custom_object(GROUP, VERSION, site.namespace, "vibeapps", "todo")
    assert app["metadata"]["annotations"]["vibeplane.io/wake"] >= before
    objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        site.namespace,
        "vibeapps",
        "todo",
        {"spec": {"preview": {"idleTimeout": "30m"}}},
    )


def _published(client: ApiClient, namespace: str, app: str, revision: int) -> bool | None:
    body = custom(client).get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", app)
    status = body.get("status") or {}
    published = next((c for c in status.get("conditions") or [] if c["type"] == "Published"), {})
    done = published.get("status") == "True" and status.get("publishedRevision") == revision
    return done or None


def _published_url(client: ApiClient, namespace: str, app: str) -> str | None:
    body = custom(client).get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", app)
    return cast(str | None, (body.get("status") or {}).get("publishedURL"))


class RequestLoop:
    """GETs production through the gateway back to back on a thread; every answer counted."""

    def __init__(self, port: int, host: str) -> None:
        self.url, self.host = f"http://127.0.0.1:{port}/", host
        self.answers: dict[str, int] = {}
        self.bodies: dict[str, str] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.get(self.url, headers={"Host": self.host}, timeout=10)
                except requests.RequestException as error:
                    self.failures.append(f"{type(error).__name__}: {error}"[:200])
                    continue
                digest = hashlib.sha256(response.content).hexdigest()[:12]
                key = f"{response.status_code} {digest}"
                self.answers[key] = self.answers.get(key, 0) + 1
                self.bodies.setdefault(digest, response.text[:2000])
                if response.status_code != 200:
                    self.failures.append(f"HTTP {response.status_code}: {response.text[:120]}")

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def seen(self, body_digest: str) -> int:
        return sum(n for key, n in self.answers.items() if key == f"200 {body_digest}")


def _digest(response: requests.Response) -> str:
    return hashlib.sha256(response.content).hexdigest()[:12]


def test_publish_switch_and_rollback_drop_no_request(
    api: ApiClient,  # noqa: F811
    site: Site,
    artifacts: Path,
) -> None:
    """Revision 1 published at a public host (no sign-in: production is public), then
    revision 2, then back to 1 by the spec, while a loop of requests runs: zero failures, and
    each switch ends serving the chosen revision's app."""
    objects = custom(api)
    namespace, app = site.namespace, "todo"

    def patch(spec: dict[str, Any]) -> None:
        objects.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "vibeapps", app, {"spec": spec}
        )

    # Revision 2 for the preview (a new prompt), validated before it may be published.
    body = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", app)
    prompts = [*body["spec"]["prompts"], "add a search box above the list"]
    patch({"prompts": prompts})

    def validated() -> bool | None:
        status = (
            custom(api)
            .get_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", app)
            .get("status")
            or {}
        )
        passed = {
            r["number"] for r in status.get("revisions") or [] if r.get("validation") == "Passed"
        }
        return {1, 2} <= passed or None

    wait_for(validated, timeout=240, what="revision 2 validated")
    host = f"shop-{uuid.uuid4().hex[:6]}.{gateway.DOMAIN}"
    direct = f"http://127.0.0.1:{site.port}/"
    timings: dict[str, float] = {}
    bodies: dict[int, str] = {}
    start = time.monotonic()
    patch({"publish": {"revision": 1, "hostnames": [host], "replicas": 1}})
    wait_for(lambda: _published(api, namespace, app, 1), timeout=240, what="revision 1 published")

    def serving() -> str | None:
        try:
            response = requests.get(direct, headers={"Host": host}, timeout=10)
        except requests.RequestException:
            return None
        return _digest(response) if response.status_code == 200 else None

    bodies[1] = wait_for(serving, timeout=60, what="production through the gateway")
    timings["publish revision 1 -> served"] = time.monotonic() - start
    # The platform domain's listener is plain HTTP here, and the URL says so.
    assert _published_url(api, namespace, app) == f"http://{host}/"
    with RequestLoop(site.port, host) as loop:
        time.sleep(3)
        for revision, label in ((2, "switch to revision 2"), (1, "rollback to revision 1")):
            start = time.monotonic()
            patch({"publish": {"revision": revision, "hostnames": [host], "replicas": 1}})
            wait_for(
                lambda r=revision: _published(api, namespace, app, r),  # type: ignore[misc]
                timeout=240,
                what=f"revision {revision} published",
            )
            if revision == 2:
                bodies[2] = wait_for(
                    lambda: ((d := serving()) != bodies[1] and d) or None,
                    timeout=60,
                    what="revision 2 served",
                )
            else:
                wait_for(lambda: serving() == bodies[1] or None, timeout=60, what="rollback")
            timings[label] = time.monotonic() - start
            time.sleep(3)
    lines = [f"{label}: {seconds:.1f} s" for label, seconds in timings.items()]
    lines += [f"answers (status, body digest): {loop.answers}", f"failures: {len(loop.failures)}"]
    lines += [f"  {failure}" for failure in loop.failures[:20]]
    (artifacts / "publish-request-loop.txt").write_text("\n".join(lines) + "\n")
    assert loop.failures == []
    # Both revisions were served to the loop, and only they: no mixed or partial page.
    assert loop.seen(bodies[1]) > 0
    assert loop.seen(bodies[2]) > 0
    assert set(loop.answers) == {f"200 {bodies[1]}", f"200 {bodies[2]}"}
    # The preview still follows the latest revision, privately.
    assert site.get(headers=_bearer(site.tokens["alice"])).status_code == 200
    # Unpublished: the public host goes, and its claim with it.
    patch({"publish": None})
    wait_for(lambda: serving() is None or None, timeout=60, what="production gone from the gateway")


def test_a_custom_hostname_is_published_over_tls(
    api: ApiClient,  # noqa: F811
    site: Site,
    artifacts: Path,
) -> None:
    """Revision 1 at a custom hostname, served through the Gateway's HTTPS listener with the
    platform's certificate: curl with --resolve and the platform's CA, and a headless
    Chromium screenshot left in artifacts/."""
    objects = custom(api)
    namespace, app = site.namespace, "todo"
    publish = {"revision": 1, "hostnames": [CUSTOM_HOST], "replicas": 1}
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "vibeapps", app, {"spec": {"publish": publish}}
    )
    wait_for(lambda: _published(api, namespace, app, 1), timeout=240, what="published")
    url = f"https://{CUSTOM_HOST}:{site.tls.port}/"
    curl = [
        "curl", "-sS", "--fail", "--max-time", "10",
        "--resolve", f"{CUSTOM_HOST}:{site.tls.port}:127.0.0.1",
        "--cacert", str(site.tls.ca), url,
    ]  # fmt: skip

    def served() -> str | None:
        result = subprocess.run(curl, capture_output=True, text=True, check=False)
        return result.stdout if result.returncode == 0 else None

    page = wait_for(served, timeout=60, what=f"{url} over TLS")
    assert "<html" in page.lower()
    # The URL the app reports is the scheme it is served with: TLS on the listener's
    # certificate, and no plain-HTTP listener admits the custom hostname.
    assert _published_url(api, namespace, app) == f"https://{CUSTOM_HOST}/"
    plain = requests.get(
        f"http://127.0.0.1:{site.port}/", headers={"Host": CUSTOM_HOST}, timeout=10
    )
    assert plain.status_code == 404, plain.text[:200]
    # Without the platform's CA the certificate is refused (it is really the listener's).
    untrusted = [word for word in curl if word not in ("--cacert", str(site.tls.ca))]
    assert subprocess.run(untrusted, capture_output=True, check=False).returncode != 0

    chromium = shutil.which("chromium")
    if chromium is not None:
        profile = artifacts / "chromium-tls-profile"
        shutil.rmtree(profile, ignore_errors=True)
        screenshot = artifacts / "published-custom-domain-tls.png"
        browser = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,900",
            f"--host-resolver-rules=MAP {CUSTOM_HOST} 127.0.0.1",
            # Trust exactly the platform's certificate (its public key), nothing else.
            f"--ignore-certificate-errors-spki-list={site.tls.spki}",
        ]  # fmt: skip
        dom = subprocess.run(
            [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
        )
        assert "<html" in dom.stdout.lower(), dom.stderr[-2000:]
        subprocess.run(
            [*browser, f"--screenshot={screenshot}", url],
            capture_output=True,
            timeout=120,
            check=True,
        )
        assert screenshot.stat().st_size > 1000
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "vibeapps", app, {"spec": {"publish": None}}
    )
