"""Images without a container engine: the Dockerfile interpreter and the docker-archive."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from vibeplane_dev.cluster.config import repository_root
from vibeplane_dev.cluster.images import (
    KEPT_BUILDS,
    ImageConfig,
    build_dockerfile,
    files_layer,
    write_docker_archive,
)


def test_the_preview_dockerfile_becomes_the_same_image_config(tmp_path: Path) -> None:
    sandbox = repository_root() / "runtime" / "sandbox"
    base = files_layer(tmp_path / "base.tar", {"/usr/bin/python3": b"#!fake"})
    layers, config = build_dockerfile(sandbox / "Dockerfile", sandbox, base, tmp_path)
    assert config.entrypoint == ["python3", "-m", "vibeplane_sandbox.preview"]
    assert config.user == "65532:65532"
    assert config.workdir == "/tmp"
    assert config.env["PREVIEW_HOST"] == "0.0.0.0"
    assert config.env["PYTHONPATH"] == "/opt/vibeplane"
    assert config.exposed == ["8080/tcp"]
    with tarfile.open(layers[1].path) as layer:
        names = set(layer.getnames())
    assert "opt/vibeplane/vibeplane_sandbox/preview.py" in names
    assert "opt/vibeplane/vibeplane_sandbox/__init__.py" in names


def test_instructions_it_cannot_honour_are_refused(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nRUN echo hi\n")
    base = files_layer(tmp_path / "base.tar", {"/x": b""})
    with pytest.raises(RuntimeError, match="RUN is not supported"):
        build_dockerfile(dockerfile, tmp_path, base, tmp_path)


def test_docker_archive_names_layers_by_their_digests(tmp_path: Path) -> None:
    layer = files_layer(tmp_path / "layer.tar", {"/pause": b"\x7fELF"}, mode=0o755)
    archive = write_docker_archive(
        tmp_path / "image.tar",
        "vibeplane.local/pause:3.10",
        [layer],
        ImageConfig(entrypoint=["/pause"]),
    )
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (entry,) = manifest
        config = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        assert entry["RepoTags"] == ["vibeplane.local/pause:3.10"]
        assert config["rootfs"]["diff_ids"] == [layer.diff_id]
        assert entry["Layers"] == [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar"]
    # Same inputs, same bytes: layers carry no timestamps.
    again = files_layer(tmp_path / "again.tar", {"/pause": b"\x7fELF"}, mode=0o755)
    assert again.diff_id == layer.diff_id


def test_a_build_stage_pip_installs_and_the_final_stage_copies_it(tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "pkg" / "tiny").mkdir(parents=True)
    (context / "pkg" / "tiny" / "__init__.py").write_text("ANSWER = 42\n")
    (context / "pkg" / "tiny" / "__pycache__").mkdir()
    (context / "pkg" / "tiny" / "__pycache__" / "stale.pyc").write_bytes(b"x")
    (context / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tiny"\nversion = "1"\n'
        '[tool.setuptools.packages.find]\nwhere = ["pkg"]\n'
    )
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE=python:3.11-slim\n"
        "FROM ${BASE} AS build\n"
        "ARG EXTRAS=\n"
        "WORKDIR /src\n"
        "COPY pyproject.toml ./\n"
        "COPY pkg ./pkg\n"
        "RUN pip install --no-index --no-build-isolation --no-deps --target /opt/lib "
        '".${EXTRAS:+[${EXTRAS}]}"\n'
        "FROM ${BASE}\n"
        "ENV PYTHONPATH=/opt/lib\n"
        "COPY --from=build /opt/lib /opt/lib\n"
        'ENTRYPOINT ["python3", "-c", "import tiny"]\n'
    )
    base = files_layer(tmp_path / "base.tar", {"/usr/bin/python3": b"#!fake"})
    layers, config = build_dockerfile(dockerfile, context, base, tmp_path / "scratch")
    assert len(layers) == 2  # the base and the copied directory; the build stage is no layer
    assert config.env["PYTHONPATH"] == "/opt/lib"
    with tarfile.open(layers[1].path) as layer:
        names = set(layer.getnames())
        installed = layer.extractfile("opt/lib/tiny/__init__.py")
        assert installed is not None
        assert installed.read() == b"ANSWER = 42\n"
    assert {"opt", "opt/lib"} <= names
    assert not any("stale.pyc" in name or "/src/" in name for name in names)


def test_a_build_stage_runs_only_pip_installs(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x AS build\nRUN apt-get install -y gcc\nFROM x\n")
    base = files_layer(tmp_path / "base.tar", {"/x": b""})
    with pytest.raises(RuntimeError, match="may only `pip install --target"):
        build_dockerfile(dockerfile, tmp_path, base, tmp_path)


def test_a_new_build_of_an_image_drops_all_but_the_newest_few(tmp_path: Path) -> None:
    layer = files_layer(tmp_path / "layer.tar", {"/pause": b"\x7fELF"}, mode=0o755)
    cache = tmp_path / "images"
    cache.mkdir()
    older = []
    for age, key in enumerate(f"{n:016x}" for n in range(6)):
        path = cache / f"operator-{key}.tar"
        path.write_bytes(b"old")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))  # key 0 newest of the old ones
        older.append(path)
    # Another image whose name starts the same, and files that are not keyed archives.
    neighbours = [
        cache / f"operator-extra-{'a' * 16}.tar",
        cache / "operator-notes.tar",
        cache / "modelserver-0000000000000000.tar",
    ]
    for path in neighbours:
        path.write_bytes(b"other")

    newest = write_docker_archive(
        cache / f"operator-{'f' * 16}.tar", "vibeplane.local/operator:f", [layer], ImageConfig()
    )

    kept = sorted(p.name for p in cache.glob("operator-*.tar") if p not in neighbours)
    assert kept == sorted([newest.name, *(p.name for p in older[: KEPT_BUILDS - 1])])
    assert all(path.exists() for path in neighbours)
