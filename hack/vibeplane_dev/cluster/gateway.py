"""The local platform's gateway: Traefik v3 (a Gateway API implementation) built from its Go
module, and the front service every preview host is routed to.

Why Traefik: it is a single static Go program on the module proxy, and its v3.6 line passes
the Gateway API's HTTPRoute core conformance (report for Gateway API v1.4.0, 33/33 core tests,
none skipped: conformance/reports/v1.4.0/traefik-traefik in kubernetes-sigs/gateway-api).
v3.6.12 is the newest release that builds from the proxy alone: the v3.7 releases replace a
nested module (`./pkg/config/dynamic/ext`, not in the module zip) and pin a fork version of
go-http-auth the proxy does not serve.

Layout on one machine (the real node's network namespace, see node.py):
- Traefik runs in the node's network namespace (like the kubelet), watching the cluster's
  Gateway API objects through the API server's relay, and listening on GATEWAY_NODE_PORT; the
  GatewayClass `vibeplane` and the Gateway `vibeplane` (namespace vibeplane-gateway, listener
  `http`, hostnames `*.<domain>`) are applied here.
- The front service, where the operator's preview HTTPRoutes send every request (the Service
  `vibeplane-frontdoor` in the platform namespace). `make up` runs it as the chart's pod
  (frontDoor.enabled, its image from runtime/frontdoor/Dockerfile): it reaches previews by
  their Services, as on any cluster. The gateway e2e (LocalGateway host_front_service) runs
  it on the host instead, bound to the host end of the veth (the node reaches it there)
  behind that Service (an EndpointSlice naming that address), reaching previews through their
  NodePort on the node's address, which the workspaces' policies admit from the host end.
- Optionally (LocalGateway tls_secret/tls_port; the gateway e2e uses it) an `https` listener
  for any hostname on Traefik's TLS entry point, terminating TLS with a kubernetes.io/tls
  Secret in the Gateway's namespace (the platform's wildcard-on-the-listener choice for
  published custom hostnames), relayed from 127.0.0.1:tls_port.
- A relay on 127.0.0.1:VIBEPLANE_GATEWAY_PORT forwards to Traefik: `*.localhost` resolves to
  the loopback in curl and Chromium, so http://<app>-<namespace>.vibeplane.localhost:<port>/
  works without DNS.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from vibeplane_dev.cluster.build import go_environment
from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.manifests import apply_file
from vibeplane_dev.cluster.processes import ManagedProcess

Progress = Callable[[str], None]
Manifest = dict[str, Any]

TRAEFIK = ("github.com/traefik/traefik/v3", "v3.6.12")
CONTROLLER_NAME = "traefik.io/gateway-controller"
GATEWAY_CLASS = "vibeplane"
GATEWAY_NAMESPACE = "vibeplane-gateway"  # OperatorSettings.gateway_namespace
GATEWAY_NAME = "vibeplane"
LISTENER = "http"
GATEWAY_NODE_PORT = 8000  # Traefik's entry point inside the node's namespace
GATEWAY_TLS_NODE_PORT = 8443  # its TLS entry point (the `https` listener, when one is asked for)
TLS_LISTENER = "https"
FRONTDOOR_SERVICE = "vibeplane-frontdoor"  # OperatorSettings.front_service_name
FRONTDOOR_NAMESPACE = "vibeplane-system"  # OperatorSettings.platform_namespace
DOMAIN = os.environ.get("VIBEPLANE_DOMAIN", "vibeplane.localhost")
FIELD_MANAGER = "vibeplane-platform-gateway"


def _noop(_: str) -> None:
    return None


def enabled() -> bool:
    """Whether `up` runs the gateway (VIBEPLANE_GATEWAY=traefik; `make up` sets it on the real
    node). Off by default: Traefik's cold build is long, and only `make up` pays for it."""
    return os.environ.get("VIBEPLANE_GATEWAY", "") == "traefik"


def gateway_port() -> int:
    return int(os.environ.get("VIBEPLANE_GATEWAY_PORT", "18880"))


def frontdoor_port() -> int:
    return int(os.environ.get("VIBEPLANE_FRONTDOOR_PORT", "18890"))


def app_host(name: str, namespace: str) -> str:
    """The documented preview host: <app>-<namespace>.<domain> (the operator's rule)."""
    return f"{name}-{namespace}.{DOMAIN}"


def app_url(name: str, namespace: str, port: int | None = None) -> str:
    return f"http://{app_host(name, namespace)}:{port or gateway_port()}/"


