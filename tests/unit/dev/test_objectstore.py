"""The local object store's pod (pure: the manifests, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vibeplane_dev.cluster import objectstore
from vibeplane_dev.cluster.node import POD_CIDR

CREDENTIALS = {"accessKey": "vibeplane-ab12", "secretKey": "s3cr3t", "kmsKey": "vibeplane-key:x"}


def _docs() -> dict[str, Any]:
    docs = objectstore.manifests(
        "vibeplane-system", "vibeplane.local/minio:0123", Path("/home/s3/data"), CREDENTIALS
    )
    return {doc["kind"]: doc for doc in docs}


def test_the_service_is_what_the_charts_s3_endpoint_names() -> None:
    service = _docs()["Service"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    port = service["spec"]["ports"][0]["port"]
    assert objectstore.endpoint("vibeplane-system") == (
        f"http://{name}.{namespace}.svc.cluster.local:{port}"
    )
    # Previews' egress is checked after the Service's translation: the pod's port, pod range.
    assert objectstore.egress() == f"{POD_CIDR}:{service['spec']['ports'][0]['targetPort']}"


def test_minio_runs_the_image_built_here_as_a_non_root_user_on_its_data() -> None:
    docs = _docs()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "vibeplane.local/minio:0123"
    assert container["imagePullPolicy"] == "Never"
    assert pod["securityContext"]["runAsUser"] == objectstore.UID != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["hostPath"]["path"] == "/home/s3/data"
    assert docs["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}  # one writer


def test_the_credentials_are_in_the_secret_only() -> None:
    docs = _docs()
    assert docs["Secret"]["stringData"]["MINIO_ROOT_PASSWORD"] == "s3cr3t"
    deployment = str(docs["Deployment"]) + str(docs["Service"])
    assert "s3cr3t" not in deployment
