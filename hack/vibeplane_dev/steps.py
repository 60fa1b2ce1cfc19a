"""How the development platform's long commands show their progress, on stderr."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False)


class Steps:
    """Progress of a long command: each step with its duration, and the failure if any."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def note(self, message: str) -> None:
        console.print(f"[dim]{time.monotonic() - self.started:7.1f}s[/dim]  {message}")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        began = time.monotonic()
        with console.status(title):
            try:
                yield
            except Exception:
                console.print(f"[red]✗[/red] {title} [dim]({time.monotonic() - began:.1f}s)[/dim]")
                raise
        console.print(f"[green]✓[/green] {title} [dim]({time.monotonic() - began:.1f}s)[/dim]")