def through_relay(url: str, port: int | None = None) -> str:
    """The URL the operator wrote (its own host rule) reached through the local relay's port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{port or gateway_port()}", parts.path or "/", "", ""))


def traefik_path(cache: Path) -> Path:
    return cache / "gateway" / f"traefik-{TRAEFIK[1]}" / "traefik"


def traefik_binary(cache: Path, progress: Progress = _noop) -> Path:
    """Traefik built from a copy of its module (its go.mod has replace directives, so `go
    install module@version` refuses it), cached by version."""
    module, version = TRAEFIK
    target = traefik_path(cache)
    if target.is_file():
        return target
    progress(f"building Traefik {version} from the module proxy (cold: many minutes)")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = go_environment()
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"downloading {module}@{version} failed:\n{result.stderr[-3000:]}")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        source = Path(scratch) / "src"
        shutil.copytree(json.loads(result.stdout)["Dir"], source)
        for path in [source, *source.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        built = Path(scratch) / "traefik"
        result = subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(built), "./cmd/traefik"],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building Traefik {version} failed:\n{result.stderr[-4000:]}")
        os.replace(built, target)
    return target


def gateway_manifests(
    host_ip: str, front_port: int, tls_secret: str = "", host_front_service: bool = True
) -> list[Manifest]:
    """The GatewayClass, the Gateway, and (`host_front_service`) the Service of a front
    service on the host as the gateway sees it; without, the chart's front service pod is
    the Service's backend. With `tls_secret` (a kubernetes.io/tls Secret in the Gateway's
    namespace) the Gateway also has an HTTPS listener for any hostname, terminating TLS with
    that certificate (the platform's "wildcard on the listener" choice for published
    hostnames)."""
    listeners: list[Manifest] = [
        {
            "name": LISTENER,
            "protocol": "HTTP",
            "port": GATEWAY_NODE_PORT,
            "hostname": f"*.{DOMAIN}",
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }
    ]
    if tls_secret:
        listeners.append(
            {
                "name": TLS_LISTENER,
                "protocol": "HTTPS",
                "port": GATEWAY_TLS_NODE_PORT,
                "tls": {
                    "mode": "Terminate",
                    "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}],
                },
                "allowedRoutes": {"namespaces": {"from": "All"}},
            }
        )
    gateway: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER_NAME},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
        },
    ]
    if not host_front_service:
        return gateway
    return [
        *gateway,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FRONTDOOR_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": FRONTDOOR_SERVICE, "namespace": FRONTDOOR_NAMESPACE},
            "spec": {
                "ports": [{"name": "http", "port": 80, "targetPort": front_port, "protocol": "TCP"}]
            },
        },
        {
            # The front service runs on the host: its address is the veth's host end.
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{FRONTDOOR_SERVICE}-host",
                "namespace": FRONTDOOR_NAMESPACE,
                "labels": {
                    "kubernetes.io/service-name": FRONTDOOR_SERVICE,
                    "endpointslice.kubernetes.io/managed-by": FIELD_MANAGER,
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "http", "port": front_port, "protocol": "TCP"}],
        },
    ]


def _traefik_kubeconfig(cluster: ClusterConfig, host_ip: str, home: Path) -> Path:
    """The admin's credentials, through the API server's relay on the veth's host end (the
    only address of the API server the node's namespace reaches)."""
    config = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://{host_ip}:{cluster.apiserver_port}"
        # The API server's certificate names `kubernetes`, not the veth address.
        entry["cluster"]["tls-server-name"] = "kubernetes"
    path = home / "traefik.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def frontdoor_key(home: Path) -> Path:
    """The cookie signing key: made once, readable by root only, never given to any pod."""
    path = home / "frontdoor.key"
    if not path.exists():
        path.write_bytes(secrets.token_hex(32).encode())
        path.chmod(0o600)
    return path


