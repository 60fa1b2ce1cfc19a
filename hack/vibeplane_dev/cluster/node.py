"""A real Kubernetes node for the local platform, in a network namespace of its own.

containerd (runc, and runsc behind the `gvisor` RuntimeClass), the kubelet, kube-proxy and
kube-router's NetworkPolicy firewall run on this machine, but inside a network namespace that
vibeplane creates, joined to the host by one veth pair (a /30 derived from VIBEPLANE_HOME, so
several local clusters can coexist). Pods sit on a CNI bridge inside that namespace; their
traffic to the host is masqueraded there. The host's firewall rules and sysctls are never
touched: every iptables rule is written inside the node's namespace, and the kubelet, which
insists on a few host-global sysctls, runs in a mount namespace where it reads the values it
expects (so it changes nothing).

The API server keeps listening on 127.0.0.1; a relay owned by the node forwards the host end of
the veth to it (the API server advertises that address, so the `kubernetes` Service works
from pods). Previews are reached from the machine through a NodePort on the node's address.

`down` removes everything `up` made: processes (every process left in the node's network
namespace is, by construction, one of ours), mounts under the node's directory, the veth, the
cgroups under the node's cgroup root, and the few paths upstream programs hard-code.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vibeplane_dev.cluster import images
from vibeplane_dev.cluster.config import ClusterConfig, repository_root
from vibeplane_dev.cluster.nodeaddons import COREDNS_IMAGE, node_addons
from vibeplane_dev.cluster.nodebuild import (
    NodeBinaries,
    ensure_node_binaries,
    node_binaries_if_built,
)
from vibeplane_dev.cluster.nodecerts import write_node_certificates
from vibeplane_dev.cluster.processes import ManagedProcess

Progress = Callable[[str], None]

NODE_NAME = "vibeplane-node"
NODE_SOURCE = Path("hack") / "node"
POD_CIDR = "10.88.0.0/24"
SERVICE_CIDR = "10.0.0.0/16"  # the API server's --service-cluster-ip-range
CLUSTER_DNS = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"
VETH_RANGE = ipaddress.ip_network("10.250.0.0/16")
PAUSE_IMAGE = "vibeplane.local/pause:3.10"
GVISOR_HANDLER = "runsc"
# The kubelet refuses to start unless these host-global sysctls hold these values (or it may
# set them itself): it reads them from files that hold them, in its own mount namespace.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
# Paths upstream programs use whatever they are told; removed by `down` when `up` made them.
HARD_CODED_PATHS = (
    Path("/run/containerd/s"),
    Path("/run/containerd"),
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/lib/kubelet"),
)
COMPONENTS = ("containerd", "kubelet", "kube-proxy", "kube-router")
# Host services pods reach through the host end of the veth (relays bound to that address only).
RELAYS = ("apiserver-relay", "object-store-relay")
PREVIEW_IMAGE = "vibeplane/preview-runtime:0.1.0"  # the operator's default preview_image

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_libc = ctypes.CDLL(None, use_errno=True)


# Below this much free disk the kubelet evicts every pod and admits none (DiskPressure); `up`
# refuses to start with less than MIN_FREE_DISK, which leaves room for a run's images and pods.
EVICTION_FREE_DISK = "1Gi"
MIN_FREE_DISK = 3 * 1024**3


def check_free_disk(home: Path, minimum: int = MIN_FREE_DISK) -> None:
    """Fail with the reason up front instead of pods that stay Pending: a node with too little
    disk looks healthy until the kubelet's eviction manager empties it."""
    free = shutil.disk_usage(home).free
    if free < minimum:
        raise NodeError(
            f"only {free / 1024**3:.1f} GiB free on the filesystem of {home}; the node needs "
            f"{minimum / 1024**3:.0f} GiB (its kubelet evicts every pod below "
            f"{EVICTION_FREE_DISK}). Free some: old image builds in ~/.cache/vibeplane/images, "
            "other VIBEPLANE_HOME folders, /tmp/pytest-of-*."
        )


class NodeError(RuntimeError):
    """The node could not be brought up; the message says what failed and why."""


