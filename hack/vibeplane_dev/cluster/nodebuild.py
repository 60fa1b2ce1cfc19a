"""Build the real node's parts, cached outside the repository and keyed on their sources.

The node is made of programs from the Go module proxy and Debian's packages only:

- `vibeplane-node` (kubelet, kube-proxy) and `pause` from tests/node, built from the same
  Kubernetes modules as the control plane (Go's build cache shares most packages);
- containerd, its runc shim and ctr (`go install` of containerd's module);
- gVisor's runsc and containerd shim, from a copy of gVisor's module with one patch (below);
- kube-router's NetworkPolicy firewall alone, from hack/kube-router (kube-router's module);
- CoreDNS from hack/coredns (CoreDNS's module, only the plugins the node uses);
- runc, the CNI plugins, iptables, ipset, conntrack, socat, mmdebstrap (Debian).

Each Go part lives in `<cache>/node/<part>-<key>/`, where the key is the version (and, for the
patched or local sources, a hash of them): any machine that built a part once reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vibeplane_dev.cluster.build import _version_ldflags, go_environment, source_digest

Progress = Callable[[str], None]

CONTAINERD = ("github.com/containerd/containerd/v2", "v2.4.2")
# The module proxy serves gVisor only as pseudo-versions of its `go` branch.
GVISOR = ("gvisor.dev/gvisor", "v0.0.0-20260905035102-160fafc42237")
# The only version the proxy serves of kube-router v2; it runs in the local platform and tests
# only (its firewall, on interfaces inside the node's own network namespace), never in the chart.
KUBE_ROUTER = ("github.com/cloudnativelabs/kube-router/v2", "v2.1.0")
# Pinned in hack/coredns/go.mod (the image tag names it too).
COREDNS = ("github.com/coredns/coredns", "v1.15.0")
DEBIAN_PACKAGES = {
    # command that proves the package is installed: package
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "iptables": "iptables",
    "ipset": "ipset",
    "conntrack": "conntrack",
    "socat": "socat",
    "mmdebstrap": "mmdebstrap",
}

# gVisor's containerd shim sets its own oom_score_adj to -999, which needs CAP_SYS_RESOURCE;
# root on the project's machines lacks it. Tolerate exactly that refusal: on machines with the
# capability the call succeeds as upstream intends, so nothing is weakened there.
GVISOR_SHIM_PATCH = (
    "pkg/shim/v1/manager.go",
    "if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil {",
    "if err := sys.SetOOMScore(cmd.Process.Pid, oomScoreMax); err != nil && "
    "!os.IsPermission(err) { // no CAP_SYS_RESOURCE on some machines",
)


def _silent(_: str) -> None:
    return None


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of every program the node runs."""

    node: Path  # vibeplane-node: kubelet, kube-proxy
    pause: Path
    containerd_dir: Path  # containerd, containerd-shim-runc-v2, ctr
    gvisor_dir: Path  # runsc, containerd-shim-runsc-v1
    kube_router: Path
    coredns: Path

    @property
    def containerd(self) -> Path:
        return self.containerd_dir / "containerd"

    @property
    def ctr(self) -> Path:
        return self.containerd_dir / "ctr"

    @property
    def runsc(self) -> Path:
        return self.gvisor_dir / "runsc"

    @property
    def path(self) -> str:
        """PATH for containerd: it finds its shims there."""
        return os.pathsep.join(
            [
                str(self.containerd_dir),
                str(self.gvisor_dir),
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
        )


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` is not on PATH: install Go 1.25 or newer to build the node")
    return go


def _run(
    argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env or go_environment(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-4000:]}")


# Where the parts would be, without building anything (`down` needs ctr, never a build).
_LOCATE_ONLY = {"value": False}


def _build_into(target_dir: Path, names: Iterable[str], build: Callable[[Path], None]) -> Path:
    """Run build(scratch) and move the whole directory into place atomically."""
    if _LOCATE_ONLY["value"] or all((target_dir / name).is_file() for name in names):
        return target_dir
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir.parent) as scratch:
        build(Path(scratch))
        shutil.rmtree(target_dir, ignore_errors=True)
        os.replace(scratch, target_dir)
        os.mkdir(scratch)  # TemporaryDirectory removes it again
    return target_dir


def _go_install(packages: list[str], version: str) -> Callable[[Path], None]:
    def build(scratch: Path) -> None:
        env = go_environment()
        env["GOBIN"] = str(scratch)
        env["GOFLAGS"] = "-buildvcs=false"
        _run(
            [
                _go(),
                "install",
                "-trimpath",
                "-ldflags=-s -w",
                *[f"{p}@{version}" for p in packages],
            ],
            f"go install {' '.join(packages)}@{version}",
            env=env,
        )

    return build


def node_binary(source: Path, cache: Path, progress: Progress = _silent) -> Path:
    """vibeplane-node (kubelet, kube-proxy) for tests/node's sources."""
    directory = cache / "node" / f"vibeplane-node-{source_digest(source)}"

    def build(scratch: Path) -> None:
        progress(f"building the kubelet and kube-proxy from {source} (cold: minutes)")
        _run(
            [
                _go(),
                "build",
                "-trimpath",
                f"-ldflags={_version_ldflags()}",
                "-o",
                str(scratch / "vibeplane-node"),
                ".",
            ],
            "building the kubelet and kube-proxy",
            cwd=source,
        )

    return _build_into(directory, ["vibeplane-node"], build) / "vibeplane-node"


def pause_binary(source: Path, cache: Path) -> Path:
    """The pause program of every pod's sandbox (a few hundred KB, static)."""
    digest = hashlib.sha256((source / "pause" / "main.go").read_bytes()).hexdigest()[:16]
    directory = cache / "node" / f"pause-{digest}"

    def build(scratch: Path) -> None:
        _run(
            [
                _go(),
                "build",
                "-trimpath",
                "-ldflags=-s -w",
                "-o",
                str(scratch / "pause"),
                "./pause",
            ],
            "building pause",
            cwd=source,
        )

    return _build_into(directory, ["pause"], build) / "pause"


def containerd(cache: Path, progress: Progress = _silent) -> Path:
    module, version = CONTAINERD
    names = ["containerd", "containerd-shim-runc-v2", "ctr"]
    directory = cache / "node" / f"containerd-{version}"
    if not all((directory / name).is_file() for name in names):
        progress(f"installing containerd {version} from the module proxy")
    return _build_into(directory, names, _go_install([f"{module}/cmd/{n}" for n in names], version))


def gvisor(cache: Path, progress: Progress = _silent) -> Path:
    """runsc and containerd-shim-runsc-v1 from a patched copy of gVisor's module."""
    module, version = GVISOR
    relative, old, new = GVISOR_SHIM_PATCH
    patch_key = hashlib.sha256(f"{relative}\0{old}\0{new}".encode()).hexdigest()[:8]
    names = ["runsc", "containerd-shim-runsc-v1"]
    directory = cache / "node" / f"gvisor-{version.rsplit('-', 1)[-1]}-{patch_key}"

    def build(scratch: Path) -> None:
        progress(f"building runsc and its containerd shim from {module}@{version}")
        result = subprocess.run(
            [_go(), "mod", "download", "-json", f"{module}@{version}"],
            env=go_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"downloading {module}@{version} failed:\n{result.stderr}")

        original = Path(json.loads(result.stdout)["Dir"])
        copy = scratch / "src"
        shutil.copytree(original, copy)
        for path in [copy, *copy.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        patched = copy / relative
        text = patched.read_text()
        if text.count(old) != 1:
            raise RuntimeError(f"the gVisor shim patch no longer applies to {module}@{version}")
        patched.write_text(text.replace(old, new))
        env = go_environment()
        env["GOFLAGS"] = "-mod=mod -buildvcs=false"
        for name, package in (("runsc", "./runsc"), ("containerd-shim-runsc-v1", "./shim")):
            _run(
                [_go(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(scratch / name), package],
                f"building {name}",
                cwd=copy,
                env=env,
            )
        shutil.rmtree(copy)

    return _build_into(directory, names, build)


def _local_build(source: Path, cache: Path, name: str, what: str, progress: Progress) -> Path:
    """`go build` of one of hack/'s small modules that wrap an upstream one, keyed on it."""
    directory = cache / "node" / f"{name}-{source_digest(source)}"

    def build(scratch: Path) -> None:
        progress(f"building {what} from {source}")
        _run(
            [_go(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(scratch / name), "."],
            f"building {what}",
            cwd=source,
        )

    return _build_into(directory, [name], build) / name


def kube_router(source: Path, cache: Path, progress: Progress = _silent) -> Path:
    """kube-router's firewall alone, from hack/kube-router (its own main also links the BGP
    router and the IPVS proxy the node never runs: nearly twice the packages)."""
    return _local_build(
        source, cache, "kube-router", f"kube-router {KUBE_ROUTER[1]}'s firewall", progress
    )


def coredns(source: Path, cache: Path, progress: Progress = _silent) -> Path:
    """CoreDNS from hack/coredns: CoreDNS's module with only the plugins the node's Corefile
    uses (its own main builds every plugin, cloud SDKs included: twice the cold build)."""
    return _local_build(source, cache, "coredns", f"CoreDNS {COREDNS[1]}", progress)


def missing_debian_packages() -> list[str]:
    """Debian packages the node needs that are not installed."""
    return sorted(
        {
            package
            for probe, package in DEBIAN_PACKAGES.items()
            if not (Path(probe).exists() if probe.startswith("/") else shutil.which(probe))
        }
    )


def install_debian_packages(progress: Progress = _silent) -> None:
    missing = missing_debian_packages()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"the node needs Debian packages: apt-get install {' '.join(missing)}")
    progress(f"installing {' '.join(missing)} from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        _run(command, " ".join(command), env=env)


def _beside(node_source: Path, name: str) -> Path:
    return node_source.parent / name  # hack/coredns, hack/kube-router beside hack/node


def node_binaries_if_built(source: Path, cache: Path) -> NodeBinaries:
    """The paths ensure_node_binaries would return, building nothing."""
    _LOCATE_ONLY["value"] = True
    try:
        return NodeBinaries(
            node=node_binary(source, cache),
            pause=pause_binary(source, cache),
            containerd_dir=containerd(cache),
            gvisor_dir=gvisor(cache),
            kube_router=kube_router(_beside(source, "kube-router"), cache),
            coredns=coredns(_beside(source, "coredns"), cache),
        )
    finally:
        _LOCATE_ONLY["value"] = False


def ensure_node_binaries(source: Path, cache: Path, progress: Progress = _silent) -> NodeBinaries:
    """Every program of the node, built or found in the cache."""
    install_debian_packages(progress)
    return NodeBinaries(
        node=node_binary(source, cache, progress),
        pause=pause_binary(source, cache),
        containerd_dir=containerd(cache, progress),
        gvisor_dir=gvisor(cache, progress),
        kube_router=kube_router(_beside(source, "kube-router"), cache, progress),
        coredns=coredns(_beside(source, "coredns"), cache, progress),
    )
