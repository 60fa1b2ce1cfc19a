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

GENERATIONS = Counter(
    "vibeplane_generations_total",
    "Generation attempts by outcome (succeeded, failed, refused, truncated) and model.",
    ["outcome", "model"],
)
ANSWERS_REFUSED = Counter(
    "vibeplane_model_answers_refused_total",
    "Model answers refused by the output checks (the router then tries the next model), by "
    "model and reason: the rule the answer broke.",
    ["model", "reason"],
)
GENERATION_TOKENS = Counter(
    "vibeplane_generation_tokens_total",
    "Tokens charged for generations, by direction (input, output) and model.",
    ["direction", "model"],
)
GENERATION_COST = Counter(
    "vibeplane_generation_cost_total",
    "Money charged for generations, by model.",
    ["model"],
)
MODEL_COST_PER_APP = Gauge(
    "vibeplane_model_cost_per_app",
    "Mean cost of a generated app per ModelDeployment: (tokens x prices + GPU-hours x price) /"
    " apps, from its status.economics.",
    ["namespace", "model"],
)
DELIVERIES = Counter(
    "vibeplane_preview_deliveries_total",
    "Revision deliveries to running previews by result: delivered, refused (the sandbox "
    "refused the bundle), unreachable (no answer: the sandbox moved or is not behind its "
    "address yet), failed (any other answer).",
    ["result"],
)
WARM_POOL = Counter(
    "vibeplane_warm_pool_total",
    "Warm pool events: adopted (an app took an idle sandbox), drained (an app needed one and "
    "none was ready: it starts cold), dropped (an adopted sandbox deleted: stale, ended, or "
    "its app scaled to zero).",
    ["event"],
)
PROMPT_TO_READY = Histogram(
    "vibeplane_prompt_to_ready_seconds",
    "Time from a revision's generation start to its preview answering.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300),
)
LEADER = Gauge(
    "vibeplane_leader",
    "1 while this replica reconciles (it holds the leader election Lease, or runs without "
    "election), 0 while it stands by.",
)
