"""Leader election on a `coordination.k8s.io/v1` Lease, the way client-go's leaderelection does it.

Kopf's peering only pauses operators that see a higher-priority peer; it elects nobody and
gives no guarantee that two replicas never act at once. This module does, with the protocol of
client-go (`tools/leaderelection`), which kube-controller-manager and kube-scheduler use:

- One Lease names the holder (`holderIdentity`), when it last renewed (`renewTime`) and for
  how long that renewal holds (`leaseDurationSeconds`).
- A candidate takes the Lease when it does not exist, when nobody holds it (a released Lease),
  or when it has expired. Expired is judged on the candidate's own clock: the lease duration
  counted from the moment *this* process last saw the Lease change, never from the remote
  `renewTime`, so clocks that disagree between nodes cannot make two leaders.
- Every write is an update carrying the resourceVersion that was read (optimistic
  concurrency): when two candidates race, the API server accepts one and answers the other
  409 Conflict, and the loser stays a standby.
- The leader renews every retry period. If it has not renewed for `renew_deadline` (shorter
  than the lease duration), it has lost leadership and stops at once; a standby cannot take
  over before the full lease duration has passed on its clock, so the old leader is gone by
  then.
- On a graceful stop the leader releases the Lease (empty holder), so a standby takes over on
  its next attempt instead of waiting for the lease to expire (client-go's ReleaseOnCancel).

The decisions are pure functions of the observed Lease, the time and the identity (`decide`,
`next_record`, `released`, `leadership_lost`) and are unit-tested without a cluster; `LeaseLock`
is the only part that talks to the API server.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import kubernetes
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vibeplane.controller.clock import SYSTEM_CLOCK, Clock
from vibeplane.metrics import LEADER
from vibeplane.timestamps import micro_time

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
JITTER_FACTOR = 1.2
"""A standby waits retry_period * (1 + up to this) between attempts, client-go's factor: the
standbys of one Lease do not all ask at the same instant."""


@dataclass(frozen=True)
class ElectionTiming:
    """How long a lease holds, how long a leader may go without renewing, how often to try."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # client-go refuses the same: a leader must have given up before a standby may take
        # over, and must get more than one attempt at renewing before it gives up.
        if not self.lease_duration > self.renew_deadline:
            raise ValueError(
                f"the lease duration ({self.lease_duration} s) must be longer than the renew "
                f"deadline ({self.renew_deadline} s)"
            )
        if not self.renew_deadline > JITTER_FACTOR * self.retry_period:
            raise ValueError(
                f"the renew deadline ({self.renew_deadline} s) must be longer than "
                f"{JITTER_FACTOR} x the retry period ({self.retry_period} s)"
            )
        if self.retry_period <= 0:
            raise ValueError("the retry period must be positive")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec, as election reads and writes it.

    Times stay the strings the API server returns (RFC 3339, microseconds): the election never
    compares remote times, it only notices whether the record changed.
    """

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> LeaseRecord:
        spec = spec or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Observation:
    """A Lease as this process last saw it.

    `seen_at` is when this process first saw this record (its monotonic clock): the start of
    the lease duration a standby waits out. It moves only when the record changes.
    """

    record: LeaseRecord
    resource_version: str
    seen_at: float


class Action(enum.Enum):
    """What one attempt does, given what it observed."""

    CREATE = "create"
    """There is no Lease: create it, held by us."""
    ACQUIRE = "acquire"
    """Nobody holds it, or its holder let it expire: take it over."""
    RENEW = "renew"
    """We hold it: renew."""
    WAIT = "wait"
    """Someone else holds a lease that has not expired: stand by."""


def observe(
    previous: Observation | None, record: LeaseRecord, resource_version: str, now: float
) -> Observation:
    """The new observation after reading `record` at `now` (monotonic seconds).

    The clock restarts only when the record differs from the one seen before, like client-go's
    observedTime: a holder that keeps renewing keeps changing renewTime, a dead one does not.
    """
    if previous is not None and previous.record == record:
        return replace(previous, resource_version=resource_version)
    return Observation(record, resource_version, now)


def expired(observation: Observation, now: float) -> bool:
    """Whether the lease's holder has not renewed for a whole lease duration, by our clock."""
    return observation.seen_at + observation.record.lease_duration_seconds <= now


def decide(observation: Observation | None, identity: str, now: float) -> Action:
    """What to do about the observed Lease (None: it does not exist)."""
    if observation is None:
        return Action.CREATE
    holder = observation.record.holder
    if holder == identity:
        return Action.RENEW
    if not holder or expired(observation, now):
        return Action.ACQUIRE
    return Action.WAIT


def next_record(
    current: LeaseRecord | None,
    action: Action,
    identity: str,
    timing: ElectionTiming,
    wall_time: str,
) -> LeaseRecord:
    """The record to write for `action` (CREATE, ACQUIRE or RENEW) at `wall_time`."""
    if action is Action.WAIT:
        raise ValueError("nothing is written while standing by")
    duration = max(1, round(timing.lease_duration))
    if action is Action.RENEW and current is not None:
        return replace(current, lease_duration_seconds=duration, renew_time=wall_time)
    transitions = 0 if current is None else current.transitions + 1
    return LeaseRecord(
        holder=identity,
        lease_duration_seconds=duration,
        acquire_time=wall_time,
        renew_time=wall_time,
        transitions=transitions,
    )


