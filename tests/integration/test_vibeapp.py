"""VibeApps end to end: real control plane, MinIO on loopback, the builtin model served by the
real modelserver, previews under gVisor on the local preview node."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import S3, ModelServer, OperatorProcess
from tests.integration.support import (
    GROUP,
    VERSION,
    AuditLog,
    StubModel,
    create_object,
    find_condition,
    wait_for,
)
from vibeplane.budget.store import LedgerStore
from vibeplane.generation.client import chat
from vibeplane.settings import OperatorSettings
from vibeplane.storage.s3 import app_prefix
from vibeplane_dev.cluster.local import OPERATOR_USER

pytestmark = pytest.mark.integration
PLATFORM = OperatorSettings().platform_namespace


@pytest.fixture
def tenant(api: ApiClient, operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    """A ready workspace; spec overridable through indirect parametrization."""
    custom = kubernetes.client.CustomObjectsApi(api)
    name = f"va{uuid.uuid4().hex[:6]}"
    create_object(
        api,
        "Workspace",
        name,
        {
            "budget": {"tokens": 5_000_000, "money": "100"},
            "dataSharing": {"allowTraining": True},
        },
    )

    def ready() -> dict[str, Any] | None:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name)
        condition = find_condition(obj, "Ready")
        return dict(obj) if condition and condition["status"] == "True" else None

    yield wait_for(ready, timeout=30, what="workspace Ready")
    custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


def _app(api: ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "vibeapps", name
        )
    )


def _wait_phase(
    api: ApiClient,
    namespace: str,
    name: str,
    phase: str,
    revision: int | None = None,
    timeout: float = 180,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        app = _app(api, namespace, name)
        status = app.get("status") or {}
        if status.get("phase") == phase and (
            revision is None or status.get("revision") == revision
        ):
            return app
        return None

    return wait_for(reached, timeout=timeout, what=f"{name} {phase} rev {revision}")


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text: str = response.read().decode()
        return text


def test_prompt_to_running_preview_with_revisions_and_rollback(
    api: ApiClient, tenant: dict[str, Any], s3: S3, preview_node: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    create_object(
        api,
        "VibeApp",
        "todo",
        {"prompts": ["a todo list with title and due date"]},
        namespace=namespace,
    )
    app = _wait_phase(api, namespace, "todo", "Running", 1)
    first = app["status"]["revisions"][0]
    assert first["model"] == "builtin"
    assert first["tokensIn"] > 0
    assert first["tokensOut"] > 0
    # The bundle in S3 is the one status names, byte for byte.
    key = first["artifactUri"].split("/", 3)[3]
    data = s3.store.get(key)
    assert data is not None
    assert hashlib.sha256(data).hexdigest() == first["sha256"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as bundle:
        assert "index.html" in bundle.getnames()
    # Admitted under the restricted pod security level, in gVisor, with a URL that answers.
    deployment = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(
        "todo-preview", namespace
    )
    assert deployment.spec.template.spec.runtime_class_name == "gvisor"
    ns = kubernetes.client.CoreV1Api(api).read_namespace(namespace)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    page = _page(app["status"]["url"])
    assert "Todo" in page

    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "vibeapps",
        "todo",
        {"spec": {"prompts": ["a todo list with title and due date", "add a priority field"]}},
    )
    app = _wait_phase(api, namespace, "todo", "Running", 2)
    assert "priority" in _page(app["status"]["url"]).lower() + _app_js(app)
    index = s3.store.read_index(workspace, app["metadata"]["uid"])
    assert [entry["number"] for entry in index] == [1, 2]

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "vibeapps", "todo", {"spec": {"pinnedRevision": 1}}
    )
    app = _wait_phase(api, namespace, "todo", "Running", 1)
    assert "priority" not in _app_js(app)
    assert len(app["status"]["revisions"]) == 2  # rollback generated nothing


def _app_js(app: dict[str, Any]) -> str:
    url = app["status"]["url"].rstrip("/") + "/app.js"
    try:
        return _page(url).lower()
    except OSError:
        return ""


def test_budget_exhausted_means_no_model_call(
    api: ApiClient, operator: OperatorProcess, model_server: ModelServer
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    name = f"poor{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"budget": {"tokens": 100}})
    try:
        namespace = wait_for(
            lambda: (
                custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name).get("status")
                or {}
            ).get("namespace"),
            timeout=30,
            what="namespace",
        )
        calls_before = model_server.requests()
        create_object(
            api, "VibeApp", "a", {"prompts": ["a landing page for a bakery"]}, namespace=namespace
        )
        app = _wait_phase(api, namespace, "a", "BudgetExceeded", timeout=60)
        assert find_condition(app, "BudgetOK")["status"] == "False"  # type: ignore[index]
        time.sleep(2)
        assert model_server.requests() == calls_before
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


def test_training_records_only_when_allowed_and_deletion_cleans_s3(
    api: ApiClient, tenant: dict[str, Any], s3: S3, model_server: ModelServer
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    create_object(
        api,
        "VibeApp",
        "form",
        {
            "prompts": ["a contact form with name, email and message"],
            "preview": {"enabled": False},
        },
        namespace=namespace,
    )
    app = wait_for(
        lambda: (
            (_app(api, namespace, "form").get("status") or {}).get("revision")
            and _app(api, namespace, "form")
        ),
        timeout=120,
        what="revision 1",
    )
    uid = app["metadata"]["uid"]
    records = [k for k in s3.store.keys("datasets/interactions/") if f".{uid}." in k]
    assert len(records) == 1
    record = json.loads(s3.store.get(records[0]) or b"{}")
    assert record["prompt"] == "a contact form with name, email and message"
    assert record["model"] == "builtin"

    assert s3.store.keys(app_prefix(workspace, uid))
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "form")
    wait_for(
        lambda: not s3.store.keys(app_prefix(workspace, uid)), timeout=30, what="S3 objects deleted"
    )
    ledger = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly")
    revision = app["status"]["revisions"][0]
    assert ledger.settled.tokens == revision["tokensIn"] + revision["tokensOut"]

    # A workspace that does not allow training leaves no record.
    private = f"priv{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", private, {"dataSharing": {"allowTraining": False}})
    try:
        private_ns = wait_for(
            lambda: (
                custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", private).get(
                    "status"
                )
                or {}
            ).get("namespace"),
            timeout=30,
            what="namespace",
        )
        create_object(
            api,
            "VibeApp",
            "p",
            {
                "prompts": ["a contact form with name and email"],
                "preview": {"enabled": False},
            },
            namespace=private_ns,
        )
        generated = wait_for(
            lambda: (
                (_app(api, private_ns, "p").get("status") or {}).get("revision")
                and _app(api, private_ns, "p")
            ),
            timeout=120,
            what="private revision",
        )
        private_uid = generated["metadata"]["uid"]
        assert not [k for k in s3.store.keys("datasets/interactions/") if f".{private_uid}." in k]
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", private)


BAD_OUTPUTS = {
    "traversal": '<file path="../../etc/evil.js">\nx\n</file>\n',
    "absolute": '<file path="/etc/passwd">\nroot::0:0\n</file>\n',
    "too-many-files": "".join(f'<file path="f{i}.js">\nx\n</file>\n' for i in range(10_000)),
    "huge-file": '<file path="big.js">\n' + "x" * (50 * 1024 * 1024) + "\n</file>\n",
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
def test_bad_model_output_is_refused_and_nothing_reaches_s3(
    api: ApiClient, tenant: dict[str, Any], s3: S3, case: str
) -> None:
    model = StubModel(lambda _: BAD_OUTPUTS[case])
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    try:
        create_object(
            api,
            "ModelDeployment",
            "evil",
            {
                "model": {"name": "evil"},
                "serving": {"external": {"baseURL": model.url, "model": "evil"}},
            },
            namespace=namespace,
        )
        create_object(
            api,
            "VibeApp",
            "bad",
            {"prompts": ["a todo list"], "model": "evil"},
            namespace=namespace,
        )

        def refused() -> dict[str, Any] | None:
            condition = find_condition(_app(api, namespace, "bad"), "Generated")
            return condition if condition and condition["reason"] == "AllModelsFailed" else None

        condition = wait_for(refused, timeout=90, what="the output refused")
        # A 50 MB answer is refused by the client's response limit (32 MiB) before parsing.
        expected = {
            "traversal": "PathTraversal",
            "absolute": "AbsolutePath",
            "too-many-files": "TooManyFiles",
            "huge-file": "the response exceeds",
        }[case]
        assert expected in condition["message"]
        uid = _app(api, namespace, "bad")["metadata"]["uid"]
        assert s3.store.keys(app_prefix(workspace, uid)) == []
        ledger = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly")
        assert ledger.settled.tokens == 0  # a refused output is not charged
    finally:
        model.close()


def test_a_refused_answer_is_named_when_another_model_answers(
    api: ApiClient, tenant: dict[str, Any], operator: OperatorProcess, model_server: ModelServer
) -> None:
    """A model whose answer the checks refuse falls through to its fallback, and the revision
    record, a Warning Event on the app and a metric say which model broke which rule."""
    model = StubModel(lambda _: BAD_OUTPUTS["traversal"])
    namespace = tenant["status"]["namespace"]
    try:
        create_object(
            api,
            "ModelDeployment",
            "sloppy",
            {
                "model": {"name": "sloppy"},
                "serving": {"external": {"baseURL": model.url, "model": "sloppy"}},
                "routing": {"fallbacks": ["builtin"]},
            },
            namespace=namespace,
        )

        def sloppy_ready() -> bool:
            md = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", "sloppy"
            )
            return (find_condition(md, "Ready") or {}).get("status") == "True"

        wait_for(sloppy_ready, timeout=30, what="sloppy Ready")  # else it is not routed to
        create_object(
            api,
            "VibeApp",
            "fallen",
            {"prompts": ["a todo list"], "model": "sloppy", "preview": {"enabled": False}},
            namespace=namespace,
        )
        app = wait_for(
            lambda: (
                (_app(api, namespace, "fallen").get("status") or {}).get("revision")
                and _app(api, namespace, "fallen")
            ),
            timeout=120,
            what="a revision",
        )
        revision = app["status"]["revisions"][0]
        assert revision["model"] == "builtin"
        refused = revision["refusedAnswers"]
        assert [(r["model"], r["reason"]) for r in refused] == [("sloppy", "PathTraversal")]
        assert refused[0]["message"]
        events = kubernetes.client.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector="involvedObject.name=fallen"
        )
        warnings = [e for e in events.items if e.reason == "ModelAnswerRefused"]
        assert [e.type for e in warnings] == ["Warning"]
        assert "sloppy" in warnings[0].message
        assert "PathTraversal" in warnings[0].message
        assert (
            'vibeplane_model_answers_refused_total{model="sloppy",reason="PathTraversal"} 1.0'
            in operator.metrics()
        )
    finally:
        model.close()


def test_killing_the_operator_mid_generation_charges_once(
    api: ApiClient,
    tenant: dict[str, Any],
    s3: S3,
    model_server: ModelServer,
    operator: OperatorProcess,
) -> None:
    # The real builtin model's answer, after a delay long enough to kill the operator in.
    model = StubModel(
        lambda messages: chat(model_server.openai_base, "builtin", messages, None, 60).text,
        delay=6,
    )
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    try:
        create_object(
            api,
            "ModelDeployment",
            "slow",
            {
                "model": {"name": "builtin"},
                "serving": {"external": {"baseURL": model.url, "model": "builtin"}},
                "pricing": {"inputPerMillion": "1", "outputPerMillion": "2"},
            },
            namespace=namespace,
        )
        create_object(
            api,
            "VibeApp",
            "slow",
            {
                "prompts": ["a landing page for a bakery called Crumbs"],
                "model": "slow",
                "preview": {"enabled": False},
            },
            namespace=namespace,
        )
        wait_for(lambda: model.calls, timeout=60, what="the model call in flight")
        operator.stop(kill=True)  # SIGKILL while the model is answering
        operator.start()
        app = wait_for(
            lambda: (
                (_app(api, namespace, "slow").get("status") or {}).get("revision")
                and _app(api, namespace, "slow")
            ),
            timeout=120,
            what="revision 1",
        )
        revisions = app["status"]["revisions"]
        assert [r["number"] for r in revisions] == [1]
        uid = app["metadata"]["uid"]
        assert [e["number"] for e in s3.store.read_index(workspace, uid)] == [1]
        ledger = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly")
        assert ledger.settled.tokens == revisions[0]["tokensIn"] + revisions[0]["tokensOut"]
        assert ledger.reserved(datetime.now(UTC)).tokens == 0
        print(f"model calls: {len(model.calls)} (the killed one was not charged)")
    finally:
        model.close()


def test_auto_fix_sends_the_failure_back_and_charges_the_fix(
    api: ApiClient, tenant: dict[str, Any], preview_node: str
) -> None:
    # An app without a main page; told it failed, the page (drives spec.autoFix).
    model = StubModel(
        lambda messages: (
            '<file path="index.html">\n<title>Fixed</title><h1>Fixed</h1>\n</file>\n'
            if "did not start" in str(messages[-1]["content"])
            else '<file path="app.js">\nconsole.log("no page")\n</file>\n'
        ),
        usage=(100, 50),
    )
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    try:
        create_object(
            api,
            "ModelDeployment",
            "fixer",
            {
                "model": {"name": "fixer"},
                "serving": {"external": {"baseURL": model.url, "model": "fixer"}},
                "pricing": {"inputPerMillion": "1", "outputPerMillion": "1"},
            },
            namespace=namespace,
        )
        create_object(
            api,
            "VibeApp",
            "fix",
            {"prompts": ["a page"], "model": "fixer", "autoFix": {"attempts": 1}},
            namespace=namespace,
        )
        app = _wait_phase(api, namespace, "fix", "Running", 1, timeout=150)
        assert "Fixed" in _page(app["status"]["url"])
        revision = app["status"]["revisions"][0]
        assert revision["fixes"] == 1
        assert revision["validation"] == "Passed"
        assert len(model.calls) == 2
        assert "did not start" in model.calls[1]
        ledger = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly")
        assert ledger.settled.tokens == 300  # the broken generation and its fix, both charged
    finally:
        model.close()


def test_routing_falls_back_and_a_dead_end_charges_nothing(
    api: ApiClient, tenant: dict[str, Any], s3: S3, model_server: ModelServer
) -> None:
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    closed_port = _closed_port()
    # A model that is down (nothing listens), with the builtin model as its fallback.
    create_object(
        api,
        "ModelDeployment",
        "primary",
        {
            "model": {"name": "primary"},
            "serving": {
                "external": {
                    "baseURL": f"http://127.0.0.1:{closed_port}/v1",
                    "model": "primary",
                }
            },
            "routing": {"fallbacks": ["builtin"]},
        },
        namespace=namespace,
    )
    create_object(
        api,
        "VibeApp",
        "routed",
        {
            "prompts": ["a landing page for a bakery"],
            "model": "primary",
            "preview": {"enabled": False},
        },
        namespace=namespace,
    )
    app = wait_for(
        lambda: (
            (_app(api, namespace, "routed").get("status") or {}).get("revision")
            and _app(api, namespace, "routed")
        ),
        timeout=120,
        what="a revision",
    )
    revision = app["status"]["revisions"][0]
    assert revision["model"] == "builtin"
    assert revision["routeReason"].startswith("Fallback")

    # A model nobody serves: a clear condition on the app, and nothing charged.
    before = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly").settled
    create_object(
        api,
        "VibeApp",
        "lost",
        {"prompts": ["a todo list"], "model": "ghost", "preview": {"enabled": False}},
        namespace=namespace,
    )

    def stuck() -> dict[str, Any] | None:
        condition = find_condition(_app(api, namespace, "lost"), "Generated")
        return (
            condition
            if condition
            and condition["status"] == "False"
            and condition["reason"] in ("NoModelAvailable", "ModelNotAllowed")
            else None
        )

    condition = wait_for(stuck, timeout=60, what="a routing condition")
    assert "ghost" in condition["message"]
    after = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly").settled
    assert after == before


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def test_idle_previews_hibernate_and_wake(
    api: ApiClient, tenant: dict[str, Any], preview_node: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace = tenant["status"]["namespace"]
    create_object(
        api,
        "VibeApp",
        "sleepy",
        {
            "prompts": ["a landing page for a bakery"],
            "preview": {"enabled": True, "idleTimeout": "8s"},
        },
        namespace=namespace,
    )
    _wait_phase(api, namespace, "sleepy", "Running", 1)
    # Nobody visits: after the idle timeout the preview scales to zero.
    app = _wait_phase(api, namespace, "sleepy", "Hibernated", 1, timeout=60)
    assert find_condition(app, "Ready")["status"] == "True"  # type: ignore[index]
    apps = kubernetes.client.AppsV1Api(api)
    assert apps.read_namespaced_deployment("sleepy-preview", namespace).spec.replicas == 0
    # The wake annotation brings it back.
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "vibeapps",
        "sleepy",
        {"metadata": {"annotations": {"vibeplane.io/wake": stamp}}},
    )
    app = _wait_phase(api, namespace, "sleepy", "Running", 1, timeout=60)
    assert "Bakery" in _page(app["status"]["url"]) or "bakery" in _page(app["status"]["url"])


def _warm_idle(core: Any, namespace: str) -> list[Any]:
    """The workspace's warm sandboxes that are ready and not going away."""
    pods = core.list_namespaced_pod(namespace, label_selector="vibeplane.io/pool=idle").items
    return [
        pod
        for pod in pods
        if not pod.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def test_apps_at_rest_cost_no_writes_nor_after_a_restart_with_a_warm_pool(
    api: ApiClient,
    tenant: dict[str, Any],
    preview_node: str,
    operator: OperatorProcess,
    audit: AuditLog,
) -> None:
    """Once an app runs, and while another waits for a model it may use (retried every 10 s),
    with the workspace's warm pool kept: resyncs (every 3 s here), timers (readiness,
    idleness, activity polls, the waiting app's retries) and a restart of the operator send
    nothing to the API server for them, their previews, the pool, the workspace or its ledger:
    counted from the API server's audit log."""
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    core = kubernetes.client.CoreV1Api(api)
    kubernetes.client.CustomObjectsApi(api).patch_cluster_custom_object(
        GROUP, VERSION, "workspaces", workspace, {"spec": {"warmPool": 1}}
    )
    wait_for(lambda: _warm_idle(core, namespace), timeout=120, what="a warm sandbox")
    create_object(api, "VibeApp", "quiet", {"prompts": ["a todo list"]}, namespace)
    _wait_phase(api, namespace, "quiet", "Running", revision=1)
    create_object(
        api, "VibeApp", "stuck", {"prompts": ["a todo list"], "model": "ghost"}, namespace
    )

    def waiting() -> dict[str, Any] | None:
        condition = find_condition(_app(api, namespace, "stuck"), "Generated")
        reasons = ("NoModelAvailable", "ModelNotAllowed")
        return condition if condition and condition["reason"] in reasons else None

    wait_for(waiting, timeout=60, what="stuck waiting for a model")
    wait_for(lambda: _warm_idle(core, namespace), timeout=120, what="the pool refilled")
    time.sleep(4)  # the last writes of convergence (the workspace's counts) land
    mark = audit.mark()
    time.sleep(12)  # past one retry of the waiting app
    operator.restart()
    time.sleep(12)  # the restarted operator retries it at once

    def ours(event: dict[str, Any]) -> bool:
        ref = event.get("objectRef") or {}
        return (
            ref.get("namespace") == namespace
            or ref.get("name") == workspace
            or str(ref.get("name", "")).startswith(f"ledger-{workspace}-")
        )

    writes = [event for event in audit.writes(mark, OPERATOR_USER) if ours(event)]
    assert writes == [], [
        f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('name')}" for e in writes
    ]


