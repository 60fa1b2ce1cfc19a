"""Shared pieces of the benchmarks: the cluster, an operator process, the audit log."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from vibeplane_dev.cluster.local import OPERATOR_USER, WRITE_VERBS, LocalCluster


def cluster() -> LocalCluster:
    """The local control plane, started if needed; KUBECONFIG points at it afterwards."""
    local = LocalCluster()
    local.up()
    os.environ["KUBECONFIG"] = str(local.config.admin_kubeconfig)
    return local


def api(local: LocalCluster) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(local.config.admin_kubeconfig))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Operator:
    """`vibeplane operator` as its own process (optionally under py-spy) with its own ports."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    profiled: bool = False

    @classmethod
    def start(
        cls, local: LocalCluster, log: Path, *, profile: Path | None = None, **env: str
    ) -> Operator:
        metrics, liveness = free_port(), free_port()
        environment = dict(
            os.environ,
            KUBECONFIG=str(local.config.kubeconfig("operator")),
            VIBEPLANE_METRICS_PORT=str(metrics),
            VIBEPLANE_LIVENESS_PORT=str(liveness),
            VIBEPLANE_DELIVERY_KEY_FILE=str(local.config.home / "delivery-key.json"),
            **env,
        )
        command = [sys.executable, "-m", "vibeplane", "operator"]
        if profile is not None:
            # Sampled without pausing the process (--nonblocking): the figures stay close to
            # an unprofiled run; idle threads are left out, so the stacks show CPU time.
            spy = Path(sys.executable).parent / "py-spy"
            command = [str(spy), "record", "--nonblocking", "--rate", "50", "--format", "raw"]
            command += ["--output", str(profile), "--", sys.executable, "-m", "vibeplane"]
            command += ["operator"]
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        wait(lambda: _get(f"http://127.0.0.1:{liveness}/healthz"), 60, "operator healthz")
        return cls(process, metrics, profiled=profile is not None)

    @property
    def pid(self) -> int:
        """The operator's pid (py-spy's child when profiled)."""
        if not self.profiled:
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return int(children.read_text().split()[0])

    def metric(self, name: str) -> float:
        """A metric of the operator process (summed over labels)."""
        total = 0.0
        for line in (_get(f"http://127.0.0.1:{self.metrics_port}/metrics") or "").splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(peak.split()[1]) / 1024

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(stat[11]) + int(stat[12])) / ticks

    def stop(self) -> None:
        """SIGTERM to the operator itself; py-spy, when profiling, then writes its stacks."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text: str = response.read().decode()
            return text
    except OSError:
        return None


def wait(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached in {timeout:.0f}s")


class Audit:
    """Requests counted from the API server's audit log: everyone's writes, and the operator's
    reads too (vibeplane_dev.cluster.local.AUDIT_POLICY)."""

    def __init__(self, local: LocalCluster) -> None:
        self.path = local.config.audit_log

    def mark(self) -> tuple[int, int]:
        """Where the log ends now: (inode, offset)."""
        stat = self.path.stat()
        return stat.st_ino, stat.st_size

    def _lines_since(self, mark: tuple[int, int]) -> Iterator[bytes]:
        """Lines written after `mark`, across one rotation of the log (--audit-log-maxsize)."""
        inode, offset = mark
        if self.path.stat().st_ino != inode:
            rotated = sorted(self.path.parent.glob("audit-*.log"), key=lambda p: p.stat().st_mtime)
            previous = next((p for p in rotated if p.stat().st_ino == inode), None)
            if previous is not None:
                with open(previous, "rb") as log:
                    log.seek(offset)
                    yield from log
            offset = 0
        with open(self.path, "rb") as log:
            log.seek(offset)
            yield from log

    def events(
        self, mark: tuple[int, int], user: str = OPERATOR_USER, writes_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Completed requests by `user` after `mark`; leader election's lease renewals are
        left out (a heartbeat, not work on an object)."""
        for line in self._lines_since(mark):
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            if event.get("user", {}).get("username") != user:
                continue
            if writes_only and event.get("verb") not in WRITE_VERBS:
                continue
            if (event.get("objectRef") or {}).get("resource") == "leases":
                continue
            yield event

    def requests(
        self, mark: tuple[int, int], user: str = OPERATOR_USER, writes_only: bool = False
    ) -> Counter[str]:
        """ "verb resource[/subresource]" -> count of requests by `user` after `mark`."""
        counts: Counter[str] = Counter()
        for event in self.events(mark, user, writes_only):
            ref = event.get("objectRef") or {}
            resource_name = ref.get("resource", event.get("requestURI"))
            suffix = f"/{ref['subresource']}" if ref.get("subresource") else ""
            counts[f"{event['verb']} {resource_name}{suffix}"] += 1
        return counts

    def written(self, mark: tuple[int, int], user: str = OPERATOR_USER) -> Counter[str]:
        """ "verb resource[/subresource] namespace/name" -> count of writes by `user` after
        `mark`: which objects were written, to trace writes that should not happen."""
        counts: Counter[str] = Counter()
        for event in self.events(mark, user, writes_only=True):
            ref = event.get("objectRef") or {}
            suffix = f"/{ref['subresource']}" if ref.get("subresource") else ""
            where = f"{ref.get('namespace', '')}/{ref.get('name', '')}".lstrip("/")
            counts[f"{event['verb']} {ref.get('resource')}{suffix} {where}"] += 1
        return counts

    def writes(self, mark: tuple[int, int], user: str = OPERATOR_USER) -> Counter[str]:
        """verb -> count of write requests by `user` after `mark`."""
        return self.requests(mark, user, writes_only=True)


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
