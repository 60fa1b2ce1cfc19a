"""Pure builders: a Workspace's spec -> the manifests of its children and its conditions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vibeplane.api.common import API_VERSION
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.settings import LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGER_NAME

Manifest = dict[str, Any]

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"


def namespace_name(workspace: str, spec: WorkspaceSpec) -> str:
    """spec.namespace, or ws-<name>."""
    return spec.namespace or f"ws-{workspace}"


def owner_reference(workspace: str, uid: str) -> Manifest:
    """The Workspace as the controlling owner: its children go when it goes."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Workspace",
        "name": workspace,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


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
            },
            "ownerReferences": [owner_reference(workspace, uid)],
        },
    }


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