def released(current: LeaseRecord, wall_time: str) -> LeaseRecord:
    """The record a leader leaves when it stops: nobody holds it, so any standby takes it on
    its next attempt (client-go writes the same, with a 1 s duration)."""
    return replace(
        current,
        holder="",
        lease_duration_seconds=1,
        acquire_time=wall_time,
        renew_time=wall_time,
    )


def leadership_lost(last_renewed: float, now: float, timing: ElectionTiming) -> bool:
    """Whether a leader that last renewed at `last_renewed` (monotonic) must stop now."""
    return now - last_renewed >= timing.renew_deadline


class LeaseConflict(RuntimeError):
    """Someone else wrote the Lease between our read and our write (HTTP 409)."""


class LeaseLock:
    """The Lease on the API server: read it, create it, update it by resourceVersion."""

    def __init__(self, name: str, namespace: str, api: Callable[[], ApiClient]) -> None:
        self.name = name
        self.namespace = namespace
        self._api = api

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _coordination(self) -> Any:
        return kubernetes.client.CoordinationV1Api(self._api())

    def get(self, timeout: float) -> tuple[LeaseRecord, str] | None:
        """The Lease's record and resourceVersion, or None when there is no Lease."""
        try:
            lease = self._coordination().read_namespaced_lease(
                self.name, self.namespace, _request_timeout=timeout
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        plain = self._api().sanitize_for_serialization(lease)  # type: ignore[no-untyped-call]
        return LeaseRecord.from_spec(plain.get("spec")), str(plain["metadata"]["resourceVersion"])

    def _body(self, record: LeaseRecord, resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": metadata,
            "spec": record.to_spec(),
        }

    def create(self, record: LeaseRecord, timeout: float) -> str:
        """Create the Lease; its resourceVersion. LeaseConflict if it exists by now."""
        try:
            created = self._coordination().create_namespaced_lease(
                self.namespace, self._body(record, None), _request_timeout=timeout
            )
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict(str(self)) from error
            raise
        return str(created.metadata.resource_version)

    def update(self, record: LeaseRecord, resource_version: str, timeout: float) -> str:
        """Replace the Lease if it is still at `resource_version`; its new resourceVersion.
        LeaseConflict when it changed since."""
        try:
            updated = self._coordination().replace_namespaced_lease(
                self.name,
                self.namespace,
                self._body(record, resource_version),
                _request_timeout=timeout,
            )
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflict(str(self)) from error
            raise
        return str(updated.metadata.resource_version)


class Lock(Protocol):
    """What the elector needs of a Lease (LeaseLock on a real API server)."""

    def get(self, timeout: float) -> tuple[LeaseRecord, str] | None: ...
    def create(self, record: LeaseRecord, timeout: float) -> str: ...
    def update(self, record: LeaseRecord, resource_version: str, timeout: float) -> str: ...


def exit_at_once(reason: str) -> None:
    """Stop the process now, like client-go's OnStoppedLeading in kube-controller-manager:
    no cleanup handler, no in-flight reconcile, no generation may write once another replica
    can lead. The Deployment restarts the container, which comes back as a standby."""
    log.critical("leadership lost (%s): exiting now", reason)
    logging.shutdown()
    os._exit(1)


class LeaderElector:
    """Campaign for one Lease: block until leading, renew in a thread, release on a stop.

    `acquire` blocks until this process leads (or `stop` is set); then `start_renewing` keeps
    the Lease, calling `on_lost` (default: exit the process) when it cannot; `release` gives
    it up on a graceful stop. The `vibeplane_leader` gauge follows: 1 while leading.
    """

    def __init__(
        self,
        lock: Lock,
        identity: str,
        timing: ElectionTiming,
        on_lost: Callable[[str], None] = exit_at_once,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not identity:
            raise ValueError("a leader election identity must not be empty")
        self.lock = lock
        self.identity = identity
        self.timing = timing
        self._on_lost = on_lost
        self._clock = clock
        self._observation: Observation | None = None
        self._leading = False
        self._last_renewed = 0.0
        self._last_attempt = clock.monotonic()
        self._reported_holder: str | None = None
        self._stop_renewing = threading.Event()
        self._renewer: threading.Thread | None = None
        LEADER.set(0)

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def holder(self) -> str | None:
        """The holder as last observed ("" when released, None before the first read)."""
        return None if self._observation is None else self._observation.record.holder

    def healthy(self) -> bool:
        """Whether attempts are still being made: a standby whose loop hangs is not alive.
        The longest honest gap is a request that times out plus the longest wait between two
        attempts; twice that leaves room for a slow machine."""
        longest_gap = self.timing.renew_deadline + self.timing.retry_period * (1 + JITTER_FACTOR)
        return self._clock.monotonic() - self._last_attempt < 2 * longest_gap

    # ---- one attempt ---------------------------------------------------------------------

    def try_acquire_or_renew(self, timeout: float | None = None) -> bool:
        """Read the Lease and take or renew it if we may; whether we lead after this."""
        timeout = self.timing.renew_deadline if timeout is None else timeout
        try:
            return self._attempt(timeout)
        except ApiException as error:
            # Only a create is answered 404 (a missing Lease reads as None): no namespace.
            problem = "its namespace does not exist" if error.status == 404 else error.reason
            log.warning("Lease %s: attempt refused (%s): %s", self.lock, error.status, problem)
            return False
        except (HTTPError, OSError) as error:
            # The API server is unreachable: nothing changed, try again later (the renew loop
            # gives up leadership once this lasts past the renew deadline).
            log.warning("Lease %s: attempt failed: %s", self.lock, error)
            return False
        finally:
            self._last_attempt = self._clock.monotonic()

    def _attempt(self, timeout: float) -> bool:
        started = self._clock.monotonic()
        current = self.lock.get(timeout)
        # After the read: a change we see now was written before now, so counting the lease
        # from here can only make a standby wait longer, never shorter.
        read_at = self._clock.monotonic()
        if current is None:
            self._observation = None
        else:
            record, resource_version = current
            self._observation = observe(self._observation, record, resource_version, read_at)
        self._report_holder()
        action = decide(self._observation, self.identity, read_at)
        if action is Action.WAIT:
            self._leading = False
            return False
        previous = None if self._observation is None else self._observation.record
        record = next_record(
            previous, action, self.identity, self.timing, micro_time(self._clock.now())
        )
        try:
            if self._observation is None:
                version = self.lock.create(record, timeout)
            else:
                version = self.lock.update(record, self._observation.resource_version, timeout)
        except LeaseConflict:
            log.info("Lease %s: another replica wrote it first", self.lock)
            return False
        # Counted from before the read: the leader measures its deadline from the earliest
        # moment the renewal could have been made, so it gives up early rather than late.
        self._observation = Observation(record, version, started)
        self._last_renewed = started
        self._leading = True
        return True

    def _report_holder(self) -> None:
        holder = self.holder
        if holder is not None and holder != self._reported_holder and holder != self.identity:
            log.info("Lease %s is held by %r", self.lock, holder or "nobody (released)")
        self._reported_holder = holder

    # ---- standing by ---------------------------------------------------------------------

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this process leads (True) or `stop` is set (False). Writes nothing
        while another replica's lease is valid."""
        log.info("Lease %s: %s is a candidate", self.lock, self.identity)
        while not stop.is_set():
            if self.try_acquire_or_renew():
                LEADER.set(1)
                log.info("Lease %s: %s leads", self.lock, self.identity)
                return True
            period = self.timing.retry_period
            self._clock.wait(stop, period + random.uniform(0, JITTER_FACTOR * period))
        return False

    # ---- leading -------------------------------------------------------------------------

    def start_renewing(self) -> None:
        """Renew every retry period in a daemon thread until `release` (or until lost)."""
        if not self._leading:
            raise RuntimeError("start_renewing before leading")
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._clock.wait(self._stop_renewing, self.timing.retry_period):
            # A process that was frozen (SIGSTOP, a paused VM, a long GC) wakes up past its
            # deadline: stop on the local clock alone, before a request could take time in
            # which the other threads, woken too, write as if they still led.
            if leadership_lost(self._last_renewed, self._clock.monotonic(), self.timing):
                self._lose(f"not renewed for {self.timing.renew_deadline:g} s")
                return
            # Never wait on a request past the deadline: a hung connection must not keep a
            # leader that can no longer renew.
            remaining = self.timing.renew_deadline - (self._clock.monotonic() - self._last_renewed)
            renewed = self.try_acquire_or_renew(timeout=max(remaining, 0.1))
            if self._stop_renewing.is_set():
                return
            if renewed:
                continue
            holder = self.holder
            if holder and holder != self.identity:
                self._lose(f"{holder!r} holds the Lease")
                return
            if leadership_lost(self._last_renewed, self._clock.monotonic(), self.timing):
                self._lose(f"not renewed for {self.timing.renew_deadline:g} s")
                return

    def _lose(self, reason: str) -> None:
        self._leading = False
        LEADER.set(0)
        self._on_lost(reason)

    def release(self) -> bool:
        """Stop renewing and give the Lease up, if we still hold it; whether it was released.

        Call only once nothing that acts as the leader runs any more: a standby may start
        reconciling right after.
        """
        self._stop_renewing.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self.timing.renew_deadline)
            if self._renewer.is_alive():
                log.warning("Lease %s: the renewal is stuck; leaving it to expire", self.lock)
                return False
        if not self._leading or self._observation is None:
            return False
        self._leading = False
        LEADER.set(0)
        record = released(self._observation.record, micro_time(self._clock.now()))
        try:
            self.lock.update(record, self._observation.resource_version, self.timing.retry_period)
        except (LeaseConflict, ApiException, HTTPError, OSError) as error:
            log.warning("Lease %s: release failed (%s); it expires instead", self.lock, error)
            return False
        log.info("Lease %s: %s released it", self.lock, self.identity)
        return True
