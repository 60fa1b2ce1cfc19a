"""Simulated nodes for benchmarks: KWOK's controller against the local control plane.

KWOK (sigs.k8s.io/kwok, built from the Go module proxy like the other tools) plays the kubelet
of nodes that do not exist: it marks the nodes it manages Ready and every pod bound to them
Running and Ready, with KWOK's default "fast" stages. Pods get addresses from a private range
nothing ever dials (the benchmark turns the operator's activity polling off), and the
controller serves nothing (no --server-address), so all traffic stays on loopback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kubernetes
from kubernetes.client.exceptions import ApiException

from vibeplane_dev.cluster.build import ensure_tool
from vibeplane_dev.cluster.local import LocalCluster

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
PODS_PER_NODE = 110


def fake_node(name: str) -> dict:  # type: ignore[type-arg]
    """A node KWOK manages: roomy, so the quota, not the node, is what limits a workspace."""
    capacity = {"cpu": "64", "memory": "256Gi", "pods": str(PODS_PER_NODE)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name},
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity},
    }


@contextmanager
def kwok_nodes(local: LocalCluster, count: int, log: Path) -> Iterator[list[str]]:
    """`count` fake nodes, Ready, for the duration of the block; removed after."""
    binary = ensure_tool("kwok", local.config.cache)
    config = log.with_suffix(".yaml")
    config.write_text("")  # not ~/.kwok/kwok.yaml: nothing of this machine's leaks in
    core = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(local.config.admin_kubeconfig))
    )
    names = [f"kwok-{i}" for i in range(count)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                str(binary),
                f"--kubeconfig={local.config.admin_kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--node-ip=127.0.0.1",
                "--cidr=10.96.0.1/16",
                "--node-lease-duration-seconds=40",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        for name in names:
            try:
                core.create_node(fake_node(name))
            except ApiException as error:
                if error.status != 409:
                    raise
        yield names
    finally:
        for name in names:
            try:
                core.delete_node(name)
            except ApiException as error:
                if error.status != 404:
                    raise
        process.terminate()
        process.wait(timeout=30)


def nodes_ready(local: LocalCluster, names: list[str]) -> bool:
    core = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(local.config.admin_kubeconfig))
    )
    ready = 0
    for node in core.list_node(label_selector="type=kwok").items:
        if node.metadata.name in names and any(
            c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
        ):
            ready += 1
    return ready == len(names)
