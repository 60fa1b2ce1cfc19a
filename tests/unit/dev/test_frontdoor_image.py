"""The front service's image (runtime/frontdoor/Dockerfile, the file users `docker build`),
as the dev platform builds it without a container engine (images.frontdoor_image)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from vibeplane_dev.cluster import images
from vibeplane_dev.cluster.config import repository_root

FRONTDOOR = repository_root() / "runtime" / "frontdoor"


def _pip_stands_in(self: images._Stage, command: str, dockerfile: Path) -> None:
    """The build stage's `pip install --target DIR .` without an index: the package only."""
    words = shlex.split(command)
    target = self.path(words[words.index("--target") + 1])
    shutil.copytree(self.path("vibeplane_frontdoor"), target / "vibeplane_frontdoor")


def test_the_dockerfile_becomes_a_non_root_image_of_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images._Stage, "run", _pip_stands_in)
    base = images.files_layer(tmp_path / "base.tar", {"/usr/bin/python3": b"#!fake"})
    layers, config = images.build_dockerfile(
        FRONTDOOR / "Dockerfile", FRONTDOOR, base, tmp_path / "scratch"
    )
    assert config.entrypoint == [
        "python3", "-m", "vibeplane_frontdoor", "--host", "0.0.0.0", "--port", "8080"
    ]  # fmt: skip
    # The chart's securityContext: runAsUser 10001, read-only root (nothing written).
    assert config.user == "10001:10001"
    assert config.env["PYTHONPATH"] == "/opt/vibeplane/lib"
    assert config.exposed == ["8080/tcp"]
    with tarfile.open(layers[1].path) as layer:
        names = set(layer.getnames())
    assert "opt/vibeplane/lib/vibeplane_frontdoor/__main__.py" in names
    assert "opt/vibeplane/lib/vibeplane_frontdoor/server.py" in names


def test_its_cache_key_covers_every_source_file() -> None:
    inputs = images._dockerfile_inputs(FRONTDOOR / "Dockerfile", FRONTDOOR)
    sources = set((FRONTDOOR / "vibeplane_frontdoor").glob("*.py"))
    assert sources <= set(inputs)
    assert FRONTDOOR / "pyproject.toml" in inputs


@pytest.mark.slow
def test_the_built_image_runs_its_entrypoint(tmp_path: Path) -> None:
    """The real build (Debian base, wheels from PyPI; about a minute cold, cached after): the
    image's library directory runs the service's command line with this machine's Python
    3.11, the image's."""
    archive, reference = images.frontdoor_image(tmp_path / "cache", repository_root())
    assert reference.startswith(images.FRONTDOOR_REPOSITORY + ":")
    root = tmp_path / "root"
    with tarfile.open(archive) as image:
        image.extractall(tmp_path / "image", filter="data")
    (entry,) = json.loads((tmp_path / "image" / "manifest.json").read_text())
    for layer in entry["Layers"][1:]:  # over the Debian base (device nodes: not extracted here)
        with tarfile.open(tmp_path / "image" / layer) as tar:
            tar.extractall(root, filter="data")
    result = subprocess.run(
        # -S: no site-packages (this venv has the package too); only the image's library.
        [sys.executable, "-S", "-m", "vibeplane_frontdoor", "--help"],
        env={"PYTHONPATH": str(root / "opt/vibeplane/lib")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--upstream" in result.stdout
