"""Which app a request's Host names.

The operator writes each preview's URL into the VibeApp's `status.url`; the front service
indexes the VibeApps by that URL's host (and, where the platform's domain is configured, by
the documented `<app>-<namespace>.<domain>` name, computed from the object, never parsed from
the host: names with hyphens would make parsing ambiguous).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class AppRef:
    namespace: str
    name: str
    phase: str = ""
    wake: str = ""  # the wake annotation's value as last seen

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def normalize_host(header: str | None) -> str | None:
    """The Host header without its port, lower case; None when it is no usable host name."""
    if not header:
        return None
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 literal: never an app's host
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    host = host.rstrip(".")
    if not host or len(host) > 253:
        return None
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    if not set(host) <= allowed or ".." in host or host.startswith((".", "-")):
        return None
    return host


def url_host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return normalize_host(urlsplit(url).netloc.rsplit("@", 1)[-1])
    except ValueError:
        return None


def platform_host(name: str, namespace: str, domain: str) -> str:
    return f"{name}-{namespace}.{domain}".lower()


def index_apps(
    apps: Iterable[Mapping[str, Any]], domain: str | None, wake_annotation: str
) -> dict[str, AppRef]:
    """Host -> app for the VibeApps as listed (preview hosts only: published apps are public
    and routed straight to their own Service)."""
    index: dict[str, AppRef] = {}
    for app in apps:
        metadata = app.get("metadata") or {}
        status = app.get("status") or {}
        annotations = metadata.get("annotations") or {}
        ref = AppRef(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            phase=str(status.get("phase") or ""),
            wake=str(annotations.get(wake_annotation) or ""),
        )
        hosts = {url_host(status.get("url"))}
        if domain:
            hosts.add(platform_host(ref.name, ref.namespace, domain))
        for host in hosts - {None}:
            assert host is not None
            # A host two apps claim serves neither: the operator's claim rule should never let
            # that happen, and guessing would open one person's app to another's members.
            index[host] = ref if host not in index else AppRef("", "")
    return {host: ref for host, ref in index.items() if ref.name}
