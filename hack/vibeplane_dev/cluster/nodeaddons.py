"""What the real node needs in the API: RBAC for its components, the `gvisor` RuntimeClass,
and cluster DNS (CoreDNS as a pod, `k8s-app: kube-dns`, so the workspaces' DNS policy selects
it), all applied with server-side apply."""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]

COREDNS_IMAGE = "vibeplane.local/coredns:1.15.0"
COREFILE = """\
.:53 {
    errors
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    reload
}
"""


def _rbac(
    name: str, user: str, rules: list[Manifest] | None, role: str | None = None
) -> list[Manifest]:
    documents: list[Manifest] = []
    if rules is not None:
        documents.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            }
        )
    subject: Manifest = (
        {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
        if ":" not in user or not user.startswith("system:serviceaccount:")
        else {
            "kind": "ServiceAccount",
            "name": user.rsplit(":", 1)[1],
            "namespace": user.split(":")[2],
        }
    )
    documents.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role or name,
            },
            "subjects": [subject],
        }
    )
    return documents


def node_addons(cluster_dns: str) -> list[Manifest]:
    read = ["get", "list", "watch"]
    coredns_labels = {"k8s-app": "kube-dns"}
    return [
        # The API server authenticates to kubelets with this identity (logs, exec).
        *_rbac(
            "vibeplane:apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            None,
            role="system:kubelet-api-admin",
        ),
        *_rbac(
            "vibeplane:kube-router",
            "vibeplane:kube-router",
            [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "namespaces", "nodes", "services", "endpoints"],
                    "verbs": read,
                },
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": read,
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
            ],
        ),
        *_rbac(
            "vibeplane:coredns",
            "system:serviceaccount:kube-system:coredns",
            [
                {
                    "apiGroups": [""],
                    "resources": ["services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        ),
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": "gvisor"},
            "handler": "runsc",
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": coredns_labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": coredns_labels},
                "template": {
                    "metadata": {"labels": coredns_labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            # Port 53 without any capability (a namespaced, safe sysctl).
                            "sysctls": [
                                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}
                            ],
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "resources": {
                                    "limits": {"memory": "100Mi"},
                                    "requests": {"cpu": "50m", "memory": "40Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": coredns_labels},
            "spec": {
                "clusterIP": cluster_dns,
                "selector": coredns_labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
    ]
