"""Pod spec -> OCI runtime config (config.json) for one container: a pure function.

This is what kubelet + containerd compute before calling runsc, reduced to what the local
preview node supports. No I/O happens here: the caller passes the allocated port, the paths to
mask and any ConfigMap/Secret data the environment refers to, so the result is a function of its
inputs and is tested with golden files.

Contract for what runs on the local node:

- `PORT` is set to the loopback port allocated to the pod (also the pod's annotation
  `vibeplane.io/local-port`); the sandbox shares the host's network stack (runsc
  `--network=host`), so a preview must listen on `127.0.0.1:$PORT` and nothing else. A `PORT`
  the pod sets itself is overridden: the allocated port is the only one probes and URLs use.
- There are no images: the root filesystem is the host's `/`, bind-mounted read-only (always,
  whatever `readOnlyRootFilesystem` says), with writable tmpfs at `/tmp` and at every
  `emptyDir` mount. Sensitive host directories (`masked_paths`) are hidden under empty
  read-only tmpfs mounts. The container's `command` must therefore name a program that exists
  on the host, and `image` is only reported back, never pulled.
- Containers run as the pod's non-root `runAsUser`/`runAsGroup` (65534 when unset; uid 0 is
  refused, since the host's files are visible), with no new privileges, the capabilities the
  pod leaves (none with `drop: [ALL]`), and cgroup limits from `resources.limits`.
- Seccomp profiles are not applied inside gVisor: the sentry is the syscall filter, as with
  containerd's runsc shim.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

# Copies of `vibeplane.wellknown` (tests/unit/test_wellknown.py keeps them equal).
PORT_ANNOTATION = "vibeplane.io/local-port"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_UID = 65534  # nobody: there is no image to name a user
DEFAULT_TMP_SIZE = "256Mi"
CPU_PERIOD = 100_000  # microseconds, as kubelet
NOFILE_LIMIT = 65_536
# containerd's default capability set; `drop`/`add` in the pod's securityContext edit it.
DEFAULT_CAPABILITIES = (
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)
# Host directories hidden from sandboxes by default (only those that exist are passed in).
DEFAULT_MASKED_PATHS = (
    "/root",
    "/home",
    "/run",
    "/srv",
    "/mnt",
    "/media",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/var/tmp",
)
# The volume Kubernetes injects for the service-account token: not mounted here (the sandbox
# cannot reach the cluster network anyway); every other non-emptyDir volume is refused.
_TOKEN_VOLUME = re.compile(r"^kube-api-access-[a-z0-9]+$")

Lookups = Mapping[tuple[str, str], Mapping[str, str]]


class BundleError(ValueError):
    """The pod asks for something the local node cannot run; the message says what."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# ---- quantities ----------------------------------------------------------------------------

_SUFFIXES: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ("500m", "128Mi", "1e3", 2) as a Decimal."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise BundleError("InvalidQuantity", f"{value!r} is not a Kubernetes quantity")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        return Decimal(number) * Decimal(_SUFFIXES[suffix])
    except InvalidOperation as error:
        raise BundleError("InvalidQuantity", f"{value!r} is not a Kubernetes quantity") from error


def _millicores(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value) * 1000)


def _bytes(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value))


# ---- $(VAR) expansion, as k8s.io/kubernetes/third_party/forked/golang/expansion ------------


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `$(NAME)` like kubelet: unknown names stay as written, `$$` is a literal `$`."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    value = lookup(name)
                    out.append(value if value is not None else f"$({name})")
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


# ---- environment ---------------------------------------------------------------------------


def env_references(container: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, name) of each ConfigMap/Secret the container's environment reads."""
    found: list[tuple[str, str]] = []
    for source in container.get("envFrom") or []:
        for kind, key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            if source.get(key):
                found.append((kind, source[key]["name"]))
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        for kind, key in (("configMap", "configMapKeyRef"), ("secret", "secretKeyRef")):
            if value_from.get(key):
                found.append((kind, value_from[key]["name"]))
    return sorted(set(found))


def _field_value(pod: Mapping[str, Any], path: str, host_ip: str) -> str:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": host_ip,
        "status.podIPs": host_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = (metadata.get(path.split(".")[1]) or {}).items()
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items))
    raise BundleError("CreateContainerConfigError", f"unsupported fieldRef {path!r}")


