"""Publish decisions: whether spec.publish can be served, which host to claim, what to apply,
and the Published condition. Bad input (an invalid, reserved, disallowed or taken hostname, a
revision that does not exist or did not pass validation, no Gateway) is a condition and
changes nothing: production keeps serving what it served."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vibeplane.api import vibeapp as api
from vibeplane.kube.conditions import ConditionSpec, find
from vibeplane.settings import OperatorSettings
from vibeplane.timestamps import parse_time
from vibeplane.vibeapp import routes
from vibeplane.vibeapp.decide.routes import host_url, routes_enabled
from vibeplane.vibeapp.publish import ANNOTATION_BUNDLE_URL_EXPIRES, ANNOTATION_REVISION
from vibeplane.wellknown import ENV_BUNDLE_SHA256, ENV_BUNDLE_URL

PUBLISHED = "Published"
NOT_PUBLISHED = "NotPublished"
ROLLOUT_RECHECK = 5.0
BUNDLE_URL_SECONDS = 7 * 24 * 3600
"""Published pods fetch their bundle when they start (a restart, a reschedule), so their
presigned URL lives long (SigV4's longest, 7 days)..."""
BUNDLE_URL_MARGIN = timedelta(days=1)
"""...and is renewed (a rolling update) only a day before it expires."""


@dataclass(frozen=True)
class PublishInput:
    app: str
    namespace: str
    publish: api.Publish
    revisions: Sequence[Mapping[str, Any]]
    settings: OperatorSettings
    claims: Mapping[str, tuple[str, str] | None]
    """Holder (namespace, app) of each hostname's claim; None: unclaimed."""
    gateway_exists: bool
    deployment: Mapping[str, Any] | None
    """The live published Deployment."""
    now: datetime
    published_revision: int | None = None
    """What status says production served so far."""


@dataclass(frozen=True)
class PublishPlan:
    condition: ConditionSpec
    claim: str | None = None
    """A hostname to claim (create-if-absent) before anything else; then decide again."""
    revision: Mapping[str, Any] = field(default_factory=dict)
    """The revision to serve: apply the published objects for it (empty: apply nothing)."""
    bundle_url: tuple[str, str] | None = None
    """(expires, URL) of the live bundle while it stays valid; None: presign anew."""
    custom_hosts: tuple[str, ...] = ()
    """Hostnames outside the platform domain (a Certificate each in certificate mode)."""
    url: str | None = None
    published_revision: int | None = None
    requeue_after: float | None = None


def hostname_problem(host: str, settings: OperatorSettings) -> tuple[str, str] | None:
    """(reason, message) when `host` may not be published, else None."""
    if not routes.valid_hostname(host):
        return "InvalidHostname", (
            f"hostname {host[:253]!r} is not a lowercase DNS name of at least two labels "
            "(letters, digits, '-'; no wildcard, no trailing dot)"
        )
    domain = settings.preview_domain.strip(".").lower()
    if routes.under(host, domain):
        label = host[: -len(domain)].rstrip(".")
        if not label or label in settings.reserved_hostnames or "." in label:
            return "HostnameReserved", (
                f"hostname {host} is reserved by the platform (the domain itself, names more "
                f"than one level below it, and {', '.join(settings.reserved_hostnames)})"
            )
        return None
    suffixes = settings.custom_domain_suffixes
    if suffixes and not any(routes.under(host, suffix) for suffix in suffixes):
        return "HostnameNotAllowed", (
            f"hostname {host} is outside the custom domains this platform allows "
            f"({', '.join(suffixes)})"
        )
    return None


def plan_publish(inp: PublishInput) -> PublishPlan:
    hosts = list(dict.fromkeys(inp.publish.hostnames))
    kept = inp.published_revision
    for host in hosts:
        problem = hostname_problem(host, inp.settings)
        if problem is not None:
            return _refused(*problem, kept)
    number = inp.publish.revision
    revision = next((r for r in inp.revisions if r.get("number") == number), None)
    if revision is None or not revision.get("sha256"):
        stored = ", ".join(str(r["number"]) for r in inp.revisions if r.get("sha256")) or "none"
        message = f"spec.publish.revision {number} is not a stored revision (stored: {stored})"
        return _refused("RevisionNotFound", message, kept)
    if revision.get("validation") != "Passed":
        state = revision.get("validation") or "not validated yet"
        message = (
            f"revision {number} cannot be published: its validation is {state} (only a revision "
            "whose preview became ready is published)"
        )
        return _refused("RevisionNotValidated", message, kept)
    if not routes_enabled(inp.settings):
        message = (
            "the platform names no Gateway and domain (chart values gateway.name, preview.domain)"
        )
        return _refused("GatewayNotConfigured", message, kept)
    if not inp.gateway_exists:
        settings = inp.settings
        message = (
            f"Gateway {settings.gateway_namespace}/{settings.gateway_name} does not exist: "
            "nothing is published until it does"
        )
        return _refused("GatewayNotFound", message, kept)
    me = (inp.namespace, inp.app)
    for host in hosts:
        holder = inp.claims.get(host)
        if holder is None:
            condition = ConditionSpec(PUBLISHED, "False", "Claiming", f"claiming {host}")
            return PublishPlan(condition, claim=host, published_revision=kept)
        if holder != me:
            message = (
                f"hostname {host} belongs to app {holder[1]} in namespace {holder[0]}: the first "
                "claim holds; choose another hostname"
            )
            return _refused("HostnameTaken", message, kept)
    domain = inp.settings.preview_domain
    custom = tuple(h for h in hosts if not routes.under(h, domain))
    url = host_url(hosts[0], inp.settings)
    bundle = reusable_bundle_url(inp.deployment, revision, inp.now)
    if rolled_out(inp.deployment, number, inp.publish.replicas):
        message = f"revision {number} serves at {url} ({inp.publish.replicas} replicas)"
        condition = ConditionSpec(PUBLISHED, "True", "Published", message)
        return PublishPlan(condition, None, revision, bundle, custom, url, number)
    message = f"rolling production over to revision {number}"
    condition = ConditionSpec(PUBLISHED, "False", "RollingOut", message)
    return PublishPlan(condition, None, revision, bundle, custom, url, kept, ROLLOUT_RECHECK)


def _refused(reason: str, message: str, kept: int | None) -> PublishPlan:
    suffix = f"; production keeps serving revision {kept}" if kept else ""
    return PublishPlan(
        ConditionSpec(PUBLISHED, "False", reason, message + suffix), published_revision=kept
    )


def rolled_out(deployment: Mapping[str, Any] | None, revision: int, replicas: int) -> bool:
    """Every published pod serves `revision` and is ready, and no old pod is left."""
    if not deployment:
        return False
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    status = deployment.get("status") or {}
    return (
        annotations.get(ANNOTATION_REVISION) == str(revision)
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and (status.get("updatedReplicas") or 0) >= replicas
        and (status.get("readyReplicas") or 0) >= replicas
        and (status.get("replicas") or 0) == (status.get("updatedReplicas") or 0)
    )


def reusable_bundle_url(
    deployment: Mapping[str, Any] | None, revision: Mapping[str, Any], now: datetime
) -> tuple[str, str] | None:
    """The live Deployment's presigned bundle URL while it stays valid, so a converged
    published Deployment's template never changes."""
    if deployment is None:
        return None
    template = deployment["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0].get("env", [])}
    expires = annotations.get(ANNOTATION_BUNDLE_URL_EXPIRES, "")
    valid_until = parse_time(expires)
    if (
        env.get(ENV_BUNDLE_SHA256) == revision.get("sha256")
        and valid_until is not None
        and valid_until > now + BUNDLE_URL_MARGIN
    ):
        return expires, str(env[ENV_BUNDLE_URL])
    return None


@dataclass(frozen=True)
class UnpublishPlan:
    condition: ConditionSpec
    remove: bool
    """Delete the published objects (and clear status.publishedURL/publishedRevision): status
    says something was published, or tried to be, since the last unpublish."""


def plan_unpublish(status: Mapping[str, Any]) -> UnpublishPlan | None:
    """spec.publish is unset: what status says decides whether anything was published and must
    go. None: nothing ever was (no Published condition is added to apps that never publish)."""
    condition = find(status.get("conditions"), PUBLISHED)
    leftovers = bool(status.get("publishedURL") or status.get("publishedRevision"))
    if condition is None and not leftovers:
        return None
    message = "spec.publish is not set: nothing is published"
    remove = leftovers or condition is None or condition.get("reason") != NOT_PUBLISHED
    return UnpublishPlan(ConditionSpec(PUBLISHED, "False", NOT_PUBLISHED, message), remove)
