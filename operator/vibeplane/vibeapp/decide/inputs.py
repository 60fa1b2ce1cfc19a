"""The one input a VibeApp reconcile decides from, and the time arithmetic it needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from vibeplane.api import vibeapp as api
from vibeplane.api.common import duration_seconds
from vibeplane.api.workspace import DEFAULT_BUDGET_PERIOD, WorkspaceSpec
from vibeplane.budget.periods import PeriodKind
from vibeplane.settings import OperatorSettings
from vibeplane.timestamps import parse_time

Revision = dict[str, Any]
KEPT_REVISIONS = 20
BUSY_RECHECK = 5.0
"""Seconds before a deleted app whose generation still runs is looked at again."""
NO_WORKSPACE_RECHECK = 10.0
LONGEST_WAIT = 3600.0
BUNDLE_URL_SECONDS = 600
"""How long a delivered bundle URL is valid: the sandbox fetches it at once."""


class AttemptResult(Protocol):
    """What a finished attempt reports (`vibeplane.vibeapp.generate.Result`)."""

    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def record(self) -> dict[str, Any] | None: ...
    @property
    def retry_after(self) -> float | None: ...
    @property
    def next_attempt(self) -> bool: ...


# ---- the input -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceView:
    """The app's workspace as the decisions read it."""

    name: str
    uid: str
    spec: WorkspaceSpec | None
    """None when the workspace's spec is invalid (its own Ready condition says why)."""
    period: PeriodKind = DEFAULT_BUDGET_PERIOD
    """Its budget period, read even from an invalid spec (a deleted app gives budget back)."""
    past_soft_limit: bool = False


@dataclass(frozen=True)
class AttemptState:
    """What the generator knows of the attempt `plan_attempt` names."""

    result: AttemptResult | None = None
    """Its result, when it finished since the last reconcile (taken once)."""
    running: bool = False
    admitted: bool = False
    """Running, and the ledger granted it: no longer waiting on the budget."""
    woken: bool = False
    """The budget's waiting line woke it: a retry is due now, whatever its notBefore said."""
    retry_at: str | None = None
    """When this process may retry it, waiting out a failure that came back the same (the
    status keeps the first wait's notBefore: a repeated failure writes nothing)."""


@dataclass(frozen=True)
class AppInput:
    """Everything one reconcile of a VibeApp decides from."""

    name: str
    namespace: str
    uid: str
    spec: api.VibeAppSpec
    status: Mapping[str, Any]
    now: datetime
    settings: OperatorSettings
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    workspace: WorkspaceView | None = None
    attempt: AttemptState = AttemptState()
    busy: bool = False
    """An attempt of this app still runs (asked only while it is being deleted)."""
    deployment: Mapping[str, Any] | None = None
    """The live preview Deployment (from the cache)."""
    service: Mapping[str, Any] | None = None
    """The live preview Service (from the cache)."""
    pods: tuple[Mapping[str, Any], ...] = ()
    """The app's preview pods (from the cache)."""
    pool: tuple[Mapping[str, Any], ...] = ()
    """The idle sandboxes of the namespace's warm pool (from the cache)."""
    template: str = ""
    """The digest of today's preview pod spec (`desired.template_digest`): a sandbox started
    from another is stale."""

    def revisions(self) -> list[Revision]:
        return [dict(r) for r in self.status.get("revisions") or []]

    def in_flight(self) -> dict[str, Any] | None:
        value = self.status.get("generation")
        return dict(value) if value else None


# ---- time ------------------------------------------------------------------------------------


def elapsed_since(stamp: str | None, now: datetime) -> float | None:
    """Seconds from an RFC 3339 stamp to `now` (None without a readable one)."""
    moment = parse_time(stamp)
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def remaining(stamp: str | None, now: datetime) -> float:
    """Seconds from `now` until `stamp` (0 when absent, unreadable or past)."""
    moment = parse_time(stamp)
    return 0.0 if moment is None else max(0.0, (moment - now).total_seconds())


def idle_check(idle_timeout: str) -> float:
    """How often a running preview is looked at for idleness."""
    return max(5.0, min(duration_seconds(idle_timeout) / 4, 300.0))
