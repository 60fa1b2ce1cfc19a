"""The Helm chart (charts/vibeplane): lint, schema, rendering, and a real install/uninstall.

Helm is the real one (built from its Go module by `vibeplane cluster tools`, cached). The
control plane is the session's: its CRDs and the vibeplane-workspace-* ClusterRoles were
installed by `cluster up` (not by Helm), so an install here leaves those out with a
post-renderer; every other object of the chart is created by Helm and removed by
`helm uninstall`. Pods do not run (no kubelet takes them): nothing waits for readiness.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient

from tests.integration.conftest import Kubectl
from vibeplane.modeldeployment.handlers import serving_settings
from vibeplane.settings import OperatorSettings
from vibeplane.storage.s3 import S3Settings
from vibeplane_dev.cluster.build import ensure_tool
from vibeplane_dev.cluster.local import LocalCluster

# The first run builds Helm from its Go module (minutes, in the fixture): more time than the
# default 300 s. `make tools` builds it before pytest starts.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vibeplane"
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text())
# Helm built from source reports Kubernetes v1.20 for client-only rendering; the tests render
# for the version the chart supports (it still renders without, see below).
KUBE_VERSION = "1.35.0"
WORKSPACE_ROLES = {
    "vibeplane-workspace-admin",
    "vibeplane-workspace-editor",
    "vibeplane-workspace-viewer",
}
ACCESS_KEY = "AKIAEXAMPLEVALUE"
SECRET_KEY = "s3cr3t-example-value"
# Optional components, each as the --set flags that turn it on.
COMPONENTS = {
    "default": [],
    "modelserver": ["modelserver.enabled=true"],
    "runtimeClass": ["runtimeClass.create=true"],
    "serviceMonitor": ["serviceMonitor.enabled=true"],
    "servingRuntime": ["modelserver.servingRuntime.enabled=true"],
    "platformNamespace": ["platformNamespace.create=true", "platformNamespace.name=vibeplane-x"],
    "s3Credentials": [
        f"s3.credentials.accessKeyId={ACCESS_KEY}",
        f"s3.credentials.secretAccessKey={SECRET_KEY}",
    ],
    "s3ExistingSecret": ["s3.credentials.existingSecret=my-s3", "s3.endpoint=http://minio:9000"],
    "frontDoor": ["frontDoor.enabled=true", "gateway.name=vibeplane", "preview.domain=apps.test"],
}
# Every component at once (credentials from values, not also an existing Secret).
ALL_COMPONENTS = [
    flag
    for component, flags in COMPONENTS.items()
    if component != "s3ExistingSecret"
    for flag in flags
]

Manifest = dict[str, Any]


class Helm:
    """The helm binary, with its configuration, cache and data under a throwaway home (no
    user's repositories or plugins)."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = dict(
            os.environ,
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
        )

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def helm(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Helm (installed from the Go module proxy the first time, then cached)."""
    return Helm(ensure_tool("helm", cluster.config.cache), tmp_path_factory.mktemp("helm"))


def sets(flags: list[str]) -> list[str]:
    return [arg for flag in flags for arg in ("--set", flag)]


def render(
    helm: Helm,
    flags: Sequence[str] = (),
    release: str = "vp",
    namespace: str = "vibeplane-system",
    *extra: str,
) -> list[Manifest]:
    """`helm template` as a list of objects."""
    result = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *extra,
        *sets(list(flags)),
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container_env(deployment: Manifest) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# ---- lint and schema ---------------------------------------------------------------------------


def test_template_renders_without_a_kube_version(helm: Helm) -> None:
    # What GitOps renderers and CI linters run: Helm assumes Kubernetes v1.20 then.
    result = helm("template", "vp", str(CHART), "--namespace", "vibeplane-system")
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert {"Deployment", "ClusterRole", "ServiceAccount"} <= kinds
    assert helm("lint", "--strict", str(CHART)).returncode == 0


@pytest.mark.parametrize("component", [*COMPONENTS, "all"])
def test_lint_passes_with_each_optional_component(helm: Helm, component: str) -> None:
    flags = ALL_COMPONENTS if component == "all" else COMPONENTS[component]
    result = helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *sets(flags))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("replicas=abc", "at '/replicas': got string, want integer"),
        ("replicas=-1", "at '/replicas': minimum: got -1, want 0"),
        ("leaderElection.retryPeriodSeconds=0", "at '/leaderElection/retryPeriodSeconds'"),
        ("leaderElection.leaseName=Not_A_Name", "at '/leaderElection/leaseName'"),
        ("replicsa=1", "additional properties 'replicsa' not allowed"),
        ("modelserver.modelDeployment.tier=huge", "value must be one of 'small', 'medium'"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
        ("s3.endpoint=minio:9000", "at '/s3/endpoint'"),
        ("operator.metricsPort=0", "at '/operator/metricsPort'"),
        ("modelserver.modelDeployment.pricing.gpuHour=free", "at '/modelserver/modelDeployment"),
        ("platformNamespace.name=Not_A_Namespace", "at '/platformNamespace/name'"),
    ],
)
def test_bad_values_are_refused_by_the_schema(helm: Helm, flag: str, message: str) -> None:
    result = helm("lint", str(CHART), "--set", flag, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stdout
    assert message in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["platformNamespace.create=true"],
            "the platform namespace is the release namespace, which exists already",
        ),
        (["s3.credentials.accessKeyId=AKIA"], "set both accessKeyId and secretAccessKey"),
        (["serviceAccount.create=false"], "serviceAccount.name is required"),
        (
            ["replicas=2", "leaderElection.enabled=false"],
            "replicas > 1 needs leaderElection.enabled",
        ),
        (
            ["leaderElection.renewDeadlineSeconds=15"],
            "leaseDurationSeconds must be longer than renewDeadlineSeconds",
        ),
        (
            ["leaderElection.retryPeriodSeconds=9"],
            "renewDeadlineSeconds must be longer than 1.2 x retryPeriodSeconds",
        ),
        (
            ["serviceMonitor.enabled=true", "metrics.service.enabled=false"],
            "serviceMonitor.enabled needs metrics.service.enabled",
        ),
        (
            ["gateway.name=vibeplane", "gateway.claimsNamespace=vibeplane-system"],
            "gateway.claimsNamespace must be a namespace of its own",
        ),
    ],
)
def test_inconsistent_values_fail_with_a_clear_message(
    helm: Helm, flags: list[str], message: str
) -> None:
    result = helm(
        "template",
        "vp",
        str(CHART),
        "-n",
        "vibeplane-system",
        "--kube-version",
        KUBE_VERSION,
        *sets(flags),
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


# ---- what the chart renders -------------------------------------------------------------------


def test_no_wildcards_in_any_role(helm: Helm) -> None:
    objects = render(helm, ALL_COMPONENTS)
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    assert {o["metadata"]["name"] for o in roles} >= WORKSPACE_ROLES | {"vp-vibeplane-operator"}
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                values = rule.get(field) or []
                assert not any("*" in value for value in values), (
                    f"{role['kind']} {role['metadata']['name']}: wildcard in {field}: {rule}"
                )
    operator = find(objects, "ClusterRole", "vp-vibeplane-operator")
    # Never any of these: the operator creates RoleBindings only to the workspace roles.
    dangerous = {"escalate", "impersonate", "deletecollection"}
    for rule in operator["rules"]:
        assert not dangerous & set(rule["verbs"]), rule
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"], "the operator reads Secrets by name only"
        if "clusterroles" in rule["resources"]:
            assert rule["verbs"] == ["bind"]
            assert set(rule["resourceNames"]) == WORKSPACE_ROLES


def test_operator_deployment(helm: Helm) -> None:
    objects = render(helm, ["modelserver.enabled=true"])
    deployment = find(objects, "Deployment", "vp-vibeplane-operator")
    assert deployment["spec"]["replicas"] == 1
    # Leader election is on: a new pod stands by until the old one releases the Lease.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vp-vibeplane-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == f"ghcr.io/vibeplane/operator:{CHART_META['appVersion']}"
    assert "command" not in container  # the image's entrypoint: python3 -m vibeplane
    assert container["args"] == ["operator"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090, "healthz": 8080}
    env = container_env(deployment)
    assert env["VIBEPLANE_BIND_ADDRESS"] == "0.0.0.0"
    assert env["VIBEPLANE_LEADER_ELECTION"] == "true"
    assert env["VIBEPLANE_LEADER_ELECTION_LEASE"] == "vibeplane-operator"
    # Each replica is its pod: in the Lease's holderIdentity and its requests' User-Agent.
    pod_name = {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert env["VIBEPLANE_LEADER_ELECTION_IDENTITY"] == pod_name
    assert env["VIBEPLANE_BUILTIN_MODEL_URL"] == (
        "http://vp-vibeplane-modelserver.vibeplane-system.svc:8080/openai/v1"
    )
    service = find(objects, "Service", "vp-vibeplane-modelserver")
    assert service["metadata"]["namespace"] == "vibeplane-system"
    model = find(objects, "ModelDeployment", "builtin")
    assert model["metadata"]["namespace"] == "vibeplane-system"
    assert model["spec"]["serving"] == {"builtin": {}}


def test_replicas_beyond_one_run_with_leader_election(helm: Helm) -> None:
    objects = render(helm, ["replicas=2"])
    deployment = find(objects, "Deployment", "vp-vibeplane-operator")
    assert deployment["spec"]["replicas"] == 2
    assert container_env(deployment)["VIBEPLANE_LEADER_ELECTION"] == "true"
    role = find(objects, "Role", "vp-vibeplane-leader-election")
    assert role["metadata"]["namespace"] == "vibeplane-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": ["vibeplane-operator"],
        },
    ]
    binding = find(objects, "RoleBinding", "vp-vibeplane-leader-election")
    assert binding["roleRef"]["name"] == "vp-vibeplane-leader-election"

    # One replica without election: as before, never two operators at once, and no Lease
    # rights it would not use.
    single = render(helm, ["leaderElection.enabled=false"])
    deployment = find(single, "Deployment", "vp-vibeplane-operator")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container_env(deployment)["VIBEPLANE_LEADER_ELECTION"] == "false"
    assert not [o for o in single if o["metadata"]["name"] == "vp-vibeplane-leader-election"]


def test_every_setting_reaches_the_operator(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Deployment's environment, read back by the operator's own settings code."""
    flags = [
        "platformNamespace.name=plat",
        "operator.defaultModel=base1",
        "operator.gatewayNamespace=gw",
        "gateway.name=public",
        "gateway.listener=https",
        "gateway.https=true",
        "gateway.frontService.name=door",
        "gateway.frontService.port=8080",
        "gateway.claimsNamespace=hosts",
        "publish.tls=certificate",
        "publish.issuer.name=letsencrypt",
        "publish.issuer.kind=Issuer",
        "publish.allowedSuffixes={example.com,shop.io}",
        "publish.reservedNames={www,api}",
        "runtimeClass.name=kata",
        "operator.resyncSeconds=42",
        "operator.generationWorkers=7",
        "operator.workspaceConcurrency=3",
        "operator.modelTimeoutSeconds=33",
        "operator.metricsPort=9191",
        "operator.livenessPort=8181",
        "preview.image=registry.example/preview:9",
        "preview.domain=apps.example.com",
        "preview.readyTimeoutSeconds=99",
        "preview.activityPoll=false",
        "preview.nodeAddress=10.250.0.2",
        "preview.ingressCIDRs={10.250.0.1/32,192.0.2.0/24}",
        "models.builtinURL=http://builtin.example:8080/openai/v1",
        "models.kserveRuntime=my-runtime",
        "models.serviceAccount=my-models",
        "models.storageSecret=my-storage",
        "s3.endpoint=http://minio.storage:9000",
        "s3.bucket=my-bucket",
        "s3.region=eu-west-1",
        "s3.encryption=false",
        "leaderElection.leaseName=my-lease",
        "leaderElection.leaseDurationSeconds=20",
        "leaderElection.renewDeadlineSeconds=12",
        "leaderElection.retryPeriodSeconds=3",
    ]
    deployment = find(render(helm, flags), "Deployment", "vp-vibeplane-operator")
    env = container_env(deployment)
    for name in list(os.environ):
        if name.startswith(("VIBEPLANE_", "AWS_")):
            monkeypatch.delenv(name)
    # What the kubelet puts there from the downward API.
    pod_name = "vp-vibeplane-operator-5d4f8-x2k9q"
    for name, value in env.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
        elif value == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}:
            monkeypatch.setenv(name, pod_name)
    settings = OperatorSettings.from_env()
    assert settings == OperatorSettings(
        platform_namespace="plat",
        default_model="base1",
        gateway_namespace="gw",
        gateway_name="public",
        gateway_listener="https",
        gateway_https=True,
        front_service_name="door",
        front_service_port=8080,
        claims_namespace="hosts",
        publish_tls="certificate",
        certificate_issuer="letsencrypt",
        certificate_issuer_kind="Issuer",
        custom_domain_suffixes=("example.com", "shop.io"),
        reserved_hostnames=("www", "api"),
        runtime_class="kata",
        bind_address="0.0.0.0",
        metrics_port=9191,
        liveness_port=8181,
        resync_seconds=42.0,
        preview_image="registry.example/preview:9",
        preview_command=("python3", "-m", "vibeplane_sandbox.preview"),
        # Where the chart mounts the previews' delivery signing key (a Secret).
        delivery_key_file="/etc/vibeplane/delivery/key.pem",
        preview_local_node=False,
        preview_domain="apps.example.com",
        preview_ready_timeout=99.0,
        preview_activity_poll=False,
        preview_node_address="10.250.0.2",
        preview_ingress_cidrs=("10.250.0.1/32", "192.0.2.0/24"),
        generation_workers=7,
        workspace_concurrency=3,
        model_timeout=33.0,
        builtin_model_url="http://builtin.example:8080/openai/v1",
        modelserver_runtime="my-runtime",
        model_service_account="my-models",
        model_storage_secret="my-storage",
        leader_election=True,
        leader_election_lease="my-lease",
        leader_election_identity=pod_name,
        leader_election_lease_duration=20.0,
        leader_election_renew_deadline=12.0,
        leader_election_retry_period=3.0,
    )
    serving = serving_settings(settings)
    assert serving.builtin_url == "http://builtin.example:8080/openai/v1"
    assert serving.modelserver_runtime == "my-runtime"
    assert serving.service_account == "my-models"
    assert serving.storage_secret == "my-storage"
    assert S3Settings.from_env() == S3Settings(
        endpoint="http://minio.storage:9000",
        bucket="my-bucket",
        region="eu-west-1",
        encryption=False,
        use_aws=False,
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {9191, 8181}


def test_s3_credentials_come_from_a_secret(helm: Helm) -> None:
    existing = render(helm, ["s3.credentials.existingSecret=my-s3"])
    env = container_env(find(existing, "Deployment", "vp-vibeplane-operator"))
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "my-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    # The only Secret the chart makes then is the previews' delivery signing key.
    secrets = [o["metadata"]["name"] for o in existing if o["kind"] == "Secret"]
    assert secrets == ["vp-vibeplane-operator-delivery-key"]

    created = render(helm, COMPONENTS["s3Credentials"])
    secret = find(created, "Secret", "vp-vibeplane-s3")
    assert set(secret["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    deployment = find(created, "Deployment", "vp-vibeplane-operator")
    env = container_env(deployment)
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "vp-vibeplane-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    # The values never appear in the pod spec itself.
    pod = json.dumps(deployment["spec"]["template"])
    assert ACCESS_KEY not in pod
    assert SECRET_KEY not in pod

    none = container_env(find(render(helm), "Deployment", "vp-vibeplane-operator"))
    assert "AWS_ACCESS_KEY_ID" not in none


def test_two_releases_share_only_the_cluster_wide_api(helm: Helm) -> None:
    """Cluster-scoped objects are named per release, except the shared API (CRDs and the
    workspace ClusterRoles): one release per cluster, but names never collide by accident."""
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "RuntimeClass", "Namespace"}

    def names(release: str) -> set[tuple[str, str]]:
        flags = ["runtimeClass.create=true", f"runtimeClass.name={release}-gvisor"]
        return {
            (o["kind"], o["metadata"]["name"])
            for o in render(helm, flags, release, f"ns-{release}")
            if o["kind"] in cluster_scoped
        }

    shared = names("one") & names("two")
    assert shared == {("ClusterRole", role) for role in WORKSPACE_ROLES}


# ---- against the real API server ---------------------------------------------------------------


@pytest.fixture
def chart_namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace for a release (it is also the release's platform namespace)."""
    core = kubernetes.client.CoreV1Api(api)
    name = f"chart-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"vibeplane.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


def test_rendered_manifests_are_accepted_by_the_api_server(
    helm: Helm, kubectl: Kubectl, chart_namespace: str, tmp_path: Path
) -> None:
    """Every object, the CRDs included, passes the API server's validation (schemas, CEL
    rules, admission) in a server-side dry run. Not the ServiceMonitor: the Prometheus
    Operator's CRDs are not installed here."""
    flags = [
        f"platformNamespace.name={chart_namespace}",
        "modelserver.enabled=true",
        "modelserver.servingRuntime.enabled=true",
        "runtimeClass.create=true",
        f"runtimeClass.name={chart_namespace}",
        *COMPONENTS["s3Credentials"],
    ]
    objects = render(helm, flags, "vp", chart_namespace, "--include-crds")
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "ModelDeployment", "ClusterServingRuntime"} <= kinds
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    result = kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager=vibeplane-chart-test",
        "-f",
        str(manifest),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects)


POST_RENDERER = """\
import sys

import yaml

shared = {shared!r}
documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
kept = [
    d for d in documents
    if not (d.get("kind") == "ClusterRole" and d["metadata"]["name"] in shared)
]
sys.stdout.write(yaml.safe_dump_all(kept, sort_keys=False))
"""


def _allowed(api: ApiClient, user: str, attributes: dict[str, str]) -> bool:
    review = kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "resourceAttributes": attributes},
        }
    )
    return bool(review.status.allowed)


