"""Pure status builders: kubelet's phase rules, conditions, the Node and its Lease."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from vibeplane_sandbox import manifests
from vibeplane_sandbox.podstatus import (
    Attempt,
    ContainerRuntime,
    container_status,
    phase,
    pod_status,
    status_patch,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = "2026-01-01T00:00:00Z"


def _pod(policy: str = "Always", status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "n", "uid": "u"},
        "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "i"}]},
        "status": status
        or {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": T0}],
        },
    }


def running(ready: bool = True) -> ContainerRuntime:
    attempt = Attempt(0, "u-c-0", started_at=T0)
    return ContainerRuntime("c", "i", current=attempt, ready=ready, started=True)


def exited(code: int, reason: str | None = None, waiting: str | None = None) -> ContainerRuntime:
    attempt = Attempt(2, "u-c-2", T0, T0, exit_code=code, reason=reason)
    return ContainerRuntime("c", "i", current=attempt, restart_count=2, waiting_reason=waiting)


def test_a_ready_container_makes_a_ready_running_pod() -> None:
    status = pod_status(_pod(), [running()], now=NOW)
    assert status["phase"] == "Running"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["PodScheduled"]["lastTransitionTime"] == T0
    assert status["podIP"] == status["hostIP"] == "127.0.0.1"
    assert status["qosClass"] == "BestEffort"
    assert status["containerStatuses"][0]["state"] == {"running": {"startedAt": T0}}


def test_an_unready_container_says_which() -> None:
    status = pod_status(_pod(), [running(ready=False)], now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == "containers with unready status: [c]"


def test_transition_times_move_only_on_change() -> None:
    first = pod_status(_pod(), [running(ready=False)], now=NOW)
    later = datetime(2026, 1, 2, 3, 9, 9, tzinfo=UTC)
    same = pod_status(_pod(status=first), [running(ready=False)], now=later)
    assert same == first
    flipped = pod_status(_pod(status=first), [running(ready=True)], now=later)
    ready = next(c for c in flipped["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-02T03:09:09Z"


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [
        ("Never", 3, "Failed"),
        ("Never", 0, "Succeeded"),
        ("OnFailure", 0, "Succeeded"),
        ("OnFailure", 1, "Running"),
        ("Always", 0, "Running"),
    ],
)
def test_phase_after_exit(policy: str, code: int, expected: str) -> None:
    assert pod_status(_pod(policy), [exited(code)], now=NOW)["phase"] == expected


def test_terminated_state_has_exit_code_and_reason() -> None:
    state = container_status(exited(3))["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (3, "Error")
    oom = container_status(exited(137, "OOMKilled"))["state"]["terminated"]
    assert oom["reason"] == "OOMKilled"
    assert container_status(exited(0))["state"]["terminated"]["reason"] == "Completed"


def test_crash_loop_shows_waiting_with_the_last_termination() -> None:
    status = container_status(exited(1, waiting="CrashLoopBackOff"))
    assert status["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["restartCount"] == 2
    assert phase("Always", [status]) == "Running"


def test_no_attempt_yet_is_container_creating_and_pending() -> None:
    status = pod_status(_pod(), [ContainerRuntime("c", "i")], now=NOW)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}


def test_terminal_phase_is_never_left() -> None:
    failed = pod_status(_pod("Never"), [exited(3)], now=NOW)
    again = pod_status(_pod("Never", status=failed), [running()], now=NOW)
    assert again["phase"] == "Failed"


def test_rejection_fails_the_pod_with_a_reason() -> None:
    status = pod_status(_pod(), [], now=NOW, rejected=("UnsupportedPodSpec", "hostPath"))
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "UnsupportedPodSpec",
        "hostPath",
    )


def test_status_patch_nulls_dropped_keys_and_skips_equal() -> None:
    assert status_patch({"phase": "Running"}, {"phase": "Running"}) is None
    assert status_patch({"phase": "Failed", "reason": "X"}, {"phase": "Running"}) == {
        "phase": "Running",
        "reason": None,
    }


def _facts() -> manifests.NodeFacts:
    return manifests.NodeFacts(
        cpu="2",
        memory="8Gi",
        pods=110,
        kubelet_port=10250,
        kernel_version="6.1",
        os_image="Debian",
        runtime_version="0.0~20221219.0",
        architecture="amd64",
        machine_id="m",
        boot_id="b",
    )


def test_node_carries_the_contract_labels_and_taint() -> None:
    node = manifests.node("vibeplane-local")
    assert node["metadata"]["labels"]["vibeplane.io/local-node"] == "true"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["spec"]["taints"] == [
        {"key": "vibeplane.io/sandbox", "value": "gvisor", "effect": "NoSchedule"}
    ]
    placement = manifests.local_pod_placement()
    assert placement["tolerations"][0]["key"] == manifests.TAINT["key"]
    assert placement["runtimeClassName"] == manifests.runtime_class()["metadata"]["name"]
    assert manifests.runtime_class()["handler"] == "runsc"


def test_merged_taints_keep_others_once() -> None:
    other = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    merged = manifests.merged_taints([other, dict(manifests.TAINT)])
    assert merged == [other, manifests.TAINT]


def test_node_status_is_ready_with_the_kubelet_endpoint() -> None:
    status = manifests.node_status(_facts(), NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastHeartbeatTime"]) == ("True", "2026-01-02T03:04:05Z")
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert status["allocatable"] == {"cpu": "2", "memory": "8Gi", "pods": "110"}
    kept = manifests.with_transition_times(
        status, [{"type": "Ready", "status": "True", "lastTransitionTime": T0}], NOW
    )
    assert next(c for c in kept["conditions"] if c["type"] == "Ready")["lastTransitionTime"] == T0


def test_lease_is_owned_by_the_node() -> None:
    lease = manifests.lease("vibeplane-local", "uid-1", NOW)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.000000Z"
    assert lease["spec"]["leaseDurationSeconds"] == 40
