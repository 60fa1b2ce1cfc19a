"""The layering contract (`lint-imports`, run by `make lint`) holds, and fails on a forbidden
import: each case adds one to a copy of the sources and expects that contract broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "vibeplane": ROOT / "operator" / "vibeplane",
    "vibeplane_dev": ROOT / "hack" / "vibeplane_dev",
    "vibeplane_modelserver": ROOT / "runtime" / "modelserver" / "vibeplane_modelserver",
    "vibeplane_sandbox": ROOT / "runtime" / "sandbox" / "vibeplane_sandbox",
}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    for name, path in PACKAGES.items():
        shutil.copytree(path, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_sources_keep_every_contract(sources: Path) -> None:
    result = _lint_imports(sources)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # One kind importing another.
        ("vibeplane/workspace/desired.py", "import vibeplane.vibeapp.desired", "layers"),
        # A lower layer importing a higher one.
        ("vibeplane/kube/conditions.py", "import vibeplane.manager", "layers"),
        # The API models or a pure builder reaching for a client.
        ("vibeplane/api/meta.py", "import kubernetes", "import no client"),
        ("vibeplane/generation/router.py", "import vibeplane.kube.client", "import no client"),
        # The operator's package needing the dev platform.
        ("vibeplane/cli.py", "import vibeplane_dev.platform", "ships alone"),
        # The stdlib-only sandbox importing the operator.
        ("vibeplane_sandbox/preview.py", "import vibeplane.wellknown", "stand alone"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    sources: Path, module: str, line: str, contract: str
) -> None:
    path = sources / module
    path.write_text(path.read_text() + f"\n{line}  # deliberate violation\n")
    result = _lint_imports(sources)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), result.stdout[-3000:]
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
