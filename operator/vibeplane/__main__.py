"""`python -m vibeplane` is the `vibeplane` command."""

from vibeplane.cli import main

main()
