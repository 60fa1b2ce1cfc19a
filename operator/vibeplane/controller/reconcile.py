"""One level-based reconcile per kind: Kopf watches feed a work queue, workers reconcile.

Why not Kopf's create/update/timer handlers: they persist state on the objects themselves
(a last-handled-configuration annotation on every change, and a finalizer on every object
that has a timer), so a GitOps tool sees drift and deletion waits for the operator. Here Kopf
only watches (`on.event`), and:

- the latest body of every object is kept from its watch, in the one object cache
  (`vibeplane.controller.cache`), so a reconcile reads nothing it already has;
- events that change nothing a reconcile looks at (our own status writes) are dropped;
- every object is re-queued every `resync_seconds` (drift repair, period rollover);
- watches on children or other inputs re-queue their owner by name (`Controller.enqueue`);
- the spec is re-validated through the pydantic model: a spec the API server accepted but the
  operator refuses becomes Ready=False/InvalidSpec, never a crash loop; so does a child the API
  server refuses as invalid (400, 422): Ready=False/Refused with the server's message;
- status is written (a merge patch on the status subresource) only when it differs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from vibeplane.api.meta import KindInfo
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.clock import SYSTEM_CLOCK, Clock
from vibeplane.controller.workqueue import WorkQueue
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec, merge_conditions, rfc3339, status_patch
from vibeplane.metrics import RECONCILE_SECONDS, RECONCILES, WRITES
from vibeplane.settings import OperatorSettings

Body = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Namespace (None for cluster-scoped kinds) and name."""

    namespace: str | None
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectKey:
        metadata = body.get("metadata") or {}
        return cls(metadata.get("namespace"), metadata["name"])


@dataclass(frozen=True)
class Context:
    """What a reconcile gets: the object, its validated spec and the operator's settings."""

    name: str
    namespace: str | None
    uid: str
    generation: int | None
    spec: Any
    status: Mapping[str, Any]
    body: Mapping[str, Any]
    settings: OperatorSettings


@dataclass
class Outcome:
    """What a reconcile computed: status fields (besides conditions) and the conditions."""

    conditions: list[ConditionSpec]
    fields: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    """Reconcile again after this many seconds even without events (e.g. a probe retry)."""


Reconciler = Callable[[Context], Outcome]


MAX_PROBLEMS = 20
"""Problems a validation message lists; the rest are counted (a condition message is bounded)."""


def validation_message(error: ValidationError) -> str:
    """One line per problem, naming the field as users write it."""
    problems = error.errors()
    lines = []
    for problem in problems[:MAX_PROBLEMS]:
        location = ".".join(str(part) for part in problem["loc"]) or "spec"
        lines.append(f"spec.{location}: {problem['msg'][:300]}")
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"and {len(problems) - MAX_PROBLEMS} more")
    return "; ".join(lines)


