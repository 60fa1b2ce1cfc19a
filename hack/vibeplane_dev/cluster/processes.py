"""Start, find and stop the processes vibeplane runs, through pid files.

A pid file alone is not proof: pids are reused. A process counts as ours only when its
command line is still exactly the one we launched, so `down` stops what `up` started and
nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManagedProcess:
    """One supervised process: its name, pid file and log file."""

    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running process we started, or None."""
        try:
            pid, _, marker = self.pid_file.read_text().partition("\n")
            pid_number = int(pid)
        except (FileNotFoundError, ValueError):
            return None
        if not _command_line_has(pid_number, marker.strip()):
            return None
        return pid_number

    def running(self) -> bool:
        return self.pid() is not None

    def in_child(self) -> Callable[[], None] | None:
        """What runs in the child between fork and exec (none here; a subclass may enter a
        namespace)."""
        return None

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start argv detached (its own session, output to the log file) and record its pid."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=cwd,
                preexec_fn=self.in_child(),
            )
        # The whole command line with the pid identifies this very process. Wait (briefly)
        # until the kernel shows it, so a caller asking at once gets a true answer.
        marker = _marker(argv)
        deadline = time.monotonic() + 2.0
        while not _command_line_has(process.pid, marker) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        self.pid_file.write_text(f"{process.pid}\n{marker}\n")
        return process.pid

    def exited_early(self, timeout: float = 0.0) -> bool:
        """Whether the process is gone (within timeout seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def stop(self, grace: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after grace seconds. True if a process was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process's log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); it has exited all the same.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _marker(argv: Sequence[str]) -> str:
    # Arguments never contain NUL; spaces inside them are escaped so the line stays one line.
    return " ".join(
        arg.replace("\\", "\\\\").replace(" ", "\\s").replace("\n", "\\n") for arg in argv
    )


def _command_line_has(pid: int, marker: str) -> bool:
    if not marker or not _alive(pid):
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    argv = [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]
    return _marker(argv) == marker
