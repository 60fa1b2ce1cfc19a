"""Tenant A cannot see, change or reach tenant B: RBAC by impersonation, NetworkPolicies.

Proven here, for every role A can hold (admin, editor, viewer), against B's namespace with a
generated app and its running preview:
- the API server refuses A every verb on B's objects, the subresources that reach into B's
  pods and services (exec, attach, port-forward, proxy), the platform's namespace (budget
  ledgers, shared models, their Secrets) and the cluster-scoped Workspaces; real requests as
  A's users, by impersonation, are refused with 403;
- no tenant can label or create a namespace, nor make a Workspace claim the gateway or
  platform namespace: the NetworkPolicies select sources by namespace, so that is what keeps
  their selectors truthful;
- B's NetworkPolicies, read back from the API server and evaluated by the rules of the
  NetworkPolicy API against A's real namespace labels, admit nothing from A, and A's own
  policies let nothing out to B's pods; no CNI enforces them on this control plane, so the
  evaluator (checked against allowed cases too) stands in for one.

A tenant's external model may reach only public addresses by default
(tests/security/test_model_egress.py); this session's operator allows 127.0.0.1, where the
test providers listen, and B's preview on the local node listens there too. Through that
allowed address A's admin can make the operator fetch B's preview (an external
ModelDeployment's baseURL), and the probe's failure never quotes a body that is not an
OpenAI-style error, so nothing of B's page reaches A's status.

Already proven elsewhere, and not repeated: the tenant roles verb by verb inside a workspace
(tests/integration/test_workspace.py::test_rbac_isolates_tenants), the policy set and its
edits (::test_network_policies_deny_by_default), a namespace of someone else refused
(::test_a_namespace_of_someone_else_is_refused), the restricted pod security level
(::test_namespace_enforces_the_restricted_level).
"""

from __future__ import annotations

import ipaddress
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.support import GROUP, VERSION, create_object, find_condition, wait_for
from tests.security.support import Platform, Tenant, can, custom, impersonating
from vibeplane.settings import OperatorSettings

pytestmark = pytest.mark.integration
SETTINGS = OperatorSettings()
ROLES = ("admin", "editor", "viewer")

# Everything in B a tenant could want, as (group, resource, subresource).
B_RESOURCES = [
    (GROUP, "vibeapps", ""),
    (GROUP, "vibeapps", "status"),
    (GROUP, "modeldeployments", ""),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "pods", ""),
    ("", "pods", "log"),
    ("", "services", ""),
    ("", "serviceaccounts", "token"),
    ("apps", "deployments", ""),
    ("networking.k8s.io", "networkpolicies", ""),
    ("rbac.authorization.k8s.io", "rolebindings", ""),
    ("", "resourcequotas", ""),
]
# The ways into a running pod or service through the API server.
REACH = [
    ("create", "pods", "exec"),
    ("create", "pods", "attach"),
    ("create", "pods", "portforward"),
    ("get", "pods", "proxy"),
    ("create", "pods", "proxy"),
    ("get", "services", "proxy"),
    ("create", "services", "proxy"),
]
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def test_no_role_of_a_may_touch_anything_of_b(api: ApiClient, platform: Platform) -> None:
    a, b = platform.a, platform.b
    allowed = [
        f"{a.members[role]} {verb} {resource}/{sub}"
        for role in ROLES
        for group, resource, sub in B_RESOURCES
        for verb in VERBS
        if can(api, a.members[role], verb, resource, b.namespace, group, sub)
    ]
    allowed += [
        f"{a.members[role]} {verb} {resource}/{sub}"
        for role in ROLES
        for verb, resource, sub in REACH
        if can(api, a.members[role], verb, resource, b.namespace, subresource=sub)
    ]
    assert allowed == []
    # The review answers yes where it should: B's own admin reaches into B's pods.
    assert can(api, b.members["admin"], "get", "secrets", b.namespace)
    assert can(api, b.members["editor"], "create", "vibeapps", b.namespace, GROUP)
    assert can(api, a.members["admin"], "get", "pods", a.namespace, subresource="log")


