"""The model server with the builtin backend, as a real process: the OpenAI chat API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.modelserver.modelserver_support import (
    ModelServer,
    get_json,
    post_json,
    post_sse,
    require_modelserver,
    running_modelserver,
    scrape_metrics,
)
from vibeplane.generation.format import Edit, apply_output, build_messages, parse_output
from vibeplane_modelserver.builtin import generate_from_messages

MODEL = "builtin-test"
CHAT = "/openai/v1/chat/completions"
TODO = "a todo list with title and due date"


@pytest.fixture(scope="module")
def server(artifacts: Path) -> Iterator[ModelServer]:
    require_modelserver()
    with running_modelserver(MODEL, artifacts / "modelserver-builtin.log") as server:
        yield server


@pytest.fixture(scope="module")
def tokens() -> Any:
    """`vibeplane_modelserver.tokens`, the documented builtin token counts."""
    return pytest.importorskip("vibeplane_modelserver.tokens")


def chat_body(messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages, **extra}


def test_chat_completion_returns_the_builtin_answer_with_usage(
    server: ModelServer, tokens: Any
) -> None:
    messages = build_messages([TODO], None)
    status, body, content_type = post_json(server.url + CHAT, chat_body(messages))
    assert status == 200, body
    assert content_type.startswith("application/json")
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert body["id"].startswith("chatcmpl-")
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    # Exactly the generator's answer, in the tagged format, with the app's files.
    assert text == generate_from_messages(messages).text
    files = apply_output({}, parse_output(text))
    assert set(files) == {"index.html", "style.css", "app.js"}
    assert "Due date" in files["index.html"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == tokens.count_tokens(tokens.prompt_text(messages))
    assert usage["completion_tokens"] == tokens.count_tokens(text)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 500  # the system prompt carries the format's spec


def test_follow_up_prompt_answers_with_edits_that_apply(server: ModelServer) -> None:
    first = apply_output(
        {}, parse_output(generate_from_messages(build_messages([TODO], None)).text)
    )
    messages = build_messages([TODO, "make it dark"], first)
    status, body, _ = post_json(server.url + CHAT, chat_body(messages))
    assert status == 200, body
    parsed = parse_output(body["choices"][0]["message"]["content"])
    assert any(isinstance(action, Edit) for action in parsed.actions)
    second = apply_output(first, parsed)
    assert second != first
    assert set(second) == set(first)


def test_streaming_concatenates_to_the_non_streamed_answer(
    server: ModelServer, tokens: Any
) -> None:
    messages = build_messages(["a signup form with name, email and age"], None)
    status, whole, _ = post_json(server.url + CHAT, chat_body(messages))
    assert status == 200, whole
    stream = post_sse(
        server.port,
        CHAT,
        chat_body(messages, stream=True, stream_options={"include_usage": True}),
    )
    assert stream.status == 200
    assert stream.content_type.startswith("text/event-stream")
    assert stream.events[-1] == "[DONE]"
    chunks = stream.chunks()
    assert len(chunks) > 10  # really streamed in pieces
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream.text() == whole["choices"][0]["message"]["content"]
    # The last content-free chunk says why it ended; then the usage, with no choices.
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert whole["usage"]["completion_tokens"] == tokens.count_tokens(stream.text())


def test_streaming_without_include_usage_sends_no_usage(server: ModelServer) -> None:
    stream = post_sse(server.port, CHAT, chat_body(build_messages([TODO], None), stream=True))
    assert stream.status == 200
    assert stream.events[-1] == "[DONE]"
    assert all("usage" not in chunk for chunk in stream.chunks())
    assert stream.chunks()[-1]["choices"][0]["finish_reason"] == "stop"


def test_plain_v1_path_serves_the_same_api(server: ModelServer) -> None:
    messages = build_messages([TODO], None)
    status, body, _ = post_json(server.url + "/v1/chat/completions", chat_body(messages))
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == generate_from_messages(messages).text


def test_max_tokens_cuts_the_answer(server: ModelServer, tokens: Any) -> None:
    messages = build_messages([TODO], None)
    status, body, _ = post_json(server.url + CHAT, chat_body(messages, max_tokens=25))
    assert status == 200, body
    text = body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 25 == tokens.count_tokens(text)
    assert generate_from_messages(messages).text.startswith(text)
    stream = post_sse(server.port, CHAT, chat_body(messages, max_tokens=25, stream=True))
    assert stream.text() == text
    assert stream.chunks()[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"model": "other", "messages": [{"role": "user", "content": "x"}]},
            404,
            "model_not_found",
        ),
        ({"model": MODEL, "messages": []}, 400, "invalid_request"),
        ({"model": MODEL}, 400, "invalid_request"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "n": 2}, 400, None),
        ({"model": MODEL, "messages": [{"role": "user"}], "max_tokens": 0}, 400, None),
        (b"{not json", 400, "invalid_json"),
    ],
)
def test_bad_requests_get_openai_errors(
    server: ModelServer, body: Any, status: int, code: str | None
) -> None:
    got, answer, _ = post_json(server.url + CHAT, body)
    assert got == status, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    if code is not None:
        assert error["code"] == code


def test_models_are_listed_openai_style_and_kserve_style(server: ModelServer) -> None:
    status, listing = get_json(server.url + "/openai/v1/models")
    assert status == 200
    assert [m["id"] for m in listing["data"]] == [MODEL]
    assert get_json(server.url + f"/openai/v1/models/{MODEL}")[0] == 200
    assert get_json(server.url + "/openai/v1/models/nope")[0] == 404
    # KServe's own protocol routes still work beside ours.
    assert get_json(server.url + f"/v1/models/{MODEL}") == (200, {"name": MODEL, "ready": True})
    assert get_json(server.url + "/v2/health/ready")[0] == 200


def test_metrics_count_requests_tokens_and_latency(server: ModelServer) -> None:
    labels = f'model="{MODEL}"'
    before = scrape_metrics(server.url)
    messages = build_messages([TODO], None)
    _, whole, _ = post_json(server.url + CHAT, chat_body(messages))
    post_sse(server.port, CHAT, chat_body(messages, stream=True))
    post_json(server.url + CHAT, {"model": MODEL, "messages": []})
    after = scrape_metrics(server.url)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    usage = whole["usage"]
    requests = "vibeplane_modelserver_requests_total"
    assert delta(f'{requests}{{{labels},outcome="success"}}') == 2
    assert delta(f'{requests}{{{labels},outcome="invalid_request"}}') == 1
    assert delta(f'{requests}{{{labels},outcome="error"}}') == 0
    assert (
        delta(f"vibeplane_modelserver_prompt_tokens_total{{{labels}}}")
        == 2 * usage["prompt_tokens"]
    )
    assert (
        delta(f"vibeplane_modelserver_completion_tokens_total{{{labels}}}")
        == 2 * usage["completion_tokens"]
    )
    latency = "vibeplane_modelserver_request_duration_seconds_count"
    assert delta(f'{latency}{{{labels},stream="false"}}') == 2
    assert delta(f'{latency}{{{labels},stream="true"}}') == 1
    assert delta(f"vibeplane_modelserver_time_to_first_token_seconds_count{{{labels}}}") == 1
    # KServe's own metrics are served from the same registry.
    assert any(name.startswith("python_gc_") for name in after)
