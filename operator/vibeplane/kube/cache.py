"""A watch-fed cache of the objects the operator owns, so reconciles read from memory.

At startup each watched kind is listed once (`prime`); from then on Kopf's watch events keep
the cache current, and the cache is authoritative for that kind: an object absent from it does
not exist (with the label selector the kind was registered with). Every change is also handed
to `on_change`, which re-queues the owner: that is how a deleted or edited child is repaired.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from vibeplane.kube import client

Body = dict[str, Any]
CacheKey = tuple[str, str | None, str]  # kind, namespace, name


@dataclass(frozen=True)
class WatchedKind:
    group: str
    version: str
    plural: str
    kind: str
    labels: Mapping[str, str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def selector(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.labels.items())


class ObjectCache:
    """Latest bodies of watched kinds, authoritative once primed."""

    def __init__(self, on_change: Callable[[Body], None]) -> None:
        self._on_change = on_change
        self._kinds: dict[str, WatchedKind] = {}
        self._primed: set[str] = set()
        # By kind and namespace, then name: a reconcile asks for one namespace's objects, and
        # scanning every cached object for them cost more than the reconcile at 1,000 apps.
        self._spaces: dict[tuple[str, str | None], dict[str, Body]] = {}
        self._lock = threading.Lock()

    def watch(self, kind: WatchedKind) -> None:
        """Register a Kopf watch for `kind` (call before the operator starts)."""
        self._kinds[kind.kind] = kind
        labels = dict(kind.labels)
        kopf.on.event(
            kind.group, kind.version, kind.plural, labels=labels, id=f"cache-{kind.kind}"
        )(self._on_event)

    def prime(self) -> None:
        """List every watched kind once, so absence in the cache means absence."""
        for kind in self._kinds.values():
            items = client.list_objects(kind.api_version, kind.kind, label_selector=kind.selector)
            with self._lock:
                for item in items:
                    item.setdefault("kind", kind.kind)
                    kind_name, namespace, name = self._key_of(kind.kind, item)
                    self._spaces.setdefault((kind_name, namespace), {}).setdefault(name, item)
                self._primed.add(kind.kind)

    @staticmethod
    def _key_of(kind: str, body: Mapping[str, Any]) -> CacheKey:
        metadata = body.get("metadata") or {}
        return (kind, metadata.get("namespace"), metadata.get("name", ""))

    def _on_event(self, event: Mapping[str, Any], **_: Any) -> None:
        body = dict(event.get("object") or {})
        kind = body.get("kind")
        if kind not in self._kinds:
            return
        key = self._key_of(kind, body)
        with self._lock:
            if event.get("type") == "DELETED":
                self._pop(key)
            else:
                self._put(key, copy.deepcopy(body))
        self._on_change(body)

    def lookup(self, kind: str, name: str, namespace: str | None = None) -> Body | None:
        """The object, from memory when its kind is primed, else from the API server."""
        with self._lock:
            body = self._spaces.get((kind, namespace), {}).get(name)
            if body is not None:
                return copy.deepcopy(body)
            if kind in self._primed:
                return None
        watched = self._kinds.get(kind)
        api_version = watched.api_version if watched else "v1"
        return client.get(api_version, kind, name, namespace)

    def remember(self, body: Body) -> None:
        """Record what we just wrote, so the next reconcile does not write it again."""
        kind = body.get("kind")
        if kind in self._kinds:
            with self._lock:
                self._put(self._key_of(kind, body), copy.deepcopy(body))

    def forget(self, kind: str, name: str, namespace: str | None) -> None:
        with self._lock:
            self._pop((kind, namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> list[Body]:
        """Cached objects of one kind (in one namespace)."""
        with self._lock:
            return [copy.deepcopy(body) for body in self._bodies_of(kind, namespace)]

    def count(
        self, kind: str, namespace: str | None, where: Callable[[Mapping[str, Any]], bool]
    ) -> int:
        """How many cached objects of one kind (in one namespace) satisfy `where`: read in
        place, nothing copied (`where` must not change what it is given)."""
        with self._lock:
            return sum(1 for body in self._bodies_of(kind, namespace) if where(body))

    def _bodies_of(self, kind: str, namespace: str | None) -> list[Body]:
        if namespace is not None:
            return list(self._spaces.get((kind, namespace), {}).values())
        return [
            body
            for (cached_kind, _), bodies in self._spaces.items()
            if cached_kind == kind
            for body in bodies.values()
        ]

    def _put(self, key: CacheKey, body: Body) -> None:
        kind, namespace, name = key
        self._spaces.setdefault((kind, namespace), {})[name] = body

    def _pop(self, key: CacheKey) -> None:
        kind, namespace, name = key
        bodies = self._spaces.get((kind, namespace))
        if bodies is not None:
            bodies.pop(name, None)
            if not bodies:
                del self._spaces[(kind, namespace)]
