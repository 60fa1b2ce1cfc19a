"""Side effects on the machine: bundles on disk, shims, `runsc` through subprocess.

The layout under the state directory (mode 0700: it holds logs and the node's key):

    runsc/                               runsc --root: this node's sandboxes only
    pods/<uid>/pod.json                  namespace, name, uid, port of the pod
    pods/<uid>/<container>/<n>/          one attempt (restart n): the OCI bundle (config.json),
        state.json  container.log        the shim's record, the container's stdout+stderr
        shim.log
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibeplane_sandbox.bundle import DEFAULT_MASKED_PATHS, oci_config, sandbox_id
from vibeplane_sandbox.podstatus import Attempt
from vibeplane_sandbox.shim import read_state

KEEP_ATTEMPTS = 2  # the current one and the previous (`kubectl logs --previous`)
LOST_AFTER = 30.0  # seconds an attempt may lack a live shim before it counts as lost


class RunscError(RuntimeError):
    """runsc failed; the message holds its output."""


@dataclass(frozen=True)
class Runsc:
    """The runsc binary with this node's global flags."""

    binary: str = "runsc"
    root: Path = Path("/run/vibeplane/runsc")
    platform: str = "ptrace"
    ignore_cgroups: bool = False

    def argv(self) -> list[str]:
        # --network=host: no veth or iptables on the host; the sandbox binds 127.0.0.1 itself.
        flags = [self.binary, f"--root={self.root}", f"--platform={self.platform}"]
        flags.append("--network=host")
        if self.ignore_cgroups:
            flags.append("--ignore-cgroups")
        return flags

    def call(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv(), *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def version(self) -> str:
        result = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        if result.returncode != 0:
            raise RunscError(result.stderr.strip() or "runsc --version failed")
        first = result.stdout.splitlines()[0] if result.stdout else ""
        return first.removeprefix("runsc version ").strip()

    def list(self) -> list[dict[str, Any]]:
        result = self.call("list", "--format=json")
        if result.returncode != 0:
            raise RunscError(result.stderr.strip())
        found: list[dict[str, Any]] | None = json.loads(result.stdout or "null")
        return found or []

    def kill(self, sandbox: str, signum: int = signal.SIGTERM) -> bool:
        return self.call("kill", sandbox, str(int(signum))).returncode == 0

    def delete(self, sandbox: str) -> bool:
        return self.call("delete", "--force", sandbox).returncode == 0

    def exec(self, sandbox: str, user: str, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        """Run a process inside a running sandbox (exec probes)."""
        try:
            result = self.call("exec", "--user", user, sandbox, *argv, timeout=timeout)
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout}s"
        return result.returncode, (result.stdout + result.stderr)[-1024:]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (the shim exited, its parent has not reaped it yet) is not alive.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    return True


def existing_directories(paths: Sequence[str]) -> tuple[str, ...]:
    """The paths that are real directories here (a mount over a symlink would follow it)."""
    return tuple(p for p in paths if os.path.isdir(p) and not os.path.islink(p))


def tail(path: Path, lines: int | None = None, limit_bytes: int | None = None) -> bytes:
    """The end of a log: the last `lines` lines and/or at most `limit_bytes` bytes."""
    try:
        data = path.read_bytes()
    except OSError:
        return b""
    if lines is not None:
        parts = data.splitlines(keepends=True)
        data = b"".join(parts[-lines:]) if lines > 0 else b""
    if limit_bytes is not None:
        data = data[:limit_bytes]
    return data


class SandboxRuntime:
    """Starts attempts through shims and reads back what happened to them."""

    def __init__(self, state_dir: Path, runsc: Runsc) -> None:
        self.state_dir = state_dir
        self.runsc = runsc
        self.pods_dir = state_dir / "pods"
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        for directory in (state_dir, self.pods_dir, runsc.root):
            directory.mkdir(parents=True, exist_ok=True)
        state_dir.chmod(0o700)

    # ---- layout --------------------------------------------------------------------------

    def pod_dir(self, uid: str) -> Path:
        return self.pods_dir / uid

    def attempt_dir(self, uid: str, container: str, attempt: int) -> Path:
        return self.pods_dir / uid / container / str(attempt)

    def log_path(self, uid: str, container: str, attempt: int) -> Path:
        return self.attempt_dir(uid, container, attempt) / "container.log"

    def attempts(self, uid: str, container: str) -> list[int]:
        directory = self.pods_dir / uid / container
        if not directory.is_dir():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())

    def known_pods(self) -> dict[str, dict[str, Any]]:
        """uid -> pod.json of every pod with state on disk (adoption after a restart)."""
        found = {}
        for directory in self.pods_dir.iterdir():
            try:
                found[directory.name] = json.loads((directory / "pod.json").read_text())
            except (OSError, ValueError):
                found[directory.name] = {"uid": directory.name}
        return found

    def remember_pod(self, uid: str, record: Mapping[str, Any]) -> None:
        directory = self.pod_dir(uid)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pod.json").write_text(json.dumps(dict(record)))

    def find_pod(self, namespace: str, name: str) -> str | None:
        """The uid of the pod with state on disk (the newest, when a name was reused)."""
        matches = [
            (self.pod_dir(uid).stat().st_mtime, uid)
            for uid, record in self.known_pods().items()
            if record.get("namespace") == namespace and record.get("name") == name
        ]
        return max(matches)[1] if matches else None

    # ---- attempts ------------------------------------------------------------------------

    def start(self, uid: str, container: str, attempt: int, config: Mapping[str, Any]) -> str:
        """Write the bundle and start a shim (in its own session) that runs it."""
        sandbox = sandbox_id(uid, container, attempt)
        directory = self.attempt_dir(uid, container, attempt)
        directory.mkdir(parents=True, exist_ok=False)
        (directory / "config.json").write_text(json.dumps(config, indent=1))
        log = directory / "container.log"
        log.touch(mode=0o640)
        with open(directory / "shim.log", "ab") as shim_log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vibeplane_sandbox.shim",
                    "--bundle",
                    str(directory),
                    "--id",
                    sandbox,
                    "--log",
                    str(log),
                    "--state",
                    str(directory / "state.json"),
                    "--",
                    *self.runsc.argv(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=shim_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[sandbox] = child  # reaped in attempt(); a restarted agent adopts
        self._prune(uid, container, attempt)
        return sandbox

    def _prune(self, uid: str, container: str, newest: int) -> None:
        for number in self.attempts(uid, container):
            if number <= newest - KEEP_ATTEMPTS:
                shutil.rmtree(self.attempt_dir(uid, container, number), ignore_errors=True)

    def attempt(self, uid: str, container: str, number: int) -> Attempt:
        """What the shim recorded: running, terminated, or lost (shim gone without a record)."""
        sandbox = sandbox_id(uid, container, number)
        directory = self.attempt_dir(uid, container, number)
        child = self._children.get(sandbox)
        if child is not None and child.poll() is not None:
            del self._children[sandbox]
        state = read_state(directory / "state.json")
        if "finishedAt" in state:
            return Attempt(
                number,
                sandbox,
                started_at=state.get("startedAt") or state["finishedAt"],
                finished_at=state["finishedAt"],
                exit_code=int(state.get("exitCode", 255)),
                reason=state.get("reason"),
                message=state.get("message"),
            )
        if _alive(state.get("shimPid")) or (child is not None and child.poll() is None):
            return Attempt(number, sandbox, started_at=state.get("startedAt"))
        try:
            age = time.time() - (directory / "config.json").stat().st_mtime
        except OSError:
            age = LOST_AFTER
        if age < LOST_AFTER and not state:
            return Attempt(number, sandbox)  # the shim is starting
        # The shim died without a record (killed): stop whatever it left and say so.
        self.runsc.kill(sandbox, signal.SIGKILL)
        self.runsc.delete(sandbox)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return Attempt(
            number,
            sandbox,
            started_at=state.get("startedAt") or stamp,
            finished_at=stamp,
            exit_code=137,
            reason="ContainerStatusUnknown",
            message="the container's supervisor exited without recording how the container ended",
        )

    def stop(self, sandbox: str, signum: int = signal.SIGTERM) -> None:
        """Signal the container's init process; the shim records the exit."""
        self.runsc.kill(sandbox, signum)

    def remove_pod(self, uid: str) -> None:
        """Kill every sandbox of the pod and forget its state (logs included)."""
        for sandbox in self.sandboxes_of(uid):
            self.runsc.kill(sandbox, signal.SIGKILL)
            self.runsc.delete(sandbox)
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    def stop_all(self) -> int:
        """Kill and delete every sandbox under this node's runsc root; returns how many."""
        try:
            listed = self.runsc.list()
        except (RunscError, OSError, ValueError, subprocess.TimeoutExpired):
            return 0
        for item in listed:
            self.runsc.kill(str(item["id"]), signal.SIGKILL)
            self.runsc.delete(str(item["id"]))
        return len(listed)

    def sandboxes_of(self, uid: str) -> Iterator[str]:
        try:
            listed = self.runsc.list()
        except (RunscError, OSError, ValueError, subprocess.TimeoutExpired):
            return
        for item in listed:
            if str(item.get("id", "")).startswith(f"{uid}-"):
                yield item["id"]

    def orphans(self, known_uids: set[str]) -> list[str]:
        """Sandboxes in this node's runsc root whose pod the node no longer knows."""
        try:
            listed = self.runsc.list()
        except (RunscError, OSError, ValueError, subprocess.TimeoutExpired):
            return []
        return [
            item["id"]
            for item in listed
            if not any(str(item.get("id", "")).startswith(f"{uid}-") for uid in known_uids)
        ]


def check_runsc(runsc: Runsc, scratch: Path, timeout: float = 60) -> tuple[bool, str]:
    """Run one tiny sandbox exactly as pods run; (works, what happened)."""
    try:
        version = runsc.version()
    except (OSError, RunscError) as error:
        return False, f"runsc is not usable: {error}"
    pod = {
        "metadata": {"name": "runsc-check", "namespace": "default", "uid": "check"},
        "spec": {
            "containers": [
                {"name": "check", "command": ["/bin/cat", "/proc/version"]},
            ]
        },
    }
    sandbox = f"check-{os.getpid()}-{int(time.time() * 1000)}"
    bundle = scratch / sandbox
    bundle.mkdir(parents=True, exist_ok=True)
    try:
        config = oci_config(
            pod, "check", 0, masked_paths=existing_directories(DEFAULT_MASKED_PATHS)
        )
        (bundle / "config.json").write_text(json.dumps(config))
        result = subprocess.run(
            [*runsc.argv(), "run", "--bundle", str(bundle), sandbox],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        runsc.delete(sandbox)
        return False, f"runsc {version} ({' '.join(runsc.argv()[1:])}) timed out after {timeout}s"
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        return False, f"runsc {version} failed (exit {result.returncode}): {output}"
    return True, f"runsc {version} works ({' '.join(runsc.argv()[1:])}): {result.stdout.strip()}"
