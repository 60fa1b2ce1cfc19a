"""Container images without a container engine.

A base root filesystem comes from Debian's packages (mmdebstrap's `extract` variant: the
packages and their dependencies unpacked, no package manager, no shell); the project's
Dockerfiles are then applied by a small interpreter of the instructions they use (ARG, FROM,
ENV, COPY, USER, WORKDIR, EXPOSE, ENTRYPOINT, CMD; anything else is refused, so a Dockerfile
that grows a RUN step fails loudly here instead of building something different). Build stages
of a multi-stage file run on this machine: their COPYs fill a scratch directory and their only
RUN is a `pip install --target` with this machine's Python 3.11 (wheels from PyPI), which the
final stage copies in with COPY --from. The result
is a docker-archive, which containerd imports (`ctr images import`). Docker users build the
same Dockerfile, with the same base, by its build argument.

Everything is cached under `<cache>/images/`, keyed on the inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_SUITE = "bookworm"
PYTHON_BASE_PACKAGES = ("python3-minimal", "python3.11-minimal", "libpython3.11-stdlib")
# The operator and the model server: their wheels' C++ extensions (pandas, grpcio) need the
# C++ runtime that Docker's python:*-slim images have.
APP_BASE_PACKAGES = (*PYTHON_BASE_PACKAGES, "libstdc++6")
# The Python of the Debian base: a build stage's pip runs with this machine's, of this version.
_BASE_PYTHON = (3, 11)
# What .dockerignore leaves out of the build context (and the images module skips the same).
_IGNORED_NAMES = frozenset({"__pycache__", ".git", ".venv"})
_IGNORED_SUFFIXES = (".pyc", ".egg-info")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Archives are named `<image>-<key of its inputs>.tar`; each source change adds one, so only the
# newest few of an image are kept (a day of work once left 13 GiB of them and filled the disk).
_KEYED_ARCHIVE = re.compile(r"^(?P<image>.+)-[0-9a-f]{16}\.tar$")
KEPT_BUILDS = 4
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
    drop_older_builds(destination)
    return destination


def drop_older_builds(archive: Path, keep: int = KEPT_BUILDS) -> list[Path]:
    """Delete all but the `keep` newest archives of the image `archive` is a build of (it is
    always kept); return what was deleted. Other worktrees may build the same image at once,
    so a file that vanishes meanwhile is simply skipped."""
    match = _KEYED_ARCHIVE.match(archive.name)
    if match is None:
        return []
    builds: list[tuple[float, Path]] = []
    for candidate in archive.parent.glob(f"{match['image']}-*.tar"):
        other = _KEYED_ARCHIVE.match(candidate.name)
        if candidate == archive or other is None or other["image"] != match["image"]:
            continue
        with contextlib.suppress(FileNotFoundError):
            builds.append((candidate.stat().st_mtime, candidate))
    builds.sort(reverse=True)
    dropped = [path for _, path in builds[max(keep - 1, 0) :]]
    for path in dropped:
        path.unlink(missing_ok=True)
    return dropped


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


_ALTERNATE = re.compile(r"\$\{(\w+):\+([^}]*)\}")


def _substitute(text: str, args: dict[str, str]) -> str:
    """Build arguments as Docker expands them: ${NAME}, $NAME and ${NAME:+word}."""
    for name, value in args.items():
        text = text.replace("${" + name + "}", value)
    text = _ALTERNATE.sub(lambda m: m.group(2) if args.get(m.group(1)) else "", text)
    for name, value in args.items():
        text = text.replace("$" + name, value)
    return text


def _json_or_words(text: str) -> list[str]:
    if text.startswith("["):
        value = json.loads(text)
        return [str(word) for word in value]
    return shlex.split(text)


def _ignored(relative: Path) -> bool:
    """What the repository's .dockerignore leaves out of a build context."""
    return any(
        part in _IGNORED_NAMES or part.endswith(_IGNORED_SUFFIXES) for part in relative.parts
    )