class LocalGateway:
    """Traefik in the node's namespace, the relay, and (host_front_service) the front service
    on the host; without it, the front service is the chart's pod (`make up`)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        node: Any,
        home: Path,
        port: int | None = None,
        front_port: int | None = None,
        tls_port: int | None = None,
        tls_secret: str = "",
        host_front_service: bool = True,
    ) -> None:
        # node: vibeplane_dev.cluster.node.LocalNode (process(), network)
        self.cluster = cluster
        self.host_front_service = host_front_service
        self.node = node
        self.home = home / "gateway"
        self.port = port or gateway_port()
        self.front_port = front_port or frontdoor_port()
        # HTTPS (the `https` listener) relayed from 127.0.0.1:tls_port; off without a Secret.
        self.tls_port = tls_port
        self.tls_secret = tls_secret

    def _process(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.home / "run", self.home / "logs")

    @property
    def traefik(self) -> ManagedProcess:
        process: ManagedProcess = self.node.process("gateway-traefik")
        return process

    @property
    def frontdoor(self) -> ManagedProcess:
        return self._process("frontdoor")

    @property
    def relay(self) -> ManagedProcess:
        return self._process("gateway-relay")

    @property
    def tls_relay(self) -> ManagedProcess:
        return self._process("gateway-relay-tls")

    def processes(self) -> list[ManagedProcess]:
        return [self.traefik, self.frontdoor, self.relay, self.tls_relay]

    def retire_host_front_service(
        self, kubectl: Callable[..., subprocess.CompletedProcess[str]], progress: Progress = _noop
    ) -> None:
        """Before the chart's front service takes over: stop a front service an earlier run
        started on the host, and delete the Service and EndpointSlice that named it (applied
        by this module, not the release's: Helm would refuse to install over the Service)."""
        if self.frontdoor.stop():
            progress("stopped the front service on the host (the chart's pod replaces it)")
        kubectl(
            "delete", "endpointslice", f"{FRONTDOOR_SERVICE}-host", "-n", FRONTDOOR_NAMESPACE,
            "--ignore-not-found",
        )  # fmt: skip
        service = kubectl(
            "get", "service", FRONTDOOR_SERVICE, "-n", FRONTDOOR_NAMESPACE, "-o", "json"
        )
        if service.returncode != 0:
            return
        labels = json.loads(service.stdout)["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/managed-by") != "Helm":
            kubectl("delete", "service", FRONTDOOR_SERVICE, "-n", FRONTDOOR_NAMESPACE)
            progress(f"deleted the host front service's Service {FRONTDOOR_SERVICE}")

    def up(
        self,
        kubectl: Callable[..., subprocess.CompletedProcess[str]],
        frontdoor_command: list[str],
        progress: Progress = _noop,
    ) -> None:
        binary = traefik_binary(self.cluster.cache, progress)
        self.home.mkdir(parents=True, exist_ok=True)
        network = self.node.network
        manifests = gateway_manifests(
            network.host_ip, self.front_port, self.tls_secret, self.host_front_service
        )
        apply_file(
            kubectl, self.home / "gateway.yaml", manifests, FIELD_MANAGER, "the gateway's objects"
        )
        if self.host_front_service and not self.frontdoor.running():
            progress(f"front service on {network.host_ip}:{self.front_port}")
            self.frontdoor.start(
                [
                    *frontdoor_command,
                    "--host",
                    network.host_ip,
                    "--port",
                    str(self.front_port),
                    "--kubeconfig",
                    str(self.cluster.admin_kubeconfig),
                    "--key-file",
                    str(frontdoor_key(self.home)),
                    "--domain",
                    DOMAIN,
                    "--upstream",
                    f"nodeport:{network.node_ip}",
                ],
                env=dict(os.environ),
            )
        if not self.traefik.running():
            progress(f"Traefik {TRAEFIK[1]} in the node's namespace, port {GATEWAY_NODE_PORT}")
            self.traefik.start(
                [
                    str(binary),
                    f"--entryPoints.web.address=:{GATEWAY_NODE_PORT}",
                    f"--entryPoints.websecure.address=:{GATEWAY_TLS_NODE_PORT}",
                    "--providers.kubernetesGateway=true",
                    f"--providers.kubernetesGateway.statusAddress.ip={network.node_ip}",
                    # Nothing leaves the machine: no version check, no usage report.
                    "--global.checkNewVersion=false",
                    "--global.sendAnonymousUsage=false",
                    "--log.level=INFO",
                ],
                env={
                    "PATH": "/usr/bin:/bin",
                    "HOME": str(self.home),
                    "KUBECONFIG": str(
                        _traefik_kubeconfig(self.cluster, network.host_ip, self.home)
                    ),
                },
            )
        if not self.relay.running():
            progress(f"relaying 127.0.0.1:{self.port} to the gateway")
            self.relay.start(
                [
                    shutil.which("socat") or "socat",
                    f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
                    f"TCP:{network.node_ip}:{GATEWAY_NODE_PORT}",
                ]
            )
        if self.tls_secret and self.tls_port and not self.tls_relay.running():
            progress(f"relaying 127.0.0.1:{self.tls_port} to the gateway's HTTPS listener")
            self.tls_relay.start(
                [
                    shutil.which("socat") or "socat",
                    f"TCP-LISTEN:{self.tls_port},bind=127.0.0.1,reuseaddr,fork",
                    f"TCP:{network.node_ip}:{GATEWAY_TLS_NODE_PORT}",
                ]
            )

    def programmed(self, kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> bool:
        result = kubectl("get", "gateway", GATEWAY_NAME, "-n", GATEWAY_NAMESPACE, "-o", "json")
        if result.returncode != 0:
            return False
        conditions = (json.loads(result.stdout).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)

    def down(self) -> list[str]:
        return [p.name for p in reversed(self.processes()) if p.stop()]


def chart_values() -> dict[str, object]:
    """The chart's values for routes through this gateway (what any cluster's Gateway needs:
    its name, namespace and listener, the platform domain, the front service, which the
    release runs: frontDoor.enabled; its image is the machine's)."""
    return {
        "frontDoor": {"enabled": True},
        "operator": {"gatewayNamespace": GATEWAY_NAMESPACE},
        "gateway": {
            "name": GATEWAY_NAME,
            "listener": LISTENER,
            "frontService": {"name": FRONTDOOR_SERVICE, "port": 80},
        },
        "preview": {"domain": DOMAIN},
    }
