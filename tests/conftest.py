"""Shared pytest configuration: where artifacts of a run go."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """A folder for files a run leaves for people to look at (logs, screenshots)."""
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path
