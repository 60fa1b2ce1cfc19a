"""The huggingface backend on a tiny, randomly initialised causal LM built here.

Nothing is downloaded: the tokenizer is a word-level one trained on a few sentences with the
`tokenizers` library, the model a one-layer GPT-2 with random weights. The answers are
noise, but the serving path is the real one: loading a `save_pretrained` folder, the chat
template, generation in a worker thread, streaming, and the tokenizer's token counts.

Skipped unless `torch`, `transformers` and `tokenizers` are installed (the `huggingface`
extra of runtime/modelserver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.modelserver.modelserver_support import (
    ModelServer,
    post_json,
    post_sse,
    require_modelserver,
    running_modelserver,
    scrape_metrics,
)

MODEL = "tiny-gpt2"
CHAT = "/openai/v1/chat/completions"
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)
CORPUS = [
    "make a todo list app with a title field",
    "add a due date and make it dark",
    "a landing page for a bakery with a signup form",
    "system user assistant : the app files index html style css app js",
]
SPECIALS = ["[UNK]", "[PAD]", "[BOS]", "[EOS]", "[SEP]"]


def build_tiny_model(folder: Path, chat_template: str | None, *, stops: bool = True) -> Any:
    """Save a tokenizer and a random one-layer GPT-2 in `folder`; returns the tokenizer.

    With `stops=False` the model has no end-of-sequence token: it always generates up to
    the limit, which makes a stopped generation observable.
    """
    why = "the huggingface extra (torch, transformers) is not installed"
    torch = pytest.importorskip("torch", reason=why)
    transformers = pytest.importorskip("transformers", reason=why)
    tokenizers = pytest.importorskip("tokenizers", reason=why)
    torch.manual_seed(0)
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordLevelTrainer(special_tokens=SPECIALS)
    backend.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = transformers.GPT2Config(
        vocab_size=backend.get_vocab_size(),
        n_positions=256,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id if stops else None,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.GPT2LMHeadModel(config)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    return folder, build_tiny_model(folder, TEMPLATE)


@pytest.fixture(scope="module")
def server(tiny: tuple[Path, Any], artifacts: Path) -> Iterator[ModelServer]:
    require_modelserver()
    folder, _ = tiny
    args = ["--backend", "huggingface", "--model-path", str(folder), "--device", "cpu"]
    with running_modelserver(MODEL, artifacts / "modelserver-huggingface.log", args) as server:
        yield server


MESSAGES = [
    {"role": "system", "content": "you write the app files"},
    {"role": "user", "content": "make a todo list app with a due date"},
]


def test_completion_has_the_tokenizers_usage(server: ModelServer, tiny: tuple[Path, Any]) -> None:
    _, tokenizer = tiny
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 8, "temperature": 0}
    status, answer, _ = post_json(server.url + CHAT, body)
    assert status == 200, answer
    prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    expected_prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    usage = answer["usage"]
    assert usage["prompt_tokens"] == expected_prompt_tokens > 10
    assert 1 <= usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    [choice] = answer["choices"]
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    if usage["completion_tokens"] < 8:
        assert choice["finish_reason"] == "stop"


def test_greedy_stream_matches_the_non_streamed_answer(server: ModelServer) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 12, "temperature": 0}
    status, whole, _ = post_json(server.url + CHAT, body)
    assert status == 200, whole
    stream = post_sse(
        server.port, CHAT, {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert stream.status == 200
    assert stream.events[-1] == "[DONE]"
    assert stream.text() == whole["choices"][0]["message"]["content"]
    assert stream.chunks()[-1]["usage"] == whole["usage"]


def test_prompt_longer_than_the_context_is_refused(server: ModelServer) -> None:
    long = {"role": "user", "content": "make a todo list " * 100}
    before = scrape_metrics(server.url)
    for stream in (False, True):
        body = {"model": MODEL, "messages": [long], "stream": stream}
        status, answer, _ = post_json(server.url + CHAT, body)
        assert status == 400, answer
        assert answer["error"]["code"] == "context_length_exceeded"
    after = scrape_metrics(server.url)
    key = f'vibeplane_modelserver_requests_total{{model="{MODEL}",outcome="invalid_request"}}'
    assert after[key] - before.get(key, 0) == 2


def test_without_a_chat_template_the_prompt_is_the_plain_join(tmp_path: Path) -> None:
    """In process (no server): the fallback prompt, counts, and an abandoned stream."""
    require_modelserver()
    tokenizer = build_tiny_model(tmp_path, chat_template=None, stops=False)
    hf = pytest.importorskip("vibeplane_modelserver.huggingface")
    protocol = pytest.importorskip("vibeplane_modelserver.protocol")
    tokens = pytest.importorskip("vibeplane_modelserver.tokens")

    model = hf.HuggingFaceChatModel(MODEL, str(tmp_path), device="cpu", max_new_tokens=64)
    assert model.load()
    forward_calls = 0

    def count(*args: Any) -> None:
        nonlocal forward_calls
        forward_calls += 1

    model._model.register_forward_hook(count)  # one forward pass per generated token
    request = protocol.ChatCompletionRequest.model_validate(
        {"model": MODEL, "messages": MESSAGES, "temperature": 0}
    )

    async def scenario() -> tuple[Any, int]:
        nonlocal forward_calls
        generation = await model.complete(request)
        # Take one piece, then walk away: generation must stop early and free the lock.
        forward_calls = 0
        pieces = model.stream(request)
        await anext(pieces)
        await pieces.aclose()
        abandoned_calls = forward_calls
        again = await asyncio.wait_for(model.complete(request), timeout=30)
        assert again == generation  # greedy: the same answer
        return generation, abandoned_calls

    generation, abandoned_calls = asyncio.run(scenario())
    expected = len(tokenizer(tokens.prompt_text(MESSAGES))["input_ids"])
    assert generation.prompt_tokens == expected
    assert generation.completion_tokens == 64
    assert generation.finish_reason == "length"
    assert abandoned_calls < 32