def _refused(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    return int(refused.value.status)


def test_requests_as_a_are_refused_by_the_api_server(api: ApiClient, platform: Platform) -> None:
    a, b = platform.a, platform.b
    preview, app = b.preview, b.app_name
    for role in ROLES:
        user = impersonating(api, a.members[role])
        objects = kubernetes.client.CustomObjectsApi(user)
        core = kubernetes.client.CoreV1Api(user)
        statuses = {
            "list apps": _refused(
                objects.list_namespaced_custom_object, GROUP, VERSION, b.namespace, "vibeapps"
            ),
            "read app": _refused(
                objects.get_namespaced_custom_object, GROUP, VERSION, b.namespace, "vibeapps", app
            ),
            "add prompt": _refused(
                objects.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                b.namespace,
                "vibeapps",
                app,
                {"spec": {"prompts": ["x", "y"]}},
            ),
            "delete app": _refused(
                objects.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                b.namespace,
                "vibeapps",
                app,
            ),
            "create app": _refused(
                objects.create_namespaced_custom_object,
                GROUP,
                VERSION,
                b.namespace,
                "vibeapps",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "VibeApp",
                    "metadata": {"name": "intruder"},
                    "spec": {"prompts": ["x"]},
                },
            ),
            "read secrets": _refused(core.list_namespaced_secret, b.namespace),
            "read deployment (bundle URL)": _refused(
                kubernetes.client.AppsV1Api(user).read_namespaced_deployment, preview, b.namespace
            ),
            "proxy to preview": _refused(
                core.connect_get_namespaced_service_proxy, f"{preview}:80", b.namespace
            ),
            "read B's workspace": _refused(
                objects.get_cluster_custom_object, GROUP, VERSION, "workspaces", b.name
            ),
            "read ledgers": _refused(core.list_namespaced_config_map, SETTINGS.platform_namespace),
        }
        assert statuses == dict.fromkeys(statuses, 403), a.members[role]
    # B's app is exactly as it was.
    live = custom(api).get_namespaced_custom_object(GROUP, VERSION, b.namespace, "vibeapps", app)
    assert live["spec"]["prompts"] == b.app["spec"]["prompts"]


def test_tenants_cannot_relabel_or_make_namespaces_or_read_the_platform(
    api: ApiClient, platform: Platform
) -> None:
    users = [t.members[r] for t in (platform.a, platform.b) for r in ROLES]
    granted = [
        f"{user} {verb} {what}"
        for user in users
        for verb, what, namespace, name, group in [
            ("patch", "namespaces", None, platform.a.namespace, ""),
            ("update", "namespaces", None, platform.a.namespace, ""),
            ("create", "namespaces", None, "", ""),
            ("list", "workspaces", None, "", GROUP),
            ("get", "modeldeployments", SETTINGS.platform_namespace, "builtin", GROUP),
            ("list", "secrets", SETTINGS.platform_namespace, "", ""),
            ("list", "configmaps", SETTINGS.platform_namespace, "", ""),
            ("list", "secrets", SETTINGS.gateway_namespace, "", ""),
        ]
        if can(api, user, verb, what, namespace, group, name=name)
    ]
    assert granted == []


@pytest.mark.parametrize("claimed", [SETTINGS.gateway_namespace, SETTINGS.platform_namespace])
def test_a_workspace_cannot_claim_the_namespaces_previews_trust(
    api: ApiClient, platform: Platform, claimed: str
) -> None:
    # A workspace in the gateway namespace would be admitted by every tenant's policies.
    name = f"sec-claim-{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"namespace": claimed})
    try:

        def refused() -> dict[str, Any] | None:
            obj = custom(api).get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
            condition = find_condition(obj, "Ready")
            return condition if condition and condition["reason"] == "NamespaceConflict" else None

        condition = wait_for(refused, timeout=30, what="NamespaceConflict")
        # "is reserved", or (when it exists) "is not managed by a workspace": refused either way.
        assert f"namespace {claimed} " in condition["message"]
        assert condition["status"] == "False"
        # Nothing was created or relabelled for the claim.
        assert "vibeplane.io/workspace" not in _namespace_labels(api, claimed)
    finally:
        custom(api).delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


