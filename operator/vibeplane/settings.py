"""The operator's settings, from the environment (the Helm chart sets them on the Deployment)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field

# Defined in `vibeplane.wellknown` (their one home); named here too for the modules that read
# them with the settings.
from vibeplane.wellknown import ANNOTATION_PREFIX as ANNOTATION_PREFIX
from vibeplane.wellknown import FINALIZER as FINALIZER
from vibeplane.wellknown import KOPF_FINALIZER as KOPF_FINALIZER
from vibeplane.wellknown import LABEL_APP as LABEL_APP
from vibeplane.wellknown import LABEL_MANAGED_BY as LABEL_MANAGED_BY
from vibeplane.wellknown import LABEL_WORKSPACE as LABEL_WORKSPACE

MANAGER_NAME = "vibeplane"


def field_manager(controller: str) -> str:
    """The server-side apply field manager of one controller, e.g. vibeplane-workspace."""
    return f"{MANAGER_NAME}-{controller}"


def default_identity() -> str:
    """This process among the operator's replicas: host name and process id.

    Unique on one machine too (two local replicas differ by pid), and a restarted process
    is a new candidate that waits for its predecessor's lease to expire. In a pod the chart
    sets the pod's name instead (downward API), which `kubectl get lease` shows as holder.
    """
    return f"{socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True)
class OperatorSettings:
    """Operator-wide choices; each has an environment variable of the same name."""

    platform_namespace: str = "vibeplane-system"
    """Where shared ModelDeployments live."""
    default_model: str = "builtin"
    """The platform's default ModelDeployment (in platform_namespace)."""
    gateway_namespace: str = "vibeplane-gateway"
    """The only namespace allowed to reach previews, and where the platform's Gateway lives."""
    gateway_name: str = ""
    """The platform's Gateway (Gateway API) that apps' HTTPRoutes attach to. Empty: no routes
    (a preview's URL is the local node's port, a NodePort or its Service's cluster name)."""
    gateway_listener: str = ""
    """The Gateway listener (sectionName) routes attach to; empty: any listener that allows
    them."""
    gateway_https: bool = False
    """Whether that listener terminates TLS for the platform domain (a wildcard certificate on
    the listener): URLs under the domain are https://."""
    front_service_name: str = "vibeplane-frontdoor"
    """The front service (authentication, wake on visit) in platform_namespace: what preview
    routes send to."""
    front_service_port: int = 80
    """The front service's port."""
    claims_namespace: str = "vibeplane-hostnames"
    """Where hostname claims live (a Lease per host, vibeplane.vibeapp.routes): a namespace of
    their own, so the right to delete claims is not a right to delete the leader's Lease in
    platform_namespace. Applied at start when routes are on (chart: frontDoor.claimsNamespace)."""
    publish_tls: str = "listener"
    """How published custom hostnames get TLS: "listener" (the Gateway's listener holds a
    certificate that covers them, e.g. a wildcard: nothing per app) or "certificate" (a
    cert-manager Certificate per hostname against certificate_issuer, and a ListenerSet on the
    Gateway terminating TLS with it): either way their URLs are https://; "none" for a
    plain-HTTP gateway (http:// URLs). See vibeplane.vibeapp.decide.routes.serves_tls."""
    certificate_issuer: str = ""
    """The cert-manager issuer of published hostnames' Certificates (publish_tls certificate)."""
    certificate_issuer_kind: str = "ClusterIssuer"
    """ClusterIssuer or Issuer (an Issuer must exist in every workspace namespace)."""
    custom_domain_suffixes: tuple[str, ...] = ()
    """Published hostnames outside the platform domain must end in one of these (comma-
    separated); empty: any."""
    reserved_hostnames: tuple[str, ...] = (
        "www",
        "api",
        "admin",
        "auth",
        "login",
        "console",
        "dashboard",
        "gateway",
        "status",
    )
    """Names under the platform domain no app may publish on (comma-separated labels)."""
    runtime_class: str = "gvisor"
    """The RuntimeClass of preview pods."""
    bind_address: str = "127.0.0.1"
    """Where the metrics and liveness servers listen (the chart sets 0.0.0.0 in a pod)."""
    metrics_port: int = 9090
    """Where Prometheus metrics are served."""
    liveness_port: int = 8080
    """Where /healthz answers."""
    resync_seconds: float = 300.0
    """How often every object is reconciled even without events (drift repair)."""
    preview_image: str = "ghcr.io/vibeplane/preview:0.1.0"
    """The image preview pods run (the preview runtime, runtime/sandbox)."""
    preview_command: tuple[str, ...] = ("python3", "-m", "vibeplane_sandbox.preview")
    """The preview container's command (JSON list in the environment)."""
    preview_local_node: bool = False
    """Schedule previews on the local preview node (vibeplane up), not on kubelets."""
    preview_domain: str = ""
    """The platform domain: previews answer at http://<app>-<namespace>.<domain>/ through the
    gateway (see vibeplane.vibeapp.routes for the exact rule); empty: the Service's cluster
    address (or, on the local node, its loopback port)."""
    preview_node_address: str = ""
    """An address of the node that this machine routes to (the local platform's real node):
    preview Services become NodePorts and a preview's URL is this address and its node port.
    Empty: the Service's cluster address, or preview_domain."""
    preview_ingress_cidrs: tuple[str, ...] = ()
    """Sources besides the gateway namespace that may reach previews (comma-separated CIDRs;
    the local machine reaching previews through the node port)."""
    object_store_egress: str = ""
    """CIDR:port of the object store as preview pods reach it (they fetch their bundle from
    there); each workspace then allows previews that egress and no other. Empty: no allowance
    (the store is reached through the internet allowance, or previews run off the pod network)."""
    preview_activity_poll: bool = True
    """Ask running previews when they last served someone (hibernation by traffic). Off where
    the operator cannot reach previews (simulated nodes): then only prompts and the wake
    annotation count as activity."""
    preview_delivery: bool = True
    """Deliver each revision to its running sandbox. Off only where nothing runs in preview
    pods (simulated nodes): a Ready pod then counts as serving the revision."""
    preview_ready_timeout: float = 180.0
    """Seconds a new revision's preview has to become ready before it counts as failed."""
    preview_warm_pool: int = 1
    """Idle preview sandboxes each workspace keeps started for new apps to adopt, unless its
    spec.warmPool says otherwise (0: none, every new preview starts cold)."""
    delivery_key_file: str = ""
    """The platform's revision-delivery key (vibeplane.vibeapp.delivery), kept across restarts:
    created there when missing. Empty: a key of this process only (preview pods roll over to
    the new public key after a restart)."""
    generation_workers: int = 4
    """Generations running at once in this operator."""
    workspace_concurrency: int = 2
    """Generations running at once per workspace."""
    model_timeout: float = 120.0
    """Seconds one model call may take."""
    builtin_model_url: str = "http://vibeplane-modelserver.vibeplane-system.svc:8080/openai/v1"
    """The OpenAI base URL of the builtin generator (runtime/modelserver)."""
    modelserver_runtime: str = "vibeplane-modelserver"
    """The KServe ServingRuntime of ModelDeployments that name none."""
    model_service_account: str = "vibeplane-models"
    """The ServiceAccount InferenceServices run under (one per namespace, made by the operator)."""
    model_storage_secret: str = "vibeplane-model-storage"
    """The Secret with S3 credentials that ServiceAccount lists when it exists."""
    llm_router: bool = False
    """Give vLLM models (LLMInferenceService) KServe's router: a Gateway API route and llm-d's
    prefix- and LoRA-aware scheduler. Only where the Gateway API inference extension is
    installed; off, the operator calls the workload Service directly."""
    model_egress_allow: tuple[str, ...] = ()
    """Destinations a tenant's external model may reach although they are not public: host
    names (exact) and CIDRs (JSON list in the environment). See vibeplane.generation.egress."""
    cluster_cidrs: tuple[str, ...] = ()
    """The cluster's service and pod ranges (JSON list of CIDRs): tenant models may never
    reach them, even where they are public addresses."""
    leader_election: bool = False
    """Run as one of several replicas of which only the holder of a Lease reconciles
    (`vibeplane.controller.leader`). Off by default: a single process (`vibeplane up`, the test
    suite's operator) has nobody to be elected against, and renewing a Lease every
    `leader_election_retry_period` would be a write every 2 s that the zero-write checks of an
    idle operator would have to filter out. The Helm chart turns it on, so replicas > 1 is safe
    there."""
    leader_election_lease: str = "vibeplane-operator"
    """The Lease's name (coordination.k8s.io/v1), in `platform_namespace`."""
    leader_election_identity: str = field(default_factory=default_identity)
    """Who this replica is: the Lease's holderIdentity while it leads, and part of the
    User-Agent of every request it sends, so the API server's audit log tells replicas apart.
    Must differ between replicas. Default: `default_identity()`; the chart: the pod's name."""
    leader_election_lease_duration: float = 15.0
    """Seconds a standby waits, after it last saw the Lease change, before taking it over: the
    longest failover after a leader dies without releasing. client-go's default (kube-scheduler
    and kube-controller-manager use it), well inside the 30 s a failover may take."""
    leader_election_renew_deadline: float = 10.0
    """Seconds the leader keeps leading without a successful renewal before it stops itself.
    Shorter than the lease duration (client-go's default, 10 of 15 s), so a leader cut off from
    the API server has stopped before any standby can see the Lease expire."""
    leader_election_retry_period: float = 2.0
    """Seconds between attempts: the leader renews this often, a standby looks this often
    (plus jitter). client-go's default: five chances to renew within the deadline, and a
    standby notices a released Lease within about this long."""

    @classmethod
    def from_env(cls) -> OperatorSettings:
        def env(name: str, default: str) -> str:
            return os.environ.get(f"VIBEPLANE_{name.upper()}", default)

        return cls(
            platform_namespace=env("platform_namespace", cls.platform_namespace),
            default_model=env("default_model", cls.default_model),
            gateway_namespace=env("gateway_namespace", cls.gateway_namespace),
            gateway_name=env("gateway_name", cls.gateway_name),
            gateway_listener=env("gateway_listener", cls.gateway_listener),
            gateway_https=env("gateway_https", "false") == "true",
            front_service_name=env("front_service_name", cls.front_service_name),
            front_service_port=int(env("front_service_port", str(cls.front_service_port))),
            claims_namespace=env("claims_namespace", cls.claims_namespace),
            publish_tls=env("publish_tls", cls.publish_tls),
            certificate_issuer=env("certificate_issuer", cls.certificate_issuer),
            certificate_issuer_kind=env("certificate_issuer_kind", cls.certificate_issuer_kind),
            custom_domain_suffixes=tuple(
                s.strip().lower() for s in env("custom_domain_suffixes", "").split(",") if s.strip()
            ),
            reserved_hostnames=tuple(
                s.strip().lower()
                for s in env("reserved_hostnames", ",".join(cls.reserved_hostnames)).split(",")
                if s.strip()
            ),
            runtime_class=env("runtime_class", cls.runtime_class),
            bind_address=env("bind_address", cls.bind_address),
            metrics_port=int(env("metrics_port", str(cls.metrics_port))),
            liveness_port=int(env("liveness_port", str(cls.liveness_port))),
            resync_seconds=float(env("resync_seconds", str(cls.resync_seconds))),
            preview_image=env("preview_image", cls.preview_image),
            delivery_key_file=env("delivery_key_file", cls.delivery_key_file),
            preview_delivery=env("preview_delivery", "true") == "true",
            preview_command=tuple(
                json.loads(env("preview_command", json.dumps(list(cls.preview_command))))
            ),
            preview_local_node=env("preview_local_node", "false") == "true",
            preview_domain=env("preview_domain", cls.preview_domain),
            preview_node_address=env("preview_node_address", cls.preview_node_address),
            preview_ingress_cidrs=tuple(
                cidr for cidr in env("preview_ingress_cidrs", "").split(",") if cidr
            ),
            object_store_egress=env("object_store_egress", cls.object_store_egress),
            preview_activity_poll=env("preview_activity_poll", "true") == "true",
            preview_ready_timeout=float(
                env("preview_ready_timeout", str(cls.preview_ready_timeout))
            ),
            preview_warm_pool=int(env("preview_warm_pool", str(cls.preview_warm_pool))),
            generation_workers=int(env("generation_workers", str(cls.generation_workers))),
            workspace_concurrency=int(env("workspace_concurrency", str(cls.workspace_concurrency))),
            model_timeout=float(env("model_timeout", str(cls.model_timeout))),
            builtin_model_url=env("builtin_model_url", cls.builtin_model_url),
            modelserver_runtime=env("modelserver_runtime", cls.modelserver_runtime),
            model_service_account=env("model_service_account", cls.model_service_account),
            model_storage_secret=env("model_storage_secret", cls.model_storage_secret),
            llm_router=env("llm_router", "false") == "true",
            model_egress_allow=tuple(json.loads(env("model_egress_allow", "[]"))),
            cluster_cidrs=tuple(json.loads(env("cluster_cidrs", "[]"))),
            leader_election=env("leader_election", "false") == "true",
            leader_election_lease=env("leader_election_lease", cls.leader_election_lease),
            leader_election_identity=env("leader_election_identity", "") or default_identity(),
            leader_election_lease_duration=float(
                env("leader_election_lease_duration", str(cls.leader_election_lease_duration))
            ),
            leader_election_renew_deadline=float(
                env("leader_election_renew_deadline", str(cls.leader_election_renew_deadline))
            ),
            leader_election_retry_period=float(
                env("leader_election_retry_period", str(cls.leader_election_retry_period))
            ),
        )
