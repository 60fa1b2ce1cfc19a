"""The per-container supervisor (containerd-shim's role): runs `runsc run` and records its end.

The agent starts one shim per container attempt in a session of its own, so sandboxes outlive
an agent restart. The shim is the parent of `runsc run`, which is the only reliable way to get
the container's exit status from runsc (a separate `runsc wait` loses it when the sandbox exits
before it connects); it writes the outcome to a state file the agent reads, removes its memory
cgroup and exits.

    python -m vibeplane_sandbox.shim --bundle DIR --id ID --log FILE --state FILE -- RUNSC...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vibeplane_sandbox.cgroups import MemoryCgroup, is_v1


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically: the agent may read it at any moment."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    except (OSError, ValueError):
        return {}


def exit_reason(code: int, oom: bool) -> str:
    if oom:
        return "OOMKilled"
    return "Completed" if code == 0 else "Error"


def _memory_cgroup(bundle: Path) -> MemoryCgroup | None:
    config = json.loads((bundle / "config.json").read_text())
    linux = config.get("linux") or {}
    limit = ((linux.get("resources") or {}).get("memory") or {}).get("limit")
    path = linux.get("cgroupsPath")
    if not limit or not path or not is_v1():
        return None
    cgroup = MemoryCgroup(path)
    try:
        cgroup.create(int(limit))
    except OSError as error:
        print(f"shim: memory cgroup not pre-created ({error}); OOM kills read as errors")
        return None
    return cgroup


def run(bundle: Path, sandbox: str, log: Path, state_file: Path, runsc: Sequence[str]) -> int:
    state: dict[str, Any] = {"shimPid": os.getpid(), "id": sandbox}
    write_state(state_file, state)
    cgroup = _memory_cgroup(bundle) if "--ignore-cgroups" not in runsc else None
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        process = subprocess.Popen(
            [*runsc, "run", "--bundle", str(bundle), sandbox],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
        )
    except OSError as error:
        os.close(fd)
        state.update(finishedAt=now(), exitCode=128, reason="StartError", message=str(error))
        write_state(state_file, state)
        return 1
    os.close(fd)
    state.update(runscPid=process.pid, startedAt=now())
    write_state(state_file, state)
    # Signals meant for the container go through `runsc kill`; the shim itself stays to record.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    code = process.wait()
    finished = now()
    if code < 0:
        code = 128 - code
    oom = cgroup.oom_killed() if cgroup else False
    state.update(finishedAt=finished, exitCode=code, reason=exit_reason(code, oom))
    write_state(state_file, state)
    with contextlib.suppress(OSError):
        subprocess.run(
            [*runsc, "delete", "--force", sandbox], capture_output=True, timeout=30, check=False
        )
    if cgroup:
        cgroup.remove()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibeplane-sandbox-shim", description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("runsc", nargs="+", help="runsc and its global flags")
    args = parser.parse_args(argv)
    return run(args.bundle, args.id, args.log, args.state, args.runsc)


if __name__ == "__main__":
    sys.exit(main())
