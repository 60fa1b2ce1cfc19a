"""Chaos: many apps generating at once while the operator is SIGKILLed at random points, the
API server restarts, S3 answers 500s and hangs, the model times out and answers garbage, and a
competing writer provokes 409 conflicts. Then, with the disruptions over, every run must end
converged, with exactly one charge per settled generation, no orphaned objects and no lost
revision, all read from the real state (see tests/chaos/invariants.py).

The short form runs in the default suite; `--chaos-long` (or VIBEPLANE_CHAOS=long) runs 50
apps and 20 kills. VIBEPLANE_CHAOS_SEED=<seed> replays a run's schedule.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.chaos.disrupt import ConflictWriter, LedgerWatch, Timeline, until_done
from tests.chaos.faults import MODEL_FAULTS, ModelFaults, S3Faults
from tests.chaos.fixtures import PLATFORM, REPORTS, Form
from tests.chaos.invariants import (
    ChaosApp,
    ChargeCount,
    charged_records,
    convergence_problem,
    failures_explained,
    ledger_charges,
    orphans,
    revisions_in_s3,
)
from tests.integration.conftest import S3, OperatorProcess
from tests.integration.support import (
    GROUP,
    VERSION,
    AuditLog,
    create_object,
    find_condition,
    wait_for,
)
from vibeplane.budget.store import LedgerStore
from vibeplane.storage.s3 import app_prefix
from vibeplane.vibeapp.handlers import PREVIEW_KINDS
from vibeplane_dev.cluster.local import OPERATOR_USER, LocalCluster

pytestmark = pytest.mark.integration

# First prompts the builtin model understands, each named after its app (`{title}`), so that
# every prompt of the run is unique and a model call tells which app and revision it is for.
FIRST_PROMPTS = (
    "a todo list called {title} with title and due date",
    "a landing page for a bakery called {title}",
    "a contact form called {title} with name, email and message",
    "an expense tracker called {title} with amount, category and date",
    "a sales dashboard called {title} with a bar chart",
)
FOLLOW_UPS = ("change the title to {title}", "use a dark theme and change the title to {title}")


@dataclass
class Run:
    """One chaos run: its apps, and what happened to them."""

    form: Form
    seed: int
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Name -> the Workspace as created and Ready."""
    doomed_workspace: str = ""
    apps: list[ChaosApp] = field(default_factory=list)

    @property
    def live(self) -> list[ChaosApp]:
        return [app for app in self.apps if not app.doomed]

    @property
    def doomed(self) -> list[ChaosApp]:
        return [app for app in self.apps if app.doomed]


def _prompts(index: int, count: int, rng: random.Random) -> list[str]:
    title = f"Chaos A{index}"
    first = FIRST_PROMPTS[index % len(FIRST_PROMPTS)].format(title=title)
    return [first] + [
        rng.choice(FOLLOW_UPS).format(title=f"{title} R{n}") for n in range(2, count + 1)
    ]


def _workspace(api: ApiClient, name: str) -> dict[str, Any]:
    create_object(
        api,
        "Workspace",
        name,
        {
            "budget": {"tokens": 100_000_000, "money": "10000"},
            "dataSharing": {"allowTraining": True},
        },
    )
    custom = kubernetes.client.CustomObjectsApi(api)

    def ready() -> dict[str, Any] | None:
        body = dict(custom.get_cluster_custom_object(GROUP, VERSION, "workspaces", name))
        condition = find_condition(body, "Ready")
        return body if condition and condition["status"] == "True" else None

    return wait_for(ready, timeout=60, what=f"workspace {name} Ready")


@pytest.fixture
def run(api: ApiClient, form: Form, seed: int, chaos_operator: OperatorProcess) -> Iterator[Run]:
    """The run's workspaces (one more for the apps that are deleted during it), deleted after
    it with everything in them while the chaos operator still runs (their apps' finalizers)."""
    run = Run(form, seed)
    prefix = f"chaos{uuid.uuid4().hex[:4]}"
    names = [f"{prefix}-{i}" for i in range(form.workspaces)]
    run.doomed_workspace = f"{prefix}-gone"
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        for name in [*names, run.doomed_workspace]:
            run.workspaces[name] = _workspace(api, name)
        yield run
    finally:
        for name in run.workspaces:
            custom.delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)
        for name, body in run.workspaces.items():
            namespace = body["status"]["namespace"]
            try:
                wait_for(
                    lambda ns=namespace: (
                        not custom.list_namespaced_custom_object(GROUP, VERSION, ns, "vibeapps")[
                            "items"
                        ]
                    ),
                    timeout=60,
                    what=f"the apps of {name} gone",
                )
            except AssertionError as error:
                print(f"teardown: {error}")


