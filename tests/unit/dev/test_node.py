"""The real node's decisions: addresses, and the settings its components run with."""

from __future__ import annotations

import ipaddress
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from vibeplane_dev.cluster.config import ClusterConfig
from vibeplane_dev.cluster.node import (
    CLUSTER_DNS,
    POD_CIDR,
    SERVICE_CIDR,
    VETH_RANGE,
    LocalNode,
    NodeError,
    NodeNetwork,
    check_free_disk,
)
from vibeplane_dev.cluster.nodeaddons import COREFILE
from vibeplane_dev.cluster.nodebuild import GVISOR_SHIM_PATCH, NodeBinaries


def _node(tmp_path: Path) -> LocalNode:
    config = ClusterConfig(
        home=tmp_path / "home" / "cluster",
        cache=tmp_path / "cache",
        apiserver_port=16999,
        etcd_client_port=1,
        etcd_peer_port=2,
        s3_port=3,
    )
    binaries = NodeBinaries(
        node=tmp_path / "bin" / "vibeplane-node",
        pause=tmp_path / "bin" / "pause",
        containerd_dir=tmp_path / "containerd",
        gvisor_dir=tmp_path / "gvisor",
        kube_router=tmp_path / "bin" / "kube-router",
        coredns=tmp_path / "bin" / "coredns",
    )
    return LocalNode(config, binaries)


def test_each_home_gets_its_own_veth_pair_in_the_reserved_range(tmp_path: Path) -> None:
    one, other = NodeNetwork.for_home(tmp_path / "a"), NodeNetwork.for_home(tmp_path / "b")
    assert one == NodeNetwork.for_home(tmp_path / "a")  # stable across runs
    assert one.slot != other.slot
    for network in (one, other):
        host, node = ipaddress.ip_address(network.host_ip), ipaddress.ip_address(network.node_ip)
        assert host in VETH_RANGE
        assert node in VETH_RANGE
        assert ipaddress.ip_network(f"{network.host_ip}/30", strict=False) == ipaddress.ip_network(
            f"{network.node_ip}/30", strict=False
        )
        assert len(network.host_interface) <= 15
        assert len(network.node_interface) <= 15
    # Nothing the cluster uses inside overlaps the veth range.
    for cidr in (POD_CIDR, SERVICE_CIDR):
        assert not ipaddress.ip_network(cidr).overlaps(VETH_RANGE)


def test_kubelet_authenticates_everyone_and_leaves_host_sysctls_alone(tmp_path: Path) -> None:
    node = _node(tmp_path)
    config = node._kubelet_config()
    assert config["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": True},
        "x509": {"clientCAFile": str(node.cluster.pki / "ca.crt")},
    }
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["readOnlyPort"] == 0
    assert config["address"] == node.network.node_ip
    assert config["protectKernelDefaults"] is True  # never writes host-global sysctls
    assert config["clusterDNS"] == [CLUSTER_DNS]
    assert str(config["cgroupRoot"]).startswith("/vibeplane-")
    assert str(config["podLogsDir"]).startswith(str(node.home))


def test_the_kubelet_evicts_on_an_absolute_amount_of_free_disk(tmp_path: Path) -> None:
    eviction = _node(tmp_path)._kubelet_config()["evictionHard"]
    # A share of the disk would be gigabytes on the large disk the node shares with the machine.
    assert isinstance(eviction, dict)
    assert not any(str(value).endswith("%") for value in eviction.values())


def test_a_node_with_too_little_disk_is_refused_with_the_reason(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    check_free_disk(tmp_path, minimum=1)
    with pytest.raises(NodeError, match=r"GiB free on the filesystem of .*image builds"):
        check_free_disk(tmp_path, minimum=free + 1024**4)


def test_containerd_keeps_its_state_in_the_node_and_runs_gvisor(tmp_path: Path) -> None:
    node = _node(tmp_path)
    config = tomllib.loads(node._containerd_config())
    assert config["root"].startswith(str(node.home))
    assert config["state"].startswith(str(node.home))
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    runsc = runtime["containerd"]["runtimes"]["runsc"]
    assert runsc["runtime_type"] == "io.containerd.runsc.v1"
    assert runtime["cni"]["conf_dir"].startswith(str(node.home))
    pinned = config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"]
    assert pinned.startswith("vibeplane.local/")


def test_kube_proxy_leaves_conntrack_and_localhost_alone(tmp_path: Path) -> None:
    config = _node(tmp_path)._kube_proxy_config()
    assert config["conntrack"]["maxPerCore"] == 0  # type: ignore[index]
    assert config["iptables"] == {"localhostNodePorts": False}
    assert config["nodePortAddresses"] == [f"{_node(tmp_path).network.node_ip}/32"]


def test_the_gvisor_patch_only_tolerates_a_refused_oom_score() -> None:
    _, old, new = GVISOR_SHIM_PATCH
    assert new.startswith(old.removesuffix(" {"))
    assert "os.IsPermission(err)" in new


def test_coredns_is_built_with_every_plugin_the_corefile_uses() -> None:
    """hack/coredns compiles in only the plugins it lists: a Corefile directive it lacks would
    make CoreDNS refuse to start ("unknown directive") on the node."""
    main = (Path(__file__).resolve().parents[3] / "hack" / "coredns" / "main.go").read_text()
    listed = re.search(r"directives = \[\]string\{([^}]*)\}", main)
    assert listed is not None
    built = set(re.findall(r'"([a-z0-9_]+)"', listed.group(1)))
    imported = set(re.findall(r'"github.com/coredns/coredns/plugin/([a-z0-9_]+)"', main))
    assert built == imported
    # Server blocks open with `zone:port {`; inside, each line starts with a directive.
    used = {
        line.split()[0]
        for line in COREFILE.splitlines()
        if line.startswith("    ") and not line.startswith("     ") and line.split()[0] != "}"
    }
    assert used == {"errors", "ready", "kubernetes", "cache", "loop", "reload"}
    assert used <= built
