"""One level-based reconcile per kind, wired into Kopf.

A kind provides a pure-ish `reconcile(context) -> Outcome`; this module registers it for resume
(operator start), create, update and a periodic resync, serializes runs per object (a resync
timer and an update must not race), validates the spec through the pydantic model (a spec the
API server accepted but the operator refuses becomes Ready=False/InvalidSpec, not a crash
loop), and writes status only when it differs from what is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from vibeplane.api.meta import KindInfo
from vibeplane.kube.conditions import ConditionSpec, merge_conditions, now_rfc3339, status_patch
from vibeplane.metrics import RECONCILE_SECONDS, RECONCILES
from vibeplane.settings import OperatorSettings


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
    logger: Any


@dataclass
class Outcome:
    """What a reconcile computed: status fields (besides conditions) and the conditions."""

    conditions: list[ConditionSpec]
    fields: dict[str, Any] = field(default_factory=dict)


Reconciler = Callable[[Context], Outcome]


def validation_message(error: ValidationError) -> str:
    """One line per problem, naming the field as users write it (camelCase path)."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "spec"
        lines.append(f"spec.{location}: {problem['msg']}")
    return "; ".join(lines)


def _object_lock(memo: Any) -> threading.Lock:
    # Kopf's per-object memo lives as long as the object is watched.
    lock = getattr(memo, "reconcile_lock", None)
    if lock is None:
        lock = memo.reconcile_lock = threading.Lock()
    return lock


def register(info: KindInfo, reconcile: Reconciler, settings: OperatorSettings) -> None:
    """Register `reconcile` for one kind with Kopf."""
    resource = (info.group, info.version, info.plural)

    def handle(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Any, **_: Any) -> None:
        with _object_lock(memo), RECONCILE_SECONDS.labels(info.kind).time():
            _reconcile_once(info, reconcile, settings, body, patch, logger)

    # Sync handlers run on Kopf's thread pool: the kubernetes client blocks.
    kopf.on.resume(*resource, id="reconcile")(handle)
    kopf.on.create(*resource, id="reconcile")(handle)
    kopf.on.update(*resource, id="reconcile")(handle)
    kopf.timer(
        *resource,
        id="resync",
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        idle=None,
    )(handle)


def _reconcile_once(
    info: KindInfo,
    reconcile: Reconciler,
    settings: OperatorSettings,
    body: kopf.Body,
    patch: kopf.Patch,
    logger: Any,
) -> None:
    meta = body.get("metadata", {})
    status: Mapping[str, Any] = body.get("status") or {}
    generation = meta.get("generation")
    spec_model: type[BaseModel] = info.spec
    try:
        spec = spec_model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        RECONCILES.labels(info.kind, "invalid").inc()
        outcome = Outcome(
            [ConditionSpec("Ready", "False", "InvalidSpec", validation_message(error))]
        )
    else:
        context = Context(
            name=meta["name"],
            namespace=meta.get("namespace"),
            uid=meta["uid"],
            generation=generation,
            spec=spec,
            status=status,
            body=body,
            settings=settings,
            logger=logger,
        )
        started = time.monotonic()
        try:
            outcome = reconcile(context)
        except ApiException as error:
            RECONCILES.labels(info.kind, "error").inc()
            # The reason is enough to act on; the body may quote objects we should not echo.
            raise kopf.TemporaryError(
                f"API error {error.status} {error.reason} while reconciling", delay=5
            ) from error
        RECONCILES.labels(info.kind, "ok").inc()
        logger.debug(f"reconciled in {time.monotonic() - started:.3f}s")

    desired = dict(outcome.fields)
    desired["observedGeneration"] = generation
    desired["conditions"] = merge_conditions(
        status.get("conditions"), outcome.conditions, generation, now_rfc3339()
    )
    changes = status_patch(status, desired)
    if changes:
        patch.status.update(changes)
