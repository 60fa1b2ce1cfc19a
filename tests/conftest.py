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


def pytest_addoption(parser: pytest.Parser) -> None:
    # Options must be added in the rootdir conftest; tests/chaos reads this one.
    parser.addoption(
        "--chaos-long",
        action="store_true",
        help="run tests/chaos in its long form (50 apps, 20 operator kills); "
        "also VIBEPLANE_CHAOS=long",
    )
