"""`vibeplane-node`: run the local preview node, read its logs, inspect bundles, check runsc."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from vibeplane_sandbox import manifests
from vibeplane_sandbox.bundle import BundleError, oci_config
from vibeplane_sandbox.runtime import Runsc, SandboxRuntime, check_runsc, tail

DEFAULT_STATE = Path("/var/lib/vibeplane-node")


def _runsc(args: argparse.Namespace) -> Runsc:
    return Runsc(
        binary=args.runsc,
        root=args.state_dir / "runsc",
        platform=args.platform,
        ignore_cgroups=args.ignore_cgroups,
    )


def _run(args: argparse.Namespace) -> int:
    from vibeplane_sandbox.node import NodeAgent, NodeConfig  # the kubernetes client is heavy

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(threadName)s %(message)s",
    )
    config = NodeConfig(
        state_dir=args.state_dir.resolve(),
        kubeconfig=args.kubeconfig,
        node_name=args.node_name,
        kubelet_port=args.kubelet_port,
        runsc=_runsc(args),
        max_pods=args.max_pods,
        cpu=args.cpu,
        memory=args.memory,
        heartbeat_seconds=args.heartbeat_seconds,
        backoff_seconds=args.backoff_seconds,
        extra_masked_paths=tuple(args.mask),
        client_ca=args.client_ca,
        serving_certificate=_serving_certificate(args),
        stop_sandboxes_on_exit=args.stop_sandboxes_on_exit,
    )
    agent = NodeAgent(config)
    agent.install_signal_handlers()
    agent.run()
    return 0


def _serving_certificate(args: argparse.Namespace) -> tuple[Path, Path] | None:
    if (args.tls_cert_file is None) != (args.tls_private_key_file is None):
        raise SystemExit("--tls-cert-file and --tls-private-key-file go together")
    if args.tls_cert_file is None:
        return None
    return args.tls_cert_file, args.tls_private_key_file


def _logs(args: argparse.Namespace) -> int:
    namespace, _, name = args.pod.rpartition("/")
    runtime = SandboxRuntime(args.state_dir, _runsc(args))
    uid = runtime.find_pod(namespace or "default", name)
    if uid is None:
        print(f"no pod {namespace or 'default'}/{name} on this node", file=sys.stderr)
        return 1
    containers = sorted(p.name for p in runtime.pod_dir(uid).iterdir() if p.is_dir())
    container = args.container or (containers[0] if len(containers) == 1 else None)
    if container is None:
        print(f"pick a container with -c: {', '.join(containers)}", file=sys.stderr)
        return 1
    attempts = runtime.attempts(uid, container)[: -1 if args.previous else None]
    if not attempts:
        print(f"no {'previous ' if args.previous else ''}logs for {container}", file=sys.stderr)
        return 1
    path = runtime.log_path(uid, container, attempts[-1])
    sys.stdout.buffer.write(tail(path, args.tail))
    sys.stdout.flush()
    if args.follow:
        offset = path.stat().st_size
        while runtime.attempt(uid, container, attempts[-1]).running:
            with open(path, "rb") as log:
                log.seek(offset)
                chunk = log.read()
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            offset += len(chunk)
            time.sleep(0.2)
    return 0


def _bundle(args: argparse.Namespace) -> int:
    pod = yaml.safe_load(Path(args.pod).read_text())
    name = args.container or pod["spec"]["containers"][0]["name"]
    try:
        config = oci_config(pod, name, args.port)
    except BundleError as error:
        print(f"{error.reason}: {error}", file=sys.stderr)
        return 1
    json.dump(config, sys.stdout, indent=2)
    print()
    return 0


def _check(args: argparse.Namespace) -> int:
    ok, detail = check_runsc(_runsc(args), args.state_dir / "check")
    print(detail)
    return 0 if ok else 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="vibeplane-node", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
        sub.add_argument("--runsc", default="runsc", help="the runsc binary")
        sub.add_argument(
            "--platform", default="ptrace", help="runsc platform (ptrace works everywhere)"
        )
        sub.add_argument(
            "--ignore-cgroups", action="store_true", help="no cgroup limits (no OOM detection)"
        )

    run = commands.add_parser("run", help="run the node agent (blocks)")
    common(run)
    run.add_argument("--kubeconfig", type=Path, help="default: in-cluster or ~/.kube/config")
    run.add_argument("--node-name", default=manifests.NODE_NAME)
    run.add_argument(
        "--kubelet-port", type=int, default=10250, help="log endpoint port; 0 picks a free one"
    )
    run.add_argument("--max-pods", type=int, default=110)
    run.add_argument("--cpu", help="cpu capacity to report (default: all cores)")
    run.add_argument("--memory", help="memory capacity to report (default: all memory)")
    run.add_argument("--heartbeat-seconds", type=float, default=10.0)
    run.add_argument("--backoff-seconds", type=float, default=10.0, help="crash-loop base delay")
    run.add_argument("--mask", action="append", default=[], help="another host directory to hide")
    run.add_argument("--client-ca", type=Path, help="require log clients to present a cert")
    run.add_argument(
        "--tls-cert-file",
        type=Path,
        help="the log endpoint's serving certificate (default: a self-signed one, made once)",
    )
    run.add_argument("--tls-private-key-file", type=Path, help="its key (with --tls-cert-file)")
    run.add_argument(
        "--stop-sandboxes-on-exit",
        action="store_true",
        help="kill the node's sandboxes when the agent stops (kubelet keeps them running)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    logs = commands.add_parser("logs", help="print a container's log from the state dir")
    common(logs)
    logs.add_argument("pod", help="NAMESPACE/POD")
    logs.add_argument("-c", "--container")
    logs.add_argument("-p", "--previous", action="store_true")
    logs.add_argument("--tail", type=int)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=_logs)

    bundle = commands.add_parser("bundle", help="print the OCI config for a pod manifest")
    bundle.add_argument("pod", help="a Pod manifest (YAML or JSON)")
    bundle.add_argument("-c", "--container")
    bundle.add_argument("--port", type=int, default=8080)
    bundle.set_defaults(func=_bundle)

    check = commands.add_parser("check", help="run a tiny sandbox to prove runsc works here")
    common(check)
    check.set_defaults(func=_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code
