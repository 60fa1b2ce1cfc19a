"""The KServe models: one `kserve.Model` per backend, each answering chat requests.

A backend implements `complete` (the whole answer) and `stream` (text pieces, then the
`Generation` with the whole text and usage). Both must keep the event loop free: generation
runs in a worker thread, because even the builtin generator takes milliseconds of CPU per
request and a real model takes seconds to minutes.

Being `kserve.Model`s, the backends also get KServe's model registry, its readiness routes
(`GET /v1/models/NAME`, `GET /v2/health/ready`, `GET /v2/models/NAME/ready`) and its
`/metrics` for free; the chat routes themselves are mounted by `api.py`.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from typing import Final

import kserve  # type: ignore[import-untyped]

from vibeplane_modelserver.builtin import generate_from_messages

from .protocol import ChatCompletionRequest, FinishReason, Generation, Pieces
from .tokens import count_tokens, iter_tokens, prompt_text


class ChatModel(kserve.Model):  # type: ignore[misc]  # kserve ships no type information
    """A chat model served by KServe's ModelServer with the OpenAI chat-completions API."""

    name: str
    ready: bool

    @abstractmethod
    async def complete(self, request: ChatCompletionRequest) -> Generation:
        """The whole answer to `request`. Raises `RequestError` for a request it cannot do."""

    @abstractmethod
    def stream(self, request: ChatCompletionRequest) -> Pieces:
        """Text pieces of the answer as they come, then exactly one `Generation` whose text
        is the concatenation of the pieces. Raises `RequestError` before the first piece for
        a request it cannot do. Closing the iterator early stops the generation."""


# Tokens per streamed chunk: real servers send one token per chunk, but the builtin answer
# exists whole at once, and a few tokens per chunk keep an app's ~5k tokens to ~600 events.
BUILTIN_CHUNK_TOKENS: Final = 8


def truncate(text: str, limit: int | None) -> tuple[str, FinishReason]:
    """`text` cut to its first `limit` tokens (`tokens.py`), and why the answer ended."""
    if limit is None:
        return text, "stop"
    tokens = list(iter_tokens(text))
    if len(tokens) <= limit:
        return text, "stop"
    return "".join(tokens[:limit]), "length"


class BuiltinChatModel(ChatModel):
    """The deterministic offline generator (`vibeplane_modelserver.builtin`) as a chat model.

    No weights and no randomness: sampling parameters are ignored, the same messages always
    get the same answer, and token counts follow `tokens.py`. A `max_tokens` limit cuts the
    answer like a real model would (finish_reason `length`), which lets tests exercise the
    operator's handling of truncated output.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def load(self) -> bool:
        self.ready = True
        return True

    def _generate(self, request: ChatCompletionRequest) -> Generation:
        messages = request.message_dicts()
        answer = generate_from_messages(messages)
        text, finish_reason = truncate(answer.text, request.output_limit)
        return Generation(
            text=text,
            prompt_tokens=count_tokens(prompt_text(messages)),
            completion_tokens=count_tokens(text),
            finish_reason=finish_reason,
        )

    async def complete(self, request: ChatCompletionRequest) -> Generation:
        return await asyncio.to_thread(self._generate, request)

    async def stream(self, request: ChatCompletionRequest) -> Pieces:
        generation = await self.complete(request)
        tokens = list(iter_tokens(generation.text))
        for start in range(0, len(tokens), BUILTIN_CHUNK_TOKENS):
            yield "".join(tokens[start : start + BUILTIN_CHUNK_TOKENS])
        yield generation
