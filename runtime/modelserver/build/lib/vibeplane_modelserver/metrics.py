"""Prometheus metrics of the chat API, served on KServe's own `/metrics` route.

KServe's `/metrics` renders prometheus_client's default registry, so registering here is all
it takes for these to appear beside KServe's `request_*_seconds` histograms. Labels are the
served model's name (never the client-chosen `model` field, which would let any caller mint
label values) and closed sets of strings.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

from prometheus_client import Counter, Histogram

Outcome: TypeAlias = Literal["success", "invalid_request", "error", "cancelled"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("success", "invalid_request", "error", "cancelled")

# Generations take from milliseconds (builtin) to minutes (a large model on a busy GPU).
_LATENCY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

REQUESTS: Final = Counter(
    "vibeplane_modelserver_requests",
    "Chat-completion requests by outcome: success, invalid_request (4xx), error (5xx or a "
    "failure mid-stream), cancelled (the client went away mid-stream).",
    ["model", "outcome"],
)
PROMPT_TOKENS: Final = Counter(
    "vibeplane_modelserver_prompt_tokens",
    "Prompt tokens of successful chat completions.",
    ["model"],
)
COMPLETION_TOKENS: Final = Counter(
    "vibeplane_modelserver_completion_tokens",
    "Completion tokens of successful chat completions.",
    ["model"],
)
LATENCY: Final = Histogram(
    "vibeplane_modelserver_request_duration_seconds",
    "Time from receiving a chat-completion request to its last byte, by stream mode.",
    ["model", "stream"],
    buckets=_LATENCY_BUCKETS,
)
TIME_TO_FIRST_TOKEN: Final = Histogram(
    "vibeplane_modelserver_time_to_first_token_seconds",
    "Time from receiving a streaming request to its first content chunk.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)


def init_labels(model: str) -> None:
    """Create every series of `model` at zero, so rates work from the first scrape on."""
    for outcome in OUTCOMES:
        REQUESTS.labels(model=model, outcome=outcome)
    PROMPT_TOKENS.labels(model=model)
    COMPLETION_TOKENS.labels(model=model)
    for stream in ("true", "false"):
        LATENCY.labels(model=model, stream=stream)
    TIME_TO_FIRST_TOKEN.labels(model=model)


def record(
    model: str,
    outcome: Outcome,
    *,
    stream: bool,
    seconds: float,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> None:
    """Count one finished request (its tokens only when it succeeded)."""
    REQUESTS.labels(model=model, outcome=outcome).inc()
    LATENCY.labels(model=model, stream="true" if stream else "false").observe(seconds)
    if outcome == "success":
        PROMPT_TOKENS.labels(model=model).inc(prompt_tokens)
        COMPLETION_TOKENS.labels(model=model).inc(completion_tokens)
