"""Proof that the local control plane is a real one: its controllers, admission and RBAC work."""

from __future__ import annotations

import json
import uuid

import kubernetes
import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.support import wait_for

pytestmark = pytest.mark.integration


def _gone(read: object, *args: str) -> bool:
    try:
        read(*args)  # type: ignore[operator]
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_deleting_a_namespace_removes_its_objects(api: ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    name = f"t-del-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "inside"}, "data": {"k": "v"}})
    core.delete_namespace(name)
    # The namespace controller empties it; only then does the namespace itself go.
    wait_for(lambda: _gone(core.read_namespace, name), timeout=60, what="namespace deletion")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("inside", name)
    assert missing.value.status == 404


def test_garbage_collector_follows_owner_references(api: ApiClient, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)
    wait_for(
        lambda: _gone(core.read_namespaced_config_map, "child", namespace),
        timeout=60,
        what="garbage collection of the child",
    )


def test_resource_quota_refuses_a_pod_beyond_it(api: ApiClient, namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespaced_resource_quota(
        namespace,
        {
            "metadata": {"name": "small"},
            "spec": {"hard": {"requests.cpu": "1", "pods": "5"}},
        },
    )
    # Pods are refused until the namespace's default ServiceAccount exists.
    wait_for(
        lambda: core.list_namespaced_service_account(namespace).items,
        timeout=30,
        what="default service account",
    )
    wait_for(
        lambda: core.read_namespaced_resource_quota("small", namespace).status.hard or {},
        timeout=30,
        what="quota status",
    )
    pod = {
        "metadata": {"name": "big"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "example.invalid/app",
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}},
                }
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod)
    assert refused.value.status == 403
    assert "exceeded quota: small" in json.loads(refused.value.body)["message"]


def test_rbac_forbids_a_user_without_a_role_binding(api: ApiClient, namespace: str) -> None:
    mallory = kubernetes.client.ApiClient(api.configuration)
    mallory.set_default_header("Impersonate-User", "mallory@example.com")
    with pytest.raises(ApiException) as forbidden:
        kubernetes.client.CoreV1Api(mallory).list_namespaced_secret(namespace)
    assert forbidden.value.status == 403
    message = json.loads(forbidden.value.body)["message"]
    assert 'User "mallory@example.com" cannot list resource "secrets"' in message

    review = kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "spec": {
                "user": "mallory@example.com",
                "resourceAttributes": {"namespace": namespace, "verb": "get", "resource": "pods"},
            },
        }
    )
    assert review.status.allowed is False


def test_scheduler_and_controllers_report_healthy(api: ApiClient) -> None:
    # A Deployment becomes a ReplicaSet and Pods only when the controller-manager works.
    apps = kubernetes.client.AppsV1Api(api)
    namespace = f"t-dep-{uuid.uuid4().hex[:6]}"
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        wait_for(
            lambda: core.list_namespaced_service_account(namespace).items,
            timeout=30,
            what="default service account",
        )
        apps.create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "x.invalid/y"}]},
                    },
                },
            },
        )
        pods = wait_for(
            lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 2,
            timeout=60,
            what="two pods from the deployment",
        )
        assert pods
    finally:
        core.delete_namespace(namespace)
