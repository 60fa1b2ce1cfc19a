"""Startup, readiness and liveness probes, kubelet's semantics against 127.0.0.1:$PORT.

Every pod has one loopback port, so a probe's `port` (number or name) always means the
allocated port and its `host` is ignored: the node never sends traffic to another address.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LOOPBACK = "127.0.0.1"
USER_AGENT = "kube-probe/1.35"

Exec = Callable[[Sequence[str], float], tuple[int, str]]
Result = tuple[bool, str]


@dataclass(frozen=True)
class ProbeSpec:
    """A pod's probe with kubelet's defaults filled in."""

    kind: str  # startup | readiness | liveness
    handler: Mapping[str, Any]
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_pod(cls, kind: str, probe: Mapping[str, Any]) -> ProbeSpec:
        return cls(
            kind=kind,
            handler=probe,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


def http_get(port: int, handler: Mapping[str, Any], timeout: float) -> Result:
    """Success is a status in [200, 400), as kubelet's HTTP prober."""
    path = handler.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for header in handler.get("httpHeaders") or []:
        headers[header["name"]] = header.get("value", "")
    connection: http.client.HTTPConnection
    if str(handler.get("scheme", "HTTP")).upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # kubelet does not verify probe certificates
        connection = http.client.HTTPSConnection(LOOPBACK, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read(10240)
    except (OSError, http.client.HTTPException) as error:
        return False, f"Get http://{LOOPBACK}:{port}{path}: {error}"
    finally:
        connection.close()
    if 200 <= response.status < 400:
        return True, f"HTTP {response.status}"
    return False, f"HTTP probe failed with statuscode: {response.status}"


def tcp_socket(port: int, timeout: float) -> Result:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True, "connected"
    except OSError as error:
        return False, f"dial tcp {LOOPBACK}:{port}: {error}"


def run_probe(spec: ProbeSpec, port: int, execute: Exec | None) -> Result:
    handler = spec.handler
    if "httpGet" in handler:
        return http_get(port, handler["httpGet"], spec.timeout)
    if "tcpSocket" in handler:
        return tcp_socket(port, spec.timeout)
    if "exec" in handler and execute is not None:
        code, output = execute(handler["exec"].get("command") or [], spec.timeout)
        return code == 0, output.strip() or f"exit code {code}"
    return False, "this probe type is not supported by the local node (use httpGet or tcpSocket)"


class Prober:
    """One probe of one running container, on its own thread, with kubelet's thresholds.

    `result` is None until the first verdict (a readiness probe counts that as not ready);
    `on_change(kind, result, message)` is called from the probe thread when the verdict
    changes, or when a failing probe starts failing for another reason.
    """

    def __init__(
        self,
        spec: ProbeSpec,
        port: int,
        on_change: Callable[[str, bool, str], None],
        execute: Exec | None = None,
        initial: bool | None = None,
    ) -> None:
        self.spec = spec
        self.port = port
        self.on_change = on_change
        self.execute = execute
        # `initial` carries a verdict over an agent restart, so an adopted pod stays Ready.
        self.result: bool | None = initial
        self.message = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"probe-{spec.kind}", daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        successes = failures = 0
        if self._stop.wait(self.spec.initial_delay):
            return
        while not self._stop.is_set():
            ok, message = run_probe(self.spec, self.port, self.execute)
            if self._stop.is_set():
                return
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            verdict = self.result
            if ok and successes >= self.spec.success_threshold:
                verdict = True
            elif not ok and failures >= self.spec.failure_threshold:
                verdict = False
            # A failing probe that fails differently (refused, then HTTP 404) is news too.
            if verdict != self.result or (verdict is False and message != self.message):
                self.result, self.message = verdict, message
                self.on_change(self.spec.kind, bool(verdict), message)
            if self.spec.kind == "startup" and self.result:
                return  # a startup probe stops once it has succeeded
            self._stop.wait(self.spec.period)
