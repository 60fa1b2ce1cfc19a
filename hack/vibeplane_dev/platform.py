"""The embedded platform: everything `vibeplane up` runs on one machine, and its examples.

On the real node (VIBEPLANE_NODE=real) the platform is the Helm chart, installed as users
install it. Steps, in order (each is skipped or a no-op when already done, so `up` is
idempotent): control plane -> node -> images (operator/Dockerfile,
runtime/modelserver/Dockerfile, built without a container engine and imported into the node's
containerd) -> object store (MinIO, a pod on the node beside the release;
cluster/objectstore.py) -> `helm upgrade --install` of charts/vibeplane with values-local.yaml
(operator, model server, the builtin ModelDeployment as pods and objects of the release; with
the gateway also the front service's pod, image from runtime/frontdoor/Dockerfile) -> the
gateway when VIBEPLANE_GATEWAY says (Traefik; its names and the platform domain reach the
operator as chart values, and its routes lead to the front service's pod) -> examples.
`down` uninstalls the release, then stops the gateway, the node and the control plane.

On the stand-in node the parts run as host processes: control plane -> object store -> model
server -> stand-in preview node -> operator; `down` stops them in reverse order, each through
its pid file and exact command line, so nothing else is touched.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vibeplane.timestamps import now_text
from vibeplane.wellknown import ANNOTATION_WAKE, PREVIEW_RUNTIME_DIR
from vibeplane_dev.cluster import gateway, images, objectstore
from vibeplane_dev.cluster.build import ensure_tool
from vibeplane_dev.cluster.config import repository_root
from vibeplane_dev.cluster.local import LocalCluster
from vibeplane_dev.cluster.node import COMPONENTS as NODE_COMPONENTS
from vibeplane_dev.cluster.node import RELAYS as NODE_RELAYS
from vibeplane_dev.cluster.node import (
    LocalNode,
    NodeNetwork,
    existing_real_node,
    real_node_selected,
    start_real_node,
    stop_real_node,
)
from vibeplane_dev.cluster.processes import ManagedProcess
from vibeplane_dev.cluster.s3server import LocalS3
from vibeplane_dev.objects import create_missing
from vibeplane_dev.steps import Steps

MODELSERVER_PORT = int(os.environ.get("VIBEPLANE_MODELSERVER_PORT", "18080"))
EXAMPLE_APP = ("ws-demo", "todo")
# The platform's own objects, applied with or without the examples: its default model belongs
# to the platform (as the chart's modelserver.enabled makes it), not to the examples.
PLATFORM_MANIFESTS = Path(__file__).parent / "manifests"
# The chart install of the real-node platform.
CHART = repository_root() / "charts" / "vibeplane"
LOCAL_VALUES = CHART / "values-local.yaml"
RELEASE = "vibeplane"
PLATFORM_NAMESPACE = "vibeplane-system"
OPERATOR_DEPLOYMENT = f"{RELEASE}-operator"
MODELSERVER_DEPLOYMENT = f"{RELEASE}-modelserver"
FRONTDOOR_DEPLOYMENT = f"{RELEASE}-frontdoor"
# The images of the release: (name, Dockerfile relative to the repository root, repository).
# The build context is the repository root for both, as with `docker build -f ... .`.
PLATFORM_IMAGES = (
    ("operator", Path("operator") / "Dockerfile", "vibeplane.local/operator"),
    ("modelserver", Path("runtime") / "modelserver" / "Dockerfile", "vibeplane.local/modelserver"),
)


@dataclass(frozen=True)
class Platform:
    cluster: LocalCluster
    s3: LocalS3

    @classmethod
    def local(cls) -> Platform:
        cluster = LocalCluster()
        return cls(cluster, LocalS3(cluster.config))

    @property
    def home(self) -> Path:
        return self.cluster.config.home.parent / "platform"

    def process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.home / "run", self.home / "logs")

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{MODELSERVER_PORT}/openai/v1"

    def command(self, name: str) -> list[str]:
        """A console script of this environment, run by its interpreter explicitly: so the
        process's command line is exactly what was started (a shebang would rewrite it, and
        the pid file could no longer prove the process is ours)."""
        path = Path(sys.executable).parent / name
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: run `make up` (it installs the runtime packages)"
            )
        return [sys.executable, str(path)]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(
    check: Callable[[], bool], what: str, process: ManagedProcess | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and not process.running():
            raise RuntimeError(f"{what}: the process exited; its log ends:\n{process.log_tail()}")
        time.sleep(0.5)
    tail = f"; its log ends:\n{process.log_tail()}" if process else ""
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s{tail}")


def _start(
    process: ManagedProcess, argv: list[str], steps: Steps, env: dict[str, str] | None = None
) -> bool:
    if process.running():
        steps.note(f"{process.name} already running")
        return False
    process.start(argv, env=env)
    steps.note(f"{process.name} log: {process.log_file}")
    return True


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (lingering closed connections do not count)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_modelserver(platform: Platform, steps: Steps) -> None:
    process = platform.process("modelserver")
    if not process.running() and not _port_free(MODELSERVER_PORT):
        raise RuntimeError(
            f"port {MODELSERVER_PORT} is taken by a process vibeplane did not start: stop it, "
            "or choose another port with VIBEPLANE_MODELSERVER_PORT"
        )
    _start(
        process,
        [
            *platform.command("vibeplane-modelserver"),
            "--backend",
            "builtin",
            "--model-name",
            "builtin",
            "--http-port",
            str(MODELSERVER_PORT),
        ],
        steps,
    )
    _wait(
        lambda: (
            process.running() and _http_ok(f"http://127.0.0.1:{MODELSERVER_PORT}/v2/health/ready")
        ),
        "the model server",
        process,
        90,
    )


def install_runsc(steps: Steps) -> None:
    """gVisor from Debian's packages, when this machine can install it (root, apt-get)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "runsc (gVisor) is not installed and cannot be installed from here: "
            "run `apt-get install runsc` as root (`make up` does it)"
        )
    steps.note("installing runsc (gVisor) from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "runsc"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def start_preview_node(platform: Platform, steps: Steps) -> None:
    if shutil.which("runsc") is None:
        install_runsc(steps)
    process = platform.process("preview-node")
    _start(
        process,
        [
            *platform.command("vibeplane-node"),
            "run",
            "--kubeconfig",
            str(platform.cluster.config.admin_kubeconfig),
            "--state-dir",
            str(platform.home / "node"),
            "--kubelet-port",
            "0",
            *platform.cluster.standin_tls_args(),
            "--stop-sandboxes-on-exit",
        ],
        steps,
    )

    def node_ready() -> bool:
        result = platform.cluster.kubectl("get", "node", "vibeplane-local", "-o", "json")
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    _wait(node_ready, "the preview node", process, 60)


def preview_command() -> list[str]:
    """Previews on the local node run the stdlib-only preview runtime with the host's python:
    the sandbox's root filesystem is the host's (read-only), and the node mounts its preview
    runtime at the path the preview image uses (the checkout itself may be hidden there)."""
    return ["/usr/bin/python3", f"{PREVIEW_RUNTIME_DIR}/preview.py"]


def operator_environment(platform: Platform) -> dict[str, str]:
    """The host operator's settings on the stand-in node (on the real node the chart's values
    say the same things to the operator's pod)."""
    return {
        **platform.s3.client_environment(),
        "KUBECONFIG": str(platform.cluster.config.kubeconfig("operator")),
        "VIBEPLANE_BUILTIN_MODEL_URL": platform.model_url,
        "VIBEPLANE_PREVIEW_LOCAL_NODE": "true",
        "VIBEPLANE_PREVIEW_COMMAND": json.dumps(preview_command()),
    }


def start_operator(platform: Platform, steps: Steps) -> None:
    process = platform.process("operator")
    env = dict(os.environ, **operator_environment(platform))
    _start(process, [sys.executable, "-m", "vibeplane", "operator"], steps, env=env)
    if process.exited_early(timeout=3.0):
        raise RuntimeError(f"the operator exited at once; its log ends:\n{process.log_tail()}")


def local_gateway(platform: Platform, node: LocalNode) -> gateway.LocalGateway:
    """The platform's gateway: its front service is the release's pod, not a host process."""
    return gateway.LocalGateway(
        platform.cluster.config, node, platform.home, host_front_service=False
    )


def start_gateway(platform: Platform, node: LocalNode, steps: Steps) -> None:
    """Traefik in the node's namespace and the relay; then wait until Traefik has programmed
    the Gateway."""
    local = local_gateway(platform, node)
    local.up(platform.cluster.kubectl, [], steps.note)
    _wait(
        lambda: local.programmed(platform.cluster.kubectl),
        "the Gateway (Programmed by Traefik)",
        local.traefik,
        120,
    )
    steps.note(f"gateway on 127.0.0.1:{gateway.gateway_port()} (hosts *.{gateway.DOMAIN})")


@dataclass(frozen=True)
class Helm:
    """The Helm binary from the tools cache, with its own homes under the platform's, talking
    to the local cluster as its admin."""

    binary: Path
    home: Path
    kubeconfig: Path

    @classmethod
    def for_platform(cls, platform: Platform, progress: Callable[[str], None]) -> Helm:
        binary = ensure_tool("helm", platform.cluster.config.cache, progress)
        return cls(binary, platform.home / "helm", platform.cluster.config.admin_kubeconfig)

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ,
            KUBECONFIG=str(self.kubeconfig),
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_DATA_HOME=str(self.home / "data"),
        )
        return subprocess.run(
            [str(self.binary), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def build_platform_images(
    platform: Platform, steps: Steps, frontdoor: bool = False
) -> dict[str, tuple[Path, str]]:
    """The release's images from their Dockerfiles (cached on their inputs): name -> (archive,
    reference); with `frontdoor` also the front service's (runtime/frontdoor/Dockerfile)."""
    root, cache = repository_root(), platform.cluster.config.cache
    builds: list[tuple[str, Callable[[], tuple[Path, str]]]] = [
        (name, functools.partial(images.dockerfile_image, cache, root / dockerfile, root, repo))
        for name, dockerfile, repo in PLATFORM_IMAGES
    ]
    if frontdoor:
        builds.append(("frontdoor", functools.partial(images.frontdoor_image, cache, root)))
    built = {}
    for name, build in builds:
        began = time.monotonic()
        archive, reference = build()
        seconds = time.monotonic() - began
        size = archive.stat().st_size // 2**20
        steps.note(f"{name} image {reference} ({size} MB, {seconds:.1f}s)")
        built[name] = (archive, reference)
    return built


def local_values(platform: Platform, built: dict[str, tuple[Path, str]]) -> dict[str, object]:
    """What values-local.yaml cannot say: this machine's addresses, ports, credentials, and
    the images just built (never pulled: they are in the node's containerd)."""
    config = platform.cluster.config
    net = NodeNetwork.for_home(config.home.parent)
    creds = platform.s3.credentials()

    def image(name: str) -> dict[str, str]:
        repository, _, tag = built[name][1].rpartition(":")
        return {"repository": repository, "tag": tag, "pullPolicy": "Never"}

    values: dict[str, object] = {
        "image": image("operator"),
        "modelserver": {"image": image("modelserver")},
        "s3": {
            # MinIO's pod behind its Service: the operator and previews (through presigned URLs
            # naming it) reach it by its cluster name.
            "endpoint": objectstore.endpoint(PLATFORM_NAMESPACE),
            "credentials": {
                "accessKeyId": creds["accessKey"],
                "secretAccessKey": creds["secretKey"],
            },
        },
        "preview": {
            "objectStoreEgress": objectstore.egress(),
            "nodeAddress": net.node_ip,
            "ingressCIDRs": [f"{net.host_ip}/32"],
        },
    }
    if gateway.enabled():
        # Routes through the local gateway: the same values as any cluster's Gateway, and
        # the front service they lead to as the release's pod, in the image built here.
        values = merge_values(values, gateway.chart_values())
        values = merge_values(values, {"frontDoor": {"image": image("frontdoor")}})
    return values


def merge_values(base: dict[str, object], extra: dict[str, object]) -> dict[str, object]:
    """Helm's merge of two values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = value
    return merged


def install_chart(
    platform: Platform, built: dict[str, tuple[Path, str]], steps: Steps, *extra: str
) -> None:
    """`helm upgrade --install` of the chart with the local values; waits for its pods."""
    helm = Helm.for_platform(platform, steps.note)
    values = platform.home / "values-machine.yaml"
    values.parent.mkdir(parents=True, exist_ok=True)
    values.write_text(yaml.safe_dump(local_values(platform, built), sort_keys=False))
    values.chmod(0o600)  # it holds the object store's credentials
    adopt_shared_objects(platform, steps)
    result = helm(
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        PLATFORM_NAMESPACE,
        "--create-namespace",
        "--values",
        str(LOCAL_VALUES),
        "--values",
        str(values),
        *extra,
        "--wait",
        "--timeout=5m",
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"helm upgrade --install failed:\n{result.stderr[-3000:]}\n"
            + chart_pods_report(platform)
        )
    steps.note(result.stdout.strip().splitlines()[0] if result.stdout.strip() else "installed")


def adopt_shared_objects(platform: Platform, steps: Steps) -> None:
    """Objects the chart renders that may exist without it, adopted by the release as Helm
    documents (its ownership label and annotations) instead of refusing to install over them:
    the workspace ClusterRoles (the control plane applies them: the suites need them without
    the chart) and the builtin ModelDeployment (the suites apply it as `up` has it, so a
    `make up` after `make test` on the same platform home found it)."""
    for document in yaml.safe_load_all(
        (CHART / "templates" / "workspace-clusterroles.yaml").read_text()
    ):
        if document:
            _adopt(platform, steps, [f"clusterrole/{document['metadata']['name']}"])
    builtin = local_builtin_model_name()
    _adopt(platform, steps, [f"modeldeployment/{builtin}", "-n", PLATFORM_NAMESPACE])


def local_builtin_model_name() -> str:
    """The builtin ModelDeployment's name in the local values (the chart's default under
    them)."""
    name = "builtin"
    for path in (CHART / "values.yaml", CHART / "values-local.yaml"):
        values = yaml.safe_load(path.read_text()) or {}
        configured = ((values.get("modelserver") or {}).get("modelDeployment") or {}).get("name")
        name = str(configured or name)
    return name


def _adopt(platform: Platform, steps: Steps, target: list[str]) -> None:
    """Give one existing object the release's ownership marks (nothing when it is absent or
    already the release's)."""
    kubectl = platform.cluster.kubectl
    if kubectl("get", *target).returncode != 0:
        return
    owner = kubectl("get", *target, "-o", "jsonpath={.metadata.annotations}").stdout
    if RELEASE in owner:
        return
    kubectl("label", "--overwrite", *target, "app.kubernetes.io/managed-by=Helm")
    kubectl(
        "annotate",
        "--overwrite",
        *target,
        f"meta.helm.sh/release-name={RELEASE}",
        f"meta.helm.sh/release-namespace={PLATFORM_NAMESPACE}",
    )
    steps.note(f"{' '.join(target)}: adopted by the release")


def chart_pods_report(platform: Platform) -> str:
    result = platform.cluster.kubectl("get", "pods", "-n", PLATFORM_NAMESPACE, "-o", "wide")
    return f"pods in {PLATFORM_NAMESPACE}:\n{result.stdout}{result.stderr}"


def operator_log(platform: Platform) -> str:
    result = platform.cluster.kubectl(
        "logs", "-n", PLATFORM_NAMESPACE, f"deployment/{OPERATOR_DEPLOYMENT}", "--tail=-1"
    )
    return result.stdout + result.stderr


def up_chart(platform: Platform, steps: Steps) -> None:
    """The real-node platform: the chart's pods on the node (see the module's docstring)."""
    with steps.step("node (containerd, kubelet, gVisor, pod network in its own namespace)"):
        node = start_real_node(platform.cluster.config, progress=steps.note)
    through_gateway = gateway.enabled()
    parts = "operator, model server" + (", front service" if through_gateway else "")
    with steps.step(f"images ({parts}) built and imported into the node"):
        built = build_platform_images(platform, steps, frontdoor=through_gateway)
        for name, (archive, _) in built.items():
            if node.import_image(archive):
                steps.note(f"imported the {name} image")
    with steps.step("object store (MinIO, a pod on the node)"):
        start_object_store(platform, node, steps)
    if through_gateway:
        # A front service an earlier `up` ran on the host gives way to the release's pod.
        local_gateway(platform, node).retire_host_front_service(
            platform.cluster.kubectl, steps.note
        )
    with steps.step(f"helm upgrade --install {RELEASE} (charts/vibeplane, values-local.yaml)"):
        install_chart(platform, built, steps)
    if through_gateway:
        with steps.step(f"gateway (Traefik {gateway.TRAEFIK[1]}) routing to the front service pod"):
            start_gateway(platform, node, steps)


def start_object_store(platform: Platform, node: LocalNode, steps: Steps) -> None:
    """MinIO as a pod in the platform namespace (objectstore.py); waits until it is ready."""
    kubectl = platform.cluster.kubectl
    archive, reference = objectstore.image(platform.cluster.config.cache, steps.note)
    if node.import_image(archive):
        steps.note("imported the object store's image")
    data = platform.s3.home / "data"
    objectstore.own_data(data)
    if kubectl("get", "namespace", PLATFORM_NAMESPACE).returncode != 0:
        kubectl("create", "namespace", PLATFORM_NAMESPACE)
    objectstore.apply(
        kubectl,
        platform.home,
        objectstore.manifests(PLATFORM_NAMESPACE, reference, data, platform.s3.credentials()),
    )
    result = kubectl(
        "rollout",
        "status",
        f"deployment/{objectstore.NAME}",
        "-n",
        PLATFORM_NAMESPACE,
        "--timeout=180s",
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"the object store's pod is not ready: {result.stderr.strip()}\n"
            + chart_pods_report(platform)
        )


def down_chart(platform: Platform, steps: Steps) -> None:
    """Uninstall the release while the cluster and the node still run (its pods end)."""
    if not platform.cluster.running():
        return
    helm = Helm.for_platform(platform, steps.note)
    if helm("status", RELEASE, "--namespace", PLATFORM_NAMESPACE).returncode != 0:
        return
    result = helm("uninstall", RELEASE, "--namespace", PLATFORM_NAMESPACE, "--wait")
    if result.returncode != 0:
        raise RuntimeError(f"helm uninstall failed:\n{result.stderr[-3000:]}")
    steps.note(f"uninstalled the release {RELEASE}")


def _app_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, object]:
    result = cluster.kubectl("get", "vibeapp", name, "-n", namespace, "-o", "json")
    if result.returncode != 0:
        return {}
    status: dict[str, object] = json.loads(result.stdout).get("status") or {}
    return status


