"""Budgets near their end, end to end: 30 apps at once on a budget for about 3.7 of them, then a
raised budget. Real control plane, real operator, the builtin model on the real model server
(which honours max_tokens), the ledger watched on every version it goes through."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import kubernetes
import pytest
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import OperatorProcess
from tests.integration.support import GROUP, VERSION, create_object, find_condition, wait_for
from vibeplane.budget.store import DATA_KEY, LABEL_LEDGER
from vibeplane.settings import LABEL_WORKSPACE, OperatorSettings

pytestmark = pytest.mark.integration
PLATFORM = OperatorSettings().platform_namespace
APPS = 30
CANNOT_ADMIT = ("CannotCoverGeneration", "HardLimitReached")
"""The Workspace's BudgetExceeded reasons under which no waiting app can be admitted."""
BUDGET = Decimal("0.005")  # a todo app on the builtin model costs about 0.00136
PROMPT = "a todo list with title and due date"


class LedgerWatch:
    """Every version of one workspace's ledger document, as a watch delivers them."""

    def __init__(self, api: ApiClient, workspace: str) -> None:
        self.core = kubernetes.client.CoreV1Api(api)
        self.selector = f"{LABEL_LEDGER}=true,{LABEL_WORKSPACE}={workspace}"
        self.versions: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    listed = self.core.list_namespaced_config_map(
                        PLATFORM, label_selector=self.selector
                    )
                    for item in listed.items:
                        self._observe(item)
                    resource_version = listed.metadata.resource_version
                for event in kubernetes.watch.Watch().stream(
                    self.core.list_namespaced_config_map,
                    PLATFORM,
                    label_selector=self.selector,
                    resource_version=resource_version,
                    timeout_seconds=5,
                    _request_timeout=15,
                ):
                    if event["type"] == "ERROR":
                        raise ApiException(status=event["raw_object"].get("code", 500))
                    resource_version = event["object"].metadata.resource_version
                    if event["type"] != "DELETED":
                        self._observe(event["object"])
                    if self._stop.is_set():
                        return
            except ApiException as error:
                if error.status == 410:
                    resource_version = None
                else:
                    self._stop.wait(0.5)
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                self._stop.wait(0.5)

    def _observe(self, item: Any) -> None:
        document = json.loads((item.data or {}).get(DATA_KEY) or "{}")
        with self._lock:
            self.versions.append(document)

    def latest(self) -> dict[str, Any]:
        with self._lock:
            return self.versions[-1] if self.versions else {}

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.versions)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=20)


@dataclass
class Scenario:
    workspace: str
    namespace: str
    ledger: LedgerWatch
    figures: dict[str, Any] = field(default_factory=dict)


def _custom(api: ApiClient) -> Any:
    return kubernetes.client.CustomObjectsApi(api)


def _apps(api: ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    listed = _custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "vibeapps")
    return {item["metadata"]["name"]: item for item in listed["items"]}


def _outcome(app: dict[str, Any]) -> str | None:
    """generated, truncated, waiting (refused by the budget), or None while undecided."""
    status = app.get("status") or {}
    if any(r.get("sha256") for r in status.get("revisions") or []):
        return "generated"
    generated = find_condition(app, "Generated") or {}
    if generated.get("reason") == "OutputTruncated":
        return "truncated"
    if status.get("phase") == "BudgetExceeded":
        return "waiting"
    return None


