"""Objects `vibeplane up` puts in place (the platform's default model, the examples), created
only where they are missing.

`up` runs again and again over a platform people use: they patch the example app (the
README adds prompts with `kubectl patch`), tune the builtin model, delete things. Re-applying
the files would fight those edits (a server-side apply conflict with `kubectl-patch`, or,
forced, taking the fields back), so an object that exists is left alone and `up` says so;
deleting it brings the file's version back at the next `up`.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
FIELD_MANAGER = "vibeplane-up"


@dataclass(frozen=True)
class Wanted:
    """One object of a manifest file."""

    kind: str
    name: str
    namespace: str | None
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.lower()} {where}{self.name}"


def objects_of(path: Path) -> Iterator[Wanted]:
    """The objects of a YAML file, in order."""
    for document in yaml.safe_load_all(path.read_text()):
        if not document:
            continue
        metadata = document.get("metadata") or {}
        yield Wanted(document["kind"], metadata["name"], metadata.get("namespace"), document)


def _exists(kubectl: Kubectl, wanted: Wanted) -> bool:
    where = ["-n", wanted.namespace] if wanted.namespace else []
    resource = f"{wanted.kind}.{wanted.manifest['apiVersion'].split('/')[0]}"
    if "/" not in wanted.manifest["apiVersion"]:  # the core group
        resource = wanted.kind
    result = kubectl("get", resource, wanted.name, *where, "-o", "name")
    if result.returncode == 0:
        return True
    if "NotFound" in result.stderr or "not found" in result.stderr:
        return False
    raise RuntimeError(f"kubectl get {wanted.ref} failed:\n{result.stderr}")


def _create(kubectl: Kubectl, wanted: Wanted, timeout: float) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(wanted.manifest, file)
        file.flush()
        # A VibeApp's namespace exists only once its Workspace is reconciled: retry until then.
        deadline = time.monotonic() + timeout
        while True:
            result = kubectl(
                "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", file.name
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline or "not found" not in result.stderr:
                raise RuntimeError(f"creating {wanted.ref} failed:\n{result.stderr}")
            time.sleep(0.5)


def create_missing(
    kubectl: Kubectl, paths: list[Path], note: Callable[[str], None], timeout: float = 60
) -> list[Wanted]:
    """Create the objects of `paths` that do not exist; return those left alone."""
    left_alone: list[Wanted] = []
    for path in paths:
        for wanted in objects_of(path):
            if _exists(kubectl, wanted):
                left_alone.append(wanted)
                note(f"{wanted.ref} exists: left alone (delete it to get {path.name}'s back)")
                continue
            _create(kubectl, wanted, timeout)
            note(f"{wanted.ref} created from {path.name}")
    return left_alone
