"""Build the control-plane binary, cached outside the repository and keyed on its sources.

A cold build compiles much of Kubernetes (tens of minutes on two cores); the key is the hash
of go.mod, go.sum and the Go files, so any machine that built these sources once reuses the
binary, and Go's own module and build caches make a rebuild after a source change cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from vibeplane_dev.cluster.config import (
    CERT_MANAGER_CRDS,
    CERT_MANAGER_MODULE,
    CERT_MANAGER_VERSION,
    GATEWAY_API_CRDS,
    GATEWAY_API_MODULE,
    GATEWAY_API_VERSION,
    KSERVE_CRDS,
    KSERVE_MODULE,
    KSERVE_VERSION,
    KUBERNETES_VERSION,
    TOOLS,
    TRAINER_CRDS,
    TRAINER_MODULE,
    TRAINER_VERSION,
)

BINARY_NAME = "vibeplane-controlplane"

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    return None


def source_digest(source: Path) -> str:
    """sha256 over go.mod, go.sum and every Go file of the control-plane module."""
    digest = hashlib.sha256()
    files = sorted([source / "go.mod", source / "go.sum", *source.glob("*.go")])
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def go_environment() -> dict[str, str]:
    """The environment every Go invocation runs with: static, local toolchain, no VCS stamping."""
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod -buildvcs=false"})
    return env


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "`go` is not on PATH: install Go 1.25 or newer to build the control plane"
        )
    return go


def _version_ldflags() -> str:
    # Modules carry no git stamp; without these the components report v0.0.0-master.
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    stamps = {
        "gitVersion": KUBERNETES_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{name}={value}" for name, value in stamps.items()]
    return " ".join(flags)


def ensure_binary(source: Path, cache: Path, progress: Progress = _silent) -> Path:
    """The path of the built binary for these sources, building it first if needed."""
    target = cache / "controlplane" / source_digest(source) / BINARY_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"building the control plane from {source} (cold: tens of minutes on 2 cores)")
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        built = Path(scratch) / BINARY_NAME
        result = subprocess.run(
            [_go(), "build", "-trimpath", f"-ldflags={_version_ldflags()}", "-o", str(built), "."],
            cwd=source,
            env=go_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building the control plane failed:\n{result.stderr[-4000:]}")
        os.replace(built, target)  # atomic: a concurrent reader sees all or nothing
    return target


def kserve_crds(cache: Path) -> list[Path]:
    """KServe's own CRDs, from its Go module (downloaded once through the module proxy)."""
    return module_files(cache, KSERVE_MODULE, KSERVE_VERSION, KSERVE_CRDS, "kserve")


def trainer_crds(cache: Path) -> list[Path]:
    """Kubeflow Trainer's TrainJob CRD, from its Go module."""
    return module_files(cache, TRAINER_MODULE, TRAINER_VERSION, TRAINER_CRDS, "trainer")


def gateway_api_crds(cache: Path) -> list[Path]:
    """Gateway API's standard-channel CRDs, from its Go module."""
    return module_files(
        cache, GATEWAY_API_MODULE, GATEWAY_API_VERSION, GATEWAY_API_CRDS, "gateway-api"
    )


def cert_manager_crds(cache: Path) -> list[Path]:
    """cert-manager's CRDs (Certificate, Issuer, ClusterIssuer), from its Go module."""
    return module_files(
        cache, CERT_MANAGER_MODULE, CERT_MANAGER_VERSION, CERT_MANAGER_CRDS, "cert-manager"
    )


def module_files(
    cache: Path, module: str, version: str, names: tuple[str, ...], short: str
) -> list[Path]:
    """Files of a Go module at a version, copied into the cache once (module proxy only).

    A module whose go.mod asks for a newer Go than the local toolchain is not extracted by
    `go mod download`, but its zip is still fetched and checked against the checksum
    database; the files are then read from that zip.
    """
    directory = cache / f"{short}-{version}"
    wanted = [directory / Path(name).name for name in names]
    if all(path.is_file() for path in wanted):
        return wanted
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        env=go_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    directory.mkdir(parents=True, exist_ok=True)
    if info.get("Dir"):
        for name, path in zip(names, wanted, strict=True):
            shutil.copyfile(Path(info["Dir"]) / name, path)
        return wanted
    if "requires go" in info.get("Error", "") and info.get("Zip") and info.get("Sum"):
        with zipfile.ZipFile(info["Zip"]) as archive:
            for name, path in zip(names, wanted, strict=True):
                partial = path.with_suffix(".partial")
                partial.write_bytes(archive.read(f"{module}@{version}/{name}"))
                os.replace(partial, path)
        return wanted
    raise RuntimeError(f"downloading {module}@{version} failed:\n{result.stderr}{info}")


def ensure_tool(name: str, cache: Path, progress: Progress = _silent) -> Path:
    """A Go tool (kwok, helm) installed from the module proxy into the cache."""
    package, version = TOOLS[name]
    bin_dir = cache / "tools" / f"{name}-{version}"
    target = bin_dir / name
    if target.is_file():
        return target
    progress(f"installing {package}@{version}")
    env = go_environment()
    env["GOBIN"] = str(bin_dir)
    env["GOFLAGS"] = "-buildvcs=false"
    result = subprocess.run(
        [_go(), "install", "-trimpath", "-ldflags=-s -w", f"{package}@{version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go install {package}@{version} failed:\n{result.stderr[-4000:]}")
    return target
