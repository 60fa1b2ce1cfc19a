"""Fixtures for the sandbox tests: whether runsc can run here, and a Python sandboxes can use."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

# The control-plane fixtures, for test_sandbox_node (imported, not redefined).
from tests.integration.conftest import api, cluster  # noqa: F401
from vibeplane_sandbox.bundle import RUNTIME_MOUNT
from vibeplane_sandbox.runtime import Runsc, check_runsc

SANDBOX_SOURCE = Path(__file__).resolve().parents[3] / "runtime" / "sandbox"


def runsc_unavailable() -> str | None:
    """Why runsc cannot be used at all here, or None. Installed-but-failing is not a skip."""
    if shutil.which("runsc") is None:
        return "runsc is not installed (apt-get install runsc)"
    if os.geteuid() != 0:
        return "runsc runs sandboxes as root here (the node agent runs as root, like kubelet)"
    return None


@pytest.fixture(scope="session")
def runsc(tmp_path_factory: pytest.TempPathFactory) -> Runsc:
    """A working runsc with a root of the session's own; skips only when runsc is absent."""
    reason = runsc_unavailable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("runsc")
    works, detail = check_runsc(Runsc(root=root / "state"), root / "check")
    assert works, f"runsc is installed but cannot run a sandbox here: {detail}"
    return Runsc(root=root / "state")


def _world_usable(path: Path) -> bool:
    """Whether a non-root user may reach and run/read `path` (every parent searchable)."""
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return False
    for parent in resolved.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(resolved.stat().st_mode & stat.S_IROTH)


@pytest.fixture(scope="session")
def sandbox_python() -> str:
    """A python3 the sandboxes' uid 65532 can execute from the host's root filesystem."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        if _world_usable(Path(candidate)):
            return str(Path(candidate))
    pytest.fail("no python3 on this host is executable by other users (needed inside sandboxes)")


@pytest.fixture(scope="session")
def sandbox_pythonpath() -> str:
    """Where `vibeplane_sandbox` is importable inside a sandbox the node agent runs: it mounts
    its own package there (the checkout may be hidden in the sandbox, e.g. under /tmp)."""
    if not _world_usable(SANDBOX_SOURCE / "vibeplane_sandbox" / "preview.py"):
        pytest.fail(f"{SANDBOX_SOURCE} is not readable by other users; sandboxes import it")
    return str(Path(RUNTIME_MOUNT).parent)
