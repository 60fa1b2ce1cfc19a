"""The `vibeplane` command line.

vibeplane operator                  run the operator against KUBECONFIG or in-cluster
vibeplane manifests [--root DIR]    write the CRDs and ClusterRoles generated from the code

Other distributions add commands through the `vibeplane.commands` entry-point group: the
development platform (`hack/`, distribution `vibeplane-dev`) adds `up`, `down`, `status` and
`cluster ...`. The operator never imports them, so its wheel and image hold only what runs in
a cluster.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

COMMANDS_GROUP = "vibeplane.commands"
# Shown when a command of the development platform is typed where it is not installed.
DEV_COMMANDS = ("up", "down", "status", "cluster")


def _operator(args: argparse.Namespace) -> int:
    from vibeplane import manager

    manager.run(verbose=args.verbose)
    return 0


def _manifests(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vibeplane import manifests

    for path in manifests.write(Path(args.root)):
        print(path)
    return 0


def _dev_platform_missing(args: argparse.Namespace) -> int:
    raise RuntimeError(
        f"`vibeplane {args.command}` is a command of the development platform, which is not "
        "installed here: `pip install -e hack` in a vibeplane checkout (`make venv` does it)"
    )


def _add_plugin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Each entry point of the group names a function that adds its subcommands."""
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            entry.load()
        )
        register(commands)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="vibeplane",
        description="A control plane for self-hosted vibe-coding platforms.",
        epilog="`up`, `down`, `status` and `cluster` come with the development platform: "
        "`pip install -e hack` in a checkout (`make venv` does it).",
    )
    commands = root.add_subparsers(dest="command", required=True)

    operator = commands.add_parser("operator", help="run the operator (KUBECONFIG or in-cluster)")
    operator.add_argument("--verbose", action="store_true", help="debug logging")
    operator.set_defaults(run=_operator)

    generated = commands.add_parser(
        "manifests", help="write the CRDs and ClusterRoles generated from the code"
    )
    generated.add_argument("--root", default=".", help="the repository root (default: .)")
    generated.set_defaults(run=_manifests)

    _add_plugin_commands(commands)
    for name in DEV_COMMANDS:
        if name not in commands.choices:
            missing = commands.add_parser(name, help="(the development platform: not installed)")
            missing.add_argument("rest", nargs=argparse.REMAINDER)
            missing.set_defaults(run=_dev_platform_missing)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        code = run(args)
    except KeyboardInterrupt:
        code = 130
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
