"""The node agent, the development stand-in for kubelet (+ containerd + runsc's shim).

It registers the Node, heartbeats, and runs the pods bound to it under runsc. It exists for
machines without a container engine; real clusters use kubelet and never run this.

Threads, not an event loop: one heartbeat thread, one pod watch, one worker per pod (like
kubelet's pod workers), one per probe, the log server's. Blocking calls (runsc, the API) happen
on the thread of the pod they concern, so a slow sandbox never stalls another pod's status or
the node's heartbeat.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import platform
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from vibeplane_sandbox import manifests
from vibeplane_sandbox.bundle import (
    DEFAULT_MASKED_PATHS,
    PORT_ANNOTATION,
    BundleError,
    env_references,
    oci_config,
    pod_problems,
)
from vibeplane_sandbox.kubeletserver import KubeletServer, LogSource, ensure_certificate
from vibeplane_sandbox.podstatus import (
    Attempt,
    ContainerRuntime,
    pod_status,
    status_patch,
    timestamp,
)
from vibeplane_sandbox.probes import Prober, ProbeSpec
from vibeplane_sandbox.runtime import Runsc, SandboxRuntime, existing_directories

log = logging.getLogger("vibeplane.node")
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
RESET_BACKOFF_AFTER = 600.0  # seconds a container must run before its backoff starts over


@dataclass
class NodeConfig:
    """Everything `vibeplane-node run` takes; defaults are kubelet's where it has one."""

    state_dir: Path
    kubeconfig: Path | None = None
    node_name: str = manifests.NODE_NAME
    kubelet_port: int = 10250
    runsc: Runsc = field(default_factory=Runsc)
    max_pods: int = 110
    cpu: str | None = None
    memory: str | None = None
    heartbeat_seconds: float = 10.0
    status_seconds: float = 60.0
    backoff_seconds: float = 10.0
    backoff_max_seconds: float = 300.0
    extra_masked_paths: tuple[str, ...] = ()
    client_ca: Path | None = None
    serving_certificate: tuple[Path, Path] | None = None
    """The log endpoint's certificate and key; None: a self-signed one in the state dir."""
    stop_sandboxes_on_exit: bool = False
    """Kubelet leaves containers running when it exits (they are adopted on restart); a
    development machine's `vibeplane down` wants nothing left behind."""


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def machine_facts(config: NodeConfig, runtime_version: str) -> manifests.NodeFacts:
    """Measure the machine for the Node's capacity and nodeInfo."""
    memory = config.memory
    if memory is None:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = f"{line.split()[1]}Ki"
                    break
    os_image = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip('"')
    except OSError:
        pass

    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return ""

    machine = platform.machine()
    return manifests.NodeFacts(
        cpu=config.cpu or str(os.cpu_count() or 1),
        memory=memory or "0",
        pods=config.max_pods,
        kubelet_port=config.kubelet_port,
        kernel_version=platform.release(),
        os_image=os_image,
        runtime_version=runtime_version,
        architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
        machine_id=read("/etc/machine-id") or config.node_name,
        boot_id=read("/proc/sys/kernel/random/boot_id"),
    )


class PortAllocator:
    """Loopback ports, one per pod, never handed out twice while the node runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, int] = {}

    def reserve(self, uid: str, port: int) -> None:
        with self._lock:
            self._by_uid[uid] = port

    def allocate(self, uid: str) -> int:
        with self._lock:
            if uid in self._by_uid:
                return self._by_uid[uid]
            taken = set(self._by_uid.values())
            while True:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    port: int = probe.getsockname()[1]
                if port not in taken:
                    self._by_uid[uid] = port
                    return port

    def release(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)


@dataclass
class ContainerState:
    """The worker's memory about one container between syncs."""

    name: str
    attempt: int | None = None
    probers: dict[str, Prober] = field(default_factory=dict)
    probed_attempt: int | None = None
    backoff_until: float | None = None
    config_error: tuple[str, str] | None = None
    reported_exit: int | None = None
    killing: bool = False


