"""The development platform's commands of `vibeplane` (registered as a `vibeplane.commands`
entry point; the operator's `vibeplane.cli` finds them when this distribution is installed).

vibeplane up [--no-examples]        the platform on the local control plane
vibeplane down | status
vibeplane cluster up|build|node-build|gateway-build|images|down|status|kubeconfig|kubectl|helm|tools
"""

from __future__ import annotations

import argparse
import sys

from vibeplane_dev.steps import Steps, console


def _cluster_up(args: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.local import LocalCluster, install_tools

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
    from vibeplane_dev.cluster.local import LocalCluster

    steps = Steps()
    with steps.step("control plane built, KServe CRDs fetched"):
        binary = LocalCluster().build(progress=steps.note)
    print(binary)
    return 0


def _cluster_node_build(_: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.config import ClusterConfig
    from vibeplane_dev.cluster.node import build_real_node

    steps = Steps()
    with steps.step("node built: kubelet, kube-proxy, containerd, runsc, kube-router, CoreDNS"):
        binaries, archives = build_real_node(ClusterConfig.from_env(), progress=steps.note)
    for path in [binaries.node, binaries.containerd, binaries.runsc, *archives]:
        print(path)
    return 0


def _cluster_gateway_build(_: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.config import ClusterConfig
    from vibeplane_dev.cluster.gateway import TRAEFIK, traefik_binary

    steps = Steps()
    with steps.step(f"gateway built: Traefik {TRAEFIK[1]} from its Go module"):
        print(traefik_binary(ClusterConfig.from_env().cache, progress=steps.note))
    return 0


def _cluster_images(_: argparse.Namespace) -> int:
    from vibeplane_dev.platform import Platform, build_platform_images

    steps = Steps()
    with steps.step("images of the release built: operator, model server (their Dockerfiles)"):
        built = build_platform_images(Platform.local(), steps)
    for archive, _reference in built.values():
        print(archive)
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.local import LocalCluster

    stopped = LocalCluster().down(purge=args.purge, progress=Steps().note)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _cluster_status(_: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.local import LocalCluster

    cluster = LocalCluster()
    for component in cluster.status():
        state = f"running (pid {component.pid})" if component.pid else "stopped"
        print(f"{component.name:20} {state:24} {component.log}")
    ready = cluster.ready()
    print(f"{'apiserver /readyz':20} {'ok' if ready else 'not ready'}")
    return 0 if ready else 1


def _cluster_kubeconfig(_: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.config import ClusterConfig

    print(ClusterConfig.from_env().admin_kubeconfig)
    return 0


def _cluster_kubectl(args: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.local import LocalCluster

    result = LocalCluster().kubectl(*args.kubectl_args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def _cluster_helm(args: argparse.Namespace) -> int:
    from vibeplane_dev.platform import Helm, Platform

    result = Helm.for_platform(Platform.local(), Steps().note)(*args.helm_args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def _cluster_tools(_: argparse.Namespace) -> int:
    from vibeplane_dev.cluster.config import ClusterConfig
    from vibeplane_dev.cluster.local import install_tools

    for name, path in install_tools(ClusterConfig.from_env(), progress=Steps().note).items():
        print(f"{name} {path}")
    return 0


def _platform_up(args: argparse.Namespace) -> int:
    from vibeplane_dev import platform

    return platform.up(examples=not args.no_examples, steps=Steps())


def _platform_down(_: argparse.Namespace) -> int:
    from vibeplane_dev import platform

    return platform.down(steps=Steps())


def _platform_status(_: argparse.Namespace) -> int:
    from vibeplane_dev import platform

    return platform.status()


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `up`, `down`, `status` and `cluster ...` to the `vibeplane` command."""
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
    cluster_commands.add_parser(
        "node-build", help="build the real node's programs and images (cached), start nothing"
    ).set_defaults(run=_cluster_node_build)
    cluster_commands.add_parser(
        "gateway-build", help="build Traefik (the local gateway) from its Go module (cached)"
    ).set_defaults(run=_cluster_gateway_build)
    cluster_commands.add_parser(
        "images", help="build the chart's operator and model server images (cached)"
    ).set_defaults(run=_cluster_images)
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
    helm = cluster_commands.add_parser("helm", help="Helm (from the tools cache), as admin")
    helm.add_argument("helm_args", nargs=argparse.REMAINDER)
    helm.set_defaults(run=_cluster_helm)
    cluster_commands.add_parser("tools", help="install KWOK and Helm").set_defaults(
        run=_cluster_tools
    )
