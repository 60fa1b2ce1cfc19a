"""Pure builders: a Workspace's spec -> the manifests of its children and its conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from vibeplane.api.common import owner_reference as common_owner_reference
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.explain import refusal_message
from vibeplane.budget.ledger import Amount, Ask, Ledger, Refusal
from vibeplane.budget.limits import budget_limits
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.settings import LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGER_NAME, OperatorSettings
from vibeplane.timestamps import format_time
from vibeplane.wellknown import LABEL_COMPONENT, LABEL_RETAIN

Manifest = dict[str, Any]

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"


def namespace_name(workspace: str, spec: WorkspaceSpec) -> str:
    """spec.namespace, or ws-<name>."""
    return spec.namespace or f"ws-{workspace}"


def owner_reference(workspace: str, uid: str) -> Manifest:
    """The Workspace as the controlling owner: its children go when it goes."""
    return dict(common_owner_reference("Workspace", workspace, uid))


def workspace_labels(workspace: str) -> dict[str, str]:
    return {LABEL_WORKSPACE: workspace, LABEL_MANAGED_BY: MANAGER_NAME}


def namespace(workspace: str, uid: str, spec: WorkspaceSpec) -> Manifest:
    """The tenant's namespace; previews must pass the restricted pod security level."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(workspace, spec),
            "labels": {
                **workspace_labels(workspace),
                PSA_ENFORCE: "restricted",
                PSA_ENFORCE_VERSION: "latest",
                # Read when an app is finalized after its workspace is gone.
                LABEL_RETAIN: str(
                    spec.retention is not None and spec.retention.artifacts == "Retain"
                ).lower(),
            },
            "ownerReferences": [owner_reference(workspace, uid)],
        },
    }


SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def reserved_namespace(name: str, settings: OperatorSettings) -> str | None:
    """Why a namespace may never belong to a tenant, or None."""
    if name in SYSTEM_NAMESPACES or name in (
        settings.platform_namespace,
        settings.gateway_namespace,
        settings.claims_namespace,
    ):
        return f"namespace {name} is reserved for the cluster or the platform"
    return None


def namespace_conflict(live: Mapping[str, Any] | None, workspace: str) -> str | None:
    """Why an existing namespace cannot be taken over, or None when it is free or ours."""
    if live is None:
        return None
    metadata = live.get("metadata") or {}
    owner = (metadata.get("labels") or {}).get(LABEL_WORKSPACE)
    if owner == workspace:
        return None
    name = metadata.get("name")
    if owner:
        return f"namespace {name} belongs to workspace {owner}"
    return f"namespace {name} already exists and is not managed by a workspace"


# ---- RBAC ----------------------------------------------------------------------------------

READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]
ROLES = ("admin", "editor", "viewer")


def cluster_role_name(role: str) -> str:
    return f"vibeplane-workspace-{role}"


def _rule(group: str, resources: list[str], verbs: list[str]) -> Manifest:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _role_rules(role: str) -> list[Manifest]:
    """Least privilege, verb by verb. No role may change the quota, limits, network
    policies, role bindings or the Workspace; viewers read no Secrets."""
    rules = [
        _rule(
            "",
            [
                "pods",
                "pods/log",
                "services",
                "endpoints",
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "resourcequotas",
                "limitranges",
            ],
            READ,
        ),
        _rule("apps", ["deployments", "replicasets"], READ),
        _rule("events.k8s.io", ["events"], READ),
        _rule("networking.k8s.io", ["networkpolicies"], READ),
        _rule("rbac.authorization.k8s.io", ["rolebindings"], READ),
    ]
    if role == "viewer":
        return [
            *rules,
            _rule("vibeplane.io", ["vibeapps", "modeldeployments", "modeltrainings"], READ),
        ]
    rules += [
        _rule("vibeplane.io", ["vibeapps"], READ + WRITE),
    ]
    if role == "editor":
        return [*rules, _rule("vibeplane.io", ["modeldeployments", "modeltrainings"], READ)]
    return [
        *rules,
        # Admins run their own models, and train their own adapters from their own records.
        _rule("vibeplane.io", ["modeldeployments", "modeltrainings"], READ + WRITE),
        # Admins keep API keys of external models in Secrets, and may restart a preview.
        _rule("", ["secrets"], READ + WRITE),
        _rule("", ["pods"], ["delete"]),
    ]


