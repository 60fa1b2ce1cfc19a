"""Revision bundles: a file set as a deterministic tar.gz, addressed by its sha256 (pure).

Deterministic (sorted names, zero times, fixed owner and modes, no gzip timestamp) so the same
files always give the same bytes and the same address: storing a revision twice after a
restart writes the same object, never a second one. Only regular files are written: a bundle
can hold no links, devices or directories with odd modes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str


def build(files: Mapping[str, str | bytes]) -> Bundle:
    """The bundle of `files` (path -> content), already checked by generation.checks."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(files):
            content = files[path]
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name=path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            archive.addfile(info, io.BytesIO(data))
    compressed = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    return Bundle(compressed, hashlib.sha256(compressed).hexdigest())


def extract(data: bytes) -> dict[str, str]:
    """The files of a bundle as text (the previous revision, as the model's context)."""
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isreg():
                continue
            handle = archive.extractfile(member)
            if handle is not None:
                files[member.name] = handle.read().decode("utf-8", errors="replace")
    return files
