"""Publishing: the builders (golden files; UPDATE_GOLDEN=1 rewrites them) and the decisions,
bad input first: each a Published condition that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.vibeapp.test_routes import UID, _golden
from vibeplane.api.vibeapp import Publish
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp import desired, publish, routes
from vibeplane.vibeapp.decide import publish as decide

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PREVIEW = desired.PreviewSettings(
    runtime_class="gvisor",
    image="ghcr.io/vibeplane/preview:0.1.0",
    command=("python3", "-m", "vibeplane_sandbox.preview"),
    local_node=False,
)
GATEWAY = routes.GatewayRef("vibeplane", "vibeplane-gateway", "http")
SETTINGS = OperatorSettings(
    gateway_name="vibeplane",
    preview_domain="apps.example.com",
    custom_domain_suffixes=("example.com", "shop.io"),
)
PASSED = {"number": 1, "sha256": "ab" * 32, "validation": "Passed"}
FAILED = {"number": 2, "sha256": "cd" * 32, "validation": "Failed"}
ME = ("ws-demo", "todo")


def test_published_objects_match_golden() -> None:
    deployment = publish.published_deployment(
        "todo", "ws-demo", UID, PASSED, "http://s3/b?sig", "2026-12-03T13:00:00Z", 3, PREVIEW
    )
    _golden("published-deployment", deployment)
    _golden("published-service", publish.published_service("todo", "ws-demo", UID))
    route = publish.published_route("todo", "ws-demo", UID, ["shop.example.com"], GATEWAY, True)
    _golden("published-httproute", route)
    certificate = publish.certificate(
        "todo", "ws-demo", UID, "shop.example.com", "letsencrypt", "ClusterIssuer"
    )
    _golden("published-certificate", certificate)
    listeners = publish.listener_set("todo", "ws-demo", UID, ["shop.example.com"], GATEWAY)
    _golden("published-listenerset", listeners)


def test_the_published_deployment_rolls_over_readiness_gated_and_is_not_a_preview() -> None:
    deployment = publish.published_deployment("todo", "ws-demo", UID, PASSED, "u", "t", 2, PREVIEW)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "published"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "published"
    )
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/"


def test_the_published_route_goes_straight_to_the_published_service() -> None:
    route = publish.published_route("todo", "ws-demo", UID, ["a.shop.io"], GATEWAY, False)
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    assert backend["name"] == "todo-published"
    assert "namespace" not in backend
    assert len(route["spec"]["parentRefs"]) == 1


def _inp(
    hostnames: list[str] | None = None,
    revision: int = 1,
    claims: dict[str, tuple[str, str] | None] | None = None,
    gateway: bool = True,
    deployment: dict[str, Any] | None = None,
    settings: OperatorSettings = SETTINGS,
    kept: int | None = None,
) -> decide.PublishInput:
    hosts = hostnames or ["shop.example.com"]
    return decide.PublishInput(
        "todo",
        "ws-demo",
        Publish(revision=revision, hostnames=hosts, replicas=2),
        [PASSED, FAILED],
        settings,
        claims if claims is not None else dict.fromkeys(hosts, ME),
        gateway,
        deployment,
        NOW,
        kept,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"hostnames": ["Shop.Example.com"]}, "InvalidHostname"),
        ({"hostnames": ["*.example.com"]}, "InvalidHostname"),
        ({"hostnames": ["shop.other.org"]}, "HostnameNotAllowed"),
        ({"hostnames": ["www.apps.example.com"]}, "HostnameReserved"),
        ({"hostnames": ["apps.example.com"]}, "HostnameReserved"),
        ({"hostnames": ["a.b.apps.example.com"]}, "HostnameReserved"),
        ({"revision": 7}, "RevisionNotFound"),
        ({"revision": 2}, "RevisionNotValidated"),
        ({"gateway": False}, "GatewayNotFound"),
        ({"settings": OperatorSettings(preview_domain="apps.example.com")}, "GatewayNotConfigured"),
        ({"claims": {"shop.example.com": ("ws-other", "shop")}}, "HostnameTaken"),
    ],
)
def test_bad_input_is_a_condition_and_nothing_to_apply(change: dict[str, Any], reason: str) -> None:
    plan = decide.plan_publish(_inp(**change, kept=1))
    assert (plan.condition.status, plan.condition.reason) == ("False", reason)
    assert plan.revision == {}
    assert plan.claim is None
    assert plan.published_revision == 1
    assert "production keeps serving revision 1" in plan.condition.message


def test_an_unclaimed_hostname_is_claimed_first() -> None:
    plan = decide.plan_publish(_inp(claims={"shop.example.com": None}))
    assert plan.claim == "shop.example.com"
    assert plan.revision == {}


def test_a_passed_revision_rolls_out_then_is_published() -> None:
    plan = decide.plan_publish(_inp())
    assert plan.condition.reason == "RollingOut"
    assert plan.revision["number"] == 1
    assert plan.custom_hosts == ("shop.example.com",)
    # The default TLS mode: the listener's certificate covers custom hostnames.
    assert plan.url == "https://shop.example.com/"
    assert plan.published_revision is None
    live = publish.published_deployment("todo", "ws-demo", UID, PASSED, "u", "t", 2, PREVIEW)
    live["metadata"]["generation"] = 1
    live["status"] = {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
    }
    plan = decide.plan_publish(_inp(deployment=live))
    assert (plan.condition.status, plan.condition.reason) == ("True", "Published")
    assert plan.published_revision == 1
    assert plan.requeue_after is None
    # An old pod still running means the switch is not over.
    live["status"]["replicas"] = 3
    assert decide.plan_publish(_inp(deployment=live)).condition.reason == "RollingOut"


def test_certificate_mode_makes_custom_hosts_https() -> None:
    settings = OperatorSettings(
        gateway_name="vibeplane", preview_domain="apps.example.com", publish_tls="certificate"
    )
    plan = decide.plan_publish(_inp(settings=settings))
    assert plan.url == "https://shop.example.com/"


def test_the_published_url_takes_the_scheme_of_its_own_host() -> None:
    """The URL names the first hostname: a platform-domain one on a plain-HTTP listener stays
    http even when a custom hostname beside it gets a Certificate."""
    settings = OperatorSettings(
        gateway_name="vibeplane", preview_domain="apps.example.com", publish_tls="certificate"
    )
    hosts = ["shop.apps.example.com", "shop.example.com"]
    plan = decide.plan_publish(_inp(settings=settings, hostnames=hosts))
    assert plan.custom_hosts == ("shop.example.com",)
    assert plan.url == "http://shop.apps.example.com/"
    https = OperatorSettings(
        gateway_name="vibeplane", preview_domain="apps.example.com", gateway_https=True
    )
    assert decide.plan_publish(_inp(settings=https, hostnames=hosts)).url == (
        "https://shop.apps.example.com/"
    )


def test_a_plain_http_platform_publishes_custom_hosts_on_http() -> None:
    settings = OperatorSettings(
        gateway_name="vibeplane", preview_domain="apps.example.com", publish_tls="none"
    )
    assert decide.plan_publish(_inp(settings=settings)).url == "http://shop.example.com/"


def _published_status(reason: str, **fields: Any) -> dict[str, Any]:
    condition = {"type": "Published", "status": "False", "reason": reason, "message": ""}
    return {"conditions": [condition], **fields}


def test_an_app_that_never_published_gets_no_published_condition() -> None:
    assert decide.plan_unpublish({}) is None
    assert decide.plan_unpublish({"conditions": [{"type": "Ready", "status": "True"}]}) is None


@pytest.mark.parametrize(
    "status",
    [
        _published_status("Published", publishedURL="http://shop.apps.test/", publishedRevision=1),
        _published_status("RollingOut"),
        # Refused from the start: nothing was applied, but the claims it made must go.
        _published_status("HostnameTaken"),
        # Left behind by a write that lost its condition.
        {"publishedRevision": 2},
    ],
)
def test_dropping_publish_removes_what_status_says_was_published(status: dict[str, Any]) -> None:
    plan = decide.plan_unpublish(status)
    assert plan is not None
    assert plan.remove
    assert (plan.condition.status, plan.condition.reason) == ("False", "NotPublished")


def test_once_unpublished_nothing_more_is_removed() -> None:
    plan = decide.plan_unpublish(_published_status("NotPublished"))
    assert plan is not None
    assert not plan.remove
    assert plan.condition.reason == "NotPublished"
