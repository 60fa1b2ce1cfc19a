"""Generated manifests are committed up to date."""

from __future__ import annotations

from pathlib import Path

from vibeplane.manifests import generated_files

ROOT = Path(__file__).resolve().parents[2]


def test_committed_files_match_the_code() -> None:
    stale = [
        str(path)
        for path, content in generated_files().items()
        if not (ROOT / path).is_file() or (ROOT / path).read_text() != content
    ]
    assert stale == [], f"run `make crds`: stale {stale}"
