"""A memory cgroup made before runsc starts, so an OOM kill can still be read after it exits.

runsc creates the cgroups named by the bundle's `linux.cgroupsPath` and removes them when the
sandbox ends, taking the OOM counter with them. A controller directory that already exists is
"pre-created" for runsc (cgroup v1): it joins it and leaves it alone. The shim therefore makes
the memory directory itself, writes the limit, and reads `oom_kill` after the sandbox exits;
runsc still configures every other controller from the bundle. On cgroup v2 hosts runsc does
everything and OOM kills are reported as plain errors.
"""

from __future__ import annotations

import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def is_v1(root: Path = CGROUP_ROOT) -> bool:
    return (root / "memory").is_dir() and not (root / "cgroup.controllers").exists()


class MemoryCgroup:
    """The memory controller's directory for one sandbox (cgroup v1 only)."""

    def __init__(self, cgroups_path: str, root: Path = CGROUP_ROOT) -> None:
        self.path = root / "memory" / cgroups_path.strip("/")

    def create(self, limit: int) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "memory.limit_in_bytes").write_text(str(limit))

    def oom_killed(self) -> bool:
        try:
            text = (self.path / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value or 0) > 0
        return False

    def remove(self) -> None:
        # The sandbox's last tasks can take a moment to leave the group after it exits.
        for _ in range(50):
            try:
                self.path.rmdir()
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
                continue
            return