def _attributes(verb: str, resource: str, namespace: str = "") -> dict[str, str]:
    """SubjectAccessReview attributes of e.g. ("patch", "vibeapps.vibeplane.io/status")."""
    resource, _, subresource = resource.partition("/")
    plural, _, group = resource.partition(".")
    attributes = {"verb": verb, "resource": plural, "group": group}
    if subresource:
        attributes["subresource"] = subresource
    if namespace:
        attributes["namespace"] = namespace
    return attributes


# What the operator does (see the ClusterRole's comments), in a tenant namespace "ws-any".
REQUIRED = [
    *[(v, "workspaces.vibeplane.io", "") for v in ("get", "list", "watch")],
    *[(v, "modeldeployments.vibeplane.io", "ws-any") for v in ("get", "list", "watch")],
    *[(v, "vibeapps.vibeplane.io", "ws-any") for v in ("get", "list", "watch", "patch")],
    ("patch", "workspaces.vibeplane.io/status", ""),
    ("patch", "modeldeployments.vibeplane.io/status", "ws-any"),
    ("patch", "vibeapps.vibeplane.io/status", "ws-any"),
    ("update", "vibeapps.vibeplane.io/finalizers", "ws-any"),
    *[(v, "namespaces", "") for v in ("get", "list", "watch", "create", "patch")],
    *[(v, "rolebindings.rbac.authorization.k8s.io", "ws-any") for v in ("create", "patch")],
    ("delete", "rolebindings.rbac.authorization.k8s.io", "ws-any"),
    ("delete", "resourcequotas", "ws-any"),
    ("patch", "limitranges", "ws-any"),
    ("delete", "networkpolicies.networking.k8s.io", "ws-any"),
    ("list", "configmaps", ""),
    ("watch", "configmaps", ""),
    ("patch", "deployments.apps", "ws-any"),
    ("patch", "services", "ws-any"),
    # Unpublish: a published app's objects go with spec.publish.
    ("delete", "deployments.apps", "ws-any"),
    ("delete", "services", "ws-any"),
    ("delete", "httproutes.gateway.networking.k8s.io", "ws-any"),
    ("delete", "listenersets.gateway.networking.k8s.io", "ws-any"),
    ("list", "certificates.cert-manager.io", "ws-any"),
    ("delete", "certificates.cert-manager.io", "ws-any"),
    ("watch", "pods", ""),
    ("update", "pods", "ws-any"),
    ("delete", "pods", "ws-any"),
    ("get", "pods/log", "ws-any"),
    ("get", "secrets", "ws-any"),
    ("create", "serviceaccounts", "ws-any"),
    ("create", "events", "default"),
    ("patch", "inferenceservices.serving.kserve.io", "ws-any"),
    ("get", "llminferenceserviceconfigs.serving.kserve.io", "kserve"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
]
# What it must not be able to do.
FORBIDDEN = [
    ("list", "secrets", ""),
    ("watch", "secrets", "ws-any"),
    ("delete", "namespaces", ""),
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ""),
    ("create", "pods", "ws-any"),
    ("create", "pods/exec", "ws-any"),
    ("impersonate", "serviceaccounts", "ws-any"),
    ("create", "serviceaccounts/token", "ws-any"),
    ("update", "configmaps", "ws-any"),
    ("delete", "vibeapps.vibeplane.io", "ws-any"),
    ("patch", "workspaces.vibeplane.io", ""),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("create", "llminferenceserviceconfigs.serving.kserve.io", "kserve"),
]


