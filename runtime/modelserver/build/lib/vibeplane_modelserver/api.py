"""The OpenAI-compatible HTTP routes, mounted on KServe's FastAPI app.

Paths, with `PREFIX` = `$KSERVE_OPENAI_ROUTE_PREFIX` or `/openai` (as KServe mounts its own
OpenAI routes):

- `POST PREFIX/v1/chat/completions` and `POST /v1/chat/completions`: chat completions,
  streamed as server-sent events with `"stream": true`.
- `GET PREFIX/v1/models` and `GET PREFIX/v1/models/NAME`: the served model, OpenAI-style.
  (`GET /v1/models` stays KServe's v1 protocol listing, a different shape, so OpenAI clients
  should use `PREFIX/v1` as their base URL.)

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so OpenAI
clients report them properly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from . import metrics
from .model import ChatModel
from .protocol import ChatCompletionRequest, Generation, Pieces, RequestError

log = logging.getLogger(__name__)

OPENAI_PREFIX: Final = "/" + os.environ.get("KSERVE_OPENAI_ROUTE_PREFIX", "/openai").strip("/")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """An error in OpenAI's shape."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _usage(generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


def completion_body(
    completion_id: str, created: int, model: str, generation: Generation
) -> dict[str, Any]:
    """A non-streamed `chat.completion` object."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "finish_reason": generation.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(generation),
    }


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(x) for x in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "invalid request: " + "; ".join(parts)


class ChatRoutes:
    """The handlers for one served model."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.created = int(time.time())

    async def chat_completions(self, request: Request) -> Response:
        started = time.perf_counter()
        name = self.model.name
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(started, False, 400, "invalid_json", "the body is not JSON")
        stream = isinstance(body, dict) and body.get("stream") is True
        try:
            chat = ChatCompletionRequest.model_validate(body)
        except ValidationError as e:
            return self._refuse(started, stream, 400, "invalid_request", _validation_message(e))
        if chat.model != name:
            return self._refuse(
                started,
                stream,
                404,
                "model_not_found",
                f"the model {chat.model!r} is not served here; this server serves {name!r}",
            )
        if chat.n != 1:
            return self._refuse(started, stream, 400, "unsupported", "only n=1 is supported")
        if not self.model.ready:
            metrics.record(name, "error", stream=stream, seconds=time.perf_counter() - started)
            return error_response(503, "model_not_ready", f"the model {name!r} is not ready")
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if chat.stream:
            return await self._stream(chat, completion_id, created, started)
        try:
            generation = await self.model.complete(chat)
        except RequestError as e:
            return self._refuse(started, False, e.status, e.code, e.message)
        except Exception:
            log.exception("chat completion failed")
            metrics.record(name, "error", stream=False, seconds=time.perf_counter() - started)
            return error_response(500, "internal_error", "the generation failed")
        metrics.record(
            name,
            "success",
            stream=False,
            seconds=time.perf_counter() - started,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
        )
        return JSONResponse(completion_body(completion_id, created, name, generation))

    def _refuse(
        self, started: float, stream: bool, status: int, code: str, message: str
    ) -> JSONResponse:
        metrics.record(
            self.model.name, "invalid_request", stream=stream, seconds=time.perf_counter() - started
        )
        return error_response(status, code, message)

    async def _stream(
        self, chat: ChatCompletionRequest, completion_id: str, created: int, started: float
    ) -> Response:
        name = self.model.name
        pieces = self.model.stream(chat)
        # Pull the first item before answering 200: a request the backend refuses (say, a
        # prompt longer than the context) still gets a proper 4xx instead of a broken stream.
        try:
            first = await anext(pieces)
        except RequestError as e:
            await pieces.aclose()
            return self._refuse(started, True, e.status, e.code, e.message)
        except Exception:
            await pieces.aclose()
            log.exception("chat completion stream failed to start")
            metrics.record(name, "error", stream=True, seconds=time.perf_counter() - started)
            return error_response(500, "internal_error", "the generation failed")
        return StreamingResponse(
            self._events(chat, first, pieces, completion_id, created, started),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(
        self,
        chat: ChatCompletionRequest,
        first: str | Generation,
        pieces: Pieces,
        completion_id: str,
        created: int,
        started: float,
    ) -> AsyncIterator[str]:
        name = self.model.name
        include_usage = chat.include_usage

        def chunk(delta: dict[str, str], finish_reason: str | None = None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return _sse(payload)

        outcome: metrics.Outcome = "error"
        generation: Generation | None = None
        try:
            yield chunk({"role": "assistant", "content": ""})
            item: str | Generation | None = first
            first_content = True
            while item is not None:
                if isinstance(item, Generation):
                    generation = item
                    break
                if item:
                    if first_content:
                        metrics.TIME_TO_FIRST_TOKEN.labels(model=name).observe(
                            time.perf_counter() - started
                        )
                        first_content = False
                    yield chunk({"content": item})
                item = await anext(pieces, None)
            if generation is None:
                raise RuntimeError("the backend's stream ended without its usage")
            yield chunk({}, generation.finish_reason)
            if include_usage:
                yield _sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": name,
                        "choices": [],
                        "usage": _usage(generation),
                    }
                )
            yield _sse("[DONE]")
            outcome = "success"
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away: Starlette cancels the response task, or the generator
            # is closed; either way `finally` closes the backend's stream, which stops it.
            outcome = "cancelled"
            raise
        except Exception:
            log.exception("chat completion stream failed")
            error = {"message": "the generation failed", "type": "server_error", "code": None}
            yield _sse({"error": error})
            yield _sse("[DONE]")
        finally:
            await pieces.aclose()
            ok = outcome == "success" and generation is not None
            metrics.record(
                name,
                outcome,
                stream=True,
                seconds=time.perf_counter() - started,
                prompt_tokens=generation.prompt_tokens if ok and generation else 0,
                completion_tokens=generation.completion_tokens if ok and generation else 0,
            )

    async def list_models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self._model_card()]}

    async def get_model(self, model_name: str) -> Response:
        if model_name != self.model.name:
            return error_response(404, "model_not_found", f"no model {model_name!r}")
        return JSONResponse(self._model_card())

    def _model_card(self) -> dict[str, Any]:
        return {
            "id": self.model.name,
            "object": "model",
            "created": self.created,
            "owned_by": "vibeplane",
        }


def install_routes(app: FastAPI, model: ChatModel) -> None:
    """Mount the chat routes of `model` on `app` (before KServe adds its own routes)."""
    metrics.init_labels(model.name)
    routes = ChatRoutes(model)
    openai = APIRouter(prefix=OPENAI_PREFIX + "/v1", tags=["OpenAI"])
    openai.add_api_route("/chat/completions", routes.chat_completions, methods=["POST"])
    openai.add_api_route("/models", routes.list_models, methods=["GET"])
    openai.add_api_route("/models/{model_name}", routes.get_model, methods=["GET"])
    plain = APIRouter(prefix="/v1", tags=["OpenAI"])
    plain.add_api_route("/chat/completions", routes.chat_completions, methods=["POST"])
    app.include_router(openai)
    app.include_router(plain)
