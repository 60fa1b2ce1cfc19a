"""Container images without a container engine.

A base root filesystem comes from Debian's packages (mmdebstrap's `extract` variant: the
packages and their dependencies unpacked, no package manager, no shell); the project's
Dockerfiles are then applied by a small interpreter of the instructions they use (ARG, FROM,
ENV, COPY, USER, WORKDIR, EXPOSE, ENTRYPOINT, CMD; anything else is refused, so a Dockerfile
that grows a RUN step fails loudly here instead of building something different). The result
is a docker-archive, which containerd imports (`ctr images import`). Docker users build the
same Dockerfile, with the same base, by its build argument.

Everything is cached under `<cache>/images/`, keyed on the inputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_SUITE = "bookworm"
PYTHON_BASE_PACKAGES = ("python3-minimal", "python3.11-minimal", "libpython3.11-stdlib")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Not needed to run anything, and most of a Debian root filesystem's bulk.
_DROPPED_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/locale/", "usr/share/info/")


@dataclass
class ImageConfig:
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    user: str = ""
    workdir: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layer:
    path: Path  # an uncompressed tar
    diff_id: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _layer(path: Path) -> Layer:
    return Layer(path, "sha256:" + _sha256(path))


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0  # reproducible layers: the same inputs give the same digests
    info.uname = info.gname = ""
    return info


def debian_base(cache: Path, packages: Iterable[str] = PYTHON_BASE_PACKAGES) -> Layer:
    """A root filesystem of Debian packages and their dependencies, as one layer."""
    names = sorted(packages)
    key = hashlib.sha256(f"{DEBIAN_SUITE}\0{' '.join(names)}".encode()).hexdigest()[:16]
    target = cache / "images" / f"debian-{DEBIAN_SUITE}-{key}.tar"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            raw = Path(scratch) / "raw.tar"
            result = subprocess.run(
                [
                    "mmdebstrap",
                    "--mode=root",
                    "--variant=extract",
                    f"--include={','.join(names)}",
                    DEBIAN_SUITE,
                    str(raw),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
            filtered = Path(scratch) / "base.tar"
            with (
                tarfile.open(raw) as source,
                tarfile.open(filtered, "w", format=tarfile.PAX_FORMAT) as out,
            ):
                for member in source:
                    name = member.name.removeprefix("./")
                    if not name or name.startswith(_DROPPED_PREFIXES):
                        continue
                    member.name = name
                    data = source.extractfile(member) if member.isfile() else None
                    out.addfile(_normalized(member), data)
            os.replace(filtered, target)
    return _layer(target)


def files_layer(destination: Path, files: dict[str, bytes | Path], mode: int = 0o644) -> Layer:
    """A layer holding files (path in the image -> content), with their parent directories."""
    with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as out:
        directories: set[str] = set()
        for name in sorted(files):
            parts = name.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    out.addfile(_normalized(info))
            content = files[name]
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name.strip("/"))
            info.size = len(data)
            info.mode = 0o755 if isinstance(content, Path) and os.access(content, os.X_OK) else mode
            out.addfile(_normalized(info), io.BytesIO(data))
    return _layer(destination)


def write_docker_archive(
    destination: Path, reference: str, layers: list[Layer], config: ImageConfig
) -> Path:
    """A docker-archive (what `docker save` writes), which `ctr images import` reads."""
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [f"{key}={value}" for key, value in config.env.items()],
            "Entrypoint": config.entrypoint or None,
            "Cmd": config.cmd or None,
            "User": config.user,
            "WorkingDir": config.workdir,
            "ExposedPorts": {port: {} for port in config.exposed} or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": "vibeplane images"} for _ in layers],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_names = [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers]
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": layer_names}]
    partial = destination.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:
        for name, data in (
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(_normalized(info), io.BytesIO(data))
        for name, layer in zip(layer_names, layers, strict=True):
            out.add(layer.path, arcname=name, filter=_normalized)
    os.replace(partial, destination)
    return destination


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    logical: list[str] = []
    current = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _substitute(text: str, args: dict[str, str]) -> str:
    for name, value in args.items():
        text = text.replace("${" + name + "}", value).replace("$" + name, value)
    return text


def _json_or_words(text: str) -> list[str]:
    if text.startswith("["):
        value = json.loads(text)
        return [str(word) for word in value]
    return shlex.split(text)


def build_dockerfile(
    dockerfile: Path,
    context: Path,
    base: Layer,
    scratch: Path,
    build_args: dict[str, str] | None = None,
) -> tuple[list[Layer], ImageConfig]:
    """Apply a Dockerfile's instructions on top of `base` (which stands for its FROM)."""
    args = dict(build_args or {})
    config = ImageConfig()
    layers = [base]
    seen_from = False
    for number, (keyword, rest) in enumerate(_instructions(dockerfile)):
        rest = _substitute(rest, args)
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name, default)
        elif keyword == "FROM":
            if seen_from:
                raise RuntimeError(f"{dockerfile}: multi-stage builds are not supported here")
            seen_from = True
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                config.env[key] = value
        elif keyword == "COPY":
            *sources, target = shlex.split(rest)
            files: dict[str, bytes | Path] = {}
            for source in sources:
                path = context / source
                destination = (
                    target.rstrip("/") + "/" + path.name if target.endswith("/") else target
                )
                files[destination] = path
            layers.append(files_layer(scratch / f"layer-{number}.tar", files))
        elif keyword == "USER":
            config.user = rest
        elif keyword == "WORKDIR":
            config.workdir = rest
        elif keyword == "EXPOSE":
            config.exposed += [port if "/" in port else f"{port}/tcp" for port in rest.split()]
        elif keyword == "ENTRYPOINT":
            config.entrypoint = _json_or_words(rest)
        elif keyword == "CMD":
            config.cmd = _json_or_words(rest)
        else:
            raise RuntimeError(
                f"{dockerfile}: {keyword} is not supported without a container engine"
            )
    if config.workdir:
        # The directory must exist in the image (containerd does not make it for a read-only root).
        layers.append(
            files_layer(scratch / "workdir.tar", {config.workdir.rstrip("/") + "/.keep": b""})
        )
    return layers, config


def _inputs_digest(paths: Iterable[Path], extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def preview_image(cache: Path, sandbox: Path, reference: str) -> Path:
    """The preview image from runtime/sandbox/Dockerfile on a Debian base (cached)."""
    dockerfile = sandbox / "Dockerfile"
    inputs = [dockerfile, *(sandbox / "vibeplane_sandbox").glob("*.py")]
    key = _inputs_digest(inputs, reference + "\0" + ",".join(PYTHON_BASE_PACKAGES))
    target = cache / "images" / f"preview-{key}.tar"
    if target.is_file():
        return target
    base = debian_base(cache)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        layers, config = build_dockerfile(dockerfile, sandbox, base, Path(scratch))
        write_docker_archive(target, reference, layers, config)
    return target


def binary_image(cache: Path, binary: Path, reference: str, args: list[str] | None = None) -> Path:
    """An image of one static program (pause, CoreDNS): no base at all."""
    key = hashlib.sha256(f"{reference}\0{_sha256(binary)}\0{args}".encode()).hexdigest()[:16]
    target = cache / "images" / f"{binary.name}-{key}.tar"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        layer = files_layer(Path(scratch) / "layer.tar", {f"/{binary.name}": binary}, mode=0o755)
        config = ImageConfig(entrypoint=[f"/{binary.name}", *(args or [])], user="65532:65532")
        write_docker_archive(target, reference, [layer], config)
    return target
