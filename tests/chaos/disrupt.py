"""What runs beside the operator during a chaos run: a timeline of disruptions, a competing
writer that provokes 409 conflicts, and a watch that sees every version of the ledgers."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import kubernetes
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.support import GROUP, VERSION
from vibeplane.budget.store import DATA_KEY, LABEL_LEDGER
from vibeplane.settings import LABEL_WORKSPACE

log = logging.getLogger(__name__)
# What a call to the API server raises while it restarts.
UNAVAILABLE = (ApiException, urllib3.exceptions.HTTPError, OSError)
BUMP_LABEL = "chaos.vibeplane.io/bump"


def until_done(action: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """`action()`, retried while the API server is away (a restart); a 404 is an answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except ApiException as error:
            if error.status == 404 or time.monotonic() > deadline:
                raise
            if error.status not in (409, 429, 500, 503, 504):
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
        log.info("retrying %s", what)
        time.sleep(0.5)


# ---- the timeline ------------------------------------------------------------------------------


@dataclass(order=True)
class Event:
    at: float
    """Seconds after the start of the run."""
    name: str
    action: Callable[[], None] = field(compare=False)


@dataclass
class Timeline:
    """Runs events one after another at their time (late ones at once), on one thread: an
    operator restart never overlaps an API server restart, and each event's error is kept."""

    events: list[Event] = field(default_factory=list)
    done: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def add(self, at: float, name: str, action: Callable[[], None]) -> None:
        self.events.append(Event(at, name, action))

    def start(self) -> None:
        started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()

    def _run(self, started: float) -> None:
        for event in sorted(self.events):
            if self._stop.wait(max(0.0, started + event.at - time.monotonic())):
                return
            try:
                event.action()
            except Exception:
                self.errors.append(f"{event.name}: {traceback.format_exc()}")
            self.done.append((round(time.monotonic() - started, 2), event.name))

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            raise AssertionError(f"the timeline did not finish in {timeout}s: done {self.done}")


# ---- 409s --------------------------------------------------------------------------------------


class ConflictWriter:
    """Bumps resourceVersions over and over (a label patch, which never conflicts itself) so
    the operator's compare-and-swap writes meet 409s: the ledgers with a reservation open (a
    generation is under way and will settle) every `pause`, and one app in `app_every` rounds
    (each app bump also wakes a reconcile)."""

    def __init__(
        self,
        api: ApiClient,
        platform_namespace: str,
        busy_ledgers: Callable[[], list[str]],
        apps: Callable[[], list[tuple[str, str]]],
        pause: float,
        app_every: int = 10,
    ) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.platform_namespace = platform_namespace
        self.busy_ledgers = busy_ledgers
        self.apps = apps
        self.pause = pause
        self.app_every = app_every
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.pause):
            rounds += 1
            body = {"metadata": {"labels": {BUMP_LABEL: str(rounds)}}}
            try:
                for name in self.busy_ledgers():
                    self.core.patch_namespaced_config_map(name, self.platform_namespace, body)
                    self.writes += 1
                apps = self.apps()
                if apps and rounds % self.app_every == 0:
                    namespace, name = apps[(rounds // self.app_every) % len(apps)]
                    self.custom.patch_namespaced_custom_object(
                        GROUP, VERSION, namespace, "vibeapps", name, body
                    )
                    self.writes += 1
            except UNAVAILABLE:
                self._stop.wait(0.5)  # gone, or the API server restarts: go on after


# ---- the ledgers' history ----------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerStep:
    """What one or more writes did to a ledger: the keys closed (settled or released) and
    what the settled total grew by. `single` when the watch saw exactly one write."""

    workspace: str
    closed: frozenset[str]
    tokens: int
    money: Decimal
    single: bool


class LedgerWatch:
    """Every version of the chaos workspaces' ledger ConfigMaps, watched from one list and
    resumed from the last resourceVersion across API server restarts. Each CAS write of the
    ledger is one operation, so the difference between consecutive versions says which key a
    settle charged and by how much; when the API server can no longer resume (410 Gone), a
    fresh list shows several writes as one step (`single` False)."""

    def __init__(self, api: ApiClient, platform_namespace: str, workspaces: set[str]) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.namespace = platform_namespace
        self.workspaces = workspaces
        self.steps: list[LedgerStep] = []
        self.versions = 0
        self.relists = 0
        self._documents: dict[str, dict[str, Any]] = {}
        self._resource_versions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def busy(self) -> list[str]:
        """The ledger ConfigMaps whose latest version holds a reservation."""
        with self._lock:
            return [name for name, doc in self._documents.items() if doc.get("reservations")]

    def seen(self, name: str) -> str | None:
        """The resourceVersion last seen of one ledger ConfigMap."""
        with self._lock:
            return self._resource_versions.get(name)

    def _run(self) -> None:
        resource_version: str | None = None
        selector = f"{LABEL_LEDGER}=true"
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    listed = self.core.list_namespaced_config_map(
                        self.namespace, label_selector=selector
                    )
                    for item in listed.items:
                        self._observe(item, single=False)
                    resource_version = listed.metadata.resource_version
                stream = kubernetes.watch.Watch().stream(
                    self.core.list_namespaced_config_map,
                    self.namespace,
                    label_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=5,
                    _request_timeout=15,
                )
                for event in stream:
                    if event["type"] == "ERROR":
                        raise ApiException(status=event["raw_object"].get("code", 500))
                    item = event["object"]
                    resource_version = item.metadata.resource_version
                    if event["type"] != "DELETED":
                        self._observe(item, single=True)
                    if self._stop.is_set():
                        return
            except ApiException as error:
                if error.status == 410:  # too old to resume: list afresh
                    resource_version = None
                    self.relists += 1
                else:
                    self._stop.wait(0.5)
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                self._stop.wait(0.5)  # the API server restarts: resume where we were

    def _observe(self, item: Any, single: bool) -> None:
        metadata = item.metadata
        if (metadata.labels or {}).get(LABEL_WORKSPACE) not in self.workspaces:
            return
        document = json.loads((item.data or {}).get(DATA_KEY) or "{}")
        with self._lock:
            self._resource_versions[metadata.name] = metadata.resource_version
            before = self._documents.get(metadata.name)
            if before == document:
                return  # a label bump, or a version seen already
            self._documents[metadata.name] = document
            self.versions += 1
            before = before or {}
            closed = frozenset(document.get("done") or {}) - frozenset(before.get("done") or {})
            settled, earlier = document.get("settled") or {}, before.get("settled") or {}
            tokens = int(settled.get("tokens", 0)) - int(earlier.get("tokens", 0))
            money = Decimal(str(settled.get("money", "0"))) - Decimal(
                str(earlier.get("money", "0"))
            )
            if closed or tokens or money:
                workspace = str(metadata.labels[LABEL_WORKSPACE])
                self.steps.append(LedgerStep(workspace, closed, tokens, money, single))

    def wait_caught_up(self, timeout: float) -> None:
        """Until the watch has seen the versions a fresh list shows."""
        deadline = time.monotonic() + timeout
        while True:
            listed = until_done(
                lambda: self.core.list_namespaced_config_map(
                    self.namespace, label_selector=f"{LABEL_LEDGER}=true"
                ),
                "listing ledgers",
            )
            behind = [
                item.metadata.name
                for item in listed.items
                if (item.metadata.labels or {}).get(LABEL_WORKSPACE) in self.workspaces
                and self.seen(item.metadata.name) != item.metadata.resource_version
            ]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the ledger watch is behind on {behind}")
            time.sleep(0.5)
