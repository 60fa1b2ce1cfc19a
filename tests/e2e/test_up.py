"""The README's first command, end to end: `vibeplane up` on its own cluster ends with a URL,
and headless Chromium loads the generated app from it. On the real node the platform is the
Helm chart: its release, its pods, an operator that was never refused anything, and a
`helm upgrade` under three running apps that changes none of them. Where Traefik is built
(`make gateway-build`, part of `make up`) `up` runs as `make up` does, with the gateway: the
URL it prints leads through the gateway to the chart's front service pod (anonymous: sent to
sign in; a workspace member: the app), and the apps are reached that way throughout."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import _free_port
from vibeplane_dev.cluster import gateway
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.node import NodeNetwork, existing_real_node, real_node_selected

ROOT = Path(__file__).resolve().parents[2]
# `up` as `make up` runs it on the real node: with the gateway, where Traefik is built.
THROUGH_GATEWAY = (
    real_node_selected() and gateway.traefik_path(ClusterConfig.from_env().cache).is_file()
)


@pytest.fixture(scope="module")
def platform_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A platform of its own (state, ports), so it never meets the suite's cluster."""
    home = tmp_path_factory.mktemp("platform")
    env = dict(
        os.environ,
        VIBEPLANE_HOME=str(home),
        VIBEPLANE_APISERVER_PORT=str(_free_port()),
        VIBEPLANE_ETCD_PORT=str(_free_port()),
        VIBEPLANE_ETCD_PEER_PORT=str(_free_port()),
        VIBEPLANE_S3_PORT=str(_free_port()),
        VIBEPLANE_MODELSERVER_PORT=str(_free_port()),
        VIBEPLANE_METRICS_PORT=str(_free_port()),
        VIBEPLANE_LIVENESS_PORT=str(_free_port()),
    )
    if THROUGH_GATEWAY:
        env.update(VIBEPLANE_GATEWAY="traefik", VIBEPLANE_GATEWAY_PORT=str(_free_port()))
    yield env
    subprocess.run(
        [sys.executable, "-m", "vibeplane", "down"],
        env=env,
        check=False,
        capture_output=True,
        timeout=120,
    )


def _vibeplane(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibeplane", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# On the real node `up` also installs the chart, and the test runs a `helm upgrade` under three
# apps: about 8 minutes on 2 loaded cores.
@pytest.mark.timeout(1200)
def test_up_serves_the_app_in_a_browser_under_gvisor(
    platform_environment: dict[str, str], artifacts: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    # Without the examples the platform still has its default model: a new app has a model.
    bare = _vibeplane(platform_environment, "up", "--no-examples")
    assert bare.returncode == 0, bare.stderr[-3000:]
    model = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "wait",
        "-n",
        "vibeplane-system",
        "--for=condition=Ready",
        "modeldeployment/builtin",
        "--timeout=60s",
    )
    assert model.returncode == 0, model.stderr
    assert _vibeplane(platform_environment, "cluster", "kubectl", "get", "va", "-A").stdout == ""

    result = _vibeplane(platform_environment, "up")
    assert result.returncode == 0, result.stderr[-3000:]
    url = result.stdout.strip().splitlines()[-1]
    door: Door | None = None
    page = url  # what Chromium loads
    if THROUGH_GATEWAY:
        port = int(platform_environment["VIBEPLANE_GATEWAY_PORT"])
        assert url == f"http://todo-ws-demo.{gateway.DOMAIN}:{port}/"
        door = _the_front_service_is_the_charts_pod(platform_environment, url)
        # Chromium has no bearer token: it loads the preview at its node port, beside the door.
        page = _node_port_url(platform_environment, "todo")
    elif real_node_selected():
        # A NodePort on the node's address, inside the network namespace `up` made.
        node_ip = NodeNetwork.for_home(Path(platform_environment["VIBEPLANE_HOME"])).node_ip
        assert url.startswith(f"http://{node_ip}:")
    else:
        assert url.startswith("http://127.0.0.1:")

    profile = artifacts / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    browser = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ]
    dom = subprocess.run(
        [*browser, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=False
    )
    assert "<title>Todo List</title>" in dom.stdout, dom.stderr[-2000:]
    screenshot = artifacts / "vibeplane-up.png"
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", page], capture_output=True, timeout=120, check=True
    )
    assert screenshot.stat().st_size > 1000

    if real_node_selected():
        _the_chart_runs_the_platform(platform_environment)
        _helm_upgrade_changes_no_app(platform_environment, url, door)

    # `up` again over a platform someone used (the README's own patch): it leaves their app
    # alone, says so, and succeeds.
    patch = '[{"op":"add","path":"/spec/prompts/-","value":"add a priority field"}]'
    patched = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "patch",
        "va",
        "todo",
        "-n",
        "ws-demo",
        "--type=json",
        "-p",
        patch,
    )
    assert patched.returncode == 0, patched.stderr
    again = _vibeplane(platform_environment, "up")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "vibeapp ws-demo/todo exists: left alone" in again.stderr
    prompts = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "get",
        "va",
        "todo",
        "-n",
        "ws-demo",
        "-o",
        "jsonpath={.spec.prompts[*]}",
    )
    assert prompts.stdout.endswith("add a priority field")

    # The preview process runs under gVisor: runsc lists it, and it saw gVisor's kernel.
    logs = _vibeplane(
        platform_environment,
        "cluster",
        "kubectl",
        "logs",
        "-n",
        "ws-demo",
        "deployment/todo-preview",
    )
    assert logs.returncode == 0, logs.stderr
    kernel = next(line for line in logs.stdout.splitlines() if "kernel" in line)
    host = os.uname()
    assert host.version not in kernel, f"the preview saw the host's kernel: {kernel}"
    home = Path(platform_environment["VIBEPLANE_HOME"])
    if real_node_selected():
        # containerd's gVisor shim keeps its sandboxes under the node's runsc root.
        state = home / "node" / "runsc" / "root" / "k8s.io"
        runsc = str(existing_real_node(ClusterConfig.from_env()).binaries.runsc)  # shared cache
    else:
        state, runsc = home / "platform" / "node" / "runsc", "runsc"
    listed = subprocess.run(
        [runsc, f"--root={state}", "list"], capture_output=True, text=True, check=True
    )
    assert "running" in listed.stdout

    # down leaves no platform process behind: none still carries this platform's environment.
    assert _vibeplane(platform_environment, "down").returncode == 0
    marker = f"VIBEPLANE_HOME={platform_environment['VIBEPLANE_HOME']}".encode()
    leftovers = [pid for pid in _processes_with(marker) if pid != os.getpid()]
    assert leftovers == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in leftovers]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # it has ended


