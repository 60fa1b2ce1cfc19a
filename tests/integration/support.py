"""Helpers for integration tests: waiting, and counting requests from the API server's side."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vibeplane_dev.cluster.local import WRITE_VERBS

T = TypeVar("T")
GROUP, VERSION = "vibeplane.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


PLURALS = {
    "Workspace": "workspaces",
    "ModelDeployment": "modeldeployments",
    "VibeApp": "vibeapps",
    "ModelTraining": "modeltrainings",
}


def create_object(
    api: Any, kind: str, name: str, spec: dict[str, Any], namespace: str | None = None
) -> dict[str, Any]:
    """Create one of our objects (namespaced when `namespace` is given) as the admin."""
    import kubernetes

    custom = kubernetes.client.CustomObjectsApi(api)
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    if namespace is None:
        created = custom.create_cluster_custom_object(GROUP, VERSION, PLURALS[kind], body)
    else:
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], body
        )
    return dict(created)


def find_condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of `type_` in an object's status, if present."""
    for entry in (obj.get("status") or {}).get("conditions", []):
        if entry["type"] == type_:
            return dict(entry)
    return None


def wait_for(check: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def or_none(read: Callable[..., T], *args: Any) -> T | None:
    """`read(*args)`, or None when the object does not exist (404)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return read(*args)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class StubModel:
    """An OpenAI-compatible endpoint on 127.0.0.1 that answers with `answer(messages)`:
    fault injection at the model boundary (garbage, slowness, broken apps), never a stand-in
    for the real model server."""

    def __init__(
        self,
        answer: Callable[[list[dict[str, Any]]], str],
        delay: float = 0.0,
        usage: tuple[int, int] = (10, 20),
        by_model: Callable[[str, list[dict[str, Any]]], str] | None = None,
    ) -> None:
        """`by_model(model, messages)`, when given, answers instead of `answer`: the model
        name asked for (a base model or an adapter on it) picks the answer."""
        import http.server
        import threading

        self.calls: list[str] = []  # the last message of each request
        # Every chat request whole: its headers and its JSON body (what the model is told).
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the Ready probe lists models
                self._send({"object": "list", "data": [{"id": "stub", "object": "model"}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                stub.requests.append((dict(self.headers), request))
                stub.calls.append(str(request["messages"][-1]["content"]))
                time.sleep(delay)
                self._send(
                    {
                        "id": "stub",
                        "object": "chat.completion",
                        "model": request.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {
                                    "role": "assistant",
                                    "content": (
                                        by_model(str(request.get("model")), request["messages"])
                                        if by_model is not None
                                        else answer(request["messages"])
                                    ),
                                },
                            }
                        ],
                        "usage": {
                            "prompt_tokens": usage[0],
                            "completion_tokens": usage[1],
                            "total_tokens": sum(usage),
                        },
                    }
                )

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class AuditLog:
    """The API server's audit log: everyone's writes and the operator's reads (see
    vibeplane_dev.cluster.local.AUDIT_POLICY)."""

    path: Path

    def mark(self) -> int:
        """A position: events after it are what `events_since` returns."""
        return self.path.stat().st_size if self.path.exists() else 0

    def events_since(self, mark: int) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as log:
            log.seek(mark)
            for line in log:
                if line.strip():
                    yield json.loads(line)

    def writes(self, mark: int, user: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Write requests by `user` after `mark`, optionally only in one namespace."""
        found = []
        for event in self.events_since(mark):
            if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
                continue
            if event.get("user", {}).get("username") != user:
                continue
            ref = event.get("objectRef") or {}
            if namespace is not None and namespace not in (ref.get("namespace"), ref.get("name")):
                continue
            found.append(event)
        return found