def up(examples: bool, steps: Steps) -> int:
    platform = Platform.local()
    with steps.step("control plane"):
        platform.cluster.up(progress=steps.note)
    if not real_node_selected():
        with steps.step("object store (MinIO on 127.0.0.1)"):
            platform.s3.up(progress=steps.note)
    operator: ManagedProcess | None = None  # the host process, where there is one
    through_gateway = real_node_selected() and gateway.enabled()
    if real_node_selected():
        up_chart(platform, steps)
    else:
        with steps.step("model server (builtin backend)"):
            start_modelserver(platform, steps)
        with steps.step("preview node (gVisor, stand-in)"):
            start_preview_node(platform, steps)
        with steps.step("operator"):
            start_operator(platform, steps)
        operator = platform.process("operator")
        with steps.step("the platform's default model (builtin ModelDeployment)"):
            create_missing(
                platform.cluster.kubectl, sorted(PLATFORM_MANIFESTS.glob("*.yaml")), steps.note
            )
    kubeconfig = platform.cluster.config.admin_kubeconfig
    kubectl = platform.cluster.kubectl
    if examples:
        with steps.step("examples (created where missing; existing ones left alone)"):
            create_missing(
                kubectl, sorted((repository_root() / "examples").glob("*.yaml")), steps.note
            )
        namespace, name = EXAMPLE_APP
        wake_if_hibernated(platform, namespace, name, steps)
        with steps.step(f"VibeApp {name} generated and running"):
            status: dict[str, object] = {}

            def running() -> bool:
                nonlocal status
                status = _app_status(platform.cluster, namespace, name)
                return status.get("phase") == "Running" and bool(status.get("url"))

            try:
                _wait(running, f"VibeApp {namespace}/{name}", operator, 300)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\nlast status: {json.dumps(status)[:2000]}") from error
        url = status.get("url")
        if through_gateway and url:
            url = gateway.through_relay(str(url))
        print(f"export KUBECONFIG={kubeconfig}")
        print(f"{name}: revision {status.get('revision')}, {url}")
        if through_gateway:
            print(
                f"(a private preview: sign in at {url}__vibeplane/signin with a token of a "
                f"workspace member, e.g. `kubectl create token <serviceaccount> -n {namespace}`)"
            )
        print(url)
    else:
        print(f"export KUBECONFIG={kubeconfig}")
    return 0