def _noop(_: str) -> None:
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class NodeNetwork:
    """The veth /30 between the host and the node: host end .1, node end .2."""

    slot: int

    @classmethod
    def for_home(cls, home: Path) -> NodeNetwork:
        digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()
        return cls(int(digest[:8], 16) % (VETH_RANGE.num_addresses // 4))

    @property
    def host_ip(self) -> str:
        return str(VETH_RANGE[self.slot * 4 + 1])

    @property
    def node_ip(self) -> str:
        return str(VETH_RANGE[self.slot * 4 + 2])

    @property
    def host_interface(self) -> str:
        return f"vpn{self.slot:04x}h"

    @property
    def node_interface(self) -> str:
        return f"vpn{self.slot:04x}n"

    @property
    def cgroup_root(self) -> str:
        return f"/vibeplane-{self.slot:04x}"


@dataclass(frozen=True)
class NodeProcess(ManagedProcess):
    """A managed process started inside the node's network namespace (and, for the kubelet,
    a mount namespace of its own with files bound over some of /proc/sys)."""

    netns: Path = Path()
    binds: tuple[tuple[str, str], ...] = ()

    def in_child(self) -> Callable[[], None]:
        netns, binds = str(self.netns), self.binds

        def enter() -> None:  # runs in the child between fork and exec
            fd = os.open(netns, os.O_RDONLY)
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            os.close(fd)
            if binds:
                # The new mount namespace keeps each mount's propagation: the kubelet's root
                # directory is a shared mount, so volumes it mounts reach containerd.
                if _libc.unshare(_CLONE_NEWNS) != 0:
                    raise OSError(ctypes.get_errno(), "unshare")
                for source, target in binds:
                    if _libc.mount(source.encode(), target.encode(), None, _MS_BIND, None) != 0:
                        raise OSError(ctypes.get_errno(), f"bind {target}")

        return enter


class LocalNode:
    """The real node of one local cluster."""

    def __init__(self, cluster: ClusterConfig, binaries: NodeBinaries) -> None:
        self.cluster = cluster
        self.binaries = binaries
        self.home = cluster.home.parent / "node"
        self.network = NodeNetwork.for_home(cluster.home.parent)

    # ---- paths ---------------------------------------------------------------------------

    @property
    def netns(self) -> Path:
        return self.home / "netns"

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def kubelet_dir(self) -> Path:
        return self.home / "kubelet"

    @property
    def containerd_socket(self) -> Path:
        return self.home / "containerd" / "containerd.sock"

    def process(self, name: str) -> NodeProcess:
        binds: tuple[tuple[str, str], ...] = ()
        if name == "kubelet":
            binds = tuple(
                (str(self.home / "sysctl" / key.replace("/", ".")), f"/proc/sys/{key}")
                for key in KUBELET_SYSCTLS
            )
            # The kubelet's device-plugin socket directory is not configurable: give each node
            # its own, so nodes of several local clusters never share (or empty) one.
            binds += ((str(self.home / "device-plugins"), str(DEVICE_PLUGINS)),)
        return NodeProcess(
            name, self.home / "run", self.home / "logs", netns=self.netns, binds=binds
        )

    def relay(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.home / "run", self.home / "logs")

    def _relayed_ports(self) -> dict[str, int]:
        return {
            "apiserver-relay": self.cluster.apiserver_port,
            "object-store-relay": self.cluster.s3_port,
        }

    def operator_environment(self) -> dict[str, str]:
        return real_node_operator_environment(self.cluster)

    # ---- the network namespace -----------------------------------------------------------

    def _netns_mounted(self) -> bool:
        return any(mount == str(self.netns) for mount in _mount_points())

    def in_netns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("nsenter", f"--net={self.netns}", "--", *argv, check=check)

    def _network_up(self) -> None:
        net = self.network
        if not self._netns_mounted():
            self.netns.touch()
            _run("unshare", f"--net={self.netns}", "true")
        if _run("ip", "link", "show", net.host_interface, check=False).returncode != 0:
            _run(
                "ip",
                "link",
                "add",
                net.host_interface,
                "type",
                "veth",
                "peer",
                "name",
                net.node_interface,
                "netns",
                str(self.netns),
            )
        host_addresses = _run("ip", "-o", "addr", "show", "dev", net.host_interface).stdout
        if f"{net.host_ip}/30" not in host_addresses:
            _run("ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_interface)
        _run("ip", "link", "set", net.host_interface, "up")
        node_addresses = self.in_netns("ip", "-o", "addr", "show", "dev", net.node_interface).stdout
        if f"{net.node_ip}/30" not in node_addresses:
            self.in_netns("ip", "addr", "add", f"{net.node_ip}/30", "dev", net.node_interface)
        self.in_netns("ip", "link", "set", net.node_interface, "up")
        self.in_netns("ip", "link", "set", "lo", "up")
        # These are the node namespace's own copies (per network namespace since Linux 5.3 for
        # br_netfilter): the host's values stay as they are.
        for key, value in (
            ("net.ipv4.ip_forward", "1"),
            ("net.bridge.bridge-nf-call-iptables", "1"),
            ("net.ipv4.conf.all.route_localnet", "0"),
        ):
            self.in_netns("sysctl", "-q", "-w", f"{key}={value}")

    # ---- files ---------------------------------------------------------------------------

    def _kubeconfig(self, identity: str, server: str) -> Path:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "vibeplane",
                    "cluster": {
                        "server": server,
                        "certificate-authority": str(self.cluster.pki / "ca.crt"),
                        # The API server's certificate names `kubernetes`, not the veth address.
                        "tls-server-name": "kubernetes",
                    },
                }
            ],
            "users": [
                {
                    "name": identity,
                    "user": {
                        "client-certificate": str(self.pki / f"{identity}.crt"),
                        "client-key": str(self.pki / f"{identity}.key"),
                    },
                }
            ],
            "contexts": [
                {"name": "vibeplane", "context": {"cluster": "vibeplane", "user": identity}}
            ],
            "current-context": "vibeplane",
        }
        path = self.home / f"{identity}.kubeconfig"
        _write(path, yaml.safe_dump(document, sort_keys=False))
        return path

    def _write_files(self) -> None:
        home, net = self.home, self.network
        for directory in ("run", "logs", "sysctl", "cni/net.d", "cni/ipam", "pod-logs", "runsc"):
            (home / directory).mkdir(parents=True, exist_ok=True)
        write_node_certificates(self.cluster.pki, self.pki, NODE_NAME, net.node_ip)
        server = f"https://{net.host_ip}:{self.cluster.apiserver_port}"
        for identity in ("kubelet-client", "kube-proxy", "kube-router"):
            self._kubeconfig(identity, server)
        for key, value in KUBELET_SYSCTLS.items():
            _write(home / "sysctl" / key.replace("/", "."), value + "\n")
        _write(
            home / "runsc.toml",
            f'binary_name = "{self.binaries.runsc}"\n'
            f'root = "{home / "runsc" / "root"}"\n'
            "[runsc_config]\n"
            '  platform = "systrap"\n',
        )
        _write(home / "containerd.toml", self._containerd_config())
        _write(
            home / "cni" / "net.d" / "10-vibeplane.conflist",
            json.dumps(self._cni_config(), indent=1),
        )
        _write(home / "kubelet.yaml", yaml.safe_dump(self._kubelet_config(), sort_keys=False))
        _write(home / "kube-proxy.yaml", yaml.safe_dump(self._kube_proxy_config(), sort_keys=False))

    def _containerd_config(self) -> str:
        root = self.home / "containerd"
        cri = "plugins.'io.containerd.cri.v1.runtime'"
        runtimes = f"{cri}.containerd.runtimes"
        return "\n".join(
            [
                "version = 3",
                f"root = '{root / 'root'}'",
                f"state = '{root / 'state'}'",
                "[grpc]",
                f"  address = '{self.containerd_socket}'",
                "[ttrpc]",
                f"  address = '{self.containerd_socket}.ttrpc'",
                "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
                f"  sandbox = '{PAUSE_IMAGE}'",
                f"[{cri}]",
                # Root here cannot lower oom_score_adj (no CAP_SYS_RESOURCE).
                "  restrict_oom_score_adj = true",
                "  netns_mounts_under_state_dir = true",
                "  enable_selinux = false",
                f"[{cri}.containerd]",
                "  default_runtime_name = 'runc'",
                f"[{runtimes}.runc]",
                "  runtime_type = 'io.containerd.runc.v2'",
                f"[{runtimes}.runc.options]",
                "  BinaryName = '/usr/sbin/runc'",
                f"  Root = '{root / 'runc'}'",
                "  SystemdCgroup = false",
                f"[{runtimes}.{GVISOR_HANDLER}]",
                "  runtime_type = 'io.containerd.runsc.v1'",
                f"[{runtimes}.{GVISOR_HANDLER}.options]",
                "  TypeUrl = 'io.containerd.runsc.v1.options'",
                f"  ConfigPath = '{self.home / 'runsc.toml'}'",
                f"[{cri}.cni]",
                "  bin_dirs = ['/usr/lib/cni']",
                f"  conf_dir = '{self.home / 'cni' / 'net.d'}'",
                "  max_conf_num = 1",
                "[plugins.'io.containerd.nri.v1.nri']",
                "  disable = true",
                "",
            ]
        )

    def _cni_config(self) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": "vibeplane",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    # Inside the node's namespace: pods reach the host end of the veth (the API
                    # server relay) from the node's address; nothing is routed beyond it.
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.home / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _kubelet_config(self) -> dict[str, object]:
        pki = self.pki
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.network.cgroup_root,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.cluster.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "address": self.network.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "protectKernelDefaults": True,
            "podLogsDir": str(self.home / "pod-logs"),
            "resolvConf": "",
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [CLUSTER_DNS],
            "registerWithTaints": [],
            # Absolute, not a share of the disk: the node shares the machine's one filesystem
            # with everything else, and 1% of a large disk is gigabytes (`up` checks first).
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": EVICTION_FREE_DISK,
                "imagefs.available": EVICTION_FREE_DISK,
            },
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            "serializeImagePulls": False,
            "maxPods": 250,
        }

    def _kube_proxy_config(self) -> dict[str, object]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.home / "kube-proxy.kubeconfig")},
            "mode": "iptables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": POD_CIDR,
            # Leave the conntrack table (host-global) alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"localhostNodePorts": False},
            "nodePortAddresses": [f"{self.network.node_ip}/32"],
            "metricsBindAddress": "127.0.0.1:10249",
            "healthzBindAddress": "127.0.0.1:10256",
        }

    # ---- cgroups -------------------------------------------------------------------------

    def _cgroup_dirs(self, unified: bool = False) -> list[Path]:
        """The node's cgroup root in each v1 hierarchy (and, to clean up, cgroup v2's, where
        the kubelet also makes one on hybrid machines)."""
        root = Path("/sys/fs/cgroup")
        relative = self.network.cgroup_root.lstrip("/")
        return [
            path / relative
            for path in sorted(root.iterdir())
            if path.is_dir() and (unified or path.name != "unified")
        ]

    def _cgroups_up(self) -> None:
        for directory in self._cgroup_dirs():
            directory.mkdir(exist_ok=True)
            if directory.parent.name == "cpuset":
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (directory / name).read_text().strip():
                        (directory / name).write_text((directory.parent / name).read_text())

    def _cgroups_down(self) -> None:
        for directory in self._cgroup_dirs(unified=True):
            if not directory.exists():
                continue
            for path in sorted(
                (p for p in directory.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    path.rmdir()
            with contextlib.suppress(OSError):
                directory.rmdir()

    # ---- up ------------------------------------------------------------------------------

    def running(self) -> bool:
        return (
            all(self.process(name).running() for name in COMPONENTS)
            and all(self.relay(name).running() for name in RELAYS)
            and self.ready()
        )

    def ready(self) -> bool:
        result = _kubectl(self.cluster, "get", "node", NODE_NAME, "-o", "json")
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def up(self, import_images: Callable[[LocalNode], None], progress: Progress = _noop) -> None:
        """Start whatever part of the node is not running, then wait until it is Ready."""
        self.home.mkdir(parents=True, exist_ok=True)
        check_free_disk(self.home)
        self._remember_hard_coded_paths()
        self._network_up()
        self._write_files()
        self._cgroups_up()
        self._kubelet_dir_shared()
        (self.home / "device-plugins").mkdir(exist_ok=True)
        DEVICE_PLUGINS.mkdir(parents=True, exist_ok=True)  # the bind's mount point
        for name, port in self._relayed_ports().items():
            relay = self.relay(name)
            if not relay.running():
                progress(f"relaying {self.network.host_ip}:{port} to 127.0.0.1:{port}")
                relay.start(
                    [
                        shutil.which("socat") or "socat",
                        f"TCP-LISTEN:{port},bind={self.network.host_ip},reuseaddr,fork",
                        f"TCP:127.0.0.1:{port}",
                    ]
                )
        env = {"PATH": self.binaries.path, "HOME": str(self.home)}
        self._start(
            "containerd",
            [str(self.binaries.containerd), "--config", str(self.home / "containerd.toml")],
            env,
            progress,
        )
        self._wait(lambda: self._ctr("version", check=False).returncode == 0, "containerd", 60)
        import_images(self)
        kubelet_argv = [
            str(self.binaries.node),
            "kubelet",
            f"--config={self.home / 'kubelet.yaml'}",
            f"--kubeconfig={self.home / 'kubelet-client.kubeconfig'}",
            f"--root-dir={self.kubelet_dir}",
            f"--cert-dir={self.pki}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.network.node_ip}",
            "--node-labels=vibeplane.io/node=real",
        ]
        self._start_kubelet(kubelet_argv, env, progress)
        self._set_pod_cidr()
        self._apply_addons()
        self._start(
            "kube-proxy",
            [str(self.binaries.node), "kube-proxy", f"--config={self.home / 'kube-proxy.yaml'}"],
            env,
            progress,
        )
        self._start(
            "kube-router",
            [
                str(self.binaries.kube_router),
                f"--kubeconfig={self.home / 'kube-router.kubeconfig'}",
                f"--hostname-override={NODE_NAME}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--enable-ipv6=false",
                "--metrics-port=0",
                "--health-port=0",
                "--v=1",
            ],
            env,
            progress,
        )
        self._wait(self.ready, "kubelet", 120)

    def _start(self, name: str, argv: list[str], env: dict[str, str], progress: Progress) -> None:
        process = self.process(name)
        if process.running():
            return
        progress(f"starting {name} (in the node's network namespace)")
        process.start(argv, env=env)
        if process.exited_early(timeout=1.0):
            raise NodeError(f"{name} exited at once; its log ends:\n{process.log_tail()}")

    def _start_kubelet(self, argv: list[str], env: dict[str, str], progress: Progress) -> None:
        """Start the kubelet and wait until its Node exists. containerd answers before its CRI
        service has initialized, and a kubelet started in between exits ("server is not
        initialized yet"): start it again then, and for no other failure."""
        process = self.process("kubelet")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            offset = process.log_file.stat().st_size if process.log_file.exists() else 0
            if not process.running():
                progress("starting kubelet (in the node's network namespace)")
                process.start(argv, env=env)
            while process.running() and time.monotonic() < deadline:
                if self._registered():
                    return
                time.sleep(0.25)
            if process.running():
                break
            tail = process.log_file.read_text(errors="replace")[offset:]
            if "not initialized yet" not in tail:
                raise NodeError(f"kubelet exited; its log ends:\n{process.log_tail()}")
            progress("containerd's CRI service was not ready yet: starting the kubelet again")
            time.sleep(1)
        raise NodeError(f"kubelet not registered after 120s; its log ends:\n{process.log_tail()}")

    def _wait(self, check: Callable[[], bool], component: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.process(component)
        while time.monotonic() < deadline:
            if check():
                return
            if not process.running():
                raise NodeError(f"{component} exited; its log ends:\n{process.log_tail()}")
            time.sleep(0.25)
        raise NodeError(
            f"{component} not ready after {timeout:.0f}s; its log ends:\n{process.log_tail()}"
        )

    def _registered(self) -> bool:
        return _kubectl(self.cluster, "get", "node", NODE_NAME).returncode == 0

    def _set_pod_cidr(self) -> None:
        # No controller allocates node CIDRs here; kube-router reads the node's podCIDR.
        result = _kubectl(self.cluster, "get", "node", NODE_NAME, "-o", "jsonpath={.spec.podCIDR}")
        if result.stdout.strip() == POD_CIDR:
            return
        patch = json.dumps({"spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]}})
        result = _kubectl(self.cluster, "patch", "node", NODE_NAME, "--type=merge", "-p", patch)
        if result.returncode != 0:
            raise NodeError(f"setting the node's pod CIDR failed: {result.stderr}")

    def _apply_addons(self) -> None:
        path = self.home / "addons.yaml"
        path.write_text(yaml.safe_dump_all(node_addons(CLUSTER_DNS), sort_keys=False))
        result = _kubectl(
            self.cluster,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=vibeplane-node",
            "-f",
            str(path),
        )
        if result.returncode != 0:
            raise NodeError(f"applying the node's add-ons failed:\n{result.stderr}")

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(
            str(self.binaries.ctr),
            f"--address={self.containerd_socket}",
            "-n",
            "k8s.io",
            *args,
            check=check,
        )

    def container_info(self, container_id: str) -> dict[str, Any]:
        """containerd's record of a container: its runtime (runc or runsc) and OCI spec."""
        info: dict[str, Any] = json.loads(self._ctr("containers", "info", container_id).stdout)
        return info

    def import_image(self, archive: Path) -> bool:
        """Import a docker-archive into the node's containerd (pods use it without pulling),
        unless this very archive (its name is its content key) was imported already."""
        stamp = self.home / "images" / archive.name
        if stamp.exists():
            return False
        self._ctr("images", "import", str(archive))
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        return True

    def _kubelet_dir_shared(self) -> None:
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        if str(self.kubelet_dir) not in _mount_points():
            _run("mount", "--bind", str(self.kubelet_dir), str(self.kubelet_dir))
            _run("mount", "--make-shared", str(self.kubelet_dir))

    def _remember_hard_coded_paths(self) -> None:
        record = self.home / "created-paths.json"
        if record.exists():
            return
        record.write_text(json.dumps([str(p) for p in HARD_CODED_PATHS if not p.exists()]))

    # ---- down ----------------------------------------------------------------------------

    def down(self, progress: Progress = _noop) -> list[str]:
        """Stop the node and remove every trace of it; return what was stopped."""
        stopped = []
        for name in ("kube-router", "kube-proxy", "kubelet"):
            if self.process(name).stop():
                stopped.append(name)
                progress(f"stopped {name}")
        if self.process("containerd").running():
            self._remove_containers()
        if self.process("containerd").stop():
            stopped.append("containerd")
            progress("stopped containerd")
        for name in RELAYS:
            if self.relay(name).stop():
                stopped.append(name)
        killed = self._kill_leftovers()
        if killed:
            progress(f"ended {killed} leftover process(es) in the node's network namespace")
        self._unmount_all()
        if _run("ip", "link", "show", self.network.host_interface, check=False).returncode == 0:
            _run("ip", "link", "delete", self.network.host_interface, check=False)
        self._cgroups_down()
        self._remove_hard_coded_paths()
        if stopped:
            # Its Node would linger NotReady, holding its pods: the node is gone, so is it.
            _kubectl(
                self.cluster, "delete", "node", NODE_NAME, "--ignore-not-found", "--wait=false"
            )
        return stopped

    def _remove_containers(self) -> None:
        tasks = self._ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self._ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        deadline = time.monotonic() + 15
        for task in tasks:
            while self._ctr("tasks", "rm", task, check=False).returncode != 0:
                if time.monotonic() > deadline:
                    self._ctr("tasks", "rm", "-f", task, check=False)
                    break
                time.sleep(0.2)
        for container in self._ctr("containers", "ls", "-q", check=False).stdout.split():
            self._ctr("containers", "rm", container, check=False)

    def _kill_leftovers(self) -> int:
        """End every process still in the node's network namespace (shims, sandboxes)."""
        if not self._netns_mounted():
            return 0
        inode = os.stat(self.netns).st_ino
        socket = str(self.containerd_socket).encode()
        killed = 0
        for attempt in range(50):
            members = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == os.getpid():
                    continue
                with contextlib.suppress(OSError):
                    # In the node's namespace, or a shim of its containerd (gVisor's run in
                    # the host's namespace and name the node's containerd socket).
                    if (
                        os.stat(entry / "ns" / "net").st_ino == inode
                        or socket in (entry / "cmdline").read_bytes()
                    ):
                        members.append(int(entry.name))
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM if attempt < 10 else signal.SIGKILL)
            killed = max(killed, len(members))
            time.sleep(0.2)
        return killed

    def _unmount_all(self) -> None:
        prefix = str(self.home) + "/"
        for _ in range(10):  # mounts may be stacked (gVisor's null-netns): until none is left
            mounts = [m for m in _mount_points() if m.startswith(prefix) or m == str(self.home)]
            if not mounts:
                return
            for mount in sorted(mounts, key=lambda m: -m.count("/")):
                _run("umount", "-l", mount, check=False)

    def _remove_hard_coded_paths(self) -> None:
        record = self.home / "created-paths.json"
        if not record.exists():
            return
        for name in json.loads(record.read_text()):
            path = Path(name)
            if path.is_dir():
                if path.name == "device-plugins":
                    for child in path.iterdir():
                        if child.name == "kubelet_internal_checkpoint" or child.is_socket():
                            child.unlink()
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty: never anyone else's files
        record.unlink()


def _write(path: Path, text: str) -> None:
    """Write only a change: kube-proxy exits when its configuration file is rewritten."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        points.append(point.encode().decode("unicode_escape"))
    return points


def _kubectl(cluster: ClusterConfig, *args: str) -> subprocess.CompletedProcess[str]:
    from vibeplane_dev.cluster.local import LocalCluster

    return LocalCluster(cluster).kubectl(*args)


def build_real_node(
    cluster: ClusterConfig, progress: Progress = _noop
) -> tuple[NodeBinaries, list[Path]]:
    """Build (or find in the cache) the node's programs and its images (docker-archives)."""
    root = repository_root()
    binaries = ensure_node_binaries(root / NODE_SOURCE, cluster.cache, progress)
    progress("building the pause, CoreDNS and preview images (no container engine)")
    archives = [
        images.binary_image(cluster.cache, binaries.pause, PAUSE_IMAGE),
        images.binary_image(cluster.cache, binaries.coredns, COREDNS_IMAGE),
        images.preview_image(cluster.cache, root / "runtime" / "sandbox", PREVIEW_IMAGE),
    ]
    return binaries, archives


def start_real_node(cluster: ClusterConfig, progress: Progress = _noop) -> LocalNode:
    """Build (or find) the node's programs and images, and bring the node up."""
    binaries, archives = build_real_node(cluster, progress)

    def import_images(node: LocalNode) -> None:
        for archive in archives:
            if node.import_image(archive):
                progress(f"imported {archive.name} ({archive.stat().st_size // 2**20} MB)")

    node = LocalNode(cluster, binaries)
    node.up(import_images, progress)
    return node


def existing_real_node(cluster: ClusterConfig) -> LocalNode:
    """The real node of this cluster as built, building nothing (to inspect or stop it)."""
    binaries = node_binaries_if_built(repository_root() / NODE_SOURCE, cluster.cache)
    return LocalNode(cluster, binaries)


def stop_real_node(cluster: ClusterConfig, progress: Progress = _noop) -> list[str]:
    """Stop the node and remove its traces (a no-op where none ever ran)."""
    if not (cluster.home.parent / "node").exists():
        return []
    return existing_real_node(cluster).down(progress)


DEFAULT_NODE = "real"
"""Which node runs previews unless VIBEPLANE_NODE says: "real" (this module) or "standin"
(runtime/sandbox's vibeplane-node, runsc on the host's network). The one place to switch."""


def real_node_selected() -> bool:
    """Whether previews run on the real node or on the stand-in (VIBEPLANE_NODE)."""
    return os.environ.get("VIBEPLANE_NODE", DEFAULT_NODE) == "real"


def real_node_operator_environment(cluster: ClusterConfig) -> dict[str, str]:
    """The operator's settings for previews on the real node: reached from the machine by a
    NodePort on the node's address, fetching bundles from the object store's relay."""
    net = NodeNetwork.for_home(cluster.home.parent)
    return {
        "VIBEPLANE_PREVIEW_LOCAL_NODE": "false",
        "VIBEPLANE_PREVIEW_IMAGE": PREVIEW_IMAGE,
        "VIBEPLANE_PREVIEW_COMMAND": json.dumps(["python3", "-m", "vibeplane_sandbox.preview"]),
        "VIBEPLANE_PREVIEW_NODE_ADDRESS": net.node_ip,
        "VIBEPLANE_PREVIEW_INGRESS_CIDRS": f"{net.host_ip}/32",
        "VIBEPLANE_OBJECT_STORE_EGRESS": f"{net.host_ip}/32:{cluster.s3_port}",
        # Presigned URLs name the relay, which pods (and the operator) can reach.
        "VIBEPLANE_S3_ENDPOINT": f"http://{net.host_ip}:{cluster.s3_port}",
    }