def _resource_value(
    container: Mapping[str, Any], ref: Mapping[str, Any], allocatable: Mapping[str, str]
) -> str:
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None:
        # kubelet reports the node's allocatable when the container sets no limit.
        value = allocatable.get(name, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:
        raise BundleError("CreateContainerConfigError", f"divisor of {resource} must be positive")
    return str(math.ceil(parse_quantity(value) / divisor))


def _lookup_data(lookups: Lookups, kind: str, name: str, optional: bool) -> Mapping[str, str]:
    data = lookups.get((kind, name))
    if data is None:
        if optional:
            return {}
        raise BundleError("CreateContainerConfigError", f'{kind} "{name}" not found')
    return data


def environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    port: int,
    *,
    host_ip: str = "127.0.0.1",
    lookups: Lookups | None = None,
    allocatable: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's environment in kubelet's order, then `PORT` (which always wins)."""
    lookups = lookups or {}
    allocatable = allocatable or {}
    metadata = pod.get("metadata") or {}
    hostname = (pod.get("spec") or {}).get("hostname") or metadata.get("name", "")
    env: dict[str, str] = {
        "PATH": DEFAULT_PATH,
        "HOSTNAME": hostname,
        "HOME": "/",
        "PORT": str(port),
    }
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if ref:
                data = _lookup_data(lookups, kind, ref["name"], bool(ref.get("optional")))
                for name, value in data.items():
                    env[prefix + name] = value
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env.get)
            continue
        value_from = var["valueFrom"]
        if "fieldRef" in value_from:
            env[name] = _field_value(pod, value_from["fieldRef"]["fieldPath"], host_ip)
        elif "resourceFieldRef" in value_from:
            env[name] = _resource_value(container, value_from["resourceFieldRef"], allocatable)
        else:
            for kind, key in (("configMap", "configMapKeyRef"), ("secret", "secretKeyRef")):
                ref = value_from.get(key)
                if not ref:
                    continue
                optional = bool(ref.get("optional"))
                data = _lookup_data(lookups, kind, ref["name"], optional)
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not optional:
                    raise BundleError(
                        "CreateContainerConfigError",
                        f'key "{ref["key"]}" not found in {kind} "{ref["name"]}"',
                    )
                break
            else:
                raise BundleError("CreateContainerConfigError", f"unsupported valueFrom for {name}")
    env["PORT"] = str(port)
    return env


# ---- checks --------------------------------------------------------------------------------


def pod_problems(pod: Mapping[str, Any]) -> list[str]:
    """Why the local node cannot run this pod at all (empty when it can)."""
    spec = pod.get("spec") or {}
    problems: list[str] = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append("host namespaces (hostNetwork/hostPID/hostIPC) are not supported")
    if spec.get("initContainers"):
        problems.append("initContainers are not supported by the local node")
    if spec.get("ephemeralContainers"):
        problems.append("ephemeralContainers are not supported by the local node")
    mounted: dict[str, set[str]] = {}
    for container in spec.get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            mounted.setdefault(mount["name"], set()).add(container["name"])
            if mount.get("subPath") or mount.get("subPathExpr"):
                problems.append(f"volume mount {mount['name']!r} uses subPath (unsupported)")
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        if "emptyDir" in volume:
            if len(mounted.get(name, ())) > 1:
                problems.append(
                    f"emptyDir {name!r} is mounted by several containers; each container is its"
                    " own sandbox here, so the volume cannot be shared"
                )
        elif not ("projected" in volume and _TOKEN_VOLUME.match(name)):
            kinds = sorted(set(volume) - {"name"})
            problems.append(f"volume {name!r} ({', '.join(kinds)}) is not supported; use emptyDir")
    return problems


def _security(pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the pod's (container fields win)."""
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    context = dict(container.get("securityContext") or {})
    for key in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile"):
        if key not in context and key in pod_context:
            context[key] = pod_context[key]
    return context


# ---- the config ----------------------------------------------------------------------------


def _capabilities(context: Mapping[str, Any], uid: int) -> dict[str, list[str]]:
    caps = context.get("capabilities") or {}
    drop = {str(name).upper().removeprefix("CAP_") for name in caps.get("drop") or []}
    add = {str(name).upper().removeprefix("CAP_") for name in caps.get("add") or []}
    if "ALL" in add:
        raise BundleError("CreateContainerConfigError", "capabilities add ALL is not allowed")
    kept = set() if "ALL" in drop else {c for c in DEFAULT_CAPABILITIES if c[4:] not in drop}
    kept |= {f"CAP_{name}" for name in add}
    bounding = sorted(kept)
    # A non-root process loses its capabilities on exec; say so instead of granting them.
    effective = bounding if uid == 0 else []
    return {
        "bounding": bounding,
        "effective": effective,
        "permitted": effective,
        "inheritable": [],
        "ambient": [],
    }


def _resources(container: Mapping[str, Any]) -> dict[str, Any]:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    out: dict[str, Any] = {}
    if "memory" in limits:
        out["memory"] = {"limit": _bytes(limits["memory"])}
    cpu: dict[str, int] = {}
    request = requests.get("cpu", limits.get("cpu"))
    if request is not None:
        cpu["shares"] = max(2, _millicores(request) * 1024 // 1000)
    if "cpu" in limits:
        cpu["quota"] = max(1000, _millicores(limits["cpu"]) * CPU_PERIOD // 1000)
        cpu["period"] = CPU_PERIOD
    if cpu:
        out["cpu"] = cpu
    return out


def _tmpfs(destination: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": [*options]}


# Where the node mounts its own preview runtime (read-only) in every sandbox: the local
# node's stand-in for the preview image, which ships the same file at the same path. The
# host path of the checkout may itself be hidden in the sandbox (under /tmp, /root, ...).
RUNTIME_MOUNT = "/opt/vibeplane/vibeplane_sandbox"


def _mounts(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    masked_paths: Sequence[str],
    runtime_source: str | None = None,
) -> list[dict[str, Any]]:
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        _tmpfs("/dev", "nosuid", "strictatime", "mode=755", "size=65536k"),
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    mounts += [_tmpfs(path, "ro", "nosuid", "nodev", "noexec", "size=4k") for path in masked_paths]
    if runtime_source is not None:
        mounts.append(
            {
                "destination": RUNTIME_MOUNT,
                "type": "bind",
                "source": runtime_source,
                "options": ["rbind", "ro", "nosuid", "nodev"],
            }
        )
    destinations: set[str] = set()
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise BundleError(
                "CreateContainerConfigError", f"volume {mount['name']!r} is not defined"
            )
        if "emptyDir" not in volume:
            continue  # the service-account token volume; pod_problems refuses the others
        options = ["nosuid", "nodev", "mode=1777"]
        size = (volume.get("emptyDir") or {}).get("sizeLimit")
        if size is not None:
            options.append(f"size={_bytes(size)}")
        if mount.get("readOnly"):
            options.append("ro")
        mounts.append(_tmpfs(mount["mountPath"], *options))
        destinations.add(mount["mountPath"].rstrip("/") or "/")
    if "/tmp" not in destinations:
        mounts.append(
            _tmpfs("/tmp", "nosuid", "nodev", "mode=1777", f"size={_bytes(DEFAULT_TMP_SIZE)}")
        )
    return mounts


def sandbox_id(pod_uid: str, container: str, attempt: int) -> str:
    """The runsc container id of one attempt: a new id per restart, like CRI container ids."""
    return f"{pod_uid}-{container}-{attempt}"


def oci_config(
    pod: Mapping[str, Any],
    container_name: str,
    port: int,
    *,
    masked_paths: Sequence[str] = DEFAULT_MASKED_PATHS,
    lookups: Lookups | None = None,
    allocatable: Mapping[str, str] | None = None,
    cgroups_path: str | None = None,
    host_ip: str = "127.0.0.1",
    runtime_source: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime config for one container of `pod`, listening on loopback `port`.

    Raises BundleError (with a kubelet-style reason) when the pod cannot run here.
    """
    problems = pod_problems(pod)
    if problems:
        raise BundleError("UnsupportedPodSpec", "; ".join(problems))
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    containers = {c["name"]: c for c in spec.get("containers") or []}
    if container_name not in containers:
        raise BundleError("CreateContainerConfigError", f"no container {container_name!r}")
    container = containers[container_name]
    context = _security(pod, container)
    if context.get("privileged"):
        raise BundleError("CreateContainerConfigError", "privileged containers are not supported")

    uid = int(context.get("runAsUser", DEFAULT_UID))
    gid = int(context.get("runAsGroup", uid))
    if uid == 0:
        raise BundleError(
            "CreateContainerConfigError",
            "the local node does not run containers as root (its root filesystem is the host's);"
            " set securityContext.runAsUser to a non-zero uid",
        )
    pod_context = spec.get("securityContext") or {}
    extra_gids = sorted(
        {int(g) for g in pod_context.get("supplementalGroups") or []}
        | ({int(pod_context["fsGroup"])} if "fsGroup" in pod_context else set())
    )

    command = list(container.get("command") or [])
    if not command:
        raise BundleError(
            "CreateContainerConfigError",
            f"container {container_name!r} has no command: the local node has no images, so the"
            " command must name a program on the host",
        )
    env = environment(
        pod, container, port, host_ip=host_ip, lookups=lookups, allocatable=allocatable
    )
    args = [expand(arg, env.get) for arg in [*command, *(container.get("args") or [])]]

    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if extra_gids:
        user["additionalGids"] = extra_gids
    process = {
        "terminal": False,
        "user": user,
        "args": args,
        "env": [f"{name}={value}" for name, value in env.items()],
        "cwd": container.get("workingDir") or "/",
        "capabilities": _capabilities(context, uid),
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": NOFILE_LIMIT, "soft": NOFILE_LIMIT},
            {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
        ],
        # allowPrivilegeEscalation defaults to true in Kubernetes; here only an explicit true
        # leaves setuid binaries working, since the host's binaries are what is mounted.
        "noNewPrivileges": context.get("allowPrivilegeEscalation") is not True,
    }
    linux: dict[str, Any] = {
        # No network namespace: runsc --network=host gives the sandbox the host's stack.
        "namespaces": [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")],
        "resources": _resources(container),
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    annotations = {
        "io.kubernetes.pod.namespace": metadata.get("namespace", ""),
        "io.kubernetes.pod.name": metadata.get("name", ""),
        "io.kubernetes.pod.uid": metadata.get("uid", ""),
        "io.kubernetes.container.name": container_name,
        PORT_ANNOTATION: str(port),
    }
    return {
        "ociVersion": "1.0.0",
        "process": process,
        # Why the host's `/`: there is no container engine or image store on the machines this
        # node serves; read-only keeps the host intact and gVisor's gofer mediates every access.
        "root": {"path": "/", "readonly": True},
        "hostname": env["HOSTNAME"],
        "mounts": _mounts(pod, container, masked_paths, runtime_source),
        "annotations": annotations,
        "linux": linux,
    }