def test_install_and_uninstall_on_the_real_control_plane(
    helm: Helm,
    cluster: LocalCluster,
    api: ApiClient,
    kubectl: Kubectl,
    chart_namespace: str,
    tmp_path: Path,
) -> None:
    release = f"vp{uuid.uuid4().hex[:6]}"
    claims = f"{release}-hosts"
    fullname = f"{release}-vibeplane"
    name = f"{fullname}-operator"
    kubeconfig = str(cluster.config.admin_kubeconfig)
    apps = kubernetes.client.AppsV1Api(api)
    core = kubernetes.client.CoreV1Api(api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    node = kubernetes.client.NodeV1Api(api)
    script = tmp_path / "drop_shared.py"
    script.write_text(POST_RENDERER.format(shared=sorted(WORKSPACE_ROLES)))
    post_renderer = tmp_path / "post-renderer"
    post_renderer.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"\n')
    post_renderer.chmod(0o755)
    common = ["--kubeconfig", kubeconfig, "--namespace", chart_namespace]
    # The claims namespace as an operator that started first made it (manager.
    # ensure_platform_namespace): the chart uses it without adopting it (no ownership error).
    core.create_namespace(
        kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=claims))
    )
    installed = helm(
        "install",
        release,
        str(CHART),
        *common,
        "--skip-crds",
        "--post-renderer",
        str(post_renderer),
        *sets(
            [
                "modelserver.enabled=true",
                "gateway.name=vibeplane",
                f"gateway.claimsNamespace={claims}",
                "runtimeClass.create=true",
                f"runtimeClass.name={release}",
                *COMPONENTS["s3Credentials"],
            ]
        ),
    )
    try:
        assert "STATUS: deployed" in installed.stdout
        status = json.loads(helm("status", release, *common, "-o", "json").stdout)
        assert status["info"]["status"] == "deployed"

        # What Helm installed is what the server stores: a GitOps tool's server-side diff of
        # the release's manifest finds nothing to change.
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(helm("get", "manifest", release, *common).stdout)
        diff = cluster.kubectl(
            "diff", "--server-side", "--field-manager=gitops", "-f", str(manifest)
        )
        assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout[-3000:] + diff.stderr

        expected = {
            "app.kubernetes.io/instance": release,
            "app.kubernetes.io/name": "vibeplane",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/part-of": "vibeplane",
        }
        objects = [
            apps.read_namespaced_deployment(name, chart_namespace),
            core.read_namespaced_service_account(name, chart_namespace),
            rbac.read_cluster_role(name),
            rbac.read_cluster_role_binding(name),
            rbac.read_namespaced_role(f"{fullname}-ledgers", chart_namespace),
            rbac.read_namespaced_role(f"{fullname}-leader-election", chart_namespace),
            rbac.read_namespaced_role(f"{fullname}-hostname-claims", claims),
            core.read_namespaced_service(f"{fullname}-metrics", chart_namespace),
            apps.read_namespaced_deployment(f"{fullname}-modelserver", chart_namespace),
        ]
        for obj in objects:
            labels = obj.metadata.labels or {}
            assert expected.items() <= labels.items(), (obj.kind, obj.metadata.name, labels)
            assert obj.metadata.annotations["meta.helm.sh/release-name"] == release
        assert node.read_runtime_class(release).handler == "runsc"
        model = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
            "vibeplane.io", "v1alpha1", chart_namespace, "modeldeployments", "builtin"
        )
        assert model["spec"]["serving"] == {"builtin": {}}

        # The operator's ServiceAccount may do what the code does, and nothing beyond it.
        user = f"system:serviceaccount:{chart_namespace}:{name}"
        missing = [check for check in REQUIRED if not _allowed(api, user, _attributes(*check))]
        # Ledgers and outcomes; a tenant model's outcomes are deleted with it.
        ledger = [("get", "configmaps"), ("create", "configmaps"), ("update", "configmaps")]
        ledger.append(("delete", "configmaps"))
        missing += [
            (verb, resource, chart_namespace)
            for verb, resource in ledger
            if not _allowed(api, user, _attributes(verb, resource, chart_namespace))
        ]
        # Leader election: its one Lease in the platform namespace, no other, nowhere else.
        lease = _attributes("get", "leases.coordination.k8s.io", chart_namespace)
        for verb in ("get", "update"):
            if not _allowed(api, user, {**lease, "verb": verb, "name": "vibeplane-operator"}):
                missing.append((verb, "leases/vibeplane-operator", chart_namespace))
        if not _allowed(api, user, {**lease, "verb": "create"}):
            missing.append(("create", "leases", chart_namespace))
        # Hostname claims: Leases in a namespace of their own, created and released there.
        claim = _attributes("get", "leases.coordination.k8s.io", claims)
        for verb in ("get", "create", "delete"):
            if not _allowed(api, user, {**claim, "verb": verb}):
                missing.append((verb, "leases", claims))
        assert missing == [], f"the chart's RBAC does not allow {missing}"
        # The leader's Lease cannot be deleted (claims are elsewhere), nor any other Lease
        # outside the claims namespace.
        for attributes in (
            {**lease, "verb": "delete", "name": "vibeplane-operator"},
            {**lease, "verb": "delete"},
            {**lease, "verb": "update", "name": "kube-scheduler"},
            {**lease, "verb": "patch", "name": "vibeplane-operator"},
            _attributes("update", "leases.coordination.k8s.io", "kube-system"),
            _attributes("delete", "leases.coordination.k8s.io", "kube-system"),
        ):
            assert not _allowed(api, user, attributes), f"the chart's RBAC allows {attributes}"
        granted = [check for check in FORBIDDEN if _allowed(api, user, _attributes(*check))]
        assert granted == [], f"the chart's RBAC allows more than it should: {granted}"

        # `bind`: the operator may create RoleBindings to the workspace roles without holding
        # their permissions, and to no other role (RBAC's escalation check, in a dry run).
        for role, allowed in (("vibeplane-workspace-admin", True), ("admin", False)):
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "vibeplane-admin", "namespace": chart_namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}
                ],
            }
            path = tmp_path / f"binding-{role}.yaml"
            path.write_text(yaml.safe_dump(binding))
            result = kubectl(
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=vibeplane-workspace",
                f"--as={user}",
                "-f",
                str(path),
            )
            if allowed:
                assert result.returncode == 0, result.stderr
            else:
                assert result.returncode != 0
                assert "attempting to grant RBAC permissions not currently held" in result.stderr
    finally:
        uninstalled = helm("uninstall", release, *common, "--wait", "--timeout", "60s", check=False)
        # Kept on uninstall (resource-policy keep): claims say who owns which hostname.
        with contextlib.suppress(kubernetes.client.exceptions.ApiException):
            core.delete_namespace(claims)
    assert uninstalled.returncode == 0, uninstalled.stderr

    def gone(read: Any, *args: str) -> bool:
        try:
            read(*args)
        except kubernetes.client.exceptions.ApiException as error:
            return error.status == 404
        return False

    assert gone(rbac.read_cluster_role, name)
    assert gone(rbac.read_cluster_role_binding, name)
    assert gone(node.read_runtime_class, release)
    assert gone(apps.read_namespaced_deployment, name, chart_namespace)
    assert gone(core.read_namespaced_service_account, name, chart_namespace)
    # The shared API stays: the CRDs and the workspace roles were never the release's.
    for role in WORKSPACE_ROLES:
        assert rbac.read_cluster_role(role).metadata.name == role
