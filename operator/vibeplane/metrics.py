"""Prometheus metrics of the operator. Labels never carry secrets or free-form user text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "vibeplane_reconciles_total",
    "Reconciles by kind and outcome (ok, invalid, error).",
    ["kind", "outcome"],
)
RECONCILE_SECONDS = Histogram(
    "vibeplane_reconcile_seconds",
    "Time one reconcile took, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter(
    "vibeplane_writes_total",
    "Writes the operator sent to the API server, by kind of the owner and what was written.",
    ["kind", "target"],
)

WORKSPACE_SPEND = Gauge(
    "vibeplane_workspace_spend",
    "Settled usage of the current budget period, by workspace and resource "
    "(tokens, money, gpu_hours).",
    ["workspace", "resource"],
)
WORKSPACE_REMAINING = Gauge(
    "vibeplane_workspace_budget_remaining",
    "What is left of the current period's budget, by workspace and resource (only limits set).",
    ["workspace", "resource"],
)
