"""The `vibeplane` command line.

vibeplane up [--no-examples]        the platform on the local control plane
vibeplane down | status
vibeplane cluster up|down|status|kubeconfig|kubectl|tools
vibeplane operator                  run the operator against KUBECONFIG or in-cluster
vibeplane crds DIR...               write the CRDs generated from the API models
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
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


def _cluster_up(args: argparse.Namespace) -> int:
    from vibeplane.cluster.local import LocalCluster, install_tools

    cluster, steps = LocalCluster(), Steps()
    with steps.step("control plane up"):
        kubeconfig = cluster.up(progress=steps.note)
    if args.tools:
        with steps.step("KWOK and Helm installed"):
            for name, path in install_tools(cluster.config, progress=steps.note).items():
                steps.note(f"{name}: {path}")
    print(kubeconfig)
    return 0


def _cluster_build(_: argparse.Namespace) -> int:
    from vibeplane.cluster.local import LocalCluster

    steps = Steps()
    with steps.step("control plane built, KServe CRDs fetched"):
        binary = LocalCluster().build(progress=steps.note)
    print(binary)
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from vibeplane.cluster.local import LocalCluster

    stopped = LocalCluster().down(purge=args.purge, progress=Steps().note)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _cluster_status(_: argparse.Namespace) -> int:
    from vibeplane.cluster.local import LocalCluster

    cluster = LocalCluster()
    for component in cluster.status():
        state = f"running (pid {component.pid})" if component.pid else "stopped"
        print(f"{component.name:20} {state:24} {component.log}")
    ready = cluster.ready()
    print(f"{'apiserver /readyz':20} {'ok' if ready else 'not ready'}")
    return 0 if ready else 1


def _cluster_kubeconfig(_: argparse.Namespace) -> int:
    from vibeplane.cluster.config import ClusterConfig

    print(ClusterConfig.from_env().admin_kubeconfig)
    return 0


def _cluster_kubectl(args: argparse.Namespace) -> int:
    from vibeplane.cluster.local import LocalCluster

    result = LocalCluster().kubectl(*args.kubectl_args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def _cluster_tools(_: argparse.Namespace) -> int:
    from vibeplane.cluster.config import ClusterConfig
    from vibeplane.cluster.local import install_tools

    for name, path in install_tools(ClusterConfig.from_env(), progress=Steps().note).items():
        print(f"{name} {path}")
    return 0


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


def _platform_up(args: argparse.Namespace) -> int:
    from vibeplane import platform

    return platform.up(examples=not args.no_examples, steps=Steps())


def _platform_down(_: argparse.Namespace) -> int:
    from vibeplane import platform

    return platform.down(steps=Steps())


def _platform_status(_: argparse.Namespace) -> int:
    from vibeplane import platform

    return platform.status()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="vibeplane", description="A control plane for self-hosted vibe-coding platforms."
    )
    commands = root.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="bring up the platform locally and apply examples/")
    up.add_argument("--no-examples", action="store_true", help="do not apply examples/")
    up.set_defaults(run=_platform_up)
    commands.add_parser("down", help="stop everything `up` started").set_defaults(
        run=_platform_down
    )
    commands.add_parser("status", help="each part of the platform and its health").set_defaults(
        run=_platform_status
    )

    cluster = commands.add_parser("cluster", help="the local Kubernetes control plane")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    cluster_up = cluster_commands.add_parser("up", help="build if needed, start, install CRDs")
    cluster_up.add_argument("--tools", action="store_true", help="also install KWOK and Helm")
    cluster_up.set_defaults(run=_cluster_up)
    cluster_commands.add_parser(
        "build", help="build the control plane binary (cached) without starting it"
    ).set_defaults(run=_cluster_build)
    cluster_down = cluster_commands.add_parser("down", help="stop the processes `up` started")
    cluster_down.add_argument("--purge", action="store_true", help="also delete its state")
    cluster_down.set_defaults(run=_cluster_down)
    cluster_commands.add_parser("status", help="components and readiness").set_defaults(
        run=_cluster_status
    )
    cluster_commands.add_parser("kubeconfig", help="print the admin kubeconfig path").set_defaults(
        run=_cluster_kubeconfig
    )
    kubectl = cluster_commands.add_parser("kubectl", help="kubectl of the same version, as admin")
    kubectl.add_argument("kubectl_args", nargs=argparse.REMAINDER)
    kubectl.set_defaults(run=_cluster_kubectl)
    cluster_commands.add_parser("tools", help="install KWOK and Helm").set_defaults(
        run=_cluster_tools
    )

    operator = commands.add_parser("operator", help="run the operator (KUBECONFIG or in-cluster)")
    operator.add_argument("--verbose", action="store_true", help="debug logging")
    operator.set_defaults(run=_operator)

    generated = commands.add_parser(
        "manifests", help="write the CRDs and ClusterRoles generated from the code"
    )
    generated.add_argument("--root", default=".", help="the repository root (default: .)")
    generated.set_defaults(run=_manifests)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        code = run(args)
    except KeyboardInterrupt:
        code = 130
    except RuntimeError as error:
        console.print(f"[red]error:[/red] {error}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
