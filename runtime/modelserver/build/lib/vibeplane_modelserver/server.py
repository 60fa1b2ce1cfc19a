"""Serving a `ChatModel` with KServe's ModelServer.

Why our routes and not KServe's `OpenAIGenerativeModel`: since KServe 0.15 the OpenAI
support (`kserve.protocol.rest.openai`) imports its request and response types from vLLM, so
without vLLM (a CUDA inference engine, pinned to one version per KServe release) KServe logs
"OpenAI endpoints not registered" and serves none. KServe 0.14, the last with its own types,
pins prometheus-client below 0.21, which the operator's package cannot use. So the models
are plain `kserve.Model`s registered with `kserve.ModelServer` (its registry, health and
readiness routes, `/metrics`, logging, uvicorn), and `api.py` mounts OpenAI-compatible routes
on KServe's FastAPI app at the paths KServe's own OpenAI support uses.

Why not `ModelServer.start()`: it hard-codes the listen address 0.0.0.0, and tests, and a
pod behind a sidecar, want loopback. We build its REST server the same way it does and set
the host. gRPC (KServe's v2 gRPC protocol) is not started: the chat API is HTTP only.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

from kserve import ModelServer  # type: ignore[import-untyped]
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING  # type: ignore[import-untyped]
from kserve.model_server import app as kserve_app  # type: ignore[import-untyped]
from kserve.protocol.rest.server import RESTServer  # type: ignore[import-untyped]

from .api import install_routes
from .model import ChatModel

log = logging.getLogger(__name__)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """After uvicorn's graceful shutdown it re-raises the signal: end with status 0."""
    raise SystemExit(0)


def serve(
    model: ChatModel,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 8,
    grace_period: int = 10,
) -> None:
    """Load `model` and serve it until SIGTERM or SIGINT; returns after a graceful shutdown.

    `threads` sizes the default executor that generations run in (`asyncio.to_thread`).
    """
    # KServe's app sets FastAPI's default response class to ORJSONResponse, which FastAPI
    # deprecates with a warning on every request's first use: KServe's choice, not ours.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    if not model.ready:
        model.load()
    install_routes(kserve_app, model)
    server = ModelServer(http_port=port, enable_grpc=False, workers=1, grace_period=grace_period)
    server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        grace_period=grace_period,
    )
    rest.config.host = host
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)

    async def run() -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="generate")
        )
        log.info("serving model %r on http://%s:%d", model.name, host, port)
        await rest.start()

    try:
        asyncio.run(run())
    finally:
        model.stop()
        sys.stdout.flush()