def wake_if_hibernated(platform: Platform, namespace: str, name: str, steps: Steps) -> None:
    """`up` ends with the example's URL: an example an earlier run of the platform left
    hibernated (idle) is woken, as a visit through the front door would."""
    if _app_status(platform.cluster, namespace, name).get("phase") != "Hibernated":
        return
    platform.cluster.kubectl(
        "annotate",
        "--overwrite",
        "-n",
        namespace,
        f"vibeapp/{name}",
        f"{ANNOTATION_WAKE}={now_text()}",
    )
    steps.note(f"vibeapp {namespace}/{name} was hibernated: woken")


PARTS = ("operator", "preview-node", "modelserver")


def down(steps: Steps) -> int:
    platform = Platform.local()
    if real_node_selected():
        down_chart(platform, steps)
    for name in PARTS:
        if platform.process(name).stop():
            steps.note(f"stopped {name}")
    if real_node_selected():
        local = gateway.LocalGateway(
            platform.cluster.config, existing_real_node(platform.cluster.config), platform.home
        )
        for name in local.down():
            steps.note(f"stopped {name}")
    stop_real_node(platform.cluster.config, progress=steps.note)
    if platform.s3.down():
        steps.note("stopped minio")
    platform.cluster.down(progress=steps.note)
    return 0


