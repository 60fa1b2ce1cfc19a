"""Process supervision stops what it started and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from vibeplane_dev.cluster.processes import ManagedProcess


def test_start_and_stop(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs")
    pid = process.start(["sleep", "300"])
    assert process.pid() == pid
    assert process.stop(grace=5)
    assert process.pid() is None
    assert not process.pid_file.exists()
    assert not process.stop()


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        process = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs")
        process.run_dir.mkdir(parents=True)
        # The pid file names a live process whose command line is not what we started.
        process.pid_file.write_text(f"{stranger.pid}\nsleep 301\n")
        assert process.pid() is None
        assert not process.stop()
        assert stranger.poll() is None, "a process we did not start was stopped"
    finally:
        stranger.kill()
        stranger.wait()


def test_log_tail_and_early_exit(tmp_path: Path) -> None:
    process = ManagedProcess("failing", tmp_path / "run", tmp_path / "logs")
    process.start(["sh", "-c", "echo broken config >&2; exit 3"])
    assert process.exited_early(timeout=5)
    assert "broken config" in process.log_tail()
