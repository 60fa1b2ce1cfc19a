"""The local platform's object store as a pod on the real node: MinIO (built from its Go module,
one static program) in an image of its own, its data on a hostPath under the platform's home
(kept across `down`/`up`, like the host MinIO's), behind a ClusterIP Service in the platform
namespace. The chart's S3 settings point at that Service (values-machine.yaml): the operator
and previews reach it by its cluster name, as they would reach any cluster's S3 service.

Not a chart template: a platform brings its own S3 (values `s3.*`); this is the local one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vibeplane_dev.cluster import images
from vibeplane_dev.cluster.build import ensure_tool
from vibeplane_dev.cluster.manifests import apply_file
from vibeplane_dev.cluster.node import POD_CIDR

Progress = Callable[[str], None]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Manifest = dict[str, Any]

NAME = "vibeplane-minio"
PORT = 9000
UID = 65532  # images.binary_image's user
FIELD_MANAGER = "vibeplane-platform-object-store"


def _noop(_: str) -> None:
    return None


def endpoint(namespace: str) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{PORT}"


def egress() -> str:
    """Previews' allowance (CIDR:port): the policy sees the pod's address, after the Service's
    translation, so the node's pod range on MinIO's port."""
    return f"{POD_CIDR}:{PORT}"


def image(cache: Path, progress: Progress = _noop) -> tuple[Path, str]:
    """MinIO's image (cached on the binary): the archive and its reference."""
    binary = ensure_tool("minio", cache, progress)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    reference = f"vibeplane.local/minio:{digest}"
    return images.binary_image(cache, binary, reference), reference


def manifests(
    namespace: str, reference: str, data: Path, credentials: dict[str, str]
) -> list[Manifest]:
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "object-store"}
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "stringData": {
                "MINIO_ROOT_USER": credentials["accessKey"],
                "MINIO_ROOT_PASSWORD": credentials["secretKey"],
                "MINIO_KMS_SECRET_KEY": credentials["kmsKey"],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                # One writer of the data directory at a time.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": {"runAsUser": UID, "runAsGroup": UID},
                        "containers": [
                            {
                                "name": "minio",
                                "image": reference,
                                "imagePullPolicy": "Never",
                                "args": ["server", "/data", "--address", f":{PORT}", "--quiet"],
                                "envFrom": [{"secretRef": {"name": NAME}}],
                                "env": [
                                    {"name": "MINIO_BROWSER", "value": "off"},
                                    {"name": "MINIO_UPDATE", "value": "off"},
                                    {"name": "HOME", "value": "/tmp"},
                                ],
                                "ports": [{"name": "s3", "containerPort": PORT}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/minio/health/ready", "port": PORT},
                                    "periodSeconds": 2,
                                },
                                "securityContext": restricted,
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "128Mi"},
                                    "limits": {"cpu": "1", "memory": "1Gi"},
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/data"},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "data",
                                "hostPath": {"path": str(data), "type": "DirectoryOrCreate"},
                            },
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "s3", "port": PORT, "targetPort": PORT}],
            },
        },
    ]


def apply(kubectl: Kubectl, home: Path, docs: list[Manifest]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "object-store.yaml"
    apply_file(kubectl, path, docs, FIELD_MANAGER, "the object store", private=True)


def own_data(data: Path) -> None:
    """The data directory belongs to MinIO's user in the pod (a host MinIO of an earlier
    stand-in run wrote it as root)."""
    data.mkdir(parents=True, exist_ok=True)
    for path in [data, *data.rglob("*")]:
        if path.stat().st_uid != UID and not path.is_symlink():
            os.chown(path, UID, UID)