def status() -> int:
    platform = Platform.local()
    healthy = True
    rows: list[tuple[str, bool, str]] = []
    for component in platform.cluster.status():
        rows.append((component.name, component.pid is not None, f"pid {component.pid}"))
    chart = real_node_selected()
    if not chart:
        rows.append(("minio", platform.s3.ready(), platform.s3.endpoint))
    processes = [platform.process(name) for name in reversed(PARTS)]
    if chart:
        node = existing_real_node(platform.cluster.config)
        processes = [node.process(name) for name in NODE_COMPONENTS]
        processes += [node.relay(name) for name in NODE_RELAYS]
    for process in processes:
        pid = process.pid()
        rows.append((process.name, pid is not None, f"pid {pid}" if pid else str(process.log_file)))
    rows.append(("apiserver /readyz", platform.cluster.ready(), platform.cluster.config.server))
    if chart:
        deployments = [objectstore.NAME, OPERATOR_DEPLOYMENT, MODELSERVER_DEPLOYMENT]
        if gateway.enabled():
            deployments.append(FRONTDOOR_DEPLOYMENT)
        for deployment in deployments:
            result = platform.cluster.kubectl(
                "get",
                "deployment",
                deployment,
                "-n",
                PLATFORM_NAMESPACE,
                "-o",
                "jsonpath={.status.readyReplicas}/{.spec.replicas}",
            )
            ready, _, wanted = result.stdout.partition("/")
            rows.append(
                (deployment, bool(ready) and ready == wanted, f"{result.stdout} ready (pods)")
            )
    else:
        rows.append(
            (
                "model server ready",
                _http_ok(f"http://127.0.0.1:{MODELSERVER_PORT}/v2/health/ready"),
                platform.model_url,
            )
        )
    for name, ok, detail in rows:
        healthy &= ok
        print(f"{name:20} {'ok' if ok else 'DOWN':6} {detail}")
    return 0 if healthy else 1