def _create_apps(api: ApiClient, run: Run, model_faults: ModelFaults, rng: random.Random) -> None:
    form = run.form
    live_workspaces = [name for name in run.workspaces if name != run.doomed_workspace]
    with_preview = set(rng.sample(range(form.apps), form.previews))
    for index in range(form.apps + form.deleted_apps):
        doomed = index >= form.apps
        workspace = (
            run.doomed_workspace if doomed else live_workspaces[index % len(live_workspaces)]
        )
        app = ChaosApp(
            name=f"a{index}",
            namespace=run.workspaces[workspace]["status"]["namespace"],
            workspace=workspace,
            prompts=_prompts(index, form.prompts, rng),
            preview=index in with_preview or (doomed and index % 2 == 0),
            doomed=doomed,
        )
        for number, prompt in enumerate(app.prompts, start=1):
            model_faults.prompts[prompt] = (app.name, number)
        run.apps.append(app)
    for app in run.apps:
        created = create_object(
            api,
            "VibeApp",
            app.name,
            {"prompts": app.prompts[:1], "preview": {"enabled": app.preview}},
            namespace=app.namespace,
        )
        app.uid = created["metadata"]["uid"]


def _schedule(
    run: Run,
    rng: random.Random,
    api: ApiClient,
    cluster: LocalCluster,
    operator: OperatorProcess,
    s3_faults: S3Faults,
) -> Timeline:
    """The disruptions, at seeded random points of the window."""
    form, window = run.form, run.form.window
    custom = kubernetes.client.CustomObjectsApi(api)
    timeline = Timeline()

    def append(app: ChaosApp, count: int) -> Callable[[], None]:
        def action() -> None:
            until_done(
                lambda: custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    app.namespace,
                    "vibeapps",
                    app.name,
                    {"spec": {"prompts": app.prompts[:count]}},
                ),
                f"appending a prompt to {app.name}",
            )
            app.given = count

        return action

    def delete(app: ChaosApp) -> Callable[[], None]:
        return lambda: until_done(
            lambda: custom.delete_namespaced_custom_object(
                GROUP, VERSION, app.namespace, "vibeapps", app.name
            ),
            f"deleting {app.name}",
        )

    def kill(downtime: float) -> Callable[[], None]:
        def action() -> None:
            operator.stop(kill=True)
            time.sleep(downtime)
            operator.start()  # fails the run if the operator cannot come back (a crash loop)

        return action

    def restart_apiserver() -> None:
        before = cluster.process("apiserver").pid()
        after = cluster.restart("apiserver", grace=2.0)
        assert after != before, "the API server kept its pid"

    for app in run.apps:
        # A doomed app gets its prompts before it goes, the others until late in the window.
        last = rng.uniform(0.15, 0.7) * window if app.doomed else 0.75 * window
        moments = sorted(rng.uniform(0.05 * window, last) for _ in app.prompts[1:])
        for count, at in enumerate(moments, start=2):
            timeline.add(at, f"append {app.name} prompt {count}", append(app, count))
        if app.doomed:
            timeline.add(last, f"delete {app.name}", delete(app))
    for at in sorted(rng.uniform(0.03, 0.97) * window for _ in range(form.kills)):
        timeline.add(at, "kill the operator", kill(rng.uniform(0, 1.0)))
    for _ in range(form.apiserver_restarts):
        timeline.add(rng.uniform(0.2, 0.8) * window, "restart the API server", restart_apiserver)
    for _ in range(form.s3_bursts):
        timeline.add(
            rng.uniform(0.05, 0.5) * window,
            "S3 500 burst",
            lambda: s3_faults.burst(form.burst_seconds),
        )
    for _ in range(form.s3_hangs):
        timeline.add(rng.uniform(0.05, 0.5) * window, "S3 hang", lambda: s3_faults.hang(1))
    return timeline