# ---- NetworkPolicy semantics ---------------------------------------------------------------

Labels = Mapping[str, str]


def selects(selector: Mapping[str, Any] | None, labels: Labels) -> bool:
    """metav1.LabelSelector semantics: {} selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def _peer_admits(
    peer: Mapping[str, Any],
    policy_namespace: str,
    namespace: str,
    namespace_labels: Labels,
    pod_labels: Labels,
    pod_ip: str,
) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(pod_ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except") or []
        )
    if "namespaceSelector" in peer:
        namespace_ok = selects(peer["namespaceSelector"], namespace_labels)
    else:
        namespace_ok = namespace == policy_namespace  # podSelector alone: the policy's namespace
    return namespace_ok and selects(peer.get("podSelector"), pod_labels)


def allowed(
    policies: Sequence[Mapping[str, Any]],
    direction: str,
    pod_labels: Labels,
    peer_namespace: str,
    peer_namespace_labels: Labels,
    peer_pod_labels: Labels,
    peer_ip: str,
) -> bool:
    """Whether traffic in `direction` ("Ingress" to, or "Egress" from, a pod with
    `pod_labels` in the policies' namespace) with the peer is allowed, by the NetworkPolicy
    API: a pod no policy selects for that direction is open; else one rule must admit it."""
    selecting = [
        p
        for p in policies
        if direction in _types(p) and selects(p["spec"].get("podSelector"), pod_labels)
    ]
    if not selecting:
        return True
    field, peers_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(field) or []:
            peers = rule.get(peers_field)
            if not peers:
                return True  # a rule without peers admits every peer
            if any(
                _peer_admits(
                    peer,
                    policy["metadata"]["namespace"],
                    peer_namespace,
                    peer_namespace_labels,
                    peer_pod_labels,
                    peer_ip,
                )
                for peer in peers
            ):
                return True
    return False


def _policies(api: ApiClient, namespace: str) -> list[dict[str, Any]]:
    items = kubernetes.client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items
    return [api.sanitize_for_serialization(item) for item in items]


def _namespace_labels(api: ApiClient, name: str) -> dict[str, str]:
    try:
        labels = kubernetes.client.CoreV1Api(api).read_namespace(name).metadata.labels
    except ApiException as error:
        if error.status != 404:
            raise
        # The gateway's namespace, as the API server will label it when it is made.
        return {"kubernetes.io/metadata.name": name}
    return dict(labels or {})


def _preview_labels(api: ApiClient, tenant: Tenant) -> dict[str, str]:
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        tenant.namespace, label_selector=f"vibeplane.io/app={tenant.app_name}"
    )
    assert pods.items, f"no preview pod in {tenant.namespace}"
    return dict(pods.items[0].metadata.labels)


# Addresses pods get from common CNIs (kind, Calico, EKS/GKE ranges, CGNAT).
POD_ADDRESSES = ["10.244.1.7", "192.168.12.9", "172.20.3.4", "100.64.0.12"]
PUBLIC_ADDRESS = "93.184.216.34"


def test_network_policies_admit_nothing_from_another_tenant(
    api: ApiClient, platform: Platform
) -> None:
    a, b = platform.a, platform.b
    b_policies = _policies(api, b.namespace)
    a_labels, b_labels = _namespace_labels(api, a.namespace), _namespace_labels(api, b.namespace)
    b_preview, a_preview = _preview_labels(api, b), _preview_labels(api, a)
    # A's pods, whatever they label themselves (a tenant controls its pods' labels).
    a_pod_labels = [a_preview, {}, b_preview, {"k8s-app": "kube-dns"}]
    for target in (b_preview, {"app": "other"}):
        for source in a_pod_labels:
            for ip in POD_ADDRESSES:
                assert not allowed(
                    b_policies, "Ingress", target, a.namespace, a_labels, source, ip
                ), f"B admits {source} from A"
    # Nor does anything leave A for B's pods, even with internet egress allowed for A.
    workspaces = custom(api)
    workspaces.patch_cluster_custom_object(
        GROUP, VERSION, "workspaces", a.name, {"spec": {"network": {"allowInternetEgress": True}}}
    )
    try:
        a_policies = wait_for(
            lambda: _with_policy(api, a.namespace, "vibeplane-allow-internet"),
            timeout=20,
            what="A's internet policy",
        )
        for source in a_pod_labels:
            for ip in POD_ADDRESSES:
                assert not allowed(
                    a_policies, "Egress", source, b.namespace, b_labels, b_preview, ip
                ), f"A's {source} reaches B's preview at {ip}"
        # The evaluator is not blind: it admits what the policies mean to admit.
        assert allowed(a_policies, "Egress", a_preview, "", {}, {}, PUBLIC_ADDRESS)
    finally:
        workspaces.patch_cluster_custom_object(
            GROUP, VERSION, "workspaces", a.name, {"spec": {"network": None}}
        )
    gateway, system = SETTINGS.gateway_namespace, SETTINGS.platform_namespace
    for trusted in (gateway, system):
        labels = _namespace_labels(api, trusted)
        assert allowed(b_policies, "Ingress", b_preview, trusted, labels, {}, "10.0.0.9")
        assert not allowed(b_policies, "Ingress", {}, trusted, labels, {}, "10.0.0.9")
    dns_namespace, dns_pod = {"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"}
    assert allowed(b_policies, "Egress", {}, "kube-system", dns_namespace, dns_pod, "10.0.0.10")
    assert not allowed(b_policies, "Egress", b_preview, "", {}, {}, PUBLIC_ADDRESS)


def _with_policy(api: ApiClient, namespace: str, name: str) -> list[dict[str, Any]] | None:
    policies = _policies(api, namespace)
    return policies if any(p["metadata"]["name"] == name for p in policies) else None


# ---- through the operator ------------------------------------------------------------------


def _whitespace_folded(text: str) -> str:
    return " ".join(text.split())


def test_a_tenant_cannot_read_another_tenants_preview_through_the_operator(
    api: ApiClient, platform: Platform
) -> None:
    a, b = platform.a, platform.b
    b_url = str(b.app["status"]["url"])
    with urllib.request.urlopen(b_url, timeout=10) as response:
        page = _whitespace_folded(response.read().decode())
    admin = impersonating(api, a.members["admin"])  # a role that may create models in A
    models = kubernetes.client.CustomObjectsApi(admin)
    name = f"peek-{uuid.uuid4().hex[:6]}"
    models.create_namespaced_custom_object(
        GROUP,
        VERSION,
        a.namespace,
        "modeldeployments",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {
                "model": {"name": "peek"},
                "serving": {"external": {"baseURL": f"{b_url}index.html?", "model": "peek"}},
            },
        },
    )

    def checked() -> dict[str, Any] | None:
        obj = models.get_namespaced_custom_object(
            GROUP, VERSION, a.namespace, "modeldeployments", name
        )
        condition = find_condition(obj, "Ready")
        # On the real node B's URL is a private address: refused before any request is made.
        refused = ("ProbeFailed", "EgressRefused")
        return condition if condition and condition["reason"] in refused else None

    condition = wait_for(checked, timeout=30, what="the probe of B's preview")
    # Past the doctype: B's own markup (its title, its layout).
    assert page[60:120] not in _whitespace_folded(condition["message"])