def _context_files(source: Path) -> list[Path]:
    """A COPY source: the file itself, or every file under the directory (minus ignored)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise RuntimeError(f"COPY: {source} does not exist in the build context")
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and not _ignored(path.relative_to(source))
    )


def _copy_targets(sources: list[Path], target: str) -> dict[str, Path]:
    """Docker's COPY: into a directory when the target ends with / or there are several
    sources; a directory source copies its contents."""
    into = target.endswith("/") or len(sources) > 1
    files: dict[str, Path] = {}
    for source in sources:
        base = target.rstrip("/") + "/" + source.name if into and source.is_file() else target
        if source.is_file():
            files[base] = source
            continue
        for path in _context_files(source):
            files[target.rstrip("/") + "/" + path.relative_to(source).as_posix()] = path
    return files


def _absolute(path: str, workdir: str) -> str:
    return path if path.startswith("/") else workdir.rstrip("/") + "/" + path


@dataclass
class _Stage:
    """A build stage (one whose files only a later COPY --from uses), run on this machine:
    COPY fills a scratch directory standing for its filesystem, and RUN may only install
    Python packages into a `--target` there, with this machine's pip (wheels from PyPI)."""

    name: str
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)

    def path(self, inside: str) -> Path:
        return self.root / _absolute(inside, self.workdir).lstrip("/")

    def copy(self, files: dict[str, Path]) -> None:
        for inside, source in files.items():
            target = self.path(inside)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    def run(self, command: str, dockerfile: Path) -> None:
        words = shlex.split(command)
        if words[:2] != ["pip", "install"] or "--target" not in words:
            raise RuntimeError(
                f"{dockerfile}: RUN {command!r}: a build stage may only `pip install --target "
                "DIR ...` without a container engine"
            )
        if sys.version_info[:2] != _BASE_PYTHON:
            raise RuntimeError(
                f"{dockerfile}: its build stage runs with this machine's Python, which must be "
                f"{'.'.join(map(str, _BASE_PYTHON))} like the image's (this is {sys.version})"
            )
        index = words.index("--target") + 1
        words[index] = str(self.path(words[index]))
        cwd = self.path(".")
        cwd.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "pip", *words[1:]],
            cwd=cwd,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{dockerfile}: RUN {command} failed:\n{result.stderr[-3000:]}")


def build_dockerfile(
    dockerfile: Path,
    context: Path,
    base: Layer,
    scratch: Path,
    build_args: dict[str, str] | None = None,
) -> tuple[list[Layer], ImageConfig]:
    """Apply a Dockerfile's instructions on top of `base` (which stands for every FROM).

    Earlier stages of a multi-stage file are build stages (see _Stage); the last stage is the
    image: each of its COPY instructions (from the context or from a build stage) is a layer.
    """
    args = dict(build_args or {})
    instructions = _instructions(dockerfile)
    last_from = max(
        (number for number, (keyword, _) in enumerate(instructions) if keyword == "FROM"),
        default=-1,
    )
    stages: dict[str, _Stage] = {}
    stage: _Stage | None = None  # the build stage being run, None in the final one
    config = ImageConfig()
    layers = [base]
    for number, (keyword, rest) in enumerate(instructions):
        rest = _substitute(rest, args)
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name, default.strip('"'))
        elif keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(number)
            if number != last_from:
                stage = stages[name] = _Stage(name, scratch / f"stage-{number}")
                stage.root.mkdir(parents=True)
            else:
                stage = None
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                (stage.env if stage else config.env)[key] = value
        elif keyword == "COPY":
            options = [word for word in shlex.split(rest) if word.startswith("--")]
            *sources, target = [word for word in shlex.split(rest) if not word.startswith("--")]
            origin = next((o.partition("=")[2] for o in options if o.startswith("--from=")), "")
            workdir = stage.workdir if stage else config.workdir or "/"
            if origin:
                if stage or origin not in stages or len(sources) != 1:
                    raise RuntimeError(
                        f"{dockerfile}: COPY --from={origin}: only one path from an earlier "
                        "stage, into the final one"
                    )
                tree = stages[origin].path(sources[0])
                layers.append(
                    tree_layer(scratch / f"layer-{number}.tar", tree, _absolute(target, workdir))
                )
                continue
            files = _copy_targets([context / source for source in sources], target)
            files = {_absolute(inside, workdir): path for inside, path in files.items()}
            if stage:
                stage.copy(files)
            else:
                layers.append(files_layer(scratch / f"layer-{number}.tar", dict(files)))
        elif keyword == "RUN" and stage:
            stage.run(rest, dockerfile)
        elif keyword == "USER" and not stage:
            config.user = rest
        elif keyword == "WORKDIR":
            if stage:
                stage.workdir = _absolute(rest, stage.workdir)
            else:
                config.workdir = rest
        elif keyword == "EXPOSE" and not stage:
            config.exposed += [port if "/" in port else f"{port}/tcp" for port in rest.split()]
        elif keyword == "ENTRYPOINT" and not stage:
            config.entrypoint = _json_or_words(rest)
        elif keyword == "CMD" and not stage:
            config.cmd = _json_or_words(rest)
        else:
            raise RuntimeError(
                f"{dockerfile}: {keyword} is not supported without a container engine"
                + (" (in a build stage)" if stage else "")
            )
    if config.workdir:
        # The directory must exist in the image (containerd does not make it for a read-only root).
        layers.append(
            files_layer(scratch / "workdir.tar", {config.workdir.rstrip("/") + "/.keep": b""})
        )
    return layers, config


