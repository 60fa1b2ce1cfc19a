"""The model server as a real process on a free loopback port, and a small HTTP client.

Shared by the model server's tests and the operator client's (`tests/unit/generation`).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 90.0


def require_modelserver() -> None:
    """Skip unless `runtime/modelserver` (and so kserve) is installed in this environment."""
    for name in ("kserve", "vibeplane_modelserver"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install -e runtime/modelserver)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ModelServer:
    """A running `vibeplane-modelserver` process."""

    process: subprocess.Popen[bytes]
    port: int
    model_name: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        """The OpenAI base URL, as the operator's client takes it."""
        return f"{self.url}/openai/v1"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def running_modelserver(
    model_name: str, log_path: Path, extra_args: Sequence[str] = ()
) -> Iterator[ModelServer]:
    """Start the server, wait for KServe's readiness route, stop it with SIGTERM after.

    Fails (with the log's tail) when it does not get ready, or does not exit 0 on SIGTERM.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vibeplane_modelserver",
        "--model-name",
        model_name,
        "--http-port",
        str(port),
        *extra_args,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ModelServer(process, port, model_name, log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ready(f"{server.url}/v2/models/{model_name}/ready"):
            if process.poll() is not None:
                pytest.fail(
                    f"the model server exited with {process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the model server was not ready in time:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"the model server ignored SIGTERM:\n{server.log_tail()}")
    if process.returncode != 0:
        pytest.fail(f"the model server exited with {process.returncode}:\n{server.log_tail()}")


def post_json(url: str, body: Any, timeout: float = 60) -> tuple[int, dict[str, Any], str]:
    """(status, parsed JSON body, content type) of a POST; any status, never raises on 4xx."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers["Content-Type"]


def get_json(url: str, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@dataclass
class SSEResponse:
    status: int
    content_type: str
    events: list[str]  # the data of each event, in order ("[DONE]" included)

    def chunks(self) -> list[dict[str, Any]]:
        """The JSON events (all but the final `[DONE]`)."""
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or ""
            for chunk in self.chunks()
            for choice in chunk["choices"]
        )


def post_sse(port: int, path: str, body: dict[str, Any], timeout: float = 60) -> SSEResponse:
    """POST and read a server-sent-event stream to its end, event by event."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        events: list[str] = []
        data: list[str] = []
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line == "" and data:
                events.append("\n".join(data))
                data = []
        return SSEResponse(response.status, response.headers["Content-Type"] or "", events)
    finally:
        connection.close()


def scrape_metrics(url: str) -> dict[str, float]:
    """`/metrics` as {'name{labels}': value} (the exposition format's sample lines)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples
