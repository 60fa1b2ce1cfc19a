"""Where the local control plane keeps its files and which loopback ports it uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.35.4"
KSERVE_MODULE = "github.com/kserve/kserve"
KSERVE_VERSION = "v0.20.0"
KSERVE_CRDS = (
    "config/crd/full/serving.kserve.io_inferenceservices.yaml",
    "config/crd/full/serving.kserve.io_servingruntimes.yaml",
    "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
    # The LLM path (vLLM): what the operator emits for engine vllm, and the presets
    # (LLMInferenceServiceConfig) a ModelDeployment may name (kserve.presets). Installed
    # without the module's conversion-webhook patches: only v1alpha2 (the storage version) is
    # written here.
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml",
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceserviceconfigs.yaml",
)
TRAINER_MODULE = "github.com/kubeflow/trainer/v2"
TRAINER_VERSION = "v2.3.0"
TRAINER_CRDS = (
    # What the operator emits for ModelTrainings (Kubeflow Trainer v2).
    "manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml",
)
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.7.0"
GATEWAY_API_CRDS = (
    # The standard channel, what a cluster's Gateway API install holds (the operator emits
    # HTTPRoute v1 and ReferenceGrant v1beta1; a Gateway implementation watches the rest).
    # Its ValidatingAdmissionPolicy (vap_safeupgrades) is left out: it only guards upgrades.
    "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
    "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
    "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
    "config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
    "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
    "config/crd/standard/gateway.networking.k8s.io_backendtlspolicies.yaml",
    "config/crd/standard/gateway.networking.k8s.io_listenersets.yaml",
    "config/crd/standard/gateway.networking.k8s.io_tcproutes.yaml",
    "config/crd/standard/gateway.networking.k8s.io_tlsroutes.yaml",
    "config/crd/standard/gateway.networking.k8s.io_udproutes.yaml",
)
CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.21.2"
CERT_MANAGER_CRDS = (
    # What the operator emits for custom hostnames (Certificate against a named issuer).
    "deploy/crds/cert-manager.io_certificates.yaml",
    "deploy/crds/cert-manager.io_certificaterequests.yaml",
    "deploy/crds/cert-manager.io_issuers.yaml",
    "deploy/crds/cert-manager.io_clusterissuers.yaml",
)
TOOLS = {
    # name: (go package, version); installed with `go install`, cached like the control plane.
    "kwok": ("sigs.k8s.io/kwok/cmd/kwok", "v0.7.0"),
    "helm": ("helm.sh/helm/v3/cmd/helm", "v3.21.4"),
    # MinIO publishes no tagged module versions any more: this pins its source by commit.
    "minio": ("github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c"),
}


CONTROLPLANE_SOURCE = Path("hack") / "controlplane"


def repository_root() -> Path:
    """The source checkout vibeplane runs from (it holds the Go sources and the CRDs)."""
    override = os.environ.get("VIBEPLANE_SOURCE_DIR")
    root = Path(override) if override else Path(__file__).resolve().parents[3]
    if not (root / CONTROLPLANE_SOURCE / "go.mod").is_file():
        raise RuntimeError(
            f"{root} is not a vibeplane checkout ({CONTROLPLANE_SOURCE}/go.mod is missing); "
            "run from a checkout installed with `pip install -e hack` or set VIBEPLANE_SOURCE_DIR"
        )
    return root


def controlplane_source() -> Path:
    """The Go module that builds the control plane (and only the build cache's key reads it)."""
    return repository_root() / CONTROLPLANE_SOURCE


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class ClusterConfig:
    """Paths and ports of one local cluster; every process binds to 127.0.0.1."""

    home: Path
    cache: Path
    apiserver_port: int
    etcd_client_port: int
    etcd_peer_port: int
    s3_port: int

    @classmethod
    def from_env(cls) -> ClusterConfig:
        """VIBEPLANE_HOME (default ~/.vibeplane) holds state; the build cache is shared."""
        home = Path(os.environ.get("VIBEPLANE_HOME", Path.home() / ".vibeplane"))
        cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return cls(
            home=home / "cluster",
            cache=Path(os.environ.get("VIBEPLANE_CACHE", cache_root / "vibeplane")),
            apiserver_port=_port("VIBEPLANE_APISERVER_PORT", 16443),
            etcd_client_port=_port("VIBEPLANE_ETCD_PORT", 23790),
            etcd_peer_port=_port("VIBEPLANE_ETCD_PEER_PORT", 23800),
            s3_port=_port("VIBEPLANE_S3_PORT", 19000),
        )

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def etcd_data(self) -> Path:
        return self.home / "etcd"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.home / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def kubeconfig(self, identity: str) -> Path:
        return self.home / f"{identity}.kubeconfig"
