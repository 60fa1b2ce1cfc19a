"""A set of objects written to a file under the platform's home and server-side applied with
one field manager, forcing conflicts: the local platform's own objects (the object store's,
the gateway's), which it alone manages and puts back as they should be on each `up`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
Manifest = dict[str, Any]


def apply_file(
    kubectl: Kubectl,
    path: Path,
    docs: list[Manifest],
    field_manager: str,
    what: str,
    private: bool = False,
) -> None:
    """Write `docs` to `path` (0600 when `private`: it holds credentials) and apply it;
    RuntimeError naming `what` when the API server refuses."""
    path.write_text(yaml.safe_dump_all(docs))
    if private:
        path.chmod(0o600)
    result = kubectl(
        "apply",
        "--server-side",
        f"--field-manager={field_manager}",
        "--force-conflicts",
        "-f",
        str(path),
    )
    if result.returncode != 0:
        raise RuntimeError(f"applying {what} failed: {result.stderr.strip()}")
