"""Where a workspace's ledger lives: a ConfigMap in the platform namespace, written by CAS.

Why a ConfigMap in the platform namespace:
- it is on the API server, so it survives operator restarts and is shared by every replica;
- compare-and-swap comes free: an update carrying the resourceVersion it read is refused
  with 409 if anyone wrote in between, and the operation is recomputed on the fresh copy;
- tenants cannot read or edit it (they have no rights in the platform namespace);
- it is deliberately not owned by the Workspace: deleting a workspace deletes its namespace
  and everything in it, but the ledger (and its `history` of closed periods) stays for
  billing, named ledger-<workspace>-<uid prefix> so a later workspace of the same name starts
  afresh.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import kubernetes
from kubernetes.client.exceptions import ApiException

from vibeplane.budget import ledger as ledger_ops
from vibeplane.budget.ledger import Amount, Ask, Ledger, Limits, ReserveResult
from vibeplane.budget.periods import PeriodKind, period_of
from vibeplane.kube import client
from vibeplane.settings import LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGER_NAME
from vibeplane.wellknown import ANNOTATION_WORKSPACE_UID
from vibeplane.wellknown import LABEL_LEDGER as LABEL_LEDGER

T = TypeVar("T")
DATA_KEY = "ledger.json"
MAX_ATTEMPTS = 50


class LedgerConflict(RuntimeError):
    """The ledger kept changing under us; the caller retries later."""


def ledger_name(workspace: str, uid: str) -> str:
    return f"ledger-{workspace}-{uid[:8]}"


def ledger_labels(workspace: str) -> dict[str, str]:
    return {LABEL_LEDGER: "true", LABEL_WORKSPACE: workspace, LABEL_MANAGED_BY: MANAGER_NAME}


def parse(
    config_map: dict[str, Any] | None, workspace: str, kind: PeriodKind, now: datetime
) -> Ledger:
    """The ledger in a ConfigMap (or a fresh one), rolled over to the current period."""
    current = period_of(kind, now)
    data = (config_map or {}).get("data") or {}
    if DATA_KEY in data:
        return ledger_ops.roll_over(ledger_ops.from_document(json.loads(data[DATA_KEY])), current)
    return Ledger(workspace=workspace, period=current)


def serialize(state: Ledger) -> str:
    return json.dumps(ledger_ops.to_document(state), sort_keys=True, separators=(",", ":"))


class LedgerStore:
    """Reads and CAS-updates ledgers in `namespace`."""

    def __init__(self, namespace: str, clock: Callable[[], datetime] | None = None) -> None:
        self.namespace = namespace
        self._clock = clock or (lambda: datetime.now(UTC))

    def _core(self) -> Any:
        return kubernetes.client.CoreV1Api(client.api_client())

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            result = client.api_client().sanitize_for_serialization(  # type: ignore[no-untyped-call]
                self._core().read_namespaced_config_map(name, self.namespace)
            )
            return cast(dict[str, Any], result)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def read(self, workspace: str, uid: str, kind: PeriodKind) -> Ledger:
        """The current ledger (rolled over in memory; nothing is written)."""
        return parse(self._read(ledger_name(workspace, uid)), workspace, kind, self._clock())

    def update(
        self,
        workspace: str,
        uid: str,
        kind: PeriodKind,
        operation: Callable[[Ledger, datetime], tuple[Ledger, T]],
    ) -> T:
        """Apply `operation` atomically; writes only when the document changes."""
        name = ledger_name(workspace, uid)
        for _ in range(MAX_ATTEMPTS):
            now = self._clock()
            stored = self._read(name)
            before = parse(stored, workspace, kind, now)
            after, result = operation(before, now)
            document = serialize(after)
            if stored is not None and (stored.get("data") or {}).get(DATA_KEY) == document:
                return result
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": ledger_labels(workspace),
                    "annotations": {ANNOTATION_WORKSPACE_UID: uid},
                },
                "data": {DATA_KEY: document},
            }
            try:
                if stored is None:
                    self._core().create_namespaced_config_map(self.namespace, body)
                else:
                    body["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
                    self._core().replace_namespaced_config_map(name, self.namespace, body)
            except ApiException as error:
                if error.status == 409:  # someone wrote in between: recompute on their copy
                    continue
                raise
            return result
        raise LedgerConflict(f"ledger {name} kept changing: gave up after {MAX_ATTEMPTS} attempts")

    # ---- the interface the VibeApp path uses --------------------------------------------

    def reserve(
        self,
        workspace: str,
        uid: str,
        kind: PeriodKind,
        key: str,
        request: Amount | Ask,
        limits: Limits,
        app: str | None = None,
    ) -> ReserveResult:
        """Hold what a generation may cost (bounded to what fits, for an `Ask`); refused
        below the floor, and then in the waiting line when `app` (namespace/name) is given."""
        return self.update(
            workspace,
            uid,
            kind,
            lambda state, now: ledger_ops.reserve(state, key, request, limits, now, app),
        )

    def settle(self, workspace: str, uid: str, kind: PeriodKind, key: str, actual: Amount) -> bool:
        """Charge the real usage after a generation, exactly once per key."""
        return self.update(
            workspace, uid, kind, lambda state, _now: ledger_ops.settle(state, key, actual)
        )

    def release(self, workspace: str, uid: str, kind: PeriodKind, key: str) -> bool:
        """Give the reservation back after a failed generation (nothing is charged)."""
        return self.update(workspace, uid, kind, lambda state, _now: ledger_ops.release(state, key))

    def release_prefix(self, workspace: str, uid: str, kind: PeriodKind, prefix: str) -> list[str]:
        """Give back every reservation whose key starts with `prefix` (those of an app being
        deleted, whose generations will never settle them), and take its waiters out of the
        line; the keys released."""

        def operation(state: Ledger, _now: datetime) -> tuple[Ledger, list[str]]:
            keys = sorted(key for key in state.reservations if key.startswith(prefix))
            for key in keys:
                state, _ = ledger_ops.release(state, key)
            return ledger_ops.leave_line(state, prefix), keys

        return self.update(workspace, uid, kind, operation)
