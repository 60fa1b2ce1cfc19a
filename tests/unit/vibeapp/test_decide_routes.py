"""The front door's decisions: the preview's host by claims, its route, Routed by the route's
status, a missing Gateway."""

from __future__ import annotations

from typing import Any

import pytest

from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp import routes
from vibeplane.vibeapp.decide import routes as decide

SETTINGS = OperatorSettings(
    gateway_name="vibeplane", gateway_listener="http", preview_domain="apps.example.com"
)
READABLE, HASHED = routes.preview_hosts("todo", "ws-demo", "apps.example.com")
ME = ("ws-demo", "todo")


def _inp(
    claims: dict[str, tuple[str, str] | None] | None = None,
    gateway: bool = True,
    route: dict[str, Any] | None = None,
) -> decide.RouteInput:
    return decide.RouteInput("todo", "ws-demo", "uid-1", SETTINGS, claims or {}, gateway, route)


def _status(**conditions: str) -> dict[str, Any]:
    parent = {
        "parentRef": {"name": "vibeplane", "namespace": "vibeplane-gateway", "sectionName": "http"},
        "controllerName": "example.io/gateway",
        "conditions": [
            {"type": kind, "status": status, "reason": "R", "message": "m"}
            for kind, status in conditions.items()
        ],
    }
    return {"status": {"parents": [parent]}}


def test_routes_are_on_only_with_a_gateway_and_a_domain() -> None:
    assert decide.routes_enabled(SETTINGS)
    assert not decide.routes_enabled(OperatorSettings(preview_domain="apps.example.com"))
    assert not decide.routes_enabled(OperatorSettings(gateway_name="vibeplane"))


def test_an_unclaimed_host_is_claimed_first_and_nothing_else() -> None:
    plan = decide.plan_preview_route(_inp())
    assert plan.claim == READABLE
    assert plan.route is None
    assert plan.condition.reason == "Claiming"


def test_a_held_claim_gives_the_route_to_the_front_service_and_the_url() -> None:
    plan = decide.plan_preview_route(_inp({READABLE: ME}))
    assert plan.claim is None
    assert plan.route is not None
    assert plan.route["spec"]["hostnames"] == [READABLE]
    backend = plan.route["spec"]["rules"][0]["backendRefs"][0]
    assert (backend["name"], backend["namespace"]) == ("vibeplane-frontdoor", "vibeplane-system")
    assert plan.url == f"http://{READABLE}/"
    assert plan.condition.reason == "Pending"
    assert plan.requeue_after == decide.ROUTE_RECHECK


def test_a_readable_host_another_app_holds_falls_back_to_the_hashed_one() -> None:
    plan = decide.plan_preview_route(_inp({READABLE: ("ws-other", "todo-ws"), HASHED: None}))
    assert plan.claim == HASHED
    plan = decide.plan_preview_route(_inp({READABLE: ("ws-other", "todo-ws"), HASHED: ME}))
    assert plan.host == HASHED


def test_every_host_held_by_others_is_a_condition_and_no_route() -> None:
    other = ("ws-x", "y")
    plan = decide.plan_preview_route(_inp({READABLE: other, HASHED: other}))
    assert plan.route is None
    assert plan.claim is None
    assert (plan.condition.status, plan.condition.reason) == ("False", "HostnameTaken")


def test_a_missing_gateway_is_a_condition_and_no_route_nor_claim() -> None:
    plan = decide.plan_preview_route(_inp({READABLE: ME}, gateway=False))
    assert (plan.condition.status, plan.condition.reason) == ("False", "GatewayNotFound")
    assert "vibeplane-gateway/vibeplane" in plan.condition.message
    assert plan.route is None
    assert plan.claim is None
    assert plan.url is None


def test_routed_follows_the_route_status_of_our_parent() -> None:
    accepted = decide.plan_preview_route(
        _inp({READABLE: ME}, route=_status(Accepted="True", ResolvedRefs="True"))
    )
    assert (accepted.condition.status, accepted.condition.reason) == ("True", "Accepted")
    assert accepted.requeue_after is None
    refused = decide.plan_preview_route(
        _inp({READABLE: ME}, route=_status(Accepted="False", ResolvedRefs="True"))
    )
    assert refused.condition.reason == "NotAccepted"
    unresolved = decide.plan_preview_route(
        _inp({READABLE: ME}, route=_status(Accepted="True", ResolvedRefs="False"))
    )
    assert unresolved.condition.reason == "RefsNotResolved"


def test_another_gateways_status_is_not_ours() -> None:
    route = _status(Accepted="True", ResolvedRefs="True")
    route["status"]["parents"][0]["parentRef"]["name"] = "other"
    plan = decide.plan_preview_route(_inp({READABLE: ME}, route=route))
    assert plan.condition.reason == "Pending"


def test_https_listener_gives_https_urls() -> None:
    settings = OperatorSettings(
        gateway_name="g", preview_domain="apps.example.com", gateway_https=True
    )
    inp = decide.RouteInput("todo", "ws-demo", "u", settings, {READABLE: ME}, True)
    assert decide.plan_preview_route(inp).url == f"https://{READABLE}/"


@pytest.mark.parametrize(
    ("host", "gateway_https", "publish_tls", "url"),
    [
        # The platform domain follows its listener: a wildcard certificate on it, or plain HTTP.
        ("todo-ws.apps.example.com", True, "listener", "https://todo-ws.apps.example.com/"),
        ("todo-ws.apps.example.com", False, "listener", "http://todo-ws.apps.example.com/"),
        ("todo-ws.apps.example.com", False, "certificate", "http://todo-ws.apps.example.com/"),
        ("apps.example.com", True, "none", "https://apps.example.com/"),
        # A custom hostname is TLS in both TLS modes, whatever the domain's listener does...
        ("shop.example.com", False, "listener", "https://shop.example.com/"),
        ("shop.example.com", False, "certificate", "https://shop.example.com/"),
        ("shop.example.com", True, "listener", "https://shop.example.com/"),
        # ...and plain only where the platform says it has no TLS for them.
        ("shop.example.com", False, "none", "http://shop.example.com/"),
        ("shop.example.com", True, "none", "http://shop.example.com/"),
        # A name that merely ends like the domain is not under it.
        ("evilapps.example.com", False, "none", "http://evilapps.example.com/"),
        ("evilapps.example.com", False, "listener", "https://evilapps.example.com/"),
    ],
)
def test_the_scheme_is_https_exactly_where_the_gateway_serves_tls(
    host: str, gateway_https: bool, publish_tls: str, url: str
) -> None:
    settings = OperatorSettings(
        gateway_name="g",
        preview_domain="apps.example.com",
        gateway_https=gateway_https,
        publish_tls=publish_tls,
    )
    assert decide.serves_tls(host, settings) == url.startswith("https://")
    assert decide.host_url(host, settings) == url


def test_a_plain_http_platform_keeps_http_preview_urls() -> None:
    settings = OperatorSettings(gateway_name="g", preview_domain="apps.example.com")
    inp = decide.RouteInput("todo", "ws-demo", "u", settings, {READABLE: ME}, True)
    assert decide.plan_preview_route(inp).url == f"http://{READABLE}/"
