"""The cluster objects the node owns (Node, its status, its Lease, the RuntimeClass): pure.

Only pods that tolerate TAINT land on the node; preview pods carry
`runtimeClassName: gvisor`, TOLERATION and the node selector LOCAL_NODE_LABEL="true" when
the platform runs locally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vibeplane_sandbox.podstatus import timestamp

NODE_NAME = "vibeplane-local"
# Copies of `vibeplane.wellknown` (tests/unit/test_wellknown.py keeps them equal).
LOCAL_NODE_LABEL = "vibeplane.io/local-node"
TAINT = {"key": "vibeplane.io/sandbox", "value": "gvisor", "effect": "NoSchedule"}
TOLERATION = {
    "key": "vibeplane.io/sandbox",
    "operator": "Equal",
    "value": "gvisor",
    "effect": "NoSchedule",
}
RUNTIME_CLASS = "gvisor"
RUNTIME_HANDLER = "runsc"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40  # kubelet's: the node-lifecycle controller's grace period matches it
KUBELET_VERSION = "v1.35.4-vibeplane"


@dataclass(frozen=True)
class NodeFacts:
    """What the agent measured about the machine; the inputs of node_status."""

    cpu: str
    memory: str
    pods: int
    kubelet_port: int
    kernel_version: str
    os_image: str
    runtime_version: str
    architecture: str
    machine_id: str
    boot_id: str
    address: str = "127.0.0.1"


def node(name: str, architecture: str = "amd64") -> dict[str, Any]:
    """The Node as registered: labels the scheduler selects on, and the sandbox taint."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                LOCAL_NODE_LABEL: "true",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": architecture,
                "kubernetes.io/hostname": name,
            },
            "annotations": {
                "vibeplane.io/node-agent": "vibeplane-node (kubelet + containerd + runsc stand-in)"
            },
        },
        "spec": {"taints": [dict(TAINT)]},
    }


def merged_taints(existing: list[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Existing taints (the node-lifecycle controller's) plus ours, without duplicates."""
    taints = [dict(t) for t in existing or [] if t.get("key") != TAINT["key"]]
    return [*taints, dict(TAINT)]


def node_status(facts: NodeFacts, now: datetime, ready: bool = True) -> dict[str, Any]:
    """Status the heartbeat writes: conditions, capacity, the kubelet endpoint for logs."""
    stamp = timestamp(now)

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
        }

    resources = {"cpu": facts.cpu, "memory": facts.memory, "pods": str(facts.pods)}
    return {
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no pressure"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "no pressure"),
            condition(
                "Ready",
                "True" if ready else "False",
                "KubeletReady" if ready else "KubeletNotReady",
                f"vibeplane-node is posting ready status (runsc {facts.runtime_version})"
                if ready
                else "runsc is not usable on this machine",
            ),
        ],
        # Only an InternalIP: the API server dials it (Hostname would need DNS) for logs.
        "addresses": [{"type": "InternalIP", "address": facts.address}],
        "capacity": resources,
        "allocatable": resources,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": facts.kubelet_port}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.machine_id,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": facts.os_image,
            "containerRuntimeVersion": f"runsc://{facts.runtime_version}",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": facts.architecture,
        },
    }


def with_transition_times(
    status: dict[str, Any], previous: list[Mapping[str, Any]] | None, now: datetime
) -> dict[str, Any]:
    """Keep each condition's lastTransitionTime unless its status changed."""
    before = {c.get("type"): c for c in previous or []}
    for item in status["conditions"]:
        old = before.get(item["type"]) or {}
        same = old.get("status") == item["status"] and old.get("lastTransitionTime")
        item["lastTransitionTime"] = old["lastTransitionTime"] if same else timestamp(now)
    return status


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime, the Lease's renewTime format."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease(name: str, node_uid: str, now: datetime) -> dict[str, Any]:
    """The node's heartbeat Lease in kube-node-lease, owned by the Node like kubelet's."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": micro_time(now),
        },
    }


def runtime_class() -> dict[str, Any]:
    """RuntimeClass gvisor -> handler runsc, as on a real cluster with containerd's shim."""
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS, "labels": {"app.kubernetes.io/part-of": "vibeplane"}},
        "handler": RUNTIME_HANDLER,
    }


def local_pod_placement() -> dict[str, Any]:
    """The pod-spec fields a preview carries to run on this node (merged into pod.spec)."""
    return {
        "runtimeClassName": RUNTIME_CLASS,
        "nodeSelector": {LOCAL_NODE_LABEL: "true"},
        "tolerations": [dict(TOLERATION)],
    }