def _sandbox_state(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/__vibeplane/revision", timeout=2) as r:
            state: dict[str, Any] = json.loads(r.read())
            return state
    except OSError:
        return {}


def test_a_new_revision_swaps_into_the_same_sandbox_even_across_an_operator_kill(
    api: ApiClient, tenant: dict[str, Any], preview_node: str, operator: OperatorProcess
) -> None:
    """A new prompt's revision reaches the running sandbox without a rollout (same pod, same
    Deployment generation). The operator is killed the moment the sandbox has taken it (before
    or after its status write): the restarted operator ends with that revision served, the
    sandbox unchanged and each generation charged once."""
    namespace, workspace = tenant["status"]["namespace"], tenant["metadata"]["name"]
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    create_object(api, "VibeApp", "swap", {"prompts": ["a todo list"]}, namespace)
    app = _wait_phase(api, namespace, "swap", "Running", 1)
    url = app["status"]["url"]
    assert _sandbox_state(url)["revision"] == 1
    pods = core.list_namespaced_pod(namespace, label_selector="vibeplane.io/app=swap").items
    generation = apps.read_namespaced_deployment("swap-preview", namespace).metadata.generation
    kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "vibeapps",
        "swap",
        {"spec": {"prompts": ["a todo list", "add a priority field"]}},
    )
    deadline = time.monotonic() + 120
    while _sandbox_state(url).get("revision") != 2:
        assert time.monotonic() < deadline, "the sandbox never took revision 2"
        time.sleep(0.01)
    operator.stop(kill=True)
    operator.start()
    app = _wait_phase(api, namespace, "swap", "Running", 2)
    assert app["status"]["delivered"]["revision"] == 2
    assert "priority" in _app_js(app) + _page(url).lower()
    after = core.list_namespaced_pod(namespace, label_selector="vibeplane.io/app=swap").items
    assert [p.metadata.uid for p in after] == [p.metadata.uid for p in pods]
    deployment = apps.read_namespaced_deployment("swap-preview", namespace)
    assert deployment.metadata.generation == generation
    revisions = app["status"]["revisions"]
    charged = sum(r["tokensIn"] + r["tokensOut"] for r in revisions)
    ledger = LedgerStore(PLATFORM).read(workspace, tenant["metadata"]["uid"], "Monthly")
    assert ledger.settled.tokens == charged