def _app_body(api: ApiClient, app: ChaosApp) -> dict[str, Any] | None:
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        return dict(
            until_done(
                lambda: custom.get_namespaced_custom_object(
                    GROUP, VERSION, app.namespace, "vibeapps", app.name
                ),
                f"reading {app.name}",
            )
        )
    except kubernetes.client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise


def _converge(api: ApiClient, run: Run, timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until every live app is converged and every deleted app is gone; the live apps'
    bodies by uid. Fails with what is still not converged."""
    deadline = time.monotonic() + timeout
    while True:
        problems, bodies = [], {}
        for app in run.apps:
            body = _app_body(api, app)
            if app.doomed:
                if body is not None:
                    problems.append(f"deleted app {app.name} is still there")
                continue
            if body is None:
                problems.append(f"{app.name} is gone")
                continue
            bodies[app.uid] = body
            problem = convergence_problem(app, body)
            if problem:
                problems.append(problem)
        if not problems:
            return bodies
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not converged {timeout:.0f}s after the disruptions:\n" + "\n".join(problems)
            )
        time.sleep(1)


def _previews(api: ApiClient, namespaces: list[str]) -> list[dict[str, Any]]:
    """The preview Deployments and Services in these namespaces."""
    found = []
    client = kubernetes.dynamic.DynamicClient(api)
    for kind in PREVIEW_KINDS:
        if kind.kind == "Pod":
            continue
        resource = client.resources.get(api_version=kind.api_version, kind=kind.kind)
        selector = ",".join(f"{k}={v}" for k, v in kind.labels.items())
        for namespace in namespaces:
            for item in resource.get(namespace=namespace, label_selector=selector).to_dict()[
                "items"
            ]:
                found.append({**item, "kind": kind.kind})
    return found


def _conflicts(audit: AuditLog, mark: int) -> Counter[str]:
    """409s the operator's writes met, by resource, as the API server's audit log has them."""
    met: Counter[str] = Counter()
    for event in audit.events_since(mark):
        if (
            event.get("stage") == "ResponseComplete"
            and event.get("user", {}).get("username") == OPERATOR_USER
            and (event.get("responseStatus") or {}).get("code") == 409
        ):
            met[(event.get("objectRef") or {}).get("resource", "?")] += 1
    return met


def test_chaos_run_converges_charges_once_and_loses_nothing(
    request: pytest.FixtureRequest,
    api: ApiClient,
    cluster: LocalCluster,
    s3: S3,
    audit: AuditLog,
    chaos_operator: OperatorProcess,
    chaos_preview_node: str,
    s3_faults: S3Faults,
    model_faults: ModelFaults,
    run: Run,
    artifacts: Path,
) -> None:
    """Proves that under every disruption at once the operator ends where it should, by the
    real state: each app converged (see `convergence_problem`, which says what that means for
    an app whose generations the injected faults made fail), each generation a model answered
    charged exactly once under one idempotency key (every ledger version is watched), every
    revision's bundle in S3 as status names it, nothing orphaned, nothing left reserved."""
    form, seed = run.form, run.seed
    rng = random.Random(seed)
    print(f"\nchaos: {form.name} form, seed {seed} (VIBEPLANE_CHAOS_SEED={seed} replays it)")
    started = time.monotonic()
    request.addfinalizer(s3_faults.calm)  # nothing armed is left for the module's other tests
    mark = audit.mark()
    watch = LedgerWatch(api, PLATFORM, set(run.workspaces))
    watch.start()
    _create_apps(api, run, model_faults, rng)
    writer = ConflictWriter(
        api,
        PLATFORM,
        watch.busy,
        lambda: [(app.namespace, app.name) for app in run.live],
        form.conflict_pause,
    )
    timeline = _schedule(run, rng, api, cluster, chaos_operator, s3_faults)

    # The disruptions.
    s3_faults.set_plan(fault_fraction=form.s3_fault_fraction, kinds={"500": 1.0})
    # The first call surely meets a fault; the others by chance.
    model_faults.set_plan(
        fault_fraction=form.model_fault_fraction, kinds=dict(MODEL_FAULTS), fault_next=1
    )
    writer.start()
    timeline.start()
    try:
        timeline.join(form.window + 60 + 15 * form.kills)
    finally:
        # An S3 hang armed in the window still meets the operator's next S3 request: the
        # timeline runs its steps in order, and on a loaded machine (an operator taking half a
        # minute to come back after a kill) it can arm the hang just before this point.
        s3_faults.calm(keep_armed_hangs=True)
        model_faults.calm()
        writer.stop()
    disrupted = time.monotonic()
    assert not timeline.errors, "\n".join(timeline.errors)

    # The end state.
    bodies = _converge(api, run, form.converge_timeout)
    converged = time.monotonic()
    namespaces = sorted({app.namespace for app in run.apps})
    by_uid = {app.uid: app for app in run.live}
    wait_for(
        lambda: not orphans(_previews(api, namespaces), by_uid, [], s3.store, []),
        timeout=60,
        what="the deleted apps' previews collected",
    )
    watch.wait_caught_up(30)
    watch.stop()

    problems: list[str] = []
    for app in run.live:
        body = bodies[app.uid]
        problems += failures_explained(app, body, model_faults.calls)
        problems += revisions_in_s3(app, body, s3.store, s3.store.settings.bucket)
    problems += orphans(
        _previews(api, namespaces), by_uid, run.doomed, s3.store, list(run.workspaces)
    )
    count = ChargeCount()
    ledgers = LedgerStore(PLATFORM)
    for name, workspace in run.workspaces.items():
        apps = [(app, bodies[app.uid]) for app in run.live if app.workspace == name]
        ledger = ledgers.read(name, workspace["metadata"]["uid"], "Monthly")
        problems += ledger_charges(
            name,
            ledger,
            [step for step in watch.steps if step.workspace == name],
            charged_records(apps),
            name == run.doomed_workspace,
            count,
        )

    revisions = [r for body in bodies.values() for r in body["status"]["revisions"]]
    conflicts = _conflicts(audit, mark)
    done = Counter(name for _, name in timeline.done)
    report = {
        "form": form.name,
        "seed": seed,
        "seconds": {
            "disrupted": round(disrupted - started, 1),
            "converged_after": round(converged - disrupted, 1),
            "total": round(time.monotonic() - started, 1),
        },
        "apps": {
            "live": len(run.live),
            "deleted": len(run.doomed),
            "with_preview": sum(app.preview for app in run.live),
        },
        "disruptions": {
            "operator_kills": done["kill the operator"],
            "apiserver_restarts": done["restart the API server"],
            "s3_faults": dict(s3_faults.injected),
            "s3_requests_passed": s3_faults.passed,
            "model_faults": dict(model_faults.injected),
            "model_calls": len(model_faults.calls),
            "conflicts_met": dict(conflicts),
            "competing_writes": writer.writes,
        },
        "outcome": {
            "revisions": len(revisions),
            "revisions_with_bundle": sum(bool(r.get("sha256")) for r in revisions),
            "revisions_failed": sum(not r.get("sha256") for r in revisions),
            "generations_settled": count.settled_generations,
            "charges": count.charges,
            "charges_unattributed": count.unattributed,
            "releases": count.releases,
            "tokens_charged": count.tokens,
            "money_charged": str(count.money),
            "ledger_versions_seen": watch.versions,
            "ledger_watch_relists": watch.relists,
        },
        "problems": problems,
    }
    (artifacts / "chaos-report.json").write_text(json.dumps(report, indent=2) + "\n")
    # What the checks read, for whoever has to find out why one failed.
    evidence = {
        "apps": list(bodies.values()),
        "ledger_steps": [
            {**asdict(step), "closed": sorted(step.closed), "money": str(step.money)}
            for step in watch.steps
        ],
        "model_calls": [asdict(call) for call in model_faults.calls],
        "timeline": timeline.done,
    }
    (artifacts / "chaos-evidence.json").write_text(json.dumps(evidence, indent=1))
    lines = [
        f"chaos ({form.name}, seed {seed}): "
        + json.dumps({k: report[k] for k in report if k != "problems"})
    ]
    request.config.stash.setdefault(REPORTS, []).extend(lines)
    print("\n".join(lines))

    assert not problems, "\n".join(problems)
    # The disruptions happened as planned: a run that injected nothing proves nothing.
    assert done["kill the operator"] == form.kills
    assert done["restart the API server"] == form.apiserver_restarts
    assert s3_faults.injected["500"] > 0
    assert s3_faults.injected["hang"] == form.s3_hangs
    assert sum(model_faults.injected.values()) > 0
    assert sum(conflicts.values()) > 0
    assert count.settled_generations > 0


@pytest.fixture
def workspace(api: ApiClient, chaos_operator: OperatorProcess) -> Iterator[dict[str, Any]]:
    name = f"chaos{uuid.uuid4().hex[:4]}-one"
    yield _workspace(api, name)
    kubernetes.client.CustomObjectsApi(api).delete_cluster_custom_object(
        GROUP, VERSION, "workspaces", name
    )


def test_deleting_an_app_while_it_generates_leaves_nothing_in_s3(
    api: ApiClient, s3: S3, workspace: dict[str, Any], model_faults: ModelFaults
) -> None:
    """Regression, found by the chaos run: the finalizer of an app deleted mid-generation
    removed the app's S3 objects while the model was still answering; the generation then
    stored its bundle and revision index under the deleted app's prefix, where nothing would
    ever remove them. The finalizer now waits for the generation to end."""
    namespace, name = workspace["status"]["namespace"], workspace["metadata"]["name"]
    custom = kubernetes.client.CustomObjectsApi(api)
    prompt = "a todo list called Chaos Z0 with title and due date"
    model_faults.prompts[prompt] = ("z0", 1)
    model_faults.set_plan(delay=4.0)  # the model answers slowly: time to delete the app
    try:
        created = create_object(
            api,
            "VibeApp",
            "z0",
            {"prompts": [prompt], "preview": {"enabled": False}},
            namespace=namespace,
        )
        wait_for(lambda: ("z0", 1) in model_faults.arrivals, timeout=30, what="the model call")
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "z0")
        app = ChaosApp("z0", namespace, name, [prompt], preview=False, doomed=True)
        wait_for(lambda: _app_body(api, app) is None, timeout=60, what="the app gone")
        wait_for(lambda: model_faults.calls_for("z0", 1), timeout=30, what="the model's answer")
        time.sleep(2)  # what the generation would store, it has stored by now
        prefix = app_prefix(name, created["metadata"]["uid"])
        assert s3.store.keys(prefix) == []
    finally:
        model_faults.calm()