def _settled(api: ApiClient, scenario: Scenario) -> dict[str, str] | None:
    """Every app decided, nothing reserved, and nothing the line can still admit: the apps
    that wait (if any) wait because the workspace cannot cover even the floor, by its word on
    the ledger as it stands. Without that last part a moment between a settle and the wake of
    the next waiter in line looked final, and the waiter was admitted (and charged) after."""
    apps = _apps(api, scenario.namespace)
    outcomes = {name: _outcome(app) for name, app in apps.items()}
    if len(outcomes) < APPS or None in outcomes.values():
        return None
    ledger = scenario.ledger.latest()
    if ledger.get("reservations"):
        return None
    if _cost_recorded(apps.values()) != _money(ledger):
        return None  # a settle the app's status does not hold yet (it is written just after)
    if "waiting" in outcomes.values():
        workspace = _workspace(api, scenario.workspace)
        exceeded = find_condition(workspace, "BudgetExceeded") or {}
        usage = (workspace.get("status") or {}).get("usage") or {}
        if exceeded.get("reason") not in CANNOT_ADMIT:
            return None
        if Decimal(str(usage.get("money", "-1"))) != _money(ledger):
            return None
    return {name: str(outcome) for name, outcome in outcomes.items()}


def _recorded(api: ApiClient, scenario: Scenario) -> Decimal:
    """What the apps' revisions record as charged."""
    return _cost_recorded(_apps(api, scenario.namespace).values())


def _cost_recorded(apps: Iterable[dict[str, Any]]) -> Decimal:
    return sum(
        (
            Decimal(str(revision.get("cost", "0")))
            for app in apps
            for revision in (app.get("status") or {}).get("revisions") or []
        ),
        Decimal(0),
    )


def _charged_as_recorded(api: ApiClient, scenario: Scenario) -> tuple[Decimal, Decimal]:
    """The ledger's spend and the apps' records, once they agree (a status is written just
    after its settle); AssertionError with both figures when they never do."""
    seen: list[tuple[Decimal, Decimal]] = []

    def agree() -> tuple[Decimal, Decimal] | None:
        spent, recorded = _money(scenario.ledger.latest()), _recorded(api, scenario)
        seen.append((spent, recorded))
        return (spent, recorded) if spent == recorded else None

    try:
        return wait_for(agree, timeout=30, what="the ledger's spend and the apps' records agree")
    except AssertionError as error:
        raise AssertionError(f"spent, recorded: {seen[-1]}") from error


def _money(document: dict[str, Any]) -> Decimal:
    return Decimal(str((document.get("settled") or {}).get("money", "0")))


def _figures(api: ApiClient, scenario: Scenario) -> dict[str, Any]:
    """How many apps generated and what was spent, once every app is decided."""
    outcomes = wait_for(lambda: _settled(api, scenario), timeout=300, what="30 apps decided")
    return {
        "generated": sum(1 for outcome in outcomes.values() if outcome == "generated"),
        "spent": _money(scenario.ledger.latest()),
    }


def _workspace(api: ApiClient, name: str) -> dict[str, Any]:
    return dict(_custom(api).get_cluster_custom_object(GROUP, VERSION, "workspaces", name))


@contextmanager
def thirty_apps(
    api: ApiClient, prefix: str, extra: dict[str, Any] | None = None
) -> Iterator[Scenario]:
    """A workspace with a money budget of 0.005 and 30 todo apps created at once."""
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    create_object(api, "Workspace", name, {"budget": {"money": str(BUDGET)}, **(extra or {})})
    namespace = wait_for(
        lambda: (_workspace(api, name).get("status") or {}).get("namespace"),
        timeout=30,
        what="namespace",
    )
    ledger = LedgerWatch(api, name)
    state = Scenario(name, namespace, ledger)
    try:
        yield state
    finally:
        ledger.stop()
        _custom(api).delete_cluster_custom_object(GROUP, VERSION, "workspaces", name)


def create_apps(api: ApiClient, namespace: str) -> None:
    def create(index: int) -> None:
        create_object(
            api, "VibeApp", f"todo-{index:02d}", {"prompts": [PROMPT]}, namespace=namespace
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(create, range(APPS)))


@pytest.fixture(scope="module")
def scenario(api: ApiClient, operator: OperatorProcess) -> Iterator[Scenario]:
    with thirty_apps(api, "tight") as state:
        create_apps(api, state.namespace)
        yield state


