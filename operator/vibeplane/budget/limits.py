"""A workspace's budget as the ledger's limits."""

from __future__ import annotations

from decimal import Decimal

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Limits


def budget_limits(spec: WorkspaceSpec) -> Limits:
    """The hard limits of the workspace's budget (unlimited without one)."""
    budget = spec.budget
    if budget is None:
        return Limits()
    return Limits(
        tokens=budget.tokens,
        money=Decimal(budget.money) if budget.money is not None else None,
        gpu_hours=Decimal(budget.gpu_hours) if budget.gpu_hours is not None else None,
        soft_percent=budget.soft_limit_percent,
    )