def test_deleting_an_app_gives_back_what_it_reserved(
    api: ApiClient,
    workspace: dict[str, Any],
    model_faults: ModelFaults,
    chaos_operator: OperatorProcess,
) -> None:
    """Regression, found by the chaos run: an attempt reserved its budget, the operator was
    killed during the model call, and the app was deleted before a new operator ran the
    attempt again. Nothing ever settled or released that reservation: it held the workspace's
    budget for an hour. The finalizer now releases what the app still holds."""
    namespace, name = workspace["status"]["namespace"], workspace["metadata"]["name"]
    custom = kubernetes.client.CustomObjectsApi(api)
    prompt = "a todo list called Chaos Z1 with title and due date"
    model_faults.prompts[prompt] = ("z1", 1)
    model_faults.set_plan(delay=3.0)
    ledgers = LedgerStore(PLATFORM)
    try:
        created = create_object(
            api,
            "VibeApp",
            "z1",
            {"prompts": [prompt], "preview": {"enabled": False}},
            namespace=namespace,
        )
        uid = created["metadata"]["uid"]
        wait_for(lambda: ("z1", 1) in model_faults.arrivals, timeout=30, what="the model call")
        chaos_operator.stop(kill=True)  # reserved, and now nobody will settle it
        held = ledgers.read(name, workspace["metadata"]["uid"], "Monthly").reservations
        assert [key for key in held if key.startswith(f"{uid}:")], held
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps", "z1")
    finally:
        model_faults.calm()
        chaos_operator.start()
    app = ChaosApp("z1", namespace, name, [prompt], preview=False, doomed=True)
    wait_for(lambda: _app_body(api, app) is None, timeout=60, what="the app gone")
    ledger = ledgers.read(name, workspace["metadata"]["uid"], "Monthly")
    assert not [key for key in ledger.reservations if key.startswith(f"{uid}:")]
    assert ledger.settled.tokens == 0  # released, not charged: no answer was stored