def test_thirty_apps_at_once_use_the_budget_and_say_why_the_rest_wait(
    api: ApiClient, scenario: Scenario
) -> None:
    outcomes = wait_for(lambda: _settled(api, scenario), timeout=300, what="30 apps decided")
    generated = sorted(name for name, outcome in outcomes.items() if outcome == "generated")
    truncated = sorted(name for name, outcome in outcomes.items() if outcome == "truncated")
    waiting = sorted(name for name, outcome in outcomes.items() if outcome == "waiting")
    # Each generation charged once, for what its app's revision records.
    spent, _ = _charged_as_recorded(api, scenario)
    versions = scenario.ledger.all()
    final = versions[-1]
    print(  # the figures of the report (pytest -s)
        f"\n30 apps on {BUDGET}: {len(generated)} generated, {len(truncated)} cut off, "
        f"{len(waiting)} waiting; settled {spent} ({spent * 100 / BUDGET:.0f}% of the budget) "
        f"over {len(versions)} ledger versions"
    )
    scenario.figures.update(_figures(api, scenario))
    assert len(generated) >= 3
    # Never above the budget, on every version the watch saw.
    assert all(_money(document) <= BUDGET for document in versions)
    apps = _apps(api, scenario.namespace)
    period = final["period"]["name"]
    for name in truncated:
        message = find_condition(apps[name], "Generated")["message"]  # type: ignore[index]
        print("a cut-off app says:", message)
        assert "was cut off at" in message
        assert "charged" in message
    if waiting:
        print(
            "a waiting app says:",
            (find_condition(apps[waiting[0]], "BudgetOK") or {}).get("message"),
        )
    for name in waiting:
        budget_ok = find_condition(apps[name], "BudgetOK") or {}
        assert budget_ok.get("status") == "False"
        message = str(budget_ok.get("message"))
        assert "needs at least 0.000" in message, message
        assert "output tokens, the floor of builtin, at 0.40 per million" in message, message
        assert f"remains of 0.005 for {period}" in message, message
        assert " settled, " in message, message
    # The waiting line holds every waiting app, and the workspace says what its apps see.
    line = final.get("waiting") or {}
    assert sorted(value["app"] for value in line.values()) == sorted(
        f"{scenario.namespace}/{name}" for name in waiting
    )

    def agrees() -> dict[str, Any] | None:
        workspace = _workspace(api, scenario.workspace)
        exceeded = find_condition(workspace, "BudgetExceeded") or {}
        status = workspace.get("status") or {}
        fits = not waiting
        if (exceeded.get("status") == "False") != fits:
            return None
        if Decimal(str((status.get("usage") or {}).get("money", "-1"))) != spent:
            return None
        return workspace

    workspace = wait_for(agrees, timeout=30, what="the workspace agrees with its apps")
    exceeded = find_condition(workspace, "BudgetExceeded") or {}
    if waiting:
        assert exceeded["reason"] in CANNOT_ADMIT
        assert "0.005" in exceeded["message"]
    assert workspace["status"]["reserved"]["money"] == "0"
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector=f"involvedObject.name={scenario.workspace}"
    )
    warnings = [e.reason for e in events.items if e.type == "Warning"]
    print(f"the workspace's Warning Events: {warnings}")
    if waiting:  # said once when the budget is spent, not each time generations hold it
        assert warnings.count(exceeded["reason"]) == 1


