"""The model server's builtin backend on loopback, against a minimal HTTP server returning the
same bytes: requests/s and p50/p99 latency, and the ratio. The difference is the cost of the
KServe model server, the OpenAI route and the builtin generator per request.

    .venv/bin/python -m bench.modelserver [--requests 400] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import free_port, wait
from vibeplane.generation.format import build_messages

PATH = "/openai/v1/chat/completions"


def _request_body() -> bytes:
    messages = build_messages(["a todo list with title and due date"], None)
    return json.dumps({"model": "builtin", "messages": messages}).encode()


def _load(port: int, body: bytes, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Send `requests` POSTs over `concurrency` kept-alive connections; (seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", PATH, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            with lock:
                latencies.append(time.perf_counter() - started)
        connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [requests // concurrency] * concurrency))
    return time.perf_counter() - started, latencies


def _plain_server(answer: bytes) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            # One write for headers and body: two small writes meet delayed ACKs (40 ms).
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def _report(name: str, seconds: float, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = len(latencies) / seconds
    print(f"{name:34} {rate:8.1f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    body = _request_body()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vibeplane_modelserver",
            "--model-name",
            "builtin",
            "--http-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(lambda: _ready(port), 90, "model server")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{PATH}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read()
        _load(port, body, 20, 2)  # warm up
        seconds, latencies = _load(port, body, args.requests, args.concurrency)
        served = _report("modelserver (builtin backend)", seconds, latencies)
    finally:
        server.terminate()
        server.wait()
    plain, plain_port = _plain_server(answer)
    _load(plain_port, body, 20, 2)
    seconds, latencies = _load(plain_port, body, args.requests, args.concurrency)
    baseline = _report("plain HTTP server, same bytes", seconds, latencies)
    plain.shutdown()
    print(
        f"answer: {len(answer)} bytes; throughput ratio modelserver/plain: {served / baseline:.2f}"
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


if __name__ == "__main__":
    main()