def refusal_message(error: ApiException) -> str:
    """What the API server said when it refused a write for good (400, 422)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"the API server refused a write: {message or error.reason}"[:2000]


def _essence(body: Mapping[str, Any]) -> tuple[Any, ...]:
    metadata = body.get("metadata") or {}
    return (
        body.get("spec"),
        metadata.get("generation"),
        metadata.get("labels"),
        metadata.get("annotations"),
        metadata.get("deletionTimestamp"),
    )


class Controller:
    """The reconcile loop of one kind: its bodies live in the shared object cache."""

    def __init__(
        self,
        info: KindInfo,
        reconcile: Reconciler,
        settings: OperatorSettings,
        cache: ObjectCache,
        kube: KubeClient,
        workers: int = 4,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.info = info
        self.settings = settings
        self._reconcile = reconcile
        self._cache = cache
        self._kube = kube
        self._clock = clock
        self._listeners: list[Callable[[str, Body], None]] = []
        self._change_listeners: list[Callable[[str, Body], None]] = []
        self.queue: WorkQueue[ObjectKey] = WorkQueue(
            info.kind, self._process, workers=workers, clock=clock
        )

    # ---- inputs ----------------------------------------------------------------------------

    def register(self) -> None:
        """Watch the kind through Kopf."""
        kopf.on.event(self.info.group, self.info.version, self.info.plural, id=f"{self.info.kind}")(
            self._on_event
        )

    def _on_event(self, event: Mapping[str, Any], **_: Any) -> None:
        body = event.get("object") or {}
        if not body.get("metadata", {}).get("name"):
            return
        key = ObjectKey.of(body)
        event_type = str(event.get("type") or "")
        if event_type == "DELETED":
            previous = self._cache.get(self.info.kind, key.name, key.namespace)
            self._cache.pop(self.info.kind, key.name, key.namespace)
        else:
            previous = self._cache.put(self.info.kind, body)
        if previous is None or event_type == "DELETED":
            for listener in self._listeners:
                listener(event_type, dict(body))
        for listener in self._change_listeners:
            listener(event_type, dict(body))
        if event_type == "DELETED":
            return
        reconciled = (body.get("status") or {}).get("observedGeneration") == body.get(
            "metadata", {}
        ).get("generation")
        if previous is None or not reconciled or _essence(previous) != _essence(body):
            self.queue.add(key)

    def prime(self) -> None:
        """List the kind once at startup (queue nothing: see `Operator.start`).

        Kopf's watches begin after startup, so without this an object's first reconcile could
        run while its neighbours are still unknown: a Workspace would count its apps as 0 and
        write that, then the right number a moment later: two writes for nothing after every
        restart. A body from the list is replaced by any newer one from the watch.
        """
        self._cache.prime_kind(f"{self.info.group}/{self.info.version}", self.info.kind)

    def forget(self, key: ObjectKey) -> None:
        """The object is gone (the API server said 404): stop tracking it."""
        self._cache.pop(self.info.kind, key.name, key.namespace)

    def subscribe(self, listener: Callable[[str, Body], None], every_change: bool = False) -> None:
        """Call `listener(event_type, body)` when an object appears or is deleted; with
        `every_change`, on every event of the watch (status changes included)."""
        (self._change_listeners if every_change else self._listeners).append(listener)

    def count(self, namespace: str) -> int:
        """How many objects of the kind are known in `namespace`."""
        return self._cache.count(self.info.kind, namespace, lambda _: True)

    def enqueue(self, key: ObjectKey, within: float = 0.0) -> None:
        """Reconcile this object soon (a child or an input of it changed); with `within`, at
        most that many seconds from now, together with whatever else asks meanwhile."""
        if within > 0:
            self.queue.add_within(key, within)
        else:
            self.queue.add(key)

    def resync(self) -> None:
        """Queue every known object."""
        for key in self.known_keys():
            self.queue.add(key)

    def body(self, key: ObjectKey) -> Body | None:
        """The latest body seen for key, from its watch."""
        return self._cache.get(self.info.kind, key.name, key.namespace)

    def bodies(self) -> list[Body]:
        """Every known object of the kind (copies)."""
        return self._cache.items(self.info.kind)

    def known_keys(self) -> list[ObjectKey]:
        return [ObjectKey(namespace, name) for namespace, name in self._cache.keys(self.info.kind)]

    # ---- processing ------------------------------------------------------------------------

    def _process(self, key: ObjectKey) -> None:
        body = self.body(key)
        if body is None:
            return
        with RECONCILE_SECONDS.labels(self.info.kind).time():
            self._reconcile_body(key, body)

    def _reconcile_body(self, key: ObjectKey, body: Body) -> None:
        metadata = body["metadata"]
        status: Mapping[str, Any] = body.get("status") or {}
        generation = metadata.get("generation")
        spec_model: type[BaseModel] = self.info.spec
        outcome: Outcome
        try:
            spec = spec_model.model_validate(body.get("spec") or {})
        except ValidationError as error:
            RECONCILES.labels(self.info.kind, "invalid").inc()
            outcome = Outcome(
                [ConditionSpec("Ready", "False", "InvalidSpec", validation_message(error))]
            )
        else:
            context = Context(
                name=key.name,
                namespace=key.namespace,
                uid=metadata["uid"],
                generation=generation,
                spec=spec,
                status=status,
                body=body,
                settings=self.settings,
            )
            try:
                outcome = self._reconcile(context)
            except ApiException as error:
                RECONCILES.labels(self.info.kind, "error").inc()
                if error.status == 404:
                    return  # the object or its namespace is going away
                if error.status not in (400, 422):
                    raise  # transient: the work queue retries with backoff
                # A child the spec asks for is invalid (e.g. a namespace name too long):
                # retrying cannot help, the spec must change.
                outcome = Outcome(
                    [ConditionSpec("Ready", "False", "Refused", refusal_message(error))]
                )
            else:
                RECONCILES.labels(self.info.kind, "ok").inc()
        self._write_status(key, status, generation, outcome)
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)

    def _write_status(
        self,
        key: ObjectKey,
        status: Mapping[str, Any],
        generation: int | None,
        outcome: Outcome,
    ) -> None:
        desired = dict(outcome.fields)
        desired["observedGeneration"] = generation
        desired["conditions"] = merge_conditions(
            status.get("conditions"),
            outcome.conditions,
            generation,
            rfc3339(self._clock.now()),
        )
        changes = status_patch(status, desired)
        if not changes:
            return
        log.info("%s %s: status changes %s", self.info.kind, key.name, sorted(changes))
        try:
            updated = self._kube.patch_status(self.info, key.name, key.namespace, changes)
        except ApiException as error:
            if error.status == 404:
                self.forget(key)  # deleted since this body was seen
                return
            raise
        WRITES.labels(self.info.kind, f"{self.info.kind}/status").inc()
        # Keep what we wrote, so a resync before the watch catches up sends nothing again.
        self._cache.replace(self.info.kind, updated)


class Resyncer:
    """Re-queues every object of every controller periodically, on its own thread."""

    def __init__(
        self, controllers: list[Controller], interval: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._controllers = controllers
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._clock.wait(self._stop, self._interval):
            for controller in self._controllers:
                controller.resync()
