"""The pure pod -> OCI config builder, against golden files and kubelet's own rules."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from vibeplane_sandbox.bundle import (
    DEFAULT_MASKED_PATHS,
    BundleError,
    env_references,
    expand,
    oci_config,
    parse_quantity,
    pod_problems,
)

GOLDEN = Path(__file__).parent / "golden"
LOOKUPS = {("configMap", "settings"): {"MODE": "dev"}, ("secret", "creds"): {"token": "s3cr3t"}}


def _pod(name: str) -> dict[str, Any]:
    pod: dict[str, Any] = yaml.safe_load((GOLDEN / f"{name}.yaml").read_text())
    return pod


def _golden(name: str, actual: dict[str, Any]) -> None:
    """Compare with golden/<name>.config.json; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / f"{name}.config.json"
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1 once and review it"
    assert json.loads(path.read_text()) == actual


@pytest.mark.parametrize(("name", "container"), [("preview-pod", "preview"), ("env-pod", "main")])
def test_config_matches_golden(name: str, container: str) -> None:
    config = oci_config(
        _pod(name),
        container,
        41234,
        lookups=LOOKUPS,
        allocatable={"cpu": "2", "memory": "8Gi"},
        cgroups_path=f"/vibeplane/{name}",
    )
    _golden(name, config)


def test_preview_pod_is_locked_down() -> None:
    config = oci_config(_pod("preview-pod"), "preview", 41234)
    process = config["process"]
    assert process["user"] == {"uid": 65532, "gid": 65532, "additionalGids": [65532]}
    assert process["noNewPrivileges"] is True
    assert process["capabilities"]["bounding"] == []
    assert process["capabilities"]["effective"] == []
    assert config["root"] == {"path": "/", "readonly": True}
    assert "network" not in [n["type"] for n in config["linux"]["namespaces"]]
    assert config["linux"]["resources"]["memory"] == {"limit": 256 * 2**20}
    assert config["linux"]["resources"]["cpu"] == {"shares": 102, "quota": 50000, "period": 100000}
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert "size=33554432" in mounts["/var/cache/app"]["options"]
    for path in DEFAULT_MASKED_PATHS:
        assert "ro" in mounts[path]["options"]
    assert process["args"][-1] == "41234"  # $(PORT) expanded in args
    assert "PORT=41234" in process["env"]
    assert config["annotations"]["vibeplane.io/local-port"] == "41234"


def test_environment_follows_kubelet() -> None:
    config = oci_config(_pod("env-pod"), "main", 5000, lookups=LOOKUPS)
    env = dict(item.split("=", 1) for item in config["process"]["env"])
    assert env["GREETING"] == "hello world"
    assert env["PORT"] == "5000"  # the pod's own PORT=8080 is overridden
    assert (env["POD"], env["TIER"], env["IP"]) == ("env-demo", "web", "127.0.0.1")
    assert (env["MEM_MI"], env["CPU"]) == ("1024", "2")  # cpu: ceil(1.5)
    assert (env["TOKEN"], env["CFG_MODE"]) == ("s3cr3t", "dev")
    assert "OPTIONAL" not in env
    assert env["HOSTNAME"] == config["hostname"] == "envbox"
    assert config["process"]["args"][-1] == "echo hello world on 5000 $(NOT_EXPANDED) $(MISSING)"
    caps = config["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_PTRACE" in caps
    assert not {"CAP_NET_RAW", "CAP_MKNOD"} & set(caps)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR)", "value"),
        ("$(VAR)$(VAR)", "valuevalue"),
        ("pre $(VAR) post", "pre value post"),
        ("$$(VAR)", "$(VAR)"),
        ("$$$(VAR)", "$value"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(VAR", "$(VAR"),
        ("$VAR", "$VAR"),
        ("$", "$"),
        ("$$", "$"),
        ("$()", "$()"),
        ("tail$", "tail$"),
    ],
)
def test_expansion_matches_kubelet(text: str, expected: str) -> None:
    assert expand(text, {"VAR": "value"}.get) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500m", "0.5"),
        ("2", "2"),
        ("128Mi", str(128 * 2**20)),
        ("1G", "1000000000"),
        ("1e3", "1000"),
    ],
)
def test_quantities(value: str, expected: str) -> None:
    assert parse_quantity(value) == parse_quantity(expected)


def test_bad_quantity_is_refused() -> None:
    with pytest.raises(BundleError, match="not a Kubernetes quantity"):
        parse_quantity("ten")


def _preview() -> dict[str, Any]:
    return copy.deepcopy(_pod("preview-pod"))


def _refused(pod: dict[str, Any], match: str) -> None:
    with pytest.raises(BundleError, match=match):
        oci_config(pod, "preview", 1)


def test_no_command_is_refused() -> None:
    pod = _preview()
    del pod["spec"]["containers"][0]["command"]
    _refused(pod, "no command")


def test_root_is_refused() -> None:
    pod = _preview()
    pod["spec"]["securityContext"]["runAsUser"] = 0
    _refused(pod, "does not run containers as root")


def test_privileged_is_refused() -> None:
    pod = _preview()
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    _refused(pod, "privileged")


def test_missing_config_map_is_refused() -> None:
    with pytest.raises(BundleError, match='configMap "settings" not found'):
        oci_config(_pod("env-pod"), "main", 1, lookups={})


def test_unsupported_volumes_and_shared_empty_dirs() -> None:
    pod = _preview()
    pod["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/etc"}})
    second = copy.deepcopy(pod["spec"]["containers"][0])
    second["name"] = "sidecar"
    pod["spec"]["containers"].append(second)
    problems = pod_problems(pod)
    assert any("hostPath" in p for p in problems)
    assert any("mounted by several containers" in p for p in problems)
    _refused(pod, "not supported")


def test_service_account_token_volume_is_skipped_not_refused() -> None:
    pod = _preview()
    pod["spec"]["volumes"].append({"name": "kube-api-access-x7k2p", "projected": {"sources": []}})
    pod["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io"}
    )
    config = oci_config(pod, "preview", 1)
    assert "/var/run/secrets/kubernetes.io" not in [m["destination"] for m in config["mounts"]]


def test_env_references_lists_config_maps_and_secrets() -> None:
    container = _pod("env-pod")["spec"]["containers"][0]
    assert env_references(container) == [
        ("configMap", "settings"),
        ("secret", "absent"),
        ("secret", "creds"),
    ]