def _refusals(operator: OperatorProcess) -> float:
    """Budget refusals the operator counted so far (all workspaces)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in operator.metrics().splitlines()
        if line.startswith("vibeplane_generations_total{") and 'outcome="refused"' in line
    )


def test_a_raised_budget_lets_the_waiting_apps_generate_oldest_first(
    api: ApiClient, operator: OperatorProcess, scenario: Scenario
) -> None:
    before = wait_for(lambda: _settled(api, scenario), timeout=300, what="30 apps decided")
    line = scenario.ledger.latest().get("waiting") or {}
    order = [
        value["app"].split("/", 1)[1]
        for _, value in sorted(line.items(), key=lambda item: (item[1]["since"], item[0]))
    ]
    assert order, "no app is waiting"
    spent = _money(scenario.ledger.latest())
    refusals = _refusals(operator)
    # Room for about three more apps (each 0.00136, reserving up to 0.00336 at once).
    raised = spent + Decimal("0.0045")
    _custom(api).patch_cluster_custom_object(
        GROUP,
        VERSION,
        "workspaces",
        scenario.workspace,
        {"spec": {"budget": {"money": str(raised)}}},
    )

    def more_generated() -> dict[str, str] | None:
        outcomes = _settled(api, scenario)
        if outcomes is None:
            return None
        newly = [n for n, o in outcomes.items() if o != "waiting" and before[n] == "waiting"]
        return outcomes if len(newly) >= 2 else None

    # Woken, not polled: well within the two minutes a refused app waits before asking again.
    after = wait_for(more_generated, timeout=90, what="waiting apps generated")
    admitted = [name for name in order if after[name] != "waiting"]
    print(
        f"\nraised to {raised}: admitted {admitted} of the line {order[: len(admitted) + 2]}...; "
        f"{_refusals(operator) - refusals:.0f} refusals meanwhile ({len(order)} apps waited)"
    )
    # Oldest first: the apps that got in are the head of the line.
    assert admitted == order[: len(admitted)]
    versions = scenario.ledger.all()
    assert all(_money(document) <= raised for document in versions)
    # Each charged once: the ledger's spend is what the apps' revisions record.
    _charged_as_recorded(api, scenario)
    apps = _apps(api, scenario.namespace)
    for name in admitted:
        revisions = (apps[name].get("status") or {}).get("revisions") or []
        assert len(revisions) == 1


def test_whole_reservations_as_before_leave_a_third_of_the_budget_unused(
    api: ApiClient, operator: OperatorProcess, scenario: Scenario
) -> None:
    """The same 30 apps on a model whose floor is its whole output limit: every reservation
    is all or nothing, as before bounded reservations. Fewer apps are generated and about half
    the budget cannot be used; the figures beside those of the scenario above."""
    wait_for(lambda: _settled(api, scenario), timeout=300, what="the first scenario decided")
    with thirty_apps(api, "whole", {"models": {"default": "whole"}}) as state:
        _custom(api).create_namespaced_custom_object(
            GROUP,
            VERSION,
            state.namespace,
            "modeldeployments",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelDeployment",
                "metadata": {"name": "whole"},
                "spec": {
                    "model": {"name": "builtin"},
                    "serving": {"builtin": {}},
                    "pricing": {"inputPerMillion": "0.10", "outputPerMillion": "0.40"},
                    "limits": {"outputTokens": 8192, "minOutputTokens": 8192},
                    "tier": "small",
                },
            },
        )
        wait_for(
            lambda: (
                (
                    find_condition(
                        _custom(api).get_namespaced_custom_object(
                            GROUP, VERSION, state.namespace, "modeldeployments", "whole"
                        ),
                        "Ready",
                    )
                    or {}
                ).get("status")
                == "True"
            ),
            timeout=60,
            what="model whole Ready",
        )
        create_apps(api, state.namespace)
        outcomes = wait_for(lambda: _settled(api, state), timeout=300, what="30 apps decided")
        generated = sum(1 for outcome in outcomes.values() if outcome == "generated")
        spent = _money(state.ledger.latest())
        bounded = scenario.figures or _figures(api, scenario)
        print(
            f"\nwhole reservations: {generated} generated, settled {spent} "
            f"({spent * 100 / BUDGET:.0f}%); bounded: {bounded['generated']} generated, "
            f"settled {bounded['spent']} ({bounded['spent'] * 100 / BUDGET:.0f}%)"
        )
        assert all(_money(document) <= BUDGET for document in state.ledger.all())
        assert "truncated" not in outcomes.values()
        assert bounded["generated"] > generated
        assert bounded["spent"] > spent
