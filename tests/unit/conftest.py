"""Fixtures shared by the unit tests of several modules."""

from __future__ import annotations

from tests.unit.generation.listener import listener

__all__ = ["listener"]
