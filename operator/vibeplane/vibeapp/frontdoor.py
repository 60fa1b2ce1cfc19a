"""The front door's side effects for one VibeApp: claim its host, apply its HTTPRoute and the
workspace's ReferenceGrant, publish and unpublish, release the claims of hosts it no longer
uses (a hostname dropped from spec.publish, the app deleted). The decisions are in
`vibeplane.vibeapp.decide.routes` and `.publish`, the objects in `vibeplane.vibeapp.routes` and
`.publish`. Claims live in settings.claims_namespace (never beside the leader's Lease)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from vibeplane.api import vibeapp as api
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.kube.client import KubeClient
from vibeplane.metrics import WRITES
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME, OperatorSettings
from vibeplane.vibeapp import desired, publish, routes
from vibeplane.vibeapp.decide import publish as decide_publish
from vibeplane.vibeapp.decide import routes as decide_routes
from vibeplane.wellknown import LABEL_APP, LABEL_COMPONENT

CLAIM_LABELS = {LABEL_COMPONENT: routes.COMPONENT_CLAIM, LABEL_MANAGED_BY: MANAGER_NAME}
ROUTE_KINDS = (
    WatchedKind(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        {LABEL_COMPONENT: routes.COMPONENT_ROUTE, LABEL_MANAGED_BY: MANAGER_NAME},
    ),
    WatchedKind(
        "gateway.networking.k8s.io",
        "v1beta1",
        "referencegrants",
        "ReferenceGrant",
        {LABEL_COMPONENT: routes.COMPONENT_GRANT, LABEL_MANAGED_BY: MANAGER_NAME},
    ),
    WatchedKind("gateway.networking.k8s.io", "v1", "gateways", "Gateway", {}),
    WatchedKind("coordination.k8s.io", "v1", "leases", "Lease", CLAIM_LABELS),
)


class FrontDoor:
    """Routes of VibeApps through the platform's Gateway (on when the settings name one)."""

    def __init__(
        self, settings: OperatorSettings, cache: ObjectCache, kube: KubeClient, manager: str
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.kube = kube
        self.manager = manager
        self.enabled = decide_routes.routes_enabled(settings)

    def watch(self) -> None:
        if self.enabled:
            for kind in ROUTE_KINDS:
                self.cache.watch(kind)

    def route_input(self, app: str, namespace: str, uid: str) -> decide_routes.RouteInput:
        hosts = routes.preview_hosts(app, namespace, self.settings.preview_domain)
        claims = {host: routes.claim_holder(self._claim(host)) for host in hosts}
        gateway = self.cache.lookup(
            "Gateway", self.settings.gateway_name, self.settings.gateway_namespace
        )
        route = self.cache.lookup("HTTPRoute", routes.preview_route_name(app), namespace)
        return decide_routes.RouteInput(
            app, namespace, uid, self.settings, claims, gateway is not None, route
        )

    def preview(
        self, app: str, namespace: str, uid: str, workspace: str, workspace_uid: str
    ) -> decide_routes.RoutePlan:
        """Claim the preview's host, apply its route and the namespace's grant; the plan."""
        inp = self.route_input(app, namespace, uid)
        plan = decide_routes.plan_preview_route(inp)
        # At most one claim per candidate host: a lost race (another app created it first)
        # is seen in the cache and the next candidate is tried.
        for _ in range(3):
            if plan.claim is None:
                break
            self.claim(plan.claim, app, namespace, uid)
            plan = decide_routes.plan_preview_route(self.route_input(app, namespace, uid))
        if plan.route is None:
            return plan
        backend = decide_routes.front_service(self.settings)
        grant = routes.reference_grant(namespace, backend, workspace, workspace_uid)
        live_grant = self.cache.lookup(
            "ReferenceGrant", grant["metadata"]["name"], backend.namespace
        )
        apply_and_remember(self.kube, self.cache, grant, self.manager, "VibeApp", live_grant)
        apply_and_remember(self.kube, self.cache, plan.route, self.manager, "VibeApp", inp.route)
        return plan

    def publish(
        self,
        app: str,
        namespace: str,
        uid: str,
        spec: api.Publish,
        revisions: Sequence[Mapping[str, Any]],
        published_revision: int | None,
        now: datetime,
        presign: Callable[[Mapping[str, Any]], tuple[str, str]],
        preview: desired.PreviewSettings,
    ) -> decide_publish.PublishPlan:
        """Claim the hostnames, then apply the published Deployment, Service and route (and per
        hostname certificates); the plan. Published objects are read, not cached (the cache
        holds previews' Deployments only): a published app costs reads, never writes, at rest."""

        def gather() -> decide_publish.PublishInput:
            return decide_publish.PublishInput(
                app=app,
                namespace=namespace,
                publish=spec,
                revisions=revisions,
                settings=self.settings,
                claims={h: routes.claim_holder(self._claim(h)) for h in spec.hostnames},
                gateway_exists=self._gateway() is not None,
                deployment=self.kube.get(
                    "apps/v1", "Deployment", publish.published_name(app), namespace
                ),
                now=now,
                published_revision=published_revision,
            )

        plan = decide_publish.plan_publish(gather())
        for _ in range(len(spec.hostnames) + 1):
            if plan.claim is None:
                break
            self.claim(plan.claim, app, namespace, uid)
            plan = decide_publish.plan_publish(gather())
        if not plan.revision:
            return plan
        expires, url = plan.bundle_url or presign(plan.revision)
        deployment = publish.published_deployment(
            app, namespace, uid, plan.revision, url, expires, spec.replicas, preview
        )
        gateway = decide_routes.gateway_ref(self.settings)
        certificates = self.settings.publish_tls == "certificate" and bool(plan.custom_hosts)
        objects = [
            deployment,
            publish.published_service(app, namespace, uid),
            publish.published_route(
                app, namespace, uid, list(dict.fromkeys(spec.hostnames)), gateway, certificates
            ),
        ]
        if certificates:
            for host in plan.custom_hosts:
                objects.append(
                    publish.certificate(
                        app,
                        namespace,
                        uid,
                        host,
                        self.settings.certificate_issuer,
                        self.settings.certificate_issuer_kind,
                    )
                )
            objects.append(publish.listener_set(app, namespace, uid, plan.custom_hosts, gateway))
        for manifest in objects:
            if self.kube.apply(manifest, self.manager, lookup=True) is not None:
                WRITES.labels("VibeApp", manifest["kind"]).inc()
        if self.settings.publish_tls == "certificate":
            # Hostnames dropped from the spec: their certificates go (and the ListenerSet
            # when no custom hostname is left).
            wanted = {m["metadata"]["name"] for m in objects if m["kind"] == "Certificate"}
            self._prune_certificates(app, namespace, wanted)
            if not certificates:
                self._delete(
                    publish.LISTENERSET_API, "ListenerSet", publish.published_name(app), namespace
                )
        return plan

    def _gateway(self) -> Mapping[str, Any] | None:
        return self.cache.lookup(
            "Gateway", self.settings.gateway_name, self.settings.gateway_namespace
        )

    def claim(self, host: str, app: str, namespace: str, uid: str) -> bool:
        """Create the claim of `host` if absent; whether this app holds it now."""
        body = routes.hostname_claim(host, self.settings.claims_namespace, app, namespace, uid)
        created = self.kube.create(body)
        if created is not None:
            created.setdefault("kind", "Lease")
            self.cache.remember(created)
            WRITES.labels("VibeApp", "Lease").inc()
            return True
        live = self.kube.get("coordination.k8s.io/v1", "Lease", host, self.claims_namespace)
        if live is not None:
            live.setdefault("kind", "Lease")
            self.cache.remember(live)
        return routes.claim_holder(live) == (namespace, app)

    def release(self, app: str, namespace: str, keep: Collection[str] = ()) -> int:
        """Delete the claims this app holds on hosts outside `keep` (all of them: it is being
        deleted); how many. Claims are not owned by their app (they live in the claims
        namespace), so nothing else frees them."""
        if not self.enabled:
            return 0
        released = 0
        for claim in self.cache.items("Lease", self.settings.claims_namespace):
            name = claim["metadata"]["name"]
            if routes.claim_holder(claim) == (namespace, app) and name not in keep:
                self.kube.delete("coordination.k8s.io/v1", "Lease", name, self.claims_namespace)
                self.cache.forget("Lease", name, self.claims_namespace)
                WRITES.labels("VibeApp", "Lease").inc()
                released += 1
        return released

    def settle_claims(
        self, app: str, namespace: str, publishing: api.Publish | None, applied: bool
    ) -> int:
        """Release the claims of hosts this app no longer uses: neither one of its preview
        hosts nor a hostname of spec.publish, nor (while a changed spec.publish is refused and
        production serves on) a hostname of its live public route. Nothing is read unless a
        claim is on the way out; how many were released."""
        if not self.enabled:
            return 0
        keep = set(routes.preview_hosts(app, namespace, self.settings.preview_domain))
        if publishing is not None:
            keep.update(publishing.hostnames)
        held = {
            claim["metadata"]["name"]
            for claim in self.cache.items("Lease", self.claims_namespace)
            if routes.claim_holder(claim) == (namespace, app)
        }
        if not held - keep:
            return 0
        if publishing is not None and not applied:
            keep.update(self.live_published_hosts(app, namespace))
        return self.release(app, namespace, keep) if held - keep else 0

    def live_published_hosts(self, app: str, namespace: str) -> list[str]:
        route = self.kube.get(
            routes.HTTPROUTE_API, "HTTPRoute", publish.published_name(app), namespace
        )
        return list(((route or {}).get("spec") or {}).get("hostnames") or [])

    def unpublish(self, app: str, namespace: str) -> int:
        """Delete what publishing made (public route first, so the Gateway stops sending
        before the pods go); how many objects were deleted. Certificates and the ListenerSet
        exist only in publish_tls certificate mode (their kinds may not be served otherwise)."""
        name = publish.published_name(app)
        targets = [
            (routes.HTTPROUTE_API, "HTTPRoute", name),
            ("v1", "Service", name),
            ("apps/v1", "Deployment", name),
        ]
        if self.settings.publish_tls == "certificate":
            targets.append((publish.LISTENERSET_API, "ListenerSet", name))
        deleted = sum(self._delete(*target, namespace) for target in targets)
        if self.settings.publish_tls == "certificate":
            deleted += self._prune_certificates(app, namespace, set())
        return deleted

    def _prune_certificates(self, app: str, namespace: str, keep: Collection[str]) -> int:
        """Delete the app's Certificates not named in `keep`; how many."""
        selector = f"{LABEL_APP}={app},{LABEL_COMPONENT}={publish.COMPONENT_CERTIFICATE}"
        live = self.kube.list_objects(publish.CERT_MANAGER_API, "Certificate", namespace, selector)
        names = [c["metadata"]["name"] for c in live if c["metadata"]["name"] not in keep]
        return sum(
            self._delete(publish.CERT_MANAGER_API, "Certificate", name, namespace) for name in names
        )

    def _delete(self, api_version: str, kind: str, name: str, namespace: str) -> bool:
        deleted = self.kube.delete(api_version, kind, name, namespace)
        if deleted:
            WRITES.labels("VibeApp", kind).inc()
        return deleted

    @property
    def claims_namespace(self) -> str:
        return self.settings.claims_namespace

    def _claim(self, host: str) -> Mapping[str, Any] | None:
        return self.cache.lookup("Lease", host, self.settings.claims_namespace)
