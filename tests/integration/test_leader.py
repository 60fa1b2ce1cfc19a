"""Two operator replicas with Lease-based leader election, on the real control plane.

How these tests share the session: every operator the session has running (the `operator`
fixture's, leader election off, and any other, see `OperatorProcess.running`) is stopped for a
test's duration and started again in a `finally`, so the tests after it find them as before.
While one ran it would be a writer that no Lease restrains: the claim "only the leader
reconciles" could not be checked beside it. The replicas here campaign
for a Lease of their own name (in the platform namespace, as in a real install), deleted at
the end, so no state of this test reaches another.

Who wrote what is read from the API server's own audit log (every write, with its userAgent):
each replica names itself in its User-Agent (`vibeplane-operator/<version> (<identity>)`), so
writes are attributed per replica even though both use the same credentials.

Measured and printed (run with -s): the failover time after `kill -9` of the leader (until a
Workspace created right after the kill is Ready), and the handover time after SIGTERM (until
the standby holds the Lease, and until a new Workspace is Ready).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import S3, ModelServer, OperatorProcess, operator_environment
from tests.integration.support import (
    GROUP,
    VERSION,
    AuditLog,
    create_object,
    find_condition,
    or_none,
    wait_for,
)
from vibeplane_dev.cluster.local import OPERATOR_USER, LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PLATFORM_NAMESPACE = "vibeplane-system"
LEASE_DURATION, RETRY_PERIOD = 15.0, 2.0  # the settings' defaults, which the replicas use
FAILOVER_LIMIT = 30.0  # issue 7: killing the leader hands over within 30 s
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class Replicas:
    """Operator replicas with leader election on, each under an identity of its own."""

    def __init__(
        self, cluster: LocalCluster, environment: dict[str, str], logs: Path, lease: str
    ) -> None:
        self.cluster = cluster
        self.environment = environment
        self.logs = logs
        self.lease = lease
        self.started: dict[str, OperatorProcess] = {}

    def start(self, name: str) -> tuple[str, OperatorProcess]:
        identity = f"{name}-{uuid.uuid4().hex[:6]}"
        process = OperatorProcess(
            self.cluster,
            self.logs / f"{identity}.log",
            {
                **self.environment,
                "VIBEPLANE_LEADER_ELECTION": "true",
                "VIBEPLANE_LEADER_ELECTION_LEASE": self.lease,
                "VIBEPLANE_LEADER_ELECTION_IDENTITY": identity,
            },
        )
        process.start()  # returns once /healthz answers: a standby answers it too
        self.started[identity] = process
        return identity, process

    def stop_all(self) -> None:
        for process in self.started.values():
            process.stop(kill=True)


def holder(api: ApiClient, lease: str) -> str | None:
    coordination = kubernetes.client.CoordinationV1Api(api)
    found = or_none(coordination.read_namespaced_lease, lease, PLATFORM_NAMESPACE)
    return None if found is None else (found.spec.holder_identity or "")


def leader_gauge(process: OperatorProcess) -> float:
    for line in process.metrics().splitlines():
        if line.startswith("vibeplane_leader "):
            return float(line.split()[1])
    raise AssertionError("no vibeplane_leader metric")


def healthz(process: OperatorProcess) -> str:
    url = f"http://127.0.0.1:{process.liveness_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: str = response.read().decode()
        return body


def writes_by(audit: AuditLog, mark: int, identity: str) -> list[dict[str, Any]]:
    """Write requests (any outcome) sent by the replica `identity` after `mark`."""
    return [
        event
        for event in audit.events_since(mark)
        if event.get("stage") == "ResponseComplete"
        and event.get("verb") in WRITE_VERBS
        and event.get("user", {}).get("username") == OPERATOR_USER
        and f"({identity})" in event.get("userAgent", "")
    ]


def touches(event: dict[str, Any], workspace: str) -> bool:
    """Whether a write was to the Workspace or to anything in its namespace."""
    ref = event.get("objectRef") or {}
    return (ref.get("resource") == "workspaces" and ref.get("name") == workspace) or (
        ref.get("namespace") == f"ws-{workspace}"
        or (ref.get("resource") == "namespaces" and ref.get("name") == f"ws-{workspace}")
    )


def when(event: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(event[field])


def assert_one_after_the_other(
    before: list[dict[str, Any]], after: list[dict[str, Any]], what: str
) -> None:
    """Every write of `before` was answered before the first write of `after` arrived."""
    assert before, f"{what}: the first replica wrote nothing"
    assert after, f"{what}: the second replica wrote nothing"
    last = max(when(event, "stageTimestamp") for event in before)
    first = min(when(event, "requestReceivedTimestamp") for event in after)
    assert last < first, f"{what}: writes overlap ({last} >= {first})"


def ready(api: ApiClient, name: str) -> bool:
    custom = kubernetes.client.CustomObjectsApi(api)
    obj = or_none(custom.get_cluster_custom_object, GROUP, VERSION, "workspaces", name)
    condition = find_condition(obj, "Ready") if obj else None
    return bool(condition and condition["status"] == "True")


@pytest.fixture
def replicas(
    cluster: LocalCluster,
    api: ApiClient,
    s3: S3,
    model_server: ModelServer,
    preview_node: str,  # up first: the environment names its relays on the real node
    without_other_operators: None,
    tmp_path: Path,
) -> Iterator[Replicas]:
    """Replicas campaigning for a Lease of this test's own; killed, and the Lease deleted,
    after it."""
    lease = f"vibeplane-operator-test-{uuid.uuid4().hex[:6]}"
    environment = operator_environment(s3, model_server)
    started = Replicas(cluster, environment, tmp_path, lease)
    try:
        yield started
    finally:
        started.stop_all()
        coordination = kubernetes.client.CoordinationV1Api(api)
        or_none(coordination.delete_namespaced_lease, lease, PLATFORM_NAMESPACE)


@pytest.fixture
def workspaces(api: ApiClient) -> Iterator[list[str]]:
    """Names of Workspaces the test creates; deleted after it."""
    created: list[str] = []
    yield created
    custom = kubernetes.client.CustomObjectsApi(api)
    for name in created:
        or_none(custom.delete_cluster_custom_object, GROUP, VERSION, "workspaces", name)


def new_workspace(api: ApiClient, workspaces: list[str]) -> str:
    name = f"w{uuid.uuid4().hex[:8]}"
    create_object(api, "Workspace", name, {"displayName": "leader election"})
    workspaces.append(name)
    return name


def test_one_leader_reconciles_and_hands_over_on_kill_and_on_sigterm(
    api: ApiClient, audit: AuditLog, replicas: Replicas, workspaces: list[str]
) -> None:
    lease = replicas.lease
    mark = audit.mark()
    # ---- two replicas, one leader -------------------------------------------------------
    first, first_process = replicas.start("replica-a")
    wait_for(lambda: holder(api, lease) == first, timeout=30, what=f"{first} to lead")
    second, second_process = replicas.start("replica-b")
    # The leader's /healthz is Kopf's now (the standby server gave the port up); the
    # standby's is the standby server's.
    wait_for(lambda: "standby" not in healthz(first_process), timeout=30, what="Kopf's /healthz")
    assert '"role": "standby"' in healthz(second_process)

    workspace = new_workspace(api, workspaces)
    wait_for(lambda: ready(api, workspace), timeout=60, what=f"Workspace {workspace} Ready")
    time.sleep(3 * RETRY_PERIOD)  # a few more attempts of the standby
    assert leader_gauge(first_process) == 1
    assert leader_gauge(second_process) == 0
    assert holder(api, lease) == first
    assert writes_by(audit, mark, second) == [], "the standby wrote"
    leader_writes = writes_by(audit, mark, first)
    assert [event for event in leader_writes if touches(event, workspace)], (
        "the leader did not reconcile the Workspace"
    )

    # ---- kill -9 the leader: the standby takes over after the lease expires --------------
    assert first_process.process is not None
    killed_at = time.monotonic()
    first_process.stop(kill=True)
    after_kill = new_workspace(api, workspaces)
    wait_for(lambda: holder(api, lease) == second, timeout=40, what=f"{second} to lead")
    leading_after = time.monotonic() - killed_at
    wait_for(lambda: ready(api, after_kill), timeout=60, what=f"Workspace {after_kill} Ready")
    failover = time.monotonic() - killed_at
    print(
        f"\nkill -9: {second} held the Lease {leading_after:.1f} s after the kill; "
        f"Workspace {after_kill} (created right after the kill) Ready after {failover:.1f} s"
    )
    # Not before the lease expired on the standby's clock: it cannot have seen the last
    # renewal before it was made, at most a retry period before the kill.
    assert leading_after >= LEASE_DURATION - RETRY_PERIOD - 1.0
    assert failover < FAILOVER_LIMIT
    assert leader_gauge(second_process) == 1
    first_writes, second_writes = writes_by(audit, mark, first), writes_by(audit, mark, second)
    assert not [event for event in first_writes if touches(event, after_kill)]
    assert [event for event in second_writes if touches(event, after_kill)]
    # Never both at once: every write of the dead leader, to any object (the Lease
    # included), was answered before the new leader sent its first.
    assert_one_after_the_other(first_writes, second_writes, "after kill -9")

    # ---- SIGTERM: the leader releases the Lease, the standby takes it at once ------------
    third_since = audit.mark()
    third, third_process = replicas.start("replica-c")
    time.sleep(3 * RETRY_PERIOD)
    assert writes_by(audit, third_since, third) == [], "the new standby wrote"
    assert leader_gauge(third_process) == 0
    assert second_process.process is not None
    terminated = second_process.process
    signalled_at = time.monotonic()
    terminated.terminate()
    # Created while the leader stops: it still holds the Lease until its in-flight reconciles
    # are done, so either replica may reconcile this one, but never both at once (below).
    during_stop = new_workspace(api, workspaces)
    wait_for(lambda: holder(api, lease) == third, timeout=40, what=f"{third} to lead")
    handover = time.monotonic() - signalled_at
    wait_for(lambda: ready(api, during_stop), timeout=60, what=f"Workspace {during_stop} Ready")
    ready_after = time.monotonic() - signalled_at
    assert terminated.wait(timeout=30) == 0
    print(
        f"SIGTERM: {third} held the Lease {handover:.1f} s after the signal; "
        f"Workspace {during_stop} (created right after the signal) Ready after {ready_after:.1f} s"
    )
    assert f"{second} released it" in second_process.log.read_text()
    # Released, not expired: faster than a lease duration even counting Kopf's shutdown and
    # the in-flight reconciles it waits for.
    assert handover < LEASE_DURATION
    assert leader_gauge(third_process) == 1
    after_handover = new_workspace(api, workspaces)
    wait_for(lambda: ready(api, after_handover), timeout=60, what=f"Workspace {after_handover}")
    second_writes, third_writes = writes_by(audit, mark, second), writes_by(audit, mark, third)
    assert [event for event in third_writes if touches(event, after_handover)]
    assert not [event for event in second_writes if touches(event, after_handover)]
    assert_one_after_the_other(second_writes, third_writes, "after SIGTERM")


def test_a_frozen_leader_that_wakes_after_a_takeover_exits_at_once(
    api: ApiClient, audit: AuditLog, replicas: Replicas, workspaces: list[str]
) -> None:
    """SIGSTOP stands for a leader cut off for longer than its lease (a paused VM, a node that
    stops answering): a standby takes over; when the old leader wakes it must not act on the
    leadership it lost. It exits (code 1, client-go's OnStoppedLeading) on its own clock."""
    lease = replicas.lease
    mark = audit.mark()
    first, first_process = replicas.start("replica-a")
    wait_for(lambda: holder(api, lease) == first, timeout=30, what=f"{first} to lead")
    second, _ = replicas.start("replica-b")
    assert first_process.process is not None
    frozen = first_process.process
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: holder(api, lease) == second, timeout=40, what=f"{second} to lead")
        workspace = new_workspace(api, workspaces)
        wait_for(lambda: ready(api, workspace), timeout=60, what=f"Workspace {workspace} Ready")
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert frozen.wait(timeout=15) == 1
    assert "leadership lost (not renewed for 10 s)" in first_process.log.read_text()
    first_writes, second_writes = writes_by(audit, mark, first), writes_by(audit, mark, second)
    assert not [event for event in first_writes if touches(event, workspace)]
    assert_one_after_the_other(first_writes, second_writes, "after the frozen leader woke")


def test_the_single_operator_without_election_counts_as_the_leader(
    operator: OperatorProcess,
) -> None:
    """The session's operator runs without election (the local default): it reconciles, so
    its gauge says so, and dashboards summing vibeplane_leader see one either way."""
    assert leader_gauge(operator) == 1