def _processes_with(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


RELEASE, PLATFORM_NAMESPACE = "vibeplane", "vibeplane-system"
# How a refusal shows in the operator's log: an HTTP status 403, Forbidden (not the digits of a
# timestamp or a uid).
FORBIDDEN = re.compile(r"\b403\b|forbidden", re.IGNORECASE)
# Prompts the builtin generator builds (it declines what it does not know).
MORE_APPS = {
    "contact": "a contact form with name, email and message",
    "beans": "a landing page for a coffee shop called Bean There",
}


def _kubectl_json(env: dict[str, str], *args: str) -> Any:
    result = _vibeplane(env, "cluster", "kubectl", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _operator_log(env: dict[str, str]) -> str:
    result = _vibeplane(
        env, "cluster", "kubectl", "logs", "-n", PLATFORM_NAMESPACE, "deployment/vibeplane-operator"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _assert_never_forbidden(env: dict[str, str]) -> None:
    log = _operator_log(env)
    assert log.strip(), "the operator logged nothing"
    refused = [line for line in log.splitlines() if FORBIDDEN.search(line)]
    assert refused == [], "\n".join(refused[:20])


def _the_chart_runs_the_platform(env: dict[str, str]) -> None:
    """The release is listed; the operator and the model server are its pods, Running on the
    real node beside the object store's (MinIO) pod; the operator, under the chart's
    ServiceAccount and ClusterRole, met no 403."""
    listed = _vibeplane(env, "cluster", "helm", "list", "-A", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    releases = {(r["name"], r["namespace"], r["status"]) for r in json.loads(listed.stdout)}
    assert (RELEASE, PLATFORM_NAMESPACE, "deployed") in releases
    pods = _kubectl_json(env, "get", "pods", "-n", PLATFORM_NAMESPACE)["items"]
    running = {
        pod["metadata"]["labels"].get("app.kubernetes.io/component"): pod
        for pod in pods
        if pod["status"].get("phase") == "Running"
    }
    for component in ("operator", "modelserver", "object-store"):
        assert component in running, [p["metadata"]["name"] for p in pods]
        assert running[component]["spec"]["nodeName"] == "vibeplane-node"
    assert running["operator"]["spec"]["serviceAccountName"] == "vibeplane-operator"
    _assert_never_forbidden(env)


@dataclass(frozen=True)
class Door:
    """How a person reaches apps through the local gateway: its relay's port on 127.0.0.1
    (the app's host in the Host header) and a workspace member's token."""

    port: int
    token: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


def _through(door: Door | None, url: str, token: str | None = "") -> urllib.request.Request:
    """A request for `url`: as is without a door; else to the gateway's relay with the URL's
    host, and the door's token (`token` None: anonymous)."""
    if door is None:
        return urllib.request.Request(url)
    parts = urlsplit(url)
    request = urllib.request.Request(
        f"http://127.0.0.1:{door.port}{parts.path or '/'}", headers={"Host": parts.hostname or ""}
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token or door.token}")
    return request


def _get(url: str, door: Door | None = None) -> tuple[str, str]:
    """The revision a preview serves (its header) and the page's digest."""
    with urllib.request.urlopen(_through(door, url), timeout=5) as response:
        body: bytes = response.read()
        assert response.status == 200
        return response.headers.get("X-Vibeplane-Revision", ""), hashlib.sha256(body).hexdigest()


def _node_port_url(env: dict[str, str], app: str) -> str:
    service = _kubectl_json(env, "get", "service", f"{app}-preview", "-n", "ws-demo")
    node_ip = NodeNetwork.for_home(Path(env["VIBEPLANE_HOME"])).node_ip
    return f"http://{node_ip}:{service['spec']['ports'][0]['nodePort']}/"


def _the_front_service_is_the_charts_pod(env: dict[str, str], url: str) -> Door:
    """The front service is the release's pod, Running on the real node, and the only
    backend of its Service (no host process, no EndpointSlice naming the host); the URL `up`
    printed answers through it: anonymous is sent to sign in, a member of the workspace gets
    the app (TokenReview and SubjectAccessReview from the pod, the preview by its Service)."""
    pods = _kubectl_json(
        env, "get", "pods", "-n", PLATFORM_NAMESPACE, "-l", "app.kubernetes.io/component=frontdoor"
    )["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) == 1, [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
    pod = running[0]
    assert pod["spec"]["nodeName"] == "vibeplane-node"
    assert pod["spec"]["serviceAccountName"] == "vibeplane-frontdoor"
    slices = _kubectl_json(
        env,
        "get",
        "endpointslices",
        "-n",
        PLATFORM_NAMESPACE,
        "-l",
        "kubernetes.io/service-name=vibeplane-frontdoor",
    )["items"]
    addresses = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]}
    assert addresses == {pod["status"]["podIP"]}
    marker = f"VIBEPLANE_HOME={env['VIBEPLANE_HOME']}".encode()
    hosted = [pid for pid in _processes_with(marker) if b"vibeplane-frontdoor" in _cmdline(pid)]
    assert hosted == [], "a front service runs on the host"

    door = Door(urlsplit(url).port or 80, "")
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        opener.open(_through(door, url, token=None), timeout=10)
    assert anonymous.value.code == 302
    assert anonymous.value.headers["Location"] == "/__vibeplane/signin?next=%2F"

    # A member of the example workspace (a ServiceAccount added as a viewer) gets the app.
    member = "system:serviceaccount:ws-demo:visitor"
    assert (
        _vibeplane(env, "cluster", "kubectl", "create", "sa", "visitor", "-n", "ws-demo").returncode
        == 0
    )
    entry = {"kind": "User", "name": member, "role": "viewer"}
    added = _vibeplane(
        env, "cluster", "kubectl", "patch", "workspace", "demo", "--type=json",
        "-p", json.dumps([{"op": "add", "path": "/spec/members/-", "value": entry}]),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        allowed = _vibeplane(
            env, "cluster", "kubectl", "auth", "can-i", "get", "vibeapps/todo", "-n", "ws-demo",
            f"--as={member}",
        )  # fmt: skip
        if allowed.stdout.strip() == "yes":
            break
        time.sleep(1)
    token = _vibeplane(env, "cluster", "kubectl", "create", "token", "visitor", "-n", "ws-demo")
    assert token.returncode == 0, token.stderr
    door = Door(door.port, token.stdout.strip())
    with urllib.request.urlopen(_through(door, url), timeout=10) as response:
        assert response.status == 200
        assert "<title>Todo List</title>" in response.read().decode()
    return door


def _snapshot(
    env: dict[str, str], urls: dict[str, str], door: Door | None = None
) -> dict[str, object]:
    """What an upgrade must not change: each app's revisions and charges, the page it
    serves, and the workspace's usage."""
    apps = _kubectl_json(env, "get", "va", "-n", "ws-demo")["items"]
    state: dict[str, object] = {
        app["metadata"]["name"]: (
            app["status"].get("revision"),
            len(app["status"].get("revisions", [])),
            app["status"].get("totalCost"),
            [r.get("cost") for r in app["status"].get("revisions", [])],
        )
        for app in apps
    }
    served = {name: _get(url, door) for name, url in urls.items()}
    assert all(revision for revision, _ in served.values()), served
    state["served"] = served
    workspace = _kubectl_json(env, "get", "workspace", "demo")
    state["usage"] = workspace["status"].get("usage")
    return state


def _running_url(env: dict[str, str], name: str, timeout: float = 240) -> str:
    """The app's URL once it is Running; a Failed app fails at once, with its conditions."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _kubectl_json(env, "get", "va", name, "-n", "ws-demo").get("status") or {}
        assert status.get("phase") != "Failed", status.get("conditions")
        if status.get("phase") == "Running" and status.get("url"):
            return str(status["url"])
        time.sleep(2)
    raise AssertionError(f"{name} is not Running after {timeout:.0f}s: {status}")


def _helm_upgrade_changes_no_app(env: dict[str, str], todo_url: str, door: Door | None) -> None:
    """`helm upgrade` with a changed value and a new operator image tag, three apps running:
    no app gains a revision or a charge, each serves the same page, and a request loop
    against all three (through the gateway and the front service, where `up` ran them) meets
    no error while the operator's pod is replaced."""
    manifests = Path(env["VIBEPLANE_HOME"]) / "more-apps.yaml"
    manifests.write_text(
        "\n---\n".join(
            json.dumps(
                {
                    "apiVersion": "vibeplane.io/v1alpha1",
                    "kind": "VibeApp",
                    "metadata": {"name": name, "namespace": "ws-demo"},
                    "spec": {"prompts": [prompt], "stack": "static"},
                }
            )
            for name, prompt in MORE_APPS.items()
        )
    )
    created = _vibeplane(env, "cluster", "kubectl", "apply", "-f", str(manifests))
    assert created.returncode == 0, created.stderr
    urls = {"todo": todo_url}
    for name in MORE_APPS:
        status_url = _running_url(env, name)
        urls[name] = gateway.through_relay(status_url, door.port) if door else status_url
    time.sleep(5)  # the last settlement and status writes land before the snapshot
    before = _snapshot(env, urls, door)

    requests, errors = [0], []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for name, url in urls.items():
                requests[0] += 1
                try:
                    _get(url, door)
                except (OSError, AssertionError) as error:
                    errors.append(f"{name}: {error}")
            time.sleep(0.05)

    loop = threading.Thread(target=load, daemon=True)
    loop.start()
    deployment = _kubectl_json(
        env, "get", "deployment", "vibeplane-operator", "-n", PLATFORM_NAMESPACE
    )
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    retagged = image + "-upgrade"
    node = existing_real_node(ClusterConfig.from_env())
    subprocess.run(
        [
            str(node.binaries.ctr),
            f"--address={Path(env['VIBEPLANE_HOME']) / 'node' / 'containerd' / 'containerd.sock'}",
            "-n",
            "k8s.io",
            "images",
            "tag",
            image,
            retagged,
        ],
        check=True,
        capture_output=True,
    )
    upgraded = _vibeplane(
        env,
        "cluster",
        "helm",
        "upgrade",
        RELEASE,
        str(ROOT / "charts" / "vibeplane"),
        "-n",
        PLATFORM_NAMESPACE,
        "--reuse-values",
        "--set",
        f"image.tag={retagged.rpartition(':')[2]}",
        "--set",
        "operator.resyncSeconds=240",
        "--wait",
        "--timeout=5m",
    )
    assert upgraded.returncode == 0, upgraded.stderr

    def operator_images() -> list[str]:
        pods = _kubectl_json(
            env,
            "get",
            "pods",
            "-n",
            PLATFORM_NAMESPACE,
            "-l",
            "app.kubernetes.io/component=operator",
            "--field-selector=status.phase=Running",
        )["items"]
        # The replaced pod reports Running until its graceful stop ends: not counted.
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return [p["spec"]["containers"][0]["image"] for p in live]

    deadline = time.monotonic() + 60
    while operator_images() != [retagged] and time.monotonic() < deadline:
        time.sleep(1)
    assert operator_images() == [retagged]
    time.sleep(20)  # the new operator has taken the Lease and reconciled everything
    stop.set()
    loop.join(timeout=30)
    assert errors == [], errors[:10]
    assert requests[0] > 30
    assert _snapshot(env, urls, door) == before
    _assert_never_forbidden(env)
