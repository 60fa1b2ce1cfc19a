"""The front door's decisions: which host a preview gets, its route, and the Routed condition.

Routes are on when the platform names a Gateway and a domain (settings gateway_name and
preview_domain, chart values gateway.name and domain); off, nothing here is asked and the
preview's URL is the one the preview decisions give (the local node's port, a NodePort).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp import routes

ROUTED = "Routed"
ROUTE_RECHECK = 10.0
"""Seconds before a route no Gateway controller has answered for is looked at again."""
PUBLISH_TLS_NONE = "none"
"""publish_tls for a plain-HTTP platform: custom hostnames are served without TLS."""


def routes_enabled(settings: OperatorSettings) -> bool:
    return bool(settings.gateway_name and settings.preview_domain)


def gateway_ref(settings: OperatorSettings) -> routes.GatewayRef:
    return routes.GatewayRef(
        settings.gateway_name, settings.gateway_namespace, settings.gateway_listener
    )


def serves_tls(host: str, settings: OperatorSettings) -> bool:
    """Whether the platform's Gateway serves `host` over TLS, as its settings describe it: a
    host under the platform domain when the listener terminates TLS for the domain
    (gateway_https, a wildcard certificate); a published custom hostname unless publish_tls is
    "none" (a certificate on the listener covers it, or its own Certificate on the app's
    ListenerSet)."""
    if routes.under(host, settings.preview_domain):
        return settings.gateway_https
    return settings.publish_tls != PUBLISH_TLS_NONE


def host_url(host: str, settings: OperatorSettings) -> str:
    """The URL people open for `host`: https:// exactly where the Gateway serves it over TLS."""
    return routes.url_of(host, serves_tls(host, settings))


def front_service(settings: OperatorSettings) -> routes.Backend:
    return routes.Backend(
        settings.front_service_name, settings.platform_namespace, settings.front_service_port
    )


@dataclass(frozen=True)
class RouteInput:
    """What the route decisions read, gathered by the handler from the cache."""

    app: str
    namespace: str
    uid: str
    settings: OperatorSettings
    claims: Mapping[str, tuple[str, str] | None]
    """Holder (namespace, app) of each candidate host's claim; None: unclaimed."""
    gateway_exists: bool
    route: Mapping[str, Any] | None = None
    """The live preview HTTPRoute (from the cache)."""


@dataclass(frozen=True)
class RoutePlan:
    condition: ConditionSpec
    claim: str | None = None
    """A host to claim before anything else (create-if-absent), then decide again."""
    route: dict[str, Any] | None = None
    """The HTTPRoute to apply."""
    host: str | None = None
    url: str | None = None
    requeue_after: float | None = None


def plan_preview_route(inp: RouteInput) -> RoutePlan:
    """The preview's host, its HTTPRoute (to the front service) and the Routed condition."""
    gateway = gateway_ref(inp.settings)
    if not inp.gateway_exists:
        message = (
            f"Gateway {gateway.namespace}/{gateway.name} (chart value gateway.name) does not "
            "exist: no route is written until it does"
        )
        return RoutePlan(ConditionSpec(ROUTED, "False", "GatewayNotFound", message))
    me = (inp.namespace, inp.app)
    candidates = routes.preview_hosts(inp.app, inp.namespace, inp.settings.preview_domain)
    host = next((h for h in candidates if inp.claims.get(h) == me), None)
    if host is None:
        free = next((h for h in candidates if inp.claims.get(h) is None), None)
        if free is not None:
            message = f"claiming host {free}"
            return RoutePlan(ConditionSpec(ROUTED, "False", "Claiming", message), claim=free)
        holders = ", ".join(f"{h} by {'/'.join(inp.claims[h] or ())}" for h in candidates)
        message = f"every preview host this app may use is held by another app ({holders})"
        return RoutePlan(ConditionSpec(ROUTED, "False", "HostnameTaken", message))
    route = routes.http_route(
        routes.preview_route_name(inp.app),
        inp.app,
        inp.namespace,
        inp.uid,
        [host],
        gateway,
        front_service(inp.settings),
    )
    url = host_url(host, inp.settings)
    condition = route_condition(inp.route, gateway, host)
    requeue = None if condition.status == "True" else ROUTE_RECHECK
    return RoutePlan(condition, route=route, host=host, url=url, requeue_after=requeue)


def route_condition(
    live: Mapping[str, Any] | None, gateway: routes.GatewayRef, host: str
) -> ConditionSpec:
    """Routed from the route's own status: the Gateway's controller's Accepted and
    ResolvedRefs for our parentRef."""
    parent = _parent_status(live, gateway)
    if parent is None:
        message = (
            f"route for {host} is written; no controller of Gateway "
            f"{gateway.namespace}/{gateway.name} has reported on it yet"
        )
        return ConditionSpec(ROUTED, "False", "Pending", message)
    conditions = {c.get("type"): c for c in parent.get("conditions") or []}
    for kind, reason in (("Accepted", "NotAccepted"), ("ResolvedRefs", "RefsNotResolved")):
        found = conditions.get(kind)
        if found is None or found.get("status") != "True":
            detail = (
                f"{found.get('reason')}: {found.get('message')}" if found else "not reported yet"
            )
            message = f"Gateway {gateway.namespace}/{gateway.name} {kind}: {detail}"
            return ConditionSpec(ROUTED, "False", reason, message)
    return ConditionSpec(ROUTED, "True", "Accepted", f"{host} is routed by the Gateway")


def _parent_status(
    live: Mapping[str, Any] | None, gateway: routes.GatewayRef
) -> Mapping[str, Any] | None:
    parents: Sequence[Mapping[str, Any]] = ((live or {}).get("status") or {}).get("parents") or []
    for parent in parents:
        ref = parent.get("parentRef") or {}
        if (
            ref.get("name") == gateway.name
            and (ref.get("namespace") or gateway.namespace) == gateway.namespace
            and (ref.get("sectionName") or "") == gateway.section_name
        ):
            return parent
    return None
