"""The OpenAI chat-completions request and the backend-neutral result of a generation.

Requests are validated here with our own pydantic models rather than KServe's: since KServe
0.15 its OpenAI types are re-exports of vLLM's (see `server.py`), and vLLM is a GPU inference
engine we do not want in a CPU image. Only the fields the backends use are declared; other
OpenAI parameters (tools, logprobs, penalties...) are accepted and ignored, as many
OpenAI-compatible servers do, rather than failing a client that always sends them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

FinishReason: TypeAlias = Literal["stop", "length"]


class ChatMessage(BaseModel):
    """One message; `content` is a string or a list of OpenAI content parts."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1)
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of `POST .../chat/completions`."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1)
    seed: int | None = None

    @property
    def output_limit(self) -> int | None:
        """The completion-token limit: the smaller of `max_tokens` (legacy) and
        `max_completion_tokens` (its newer name), or None when neither is set."""
        limits = [x for x in (self.max_tokens, self.max_completion_tokens) if x is not None]
        return min(limits) if limits else None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def message_dicts(self) -> list[dict[str, object]]:
        """The messages as plain dicts, as `build_messages` made them and templates want."""
        return [
            {"role": m.role, "content": m.content if m.content is not None else ""}
            for m in self.messages
        ]


@dataclass(frozen=True)
class Generation:
    """The outcome of one generation: its whole text and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


# What `ChatModel.stream` yields: text pieces, then one `Generation`.
Pieces: TypeAlias = AsyncGenerator["str | Generation", None]


class RequestError(Exception):
    """A request the backend cannot serve as asked (answered 4xx, the OpenAI error shape)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