class NodeAgent:
    """One node: `run()` blocks until SIGTERM/SIGINT or `stop()`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.stopping = threading.Event()
        kubeconfig = str(config.kubeconfig) if config.kubeconfig else None
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            self.api = kubernetes.client.ApiClient()
        else:
            self.api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig
            )
        self.api.configuration.connection_pool_maxsize = 64
        # The client's methods are typed for its model classes; this agent speaks plain dicts
        # (the JSON the API server reads and writes), so its handles are Any.
        self.core: Any = kubernetes.client.CoreV1Api(self.api)
        self.coordination: Any = kubernetes.client.CoordinationV1Api(self.api)
        self.nodes: Any = kubernetes.client.NodeV1Api(self.api)
        self.runtime = SandboxRuntime(config.state_dir, config.runsc)
        self.ports = PortAllocator()
        self.masked_paths = existing_directories(
            (*DEFAULT_MASKED_PATHS, *config.extra_masked_paths)
        )
        self._lock = threading.Lock()
        self._pods: dict[str, dict[str, Any]] = {}
        self._workers: dict[str, PodWorker] = {}
        self.node_uid = ""
        self.facts: manifests.NodeFacts | None = None
        self.server: KubeletServer | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        version = self.config.runsc.version()
        cert, key = self.config.serving_certificate or ensure_certificate(
            self.config.state_dir, self.config.node_name
        )
        self.server = KubeletServer(
            self.config.kubelet_port, self.locate_log, cert, key, self.config.client_ca
        )
        self.config.kubelet_port = self.server.port  # port 0: the one the system picked
        self.server.start()
        self.facts = machine_facts(self.config, version)
        self.register()
        self.renew_lease()
        self.ensure_runtime_class()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self._watch_pods, name="pod-watch", daemon=True).start()
        log.info(
            "node %s ready: runsc %s, state %s, logs on 127.0.0.1:%s",
            self.config.node_name,
            version,
            self.config.state_dir,
            self.config.kubelet_port,
        )
        self.stopping.wait()
        if self.server:
            self.server.stop()
        if self.config.stop_sandboxes_on_exit:
            stopped = self.runtime.stop_all()
            log.info("node agent stopped with its %d sandboxes", stopped)
        else:
            log.info("node agent stopped; sandboxes keep running and are adopted on restart")

    def stop(self) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    # ---- node ----------------------------------------------------------------------------

    def register(self) -> None:
        """Create the Node, or bring an existing one's labels and taint up to date."""
        name = self.config.node_name
        arch = self.facts.architecture if self.facts else "amd64"
        desired = manifests.node(name, arch)
        try:
            current = self.core.read_node(name, _preload_content=False)
            existing = _json(current)
            patch = {
                "metadata": {
                    "labels": desired["metadata"]["labels"],
                    "annotations": desired["metadata"]["annotations"],
                },
                "spec": {"taints": manifests.merged_taints(existing["spec"].get("taints"))},
            }
            node = _json(
                self.core.patch_node(name, patch, _content_type=MERGE, _preload_content=False)
            )
        except ApiException as error:
            if error.status != 404:
                raise
            node = _json(self.core.create_node(desired, _preload_content=False))
            log.info("registered node %s", name)
        self.node_uid = node["metadata"]["uid"]
        self.post_node_status(node)

    def post_node_status(self, node: Mapping[str, Any] | None = None) -> None:
        assert self.facts is not None
        if node is None:
            node = _json(self.core.read_node(self.config.node_name, _preload_content=False))
        now = _now()
        status = manifests.with_transition_times(
            manifests.node_status(self.facts, now),
            (node.get("status") or {}).get("conditions"),
            now,
        )
        self.core.patch_node_status(
            self.config.node_name, {"status": status}, _content_type=STRATEGIC
        )

    def renew_lease(self) -> None:
        name = self.config.node_name
        body = manifests.lease(name, self.node_uid, _now())
        try:
            self.coordination.patch_namespaced_lease(
                name, manifests.LEASE_NAMESPACE, {"spec": body["spec"]}, _content_type=MERGE
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease(manifests.LEASE_NAMESPACE, body)

    def ensure_runtime_class(self) -> None:
        try:
            self.nodes.create_runtime_class(manifests.runtime_class())
            log.info("created RuntimeClass %s", manifests.RUNTIME_CLASS)
        except ApiException as error:
            if error.status == 403:
                log.warning("may not create RuntimeClass %s: %s", manifests.RUNTIME_CLASS, error)
            elif error.status != 409:
                raise

    def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self.stopping.wait(self.config.heartbeat_seconds):
            try:
                self.renew_lease()
                if time.monotonic() - last_status >= self.config.status_seconds:
                    self.post_node_status()
                    last_status = time.monotonic()
            except ApiException as error:
                if error.status == 404:
                    log.warning("node %s was deleted; registering again", self.config.node_name)
                    self._try(self.register)
                else:
                    log.warning("heartbeat failed: %s", error.reason)
            except Exception:  # keep beating whatever happened
                log.exception("heartbeat failed")

    def _try(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            log.exception("%s failed", getattr(action, "__name__", "action"))

    # ---- pods ----------------------------------------------------------------------------

    def pod(self, uid: str) -> dict[str, Any] | None:
        with self._lock:
            return self._pods.get(uid)

    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.config.node_name}"
        first = True
        while not self.stopping.is_set():
            try:
                listed = _json(
                    self.core.list_pod_for_all_namespaces(
                        field_selector=selector, _preload_content=False
                    )
                )
                pods = {item["metadata"]["uid"]: item for item in listed["items"]}
                with self._lock:
                    gone = set(self._pods) - set(pods)
                    self._pods = pods
                for uid in [*pods, *gone]:
                    self._dispatch(uid)
                if first:
                    self._adopt(set(pods))
                    first = False
                version = listed["metadata"]["resourceVersion"]
                watch: Any = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
                for event in watch.stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=300,
                ):
                    if self.stopping.is_set():
                        watch.stop()
                        return
                    kind, obj = event["type"], event["raw_object"]
                    if kind == "ERROR":
                        break  # 410 Gone and the like: list again
                    uid = obj["metadata"]["uid"]
                    with self._lock:
                        if kind == "DELETED":
                            self._pods.pop(uid, None)
                        else:
                            self._pods[uid] = obj
                    self._dispatch(uid)
            except Exception as error:
                log.warning("pod watch failed (%s); listing again", error)
                self.stopping.wait(1.0)

    def _adopt(self, listed: set[str]) -> None:
        """After a restart: pods the API no longer has are cleaned up; orphans are killed."""
        known = self.runtime.known_pods()
        for uid, record in known.items():
            if uid in listed:
                continue
            log.info("cleaning up sandboxes of pod %s/%s", record.get("namespace"), uid)
            self._dispatch(uid)
        for sandbox in self.runtime.orphans(set(known) | listed):
            log.info("killing orphan sandbox %s", sandbox)
            self.config.runsc.kill(sandbox, signal.SIGKILL)
            self.config.runsc.delete(sandbox)

    def _dispatch(self, uid: str) -> None:
        with self._lock:
            worker = self._workers.get(uid)
            if worker is None or not worker.is_alive():
                worker = PodWorker(self, uid)
                self._workers[uid] = worker
                worker.start()
            else:
                worker.wake.set()

    def worker_done(self, uid: str) -> None:
        with self._lock:
            self._workers.pop(uid, None)

    def lookups(self, pod: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
        """The ConfigMaps and Secrets the pod's environment names (missing ones omitted)."""
        namespace = pod["metadata"]["namespace"]
        found: dict[tuple[str, str], dict[str, str]] = {}
        for container in pod["spec"].get("containers") or []:
            for kind, name in env_references(container):
                if (kind, name) in found:
                    continue
                try:
                    if kind == "configMap":
                        obj = _json(
                            self.core.read_namespaced_config_map(
                                name, namespace, _preload_content=False
                            )
                        )
                        found[(kind, name)] = dict(obj.get("data") or {})
                    else:
                        obj = _json(
                            self.core.read_namespaced_secret(
                                name, namespace, _preload_content=False
                            )
                        )
                        found[(kind, name)] = {
                            key: base64.b64decode(value).decode()
                            for key, value in (obj.get("data") or {}).items()
                        }
                except ApiException as error:
                    if error.status != 404:
                        raise
        return found

    def event(
        self, pod: Mapping[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        """A core/v1 Event about the pod, as kubelet records them (best effort)."""
        metadata = pod["metadata"]
        stamp = timestamp(_now())
        body = {
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "vibeplane-node", "host": self.config.node_name},
            "reportingComponent": "vibeplane-node",
            "reportingInstance": self.config.node_name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(metadata["namespace"], body)
        except ApiException as error:
            log.debug("event %s not recorded: %s", reason, error.reason)

    # ---- logs ----------------------------------------------------------------------------

    def locate_log(
        self, namespace: str, name: str, container: str, previous: bool
    ) -> LogSource | None:
        uid = self.runtime.find_pod(namespace, name)
        if uid is None:
            return None
        attempts = self.runtime.attempts(uid, container)
        if previous:
            attempts = attempts[:-1]
        if not attempts:
            return None
        number = attempts[-1]

        def running() -> bool:
            return self.runtime.attempt(uid, container, number).running

        return LogSource(self.runtime.log_path(uid, container, number), running)


def _json(response: Any) -> dict[str, Any]:
    """The body of a `_preload_content=False` response as a dict."""
    data: dict[str, Any] = json.loads(response.data)
    return data


class PodWorker(threading.Thread):
    """Drives one pod to its spec: start, probe, restart, report, and finally stop."""

    def __init__(self, agent: NodeAgent, uid: str) -> None:
        super().__init__(name=f"pod-{uid[:8]}", daemon=True)
        self.agent = agent
        self.uid = uid
        self.wake = threading.Event()
        self.containers: dict[str, ContainerState] = {}
        self.last_status: dict[str, Any] | None = None
        self.port: int | None = None

    # ---- loop ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.agent.stopping.is_set():
                self.wake.clear()
                pod = self.agent.pod(self.uid)
                try:
                    if pod is None or pod["metadata"].get("deletionTimestamp"):
                        self.terminate(pod)
                        return
                    self.sync(pod)
                except ApiException as error:
                    if error.status == 404:
                        self.wake.wait(0.2)  # deleted meanwhile: the watch tells us next
                        continue
                    log.warning("sync of pod %s failed: %s", self.uid, error.reason)
                except Exception:
                    log.exception("sync of pod %s failed", self.uid)
                self.wake.wait(1.0)
        finally:
            for state in self.containers.values():
                _stop_probers(state)
            self.agent.worker_done(self.uid)

    def sync(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        status = pod.get("status") or {}
        problems = pod_problems(pod)
        if problems and not self.agent.runtime.attempts(self.uid, _first_container(pod)):
            if (self.last_status or status).get("phase") != "Failed":
                message = "; ".join(problems)
                self.agent.event(pod, "UnsupportedPodSpec", message, warning=True)
                self.write_status(pod, [], rejected=("UnsupportedPodSpec", message))
            return
        self.port = self._ensure_port(pod)
        self.agent.runtime.remember_pod(
            self.uid,
            {
                "namespace": metadata["namespace"],
                "name": metadata["name"],
                "uid": self.uid,
                "port": self.port,
            },
        )
        terminal = (self.last_status or status).get("phase") in ("Succeeded", "Failed")
        runtimes = [
            self.sync_container(pod, container, terminal) for container in pod["spec"]["containers"]
        ]
        self.write_status(pod, runtimes)

    def _ensure_port(self, pod: dict[str, Any]) -> int:
        annotations = pod["metadata"].get("annotations") or {}
        if PORT_ANNOTATION in annotations:
            port = int(annotations[PORT_ANNOTATION])
            self.agent.ports.reserve(self.uid, port)
            return port
        port = self.agent.ports.allocate(self.uid)
        patch = {"metadata": {"annotations": {PORT_ANNOTATION: str(port)}}}
        updated = _json(
            self.agent.core.patch_namespaced_pod(
                pod["metadata"]["name"],
                pod["metadata"]["namespace"],
                patch,
                _content_type=MERGE,
                _preload_content=False,
            )
        )
        pod["metadata"] = updated["metadata"]
        return port

    # ---- containers ----------------------------------------------------------------------

    def sync_container(
        self, pod: dict[str, Any], container: Mapping[str, Any], terminal: bool
    ) -> ContainerRuntime:
        name = container["name"]
        state = self.containers.setdefault(name, ContainerState(name))
        runtime = self.agent.runtime
        numbers = runtime.attempts(self.uid, name)
        state.attempt = numbers[-1] if numbers else None
        current = runtime.attempt(self.uid, name, numbers[-1]) if numbers else None
        previous = runtime.attempt(self.uid, name, numbers[-2]) if len(numbers) > 1 else None
        now = time.time()

        if current is None and not terminal:
            current = self._start(pod, container, state, 0)
        elif current is not None and current.terminated:
            _stop_probers(state)
            if state.reported_exit != current.number:
                state.reported_exit = current.number
                self._report_exit(pod, name, current)
            if not terminal and _restarts(pod, current):
                if state.backoff_until is None:
                    state.backoff_until = now + self._backoff(current)
                if now >= state.backoff_until:
                    previous, current = (
                        current,
                        self._start(pod, container, state, current.number + 1),
                    )
        elif current is not None and current.running:
            self._ensure_probers(pod, container, state, current)
            liveness = state.probers.get("liveness")
            if liveness is not None and liveness.result is False and not state.killing:
                state.killing = True
                self.agent.event(
                    pod,
                    "Killing",
                    f"Container {name} failed liveness probe, will be restarted",
                    warning=True,
                )
                runtime.stop(current.sandbox_id)
        return self._container_runtime(container, state, current, previous, now)

    def _start(
        self,
        pod: dict[str, Any],
        container: Mapping[str, Any],
        state: ContainerState,
        number: int,
    ) -> Attempt | None:
        name = container["name"]
        assert self.port is not None
        try:
            config = oci_config(
                pod,
                name,
                self.port,
                masked_paths=(*self.agent.masked_paths, str(self.agent.config.state_dir)),
                lookups=self.agent.lookups(pod),
                allocatable=self._allocatable(),
                cgroups_path=f"/vibeplane/{self.uid}-{name}-{number}",
                runtime_source=str(Path(__file__).resolve().parent),
            )
        except BundleError as error:
            detail = (error.reason, str(error))
            if state.config_error != detail:
                state.config_error = detail
                self.agent.event(pod, "Failed", f"Error: {error}", warning=True)
            return None
        state.config_error = None
        state.backoff_until = None
        state.killing = False
        sandbox = self.agent.runtime.start(self.uid, name, number, config)
        state.attempt = number
        self.agent.event(pod, "Started", f"Started container {name} in runsc sandbox {sandbox}")
        return self.agent.runtime.attempt(self.uid, name, number)

    def _allocatable(self) -> dict[str, str]:
        facts = self.agent.facts
        return {"cpu": facts.cpu, "memory": facts.memory} if facts else {}

    def _backoff(self, attempt: Attempt) -> float:
        """kubelet's crash-loop back-off: restart at once, then 10 s, 20 s, ... up to 5 min."""
        config = self.agent.config
        started, finished = _parse_time(attempt.started_at), _parse_time(attempt.finished_at)
        if attempt.number == 0 or (
            started and finished and finished - started > RESET_BACKOFF_AFTER
        ):
            return 0.0
        delay: float = config.backoff_seconds * 2 ** min(attempt.number - 1, 16)
        return min(delay, config.backoff_max_seconds)

    def _report_exit(self, pod: Mapping[str, Any], name: str, attempt: Attempt) -> None:
        if attempt.exit_code == 0:
            return
        self.agent.event(
            pod,
            "BackOff" if _restarts(pod, attempt) else "Failed",
            f"Container {name} exited with code {attempt.exit_code} ({attempt.reason})",
            warning=True,
        )

    def _ensure_probers(
        self,
        pod: Mapping[str, Any],
        container: Mapping[str, Any],
        state: ContainerState,
        attempt: Attempt,
    ) -> None:
        if state.probed_attempt == attempt.number:
            startup = state.probers.get("startup")
            if startup is not None and startup.result and "readiness" not in state.probers:
                self._start_probers(pod, container, state, attempt, ("readiness", "liveness"))
            return
        _stop_probers(state)
        state.probed_attempt = attempt.number
        kinds = ("startup",) if container.get("startupProbe") else ("readiness", "liveness")
        self._start_probers(pod, container, state, attempt, kinds)

    def _start_probers(
        self,
        pod: Mapping[str, Any],
        container: Mapping[str, Any],
        state: ContainerState,
        attempt: Attempt,
        kinds: tuple[str, ...],
    ) -> None:
        assert self.port is not None
        context = {**((pod["spec"].get("securityContext")) or {})}
        context.update(container.get("securityContext") or {})
        uid = int(context.get("runAsUser", 65534))
        user = f"{uid}:{int(context.get('runAsGroup', uid))}"
        runsc = self.agent.config.runsc

        def execute(argv: Any, timeout: float) -> tuple[int, str]:
            return runsc.exec(attempt.sandbox_id, user, list(argv), timeout)

        def changed(kind: str, result: bool, message: str) -> None:
            if not result:
                self.agent.event(
                    pod, "Unhealthy", f"{kind.capitalize()} probe failed: {message}", True
                )
            self.wake.set()

        reported = {
            s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []
        }.get(container["name"], {})
        same = reported.get("containerID") == f"runsc://{attempt.sandbox_id}"
        for kind in kinds:
            probe = container.get(f"{kind}Probe")
            if probe:
                spec = ProbeSpec.from_pod(kind, probe)
                was = {"readiness": reported.get("ready"), "startup": reported.get("started")}
                initial = True if same and was.get(kind) else None
                state.probers[kind] = Prober(spec, self.port, changed, execute, initial).start()

    def _container_runtime(
        self,
        container: Mapping[str, Any],
        state: ContainerState,
        current: Attempt | None,
        previous: Attempt | None,
        now: float,
    ) -> ContainerRuntime:
        startup = state.probers.get("startup")
        readiness = state.probers.get("readiness")
        running = current is not None and current.running
        started = running and (startup is None or bool(startup.result))
        ready = started and (readiness.result is True if readiness else True)
        if "startupProbe" in container and startup is None:
            started = ready = False  # probers not attached yet (adopted, or just started)
        if "readinessProbe" in container and readiness is None:
            ready = False
        waiting_reason = waiting_message = None
        if state.config_error is not None:
            waiting_reason, waiting_message = state.config_error
        elif (
            current is not None
            and current.terminated
            and state.backoff_until is not None
            and now < state.backoff_until
        ):
            waiting_reason = "CrashLoopBackOff"
            waiting_message = (
                f"back-off {int(state.backoff_until - now + 0.999)}s restarting failed "
                f"container={state.name}"
            )
        return ContainerRuntime(
            name=state.name,
            image=str(container.get("image") or ""),
            current=current,
            previous=previous,
            restart_count=current.number if current else 0,
            waiting_reason=waiting_reason,
            waiting_message=waiting_message,
            ready=ready,
            started=started,
        )

    # ---- status --------------------------------------------------------------------------

    def write_status(
        self,
        pod: dict[str, Any],
        runtimes: list[ContainerRuntime],
        rejected: tuple[str, str] | None = None,
    ) -> None:
        base = dict(pod)
        if self.last_status is not None:
            base["status"] = self.last_status
        status = pod_status(base, runtimes, now=_now(), rejected=rejected)
        generation = pod["metadata"].get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        if status == self.last_status:
            return
        patch = status_patch(pod.get("status") or {}, status)
        if patch is None:
            self.last_status = status
            return
        self.agent.core.patch_namespaced_pod_status(
            pod["metadata"]["name"],
            pod["metadata"]["namespace"],
            {"status": patch},
            _content_type=MERGE,
            _preload_content=False,
        )
        self.last_status = status

    # ---- termination ---------------------------------------------------------------------

    def terminate(self, pod: dict[str, Any] | None) -> None:
        """Stop the pod's sandboxes (TERM, grace period, KILL), then remove the pod object."""
        runtime = self.agent.runtime
        names = (
            [c["name"] for c in pod["spec"]["containers"]]
            if pod
            else [p.name for p in runtime.pod_dir(self.uid).glob("*") if p.is_dir()]
        )
        grace = 0.0
        if pod is not None:
            seconds = pod["metadata"].get("deletionGracePeriodSeconds")
            if seconds is None:
                seconds = pod["spec"].get("terminationGracePeriodSeconds", 30)
            grace = float(seconds or 0)

        def running() -> list[Attempt]:
            found = []
            for name in names:
                numbers = runtime.attempts(self.uid, name)
                if numbers:
                    attempt = runtime.attempt(self.uid, name, numbers[-1])
                    if not attempt.terminated:
                        found.append(attempt)
            return found

        for state in self.containers.values():
            _stop_probers(state)
        alive = running()
        for attempt in alive:
            if pod is not None:
                self.agent.event(pod, "Killing", f"Stopping container in {attempt.sandbox_id}")
            runtime.stop(attempt.sandbox_id, signal.SIGTERM if grace else signal.SIGKILL)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = running()
        for attempt in alive:
            runtime.stop(attempt.sandbox_id, signal.SIGKILL)
        for _ in range(100):
            if not running():
                break
            time.sleep(0.1)
        if pod is not None:
            self._report_terminated(pod, names)
            try:
                self.agent.core.delete_namespaced_pod(
                    pod["metadata"]["name"],
                    pod["metadata"]["namespace"],
                    grace_period_seconds=0,
                    body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
                )
            except ApiException as error:
                if error.status not in (404, 409):
                    log.warning("deleting pod %s failed: %s", _key(pod), error.reason)
        runtime.remove_pod(self.uid)
        self.agent.ports.release(self.uid)

    def _report_terminated(self, pod: dict[str, Any], names: list[str]) -> None:
        runtimes = []
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        for name in names:
            numbers = self.agent.runtime.attempts(self.uid, name)
            current = self.agent.runtime.attempt(self.uid, name, numbers[-1]) if numbers else None
            runtimes.append(
                ContainerRuntime(
                    name=name,
                    image=str(containers.get(name, {}).get("image") or ""),
                    current=current,
                    restart_count=current.number if current else 0,
                )
            )
        try:
            self.write_status(pod, runtimes)
        except ApiException as error:
            log.debug("final status of %s not written: %s", _key(pod), error.reason)


def _restarts(pod: Mapping[str, Any], attempt: Attempt) -> bool:
    policy = pod["spec"].get("restartPolicy", "Always")
    return policy == "Always" or (policy == "OnFailure" and attempt.exit_code != 0)


def _stop_probers(state: ContainerState) -> None:
    for prober in state.probers.values():
        prober.stop()
    state.probers.clear()
    state.probed_attempt = None


def _first_container(pod: Mapping[str, Any]) -> str:
    containers = pod["spec"].get("containers") or [{"name": ""}]
    return str(containers[0]["name"])


def _key(pod: Mapping[str, Any]) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata'].get('name')}"
