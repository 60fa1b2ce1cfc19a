from __future__ import annotations

import io
import tarfile

from vibeplane.storage.bundles import build, extract

FILES = {"index.html": "<h1>Hi</h1>\n", "js/app.js": "console.log(1)\n", "b.css": "x{}"}


def test_bundles_are_deterministic_and_content_addressed() -> None:
    first, second = build(FILES), build(dict(reversed(list(FILES.items()))))
    assert first.data == second.data
    assert first.sha256 == second.sha256
    assert build({**FILES, "b.css": "y{}"}).sha256 != first.sha256


def test_bundles_hold_only_regular_files_owned_by_nobody() -> None:
    with tarfile.open(fileobj=io.BytesIO(build(FILES).data), mode="r:gz") as archive:
        members = archive.getmembers()
    assert sorted(m.name for m in members) == sorted(FILES)
    assert all(m.isreg() and m.mode == 0o644 and m.uid == 0 and m.mtime == 0 for m in members)


def test_round_trip() -> None:
    assert extract(build(FILES).data) == FILES
