"""The one watch-fed cache of objects the operator reads, so reconciles read from memory.

It holds two sorts of kinds, in the same store:
- children and inputs (`watch`): a Kopf watch per kind, registered here; every change is also
  handed to `on_change`, which re-queues the owner: that is how a deleted or edited child is
  repaired;
- the kinds controllers reconcile: each `Controller` watches its own kind (it compares a new
  body with the previous one to decide whether to reconcile) and keeps the bodies here (`put`,
  `pop`, `get`).

At startup each kind is listed once (`prime`, `prime_kind`); from then on the watch events
keep it current, and the cache is authoritative for that kind: an object absent from it does
not exist (with the label selector the kind was registered with).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from vibeplane.kube.client import KubeClient

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

    def __init__(self, kube: KubeClient, on_change: Callable[[Body], None]) -> None:
        self._kube = kube
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
            self.prime_kind(kind.api_version, kind.kind, kind.selector or None)

    def prime_kind(self, api_version: str, kind: str, label_selector: str | None = None) -> None:
        """List one kind once; a body already known (from a watch) is newer and stays."""
        items = self._kube.list_objects(api_version, kind, label_selector=label_selector)
        with self._lock:
            for item in items:
                if not (item.get("metadata") or {}).get("name"):
                    continue
                item.setdefault("kind", kind)
                _, namespace, name = self._key_of(kind, item)
                self._spaces.setdefault((kind, namespace), {}).setdefault(name, item)
            self._primed.add(kind)

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
        return self._kube.get(api_version, kind, name, namespace)

    def get(self, kind: str, name: str, namespace: str | None) -> Body | None:
        """The cached object (a copy), never asking the API server."""
        with self._lock:
            body = self._spaces.get((kind, namespace), {}).get(name)
            return copy.deepcopy(body) if body is not None else None

    def put(self, kind: str, body: Mapping[str, Any]) -> Body | None:
        """Keep a copy of `body` (of a kind a controller watches itself); the body it replaces
        (not a copy: read it, never change it)."""
        key = self._key_of(kind, body)
        stored = copy.deepcopy(dict(body))
        with self._lock:
            previous = self._spaces.get((kind, key[1]), {}).get(key[2])
            self._put(key, stored)
        return previous

    def replace(self, kind: str, body: Mapping[str, Any]) -> None:
        """Keep `body` in place of a cached one; nothing when the object is no longer cached
        (its deletion was seen meanwhile)."""
        key = self._key_of(kind, body)
        with self._lock:
            if key[2] in self._spaces.get((kind, key[1]), {}):
                self._put(key, copy.deepcopy(dict(body)))

    def pop(self, kind: str, name: str, namespace: str | None) -> None:
        with self._lock:
            self._pop((kind, namespace, name))

    def keys(self, kind: str) -> list[tuple[str | None, str]]:
        """(namespace, name) of every cached object of one kind."""
        with self._lock:
            return [
                (namespace, name)
                for (cached_kind, namespace), bodies in self._spaces.items()
                if cached_kind == kind
                for name in bodies
            ]

    def remember(self, body: Body) -> None:
        """Record what we just wrote, so the next reconcile does not write it again."""
        kind = body.get("kind")
        if kind in self._kinds:
            with self._lock:
                self._put(self._key_of(kind, body), copy.deepcopy(body))

    def forget(self, kind: str, name: str, namespace: str | None) -> None:
        self.pop(kind, name, namespace)

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