def cluster_roles() -> list[Manifest]:
    """The ClusterRoles the project ships; RoleBindings in each workspace refer to them."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": cluster_role_name(role),
                "labels": {"app.kubernetes.io/part-of": "vibeplane"},
            },
            "rules": _role_rules(role),
        }
        for role in ROLES
    ]


def role_bindings(workspace: str, uid: str, spec: WorkspaceSpec) -> dict[str, Manifest | None]:
    """One RoleBinding per role with members; None for a role without (it is removed)."""
    result: dict[str, Manifest | None] = {}
    for role in ROLES:
        name = f"vibeplane-{role}"
        subjects = [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": member.kind, "name": member.name}
            for member in spec.members
            if member.role == role
        ]
        result[name] = (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _child_metadata(name, workspace, uid, spec),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role_name(role),
                },
                "subjects": subjects,
            }
            if subjects
            else None
        )
    return result


def _child_metadata(name: str, workspace: str, uid: str, spec: WorkspaceSpec) -> Manifest:
    return {
        "name": name,
        "namespace": namespace_name(workspace, spec),
        "labels": workspace_labels(workspace),
        "ownerReferences": [owner_reference(workspace, uid)],
    }


# ---- quota and limits ----------------------------------------------------------------------


def resource_quota(workspace: str, uid: str, spec: WorkspaceSpec) -> Manifest | None:
    """Hard limits of the namespace; None when the workspace sets no quota."""
    quota = spec.quota
    if quota is None:
        return None
    hard: dict[str, str] = {}
    if quota.cpu is not None:
        hard["requests.cpu"] = hard["limits.cpu"] = str(quota.cpu)
    if quota.memory is not None:
        hard["requests.memory"] = hard["limits.memory"] = str(quota.memory)
    if quota.gpu is not None:
        hard["requests.nvidia.com/gpu"] = str(quota.gpu)
    if quota.pods is not None:
        hard["pods"] = str(quota.pods)
    if quota.storage is not None:
        hard["requests.storage"] = str(quota.storage)
    if quota.apps is not None:
        # Every app has one preview Service; counting both keeps a runaway loop in check.
        hard["count/vibeapps.vibeplane.io"] = str(quota.apps)
        hard["services"] = str(quota.apps)
    if not hard:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _child_metadata("vibeplane-quota", workspace, uid, spec),
        "spec": {"hard": hard},
    }


DEFAULT_CPU = "500m"
DEFAULT_MEMORY = "512Mi"


def limit_range(workspace: str, uid: str, spec: WorkspaceSpec) -> Manifest:
    """Defaults for containers without requests or limits, so that they count against the
    quota (a quota on requests.cpu refuses pods that set none) and stay bounded."""
    limits = spec.limits
    cpu = str(limits.default_cpu) if limits and limits.default_cpu is not None else DEFAULT_CPU
    memory = (
        str(limits.default_memory)
        if limits and limits.default_memory is not None
        else DEFAULT_MEMORY
    )
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _child_metadata("vibeplane-limits", workspace, uid, spec),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": cpu, "memory": memory},
                    "defaultRequest": {"cpu": cpu, "memory": memory},
                }
            ]
        },
    }


# ---- network -------------------------------------------------------------------------------

SANDBOX_SELECTOR: Manifest = {
    "matchExpressions": [
        {"key": LABEL_COMPONENT, "operator": "In", "values": ["preview", "published"]}
    ]
}
"""The pods running generated apps: previews and published apps (vibeplane.vibeapp.publish),
both reached through the gateway and both fetching their bundle from the object store."""
# Internet egress means the internet: never the cluster's own ranges or cloud metadata.
PRIVATE_RANGES = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
]


def _policy(name: str, workspace: str, uid: str, spec: WorkspaceSpec, body: Manifest) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _child_metadata(name, workspace, uid, spec),
        "spec": body,
    }


def network_policies(
    workspace: str,
    uid: str,
    spec: WorkspaceSpec,
    gateway_namespace: str,
    platform_namespace: str,
    preview_ingress_cidrs: Sequence[str] = (),
    object_store_egress: str = "",
) -> dict[str, Manifest | None]:
    """Default deny both ways, then allowances; None marks a policy to remove.

    preview_ingress_cidrs: more sources allowed to reach previews (beside the gateway and
    platform namespaces); object_store_egress ("CIDR:port"): where previews fetch bundles.
    """
    network = spec.network
    internet = network is not None and network.allow_internet_egress
    cidrs = list(network.allowed_egress_cidrs) if network else []
    namespace_of = "kubernetes.io/metadata.name"
    return {
        "vibeplane-default-deny": _policy(
            "vibeplane-default-deny",
            workspace,
            uid,
            spec,
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        ),
        "vibeplane-allow-dns": _policy(
            "vibeplane-allow-dns",
            workspace,
            uid,
            spec,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {namespace_of: "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        "vibeplane-allow-gateway": _policy(
            "vibeplane-allow-gateway",
            workspace,
            uid,
            spec,
            {
                "podSelector": SANDBOX_SELECTOR,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {namespace_of: gateway_namespace}
                                }
                            },
                            # The front service (authentication, wake on visit) proxies
                            # to previews; the operator asks them when they last served
                            # someone and delivers revisions.
                            {
                                "namespaceSelector": {
                                    "matchLabels": {namespace_of: platform_namespace}
                                }
                            },
                            *({"ipBlock": {"cidr": cidr}} for cidr in preview_ingress_cidrs),
                        ]
                    }
                ],
            },
        ),
        "vibeplane-allow-object-store": _policy(
            "vibeplane-allow-object-store",
            workspace,
            uid,
            spec,
            {
                "podSelector": SANDBOX_SELECTOR,
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": object_store_egress.rsplit(":", 1)[0]}}],
                        "ports": [
                            {"protocol": "TCP", "port": int(object_store_egress.rsplit(":", 1)[1])}
                        ],
                    }
                ],
            },
        )
        if object_store_egress
        else None,
        "vibeplane-allow-internet": _policy(
            "vibeplane-allow-internet",
            workspace,
            uid,
            spec,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}]}],
            },
        )
        if internet
        else None,
        "vibeplane-allow-egress-cidrs": _policy(
            "vibeplane-allow-egress-cidrs",
            workspace,
            uid,
            spec,
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]}],
            },
        )
        if cidrs
        else None,
    }


# ---- budget --------------------------------------------------------------------------------


def budget_status(
    spec: WorkspaceSpec, state: Ledger, now: datetime, floor: Ask | None = None
) -> tuple[dict[str, Any], list[ConditionSpec]]:
    """Status fields and the BudgetWarning/BudgetExceeded conditions, from the ledger.

    `floor` is the smallest generation on the workspace's default model (its shortest
    prompt and the model's floor): when what settled and what is reserved leave less than
    that, no app can generate, and BudgetExceeded says so in the figures an app's refusal
    gives.
    """
    limits = budget_limits(spec)
    settled = state.settled
    reserved = state.reserved(now)
    used = limits.used_percent(settled)
    fields: dict[str, Any] = {
        "period": {
            "name": state.period.name,
            "start": _rfc3339(state.period.start),
            "end": _rfc3339(state.period.end),
        },
        "usage": settled.to_json(),
        "reserved": reserved.to_json(),
        "remaining": limits.remaining(settled) or None,
        "usedPercent": used,
    }
    if spec.budget is None:
        return fields, [
            ConditionSpec("BudgetWarning", "False", "NoBudget", "no budget is set"),
            ConditionSpec("BudgetExceeded", "False", "NoBudget", "no budget is set"),
        ]
    at_limit = [
        name
        for name, spent, limit in (
            ("tokens", Decimal(settled.tokens), limits.tokens),
            ("money", settled.money, limits.money),
            ("gpuHours", settled.gpu_hours, limits.gpu_hours),
        )
        if limit is not None and spent >= limit
    ]
    soft = limits.soft_percent
    warning = (
        ConditionSpec(
            "BudgetWarning",
            "True",
            "SoftLimitReached",
            f"{used}% of the {state.period.name} budget is used (soft limit {soft}%)"
            + (
                "; generations use a cheaper model"
                if spec.budget.on_exceeded == "Downgrade"
                else ""
            ),
        )
        if used is not None and used >= soft
        else ConditionSpec(
            "BudgetWarning",
            "False",
            "WithinBudget",
            f"{used or 0}% of the {state.period.name} budget is used (soft limit {soft}%)",
        )
    )
    smallest = floor.amount(floor.floor) if floor is not None else None
    exceeded = (
        ConditionSpec(
            "BudgetExceeded",
            "True",
            "HardLimitReached",
            f"the {state.period.name} budget is spent ({', '.join(at_limit)}): new generations "
            "are refused until the period ends or the budget is raised",
        )
        if at_limit
        else ConditionSpec(
            "BudgetExceeded",
            "True",
            # Spent for now, or held by generations in flight (what they do not use comes back).
            "CannotCoverGeneration"
            if limits.exceeded_by(settled + smallest)
            else "ReservedByGenerations",
            refusal_message(
                Refusal(floor, smallest, limits, settled, reserved, Amount(), state.period.name),
                f"a generation on its default model {floor.model}",
            )
            + (
                ": new generations wait until reservations are settled or released, the "
                "budget is raised or the period ends"
            ),
        )
        if floor is not None
        and smallest is not None
        and limits.exceeded_by(settled + reserved + smallest)
        else ConditionSpec("BudgetExceeded", "False", "WithinBudget", "generations are allowed")
    )
    return fields, [warning, exceeded]


def _rfc3339(moment: datetime) -> str:
    return format_time(moment)