def tree_layer(destination: Path, tree: Path, inside: str) -> Layer:
    """A layer holding a directory built on this machine at `inside`, with its parents. The
    files keep their modification times: Python's byte-code caches there are checked against
    them (the read-only root filesystem could not hold a fresh one)."""

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as out:
        parts = inside.strip("/").split("/")
        for depth in range(1, len(parts)):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            out.addfile(_normalized(info))
        out.add(tree, arcname="/".join(parts), filter=owned_by_root)
    return _layer(destination)


def _inputs_digest(paths: Iterable[Path], extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _dockerfile_inputs(dockerfile: Path, context: Path) -> list[Path]:
    """The Dockerfile and every context file its COPY instructions read."""
    inputs = [dockerfile]
    for keyword, rest in _instructions(dockerfile):
        words = shlex.split(rest) if keyword == "COPY" else []
        if not words or any(word.startswith("--from=") for word in words):
            continue
        for source in [word for word in words if not word.startswith("--")][:-1]:
            inputs += _context_files(context / source)
    return inputs


def dockerfile_image(
    cache: Path,
    dockerfile: Path,
    context: Path,
    repository: str,
    base_packages: Iterable[str] = APP_BASE_PACKAGES,
    build_args: dict[str, str] | None = None,
) -> tuple[Path, str]:
    """An image of a project Dockerfile on a Debian base, cached on everything it reads;
    returns the docker-archive and its reference (`repository:<key>`, so a changed input is a
    new tag, and a Deployment naming it rolls)."""
    packages = sorted(base_packages)
    args = dict(build_args or {})
    extra = json.dumps([repository, packages, args, list(_BASE_PYTHON)])
    key = _inputs_digest(_dockerfile_inputs(dockerfile, context), extra)
    reference = f"{repository}:{key}"
    target = cache / "images" / f"{repository.rsplit('/', 1)[-1]}-{key}.tar"
    if target.is_file():
        return target, reference
    base = debian_base(cache, packages)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        layers, config = build_dockerfile(dockerfile, context, base, Path(scratch), args)
        write_docker_archive(target, reference, layers, config)
    return target, reference


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


FRONTDOOR_REPOSITORY = "vibeplane.local/frontdoor"


def frontdoor_image(cache: Path, root: Path) -> tuple[Path, str]:
    """The front service's image from runtime/frontdoor/Dockerfile (the file users build with
    `docker build -t vibeplane-frontdoor runtime/frontdoor`), cached on its inputs; (docker
    archive, reference). The chart runs it with frontDoor.enabled=true and frontDoor.image
    set to the reference (imagePullPolicy Never on the local node)."""
    frontdoor = root / "runtime" / "frontdoor"
    return dockerfile_image(
        cache, frontdoor / "Dockerfile", frontdoor, FRONTDOOR_REPOSITORY, PYTHON_BASE_PACKAGES
    )
