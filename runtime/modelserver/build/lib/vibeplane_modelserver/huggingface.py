"""A causal language model from `transformers`, served as a chat model.

`torch` and `transformers` come from this distribution's `huggingface` extra and are imported
only when this backend loads (`importlib`, so the builtin image never needs them, and mypy
treats them alike whether or not they are installed: they are `Any` here).

- Weights come from a local folder (a `save_pretrained` output) or from `s3://`, downloaded
  first (`storage.py`). Nothing is ever fetched from a model hub: `local_files_only`.
- The prompt is the tokenizer's chat template when it has one, else `tokens.prompt_text`.
- Token counts are the tokenizer's: the prompt's ids and the generated ids.
- CUDA when available, else CPU. One generation at a time per process (a GPU is saturated by
  one `generate`; concurrent calls would only thrash memory): requests queue on a lock.
- `generate` blocks, so it runs in a worker thread; streaming uses `TextIteratorStreamer`,
  read from the event loop one piece at a time through `asyncio.to_thread`. A stream the
  client abandons stops the generation through a stopping criterion.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import ChatModel
from .protocol import (
    ChatCompletionRequest,
    FinishReason,
    Generation,
    Pieces,
    RequestError,
)
from .storage import download_s3
from .tokens import prompt_text

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A tokenized request and its generation settings."""

    inputs: Any  # the tokenizer's BatchEncoding, on the model's device
    prompt_tokens: int
    max_new_tokens: int
    sampling: dict[str, Any]


class HuggingFaceChatModel(ChatModel):
    """`AutoModelForCausalLM` + `AutoTokenizer` behind the chat API."""

    def __init__(
        self,
        name: str,
        model_path: str,
        *,
        max_new_tokens: int = 1024,
        download_dir: Path | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(name)
        self.model_path = model_path
        self.default_max_new_tokens = max_new_tokens
        self.download_dir = download_dir
        self.device = device
        self._torch: Any = None
        self._transformers: Any = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._context: int | None = None
        self._lock = asyncio.Lock()

    def load(self) -> bool:
        """Fetch (for s3://) and load the weights; blocking, called before serving."""
        self._torch = importlib.import_module("torch")
        self._transformers = importlib.import_module("transformers")
        if self.model_path.startswith("s3://"):
            local = download_s3(self.model_path, self.download_dir)
        else:
            local = Path(self.model_path)
            if not local.is_dir():
                raise FileNotFoundError(f"no model folder at {self.model_path!r}")
        if self.device is None:
            self.device = "cuda" if self._torch.cuda.is_available() else "cpu"
        auto_tokenizer = self._transformers.AutoTokenizer
        auto_model = self._transformers.AutoModelForCausalLM
        self._tokenizer = auto_tokenizer.from_pretrained(local, local_files_only=True)
        model = auto_model.from_pretrained(local, local_files_only=True, dtype="auto")
        self._model = model.to(self.device).eval()
        config = self._model.config
        self._context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        log.info("loaded %s on %s (context %s tokens)", local, self.device, self._context)
        self.ready = True
        return True

    # -- preparation (pure CPU work, cheap: run on the loop's executor with generation)

    def _prompt_ids(self, messages: Sequence[Mapping[str, object]]) -> Any:
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
            # The template writes any BOS itself.
            return tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return tokenizer(prompt_text(messages), return_tensors="pt")

    def _prepare(self, request: ChatCompletionRequest) -> _Prepared:
        inputs = self._prompt_ids(request.message_dicts()).to(self.device)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = request.output_limit or self.default_max_new_tokens
        if self._context is not None:
            room = self._context - prompt_tokens
            if room <= 0:
                raise RequestError(
                    400,
                    "context_length_exceeded",
                    f"the prompt has {prompt_tokens} tokens; the model's context is "
                    f"{self._context}",
                )
            limit = min(limit, room)
        sampling: dict[str, Any] = {"do_sample": False}
        temperature = 1.0 if request.temperature is None else request.temperature
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature}
            if request.top_p is not None:
                sampling["top_p"] = request.top_p
        if request.seed is not None:
            self._torch.manual_seed(request.seed)
        return _Prepared(inputs, prompt_tokens, limit, sampling)

    def _generate_ids(self, prepared: _Prepared, **extra: Any) -> Any:
        tokenizer = self._tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else None
        if pad is None:
            pad = tokenizer.eos_token_id
        with self._torch.inference_mode():
            return self._model.generate(
                **prepared.inputs,
                max_new_tokens=prepared.max_new_tokens,
                pad_token_id=pad,
                **prepared.sampling,
                **extra,
            )

    def _finish(self, prepared: _Prepared, output: Any, text: str | None = None) -> Generation:
        new_ids = output[0, prepared.prompt_tokens :]
        completion_tokens = int(new_ids.shape[0])
        eos = self._tokenizer.eos_token_id
        ended = completion_tokens > 0 and eos is not None and int(new_ids[-1]) == eos
        reason: FinishReason = (
            "length" if completion_tokens >= prepared.max_new_tokens and not ended else "stop"
        )
        if text is None:
            text = self._tokenizer.decode(new_ids, skip_special_tokens=True)
        return Generation(text, prepared.prompt_tokens, completion_tokens, reason)

    def _complete_sync(self, request: ChatCompletionRequest) -> Generation:
        prepared = self._prepare(request)
        return self._finish(prepared, self._generate_ids(prepared))

    async def complete(self, request: ChatCompletionRequest) -> Generation:
        async with self._lock:
            return await asyncio.to_thread(self._complete_sync, request)

    async def stream(self, request: ChatCompletionRequest) -> Pieces:
        async with self._lock:
            prepared = await asyncio.to_thread(self._prepare, request)
            streamer = self._transformers.TextIteratorStreamer(
                self._tokenizer, skip_prompt=True, skip_special_tokens=True
            )
            cancelled = threading.Event()
            stopping = self._transformers.StoppingCriteriaList([_Cancelled(cancelled)])

            def run() -> Any:
                try:
                    return self._generate_ids(
                        prepared, streamer=streamer, stopping_criteria=stopping
                    )
                except BaseException:
                    streamer.end()  # unblock the reader, which then sees the error
                    raise

            loop = asyncio.get_running_loop()
            generating = loop.run_in_executor(None, run)
            pieces: list[str] = []
            iterator = iter(streamer)
            try:
                while True:
                    piece = await asyncio.to_thread(next, iterator, None)
                    if piece is None:
                        break
                    if piece:
                        pieces.append(piece)
                        yield piece
                output = await generating
            finally:
                cancelled.set()
                if not generating.done():
                    # Abandoned: let generate notice the flag and end before releasing
                    # the lock, so the next request does not share the device with it.
                    await asyncio.wait([generating])
            yield self._finish(prepared, output, "".join(pieces))


class _Cancelled:
    """A `StoppingCriteria` that ends generation once `flag` is set (duck-typed: the
    `transformers` base class is not importable at module import time)."""

    def __init__(self, flag: threading.Event) -> None:
        self.flag = flag

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        return self.flag.is_set()
