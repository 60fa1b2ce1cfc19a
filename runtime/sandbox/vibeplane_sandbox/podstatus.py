"""What the node reports about a pod: pure functions from runtime facts to `pod.status`.

The rules are kubelet's (pkg/kubelet/kubelet_pods.go getPhase and the status manager), so
controllers and kstatus read these pods exactly as they would read a real node's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
    "PodScheduled",
)
IMAGE_ID = "vibeplane.io/host-rootfs"  # no image is pulled: the host's / is the root filesystem


def timestamp(moment: datetime) -> str:
    """RFC 3339 with seconds, as Kubernetes writes metav1.Time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Attempt:
    """One run of a container: one runsc sandbox."""

    number: int
    sandbox_id: str
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.finished_at is None

    @property
    def terminated(self) -> bool:
        return self.finished_at is not None

    def terminated_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "exitCode": self.exit_code if self.exit_code is not None else 255,
            "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": f"runsc://{self.sandbox_id}",
        }
        if self.message:
            state["message"] = self.message
        return state


@dataclass(frozen=True)
class ContainerRuntime:
    """What the node knows about one container of a pod right now."""

    name: str
    image: str
    current: Attempt | None = None
    previous: Attempt | None = None
    restart_count: int = 0
    # Set while the container is not running and will (re)start: ContainerCreating,
    # CrashLoopBackOff, CreateContainerConfigError.
    waiting_reason: str | None = None
    waiting_message: str | None = None
    ready: bool = False
    started: bool = False


def container_status(runtime: ContainerRuntime) -> dict[str, Any]:
    """One entry of status.containerStatuses."""
    current, previous = runtime.current, runtime.previous
    last: Attempt | None
    if current is not None and current.running:
        state: dict[str, Any] = {"running": {"startedAt": current.started_at}}
        last = previous
    elif current is not None and current.terminated and runtime.waiting_reason is None:
        state = {"terminated": current.terminated_state()}
        last = previous
    else:
        waiting: dict[str, Any] = {"reason": runtime.waiting_reason or "ContainerCreating"}
        if runtime.waiting_message:
            waiting["message"] = runtime.waiting_message
        state = {"waiting": waiting}
        last = current if current is not None and current.terminated else previous
    status: dict[str, Any] = {
        "name": runtime.name,
        "state": state,
        "lastState": {"terminated": last.terminated_state()} if last and last.terminated else {},
        "ready": bool(runtime.ready and current is not None and current.running),
        "restartCount": runtime.restart_count,
        "image": runtime.image,
        "imageID": IMAGE_ID,
        "started": bool(runtime.started and current is not None and current.running),
    }
    if current is not None and (current.running or current.terminated):
        status["containerID"] = f"runsc://{current.sandbox_id}"
    return status


def phase(restart_policy: str, statuses: Sequence[Mapping[str, Any]]) -> str:
    """kubelet's getPhase for pods without init containers."""
    waiting = running = stopped = succeeded = 0
    for status in statuses:
        state = status["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif status.get("lastState", {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting or not statuses:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if restart_policy == "OnFailure":
        return "Succeeded" if stopped == succeeded else "Running"
    return "Succeeded" if stopped == succeeded else "Failed"


def _condition(
    kind: str,
    true: bool,
    previous: Mapping[str, Mapping[str, Any]],
    now: str,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    value = "True" if true else "False"
    before = previous.get(kind) or {}
    condition: dict[str, Any] = {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": before.get("lastTransitionTime")
        if before.get("status") == value
        else now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def pod_status(
    pod: Mapping[str, Any],
    containers: Sequence[ContainerRuntime],
    *,
    now: datetime,
    host_ip: str = "127.0.0.1",
    rejected: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The whole status the node writes for `pod`.

    `rejected` (reason, message) marks a pod the node refused: phase Failed, as kubelet's
    admission does. A terminal phase already written is never left.
    """
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    stamp = timestamp(now)
    previous = {c["type"]: c for c in old.get("conditions") or []}
    statuses = [container_status(runtime) for runtime in containers]
    restart_policy = spec.get("restartPolicy", "Always")
    if old.get("phase") in ("Succeeded", "Failed"):
        current_phase = old["phase"]
    elif rejected is not None:
        current_phase = "Failed"
    else:
        current_phase = phase(restart_policy, statuses)
    terminal = current_phase in ("Succeeded", "Failed")

    unready = [s["name"] for s in statuses if not s["ready"]]
    all_ready = current_phase == "Running" and not unready
    if terminal:
        ready_reason, ready_message = "PodCompleted", None
    elif unready:
        ready_reason = "ContainersNotReady"
        ready_message = f"containers with unready status: [{' '.join(unready)}]"
    else:
        ready_reason, ready_message = None, None
    sandbox_up = any(runtime.current is not None for runtime in containers) and not terminal

    conditions = {
        "PodReadyToStartContainers": _condition(
            "PodReadyToStartContainers", sandbox_up, previous, stamp
        ),
        "Initialized": _condition("Initialized", True, previous, stamp),
        "ContainersReady": _condition(
            "ContainersReady", all_ready, previous, stamp, ready_reason, ready_message
        ),
        "Ready": _condition("Ready", all_ready, previous, stamp, ready_reason, ready_message),
    }
    if "PodScheduled" in previous:
        conditions["PodScheduled"] = dict(previous["PodScheduled"])
    status: dict[str, Any] = {
        "phase": current_phase,
        "conditions": [conditions[kind] for kind in CONDITION_ORDER if kind in conditions],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": old.get("startTime") or stamp,
        "containerStatuses": statuses,
    }
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    if rejected is not None and old.get("phase") not in ("Succeeded",):
        status["reason"], status["message"] = rejected
    elif old.get("reason") or old.get("message"):
        status["reason"], status["message"] = old.get("reason"), old.get("message")
    return status


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning `old` status into `new`, or None when they are equal."""
    if dict(old) == dict(new):
        return None
    patch: dict[str, Any] = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
