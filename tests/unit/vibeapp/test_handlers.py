"""The VibeApp reconcile's thin apply layer, with the API server, the clock, the generator,
the object store, the ledger and the preview's activity faked: what it writes and reads for
what the decisions (tests/unit/vibeapp/test_decide.py) said."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import REGISTRY

from tests.fakes.clock import FakeClock
from tests.fakes.delivery import shared_delivery_key
from tests.fakes.kube import FakeKube
from vibeplane.api.vibeapp import VibeAppSpec, VibeAppStatus
from vibeplane.controller.cache import ObjectCache
from vibeplane.controller.reconcile import Context, ObjectKey, Outcome
from vibeplane.settings import FINALIZER, LABEL_WORKSPACE, OperatorSettings
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.decide import DeliveryResult
from vibeplane.vibeapp.generate import Job, Result
from vibeplane.vibeapp.handlers import VibeAppReconciler
from vibeplane.wellknown import LABEL_RETAIN
from vibeplane_sandbox.preview import verify

NAMESPACE, WORKSPACE, UID = "ws-team", "team", "u-1"
SHA = "ab" * 32


class FakeGenerator:
    def __init__(self) -> None:
        self.submitted: list[Job] = []
        self.results: dict[str, Result] = {}
        self.woken: set[str] = set()
        self.granted: set[str] = set()
        self.on_granted: dict[str, Any] = {}
        self.busy = False

    def result(self, key: str) -> Result | None:
        return self.results.pop(key, None)

    def running(self, key: str) -> bool:
        return any(job.key == key for job in self.submitted)

    def take_wake(self, key: str) -> bool:
        if key in self.woken:
            self.woken.discard(key)
            return True
        return False

    def admitted(self, key: str) -> bool:
        return key in self.granted

    def grant(self, key: str) -> None:
        """The ledger grants the running attempt `key`, as `Generator._admit` does."""
        self.granted.add(key)
        job = next(job for job in self.submitted if job.key == key)
        if key in self.on_granted:
            self.on_granted.pop(key)(job)

    def submit(self, job: Job, done: Any, admitted: Any = None) -> None:
        self.submitted.append(job)
        if admitted is not None:
            self.on_granted[job.key] = admitted

    def app_busy(self, app_uid: str) -> bool:
        return self.busy


class FakeStore:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def presigned_get(self, key: str, seconds: int) -> str:
        return f"http://s3.invalid/vibeplane/{key}?X-Amz-Expires={seconds}"

    def delete_prefix(self, prefix: str) -> int:
        self.deleted.append(prefix)
        return 3


class FakeLedgers:
    def __init__(self) -> None:
        self.released: list[tuple[str, str, str, str]] = []

    def release_prefix(self, workspace: str, uid: str, kind: str, prefix: str) -> list[str]:
        self.released.append((workspace, uid, kind, prefix))
        return []


class Harness:
    def __init__(self, **settings: Any) -> None:
        self.kube, self.clock = FakeKube(), FakeClock()
        self.generator, self.store, self.ledgers = FakeGenerator(), FakeStore(), FakeLedgers()
        self.requeued: list[ObjectKey] = []
        self.polled: list[str] = []
        self.seen: str | None = None
        self.kube.add(
            {
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": {LABEL_WORKSPACE: WORKSPACE}},
            }
        )
        self.workspace: dict[str, Any] | None = {
            "metadata": {"name": WORKSPACE, "uid": "w-1"},
            "spec": {"budget": {"period": "Daily"}},
        }
        self.reconciler = VibeAppReconciler(
            OperatorSettings(**settings),
            ObjectCache(self.kube, on_change=lambda body: None),
            self.kube,
            lambda name: self.workspace,
            lambda *_, **__: ([], "NoModelAvailable: no model in this test"),
            self.generator,  # type: ignore[arg-type]
            self.store,  # type: ignore[arg-type]
            self.ledgers,  # type: ignore[arg-type]
            enqueue=self.requeued.append,
            activity=self._activity,
            clock=self.clock,
            delivery_key=shared_delivery_key(),
            deliver=self._deliver,
        )
        self.deliveries: list[tuple[str, dict[str, Any], str]] = []

    def _deliver(self, url: str, body: bytes, signature: str) -> DeliveryResult:
        self.deliveries.append((url, json.loads(body), signature))
        pods = self.reconciler.cache.items("Pod", NAMESPACE)
        pod = pods[0]["metadata"] if pods else {"name": "gone", "uid": ""}
        return DeliveryResult(200, "", f"{pod['name']}/{pod.get('uid', '')}")

    def _activity(self, url: str) -> str | None:
        self.polled.append(url)
        return self.seen

    def reconcile(
        self,
        spec: dict[str, Any],
        status: dict[str, Any] | None = None,
        finalizers: tuple[str, ...] = (FINALIZER,),
        deleting: bool = False,
    ) -> Outcome:
        metadata: dict[str, Any] = {
            "name": "app",
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": 1,
            "finalizers": list(finalizers),
        }
        if deleting:
            metadata["deletionTimestamp"] = "2026-11-24T10:00:00Z"
        body = {"metadata": metadata, "spec": spec, "status": status or {}}
        context = Context(
            "app",
            NAMESPACE,
            UID,
            1,
            VibeAppSpec.model_validate(spec),
            status or {},
            body,
            OperatorSettings(),
        )
        return self.reconciler(context)


def revision(number: int) -> dict[str, Any]:
    return {
        "number": number,
        "sha256": SHA,
        "artifactUri": f"s3://vibeplane/workspaces/{WORKSPACE}/apps/{UID}/bundles/{SHA}.tar.gz",
        "time": "2026-11-24T09:55:00Z",
    }


def test_a_new_app_gets_its_finalizer_and_an_attempt_once() -> None:
    harness = Harness()
    outcome = harness.reconcile({"prompts": ["a todo list"]}, finalizers=())
    assert harness.kube.metadata_patches == [("app", NAMESPACE, {"finalizers": [FINALIZER]})]
    [job] = harness.generator.submitted
    assert (job.revision, job.attempt, job.workspace, job.period) == (1, 0, WORKSPACE, "Daily")
    assert job.route_error == "NoModelAvailable: no model in this test"
    # Its sandbox starts while the model writes the revision (nothing to deliver yet).
    assert [m["kind"] for m in harness.kube.applied] == ["Deployment", "Service"]
    assert harness.kube.applied[0]["spec"]["replicas"] == 1
    assert outcome.fields["phase"] != "Running"
    # The attempt runs: the next reconcile starts nothing again, and writes nothing.
    harness.kube.applied.clear()
    harness.reconcile({"prompts": ["a todo list"]}, outcome.fields)
    assert len(harness.generator.submitted) == 1
    assert harness.kube.applied == []
    assert harness.deliveries == []


def test_a_finished_attempt_requeues_and_its_preview_converges_without_writes() -> None:
    harness = Harness()
    spec = {"prompts": ["a todo list"]}
    started = harness.reconcile(spec).fields
    harness.generator.submitted.clear()
    record = {**revision(1), "key": f"{UID}:1:0"}
    harness.generator.results[f"{UID}:1:0"] = Result("succeeded", "Generated", "ok", record)
    outcome = harness.reconcile(spec, started)
    assert harness.requeued == [ObjectKey(NAMESPACE, "app")]
    assert [m["kind"] for m in harness.kube.applied] == ["Deployment", "Service"]
    assert outcome.fields["phase"] == "Deploying"
    # The same state again: the cache has what was applied, nothing is written.
    harness.kube.applied.clear()
    harness.reconcile(spec, outcome.fields)
    assert harness.kube.applied == []


READY_POD = {
    "kind": "Pod",
    "metadata": {
        "name": "app-preview-1",
        "uid": "p-1",
        "namespace": NAMESPACE,
        "labels": {"vibeplane.io/app": "app", "app.kubernetes.io/component": "preview"},
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def test_a_revision_swaps_into_the_ready_sandbox_by_one_signed_order() -> None:
    harness = Harness(preview_activity_poll=False)
    harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    assert harness.deliveries == []  # no ready sandbox yet: nothing to deliver to
    template = harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]["spec"]["template"]
    harness.reconciler.cache.put("Pod", READY_POD)  # as its watch would
    outcome = harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    assert outcome.fields["phase"] == "Running"
    assert outcome.fields["delivered"] == {
        "revision": 1,
        "sha256": SHA,
        "sandbox": "app-preview-1/p-1/0",
    }
    [(url, order, signature)] = harness.deliveries
    assert url == "http://app-preview.ws-team.svc/"
    assert (order["namespace"], order["app"], order["appUid"]) == (NAMESPACE, "app", UID)
    assert (order["revision"], order["sha256"]) == (1, SHA)
    assert order["url"].startswith("http://s3.invalid/vibeplane/workspaces/team/apps/u-1/")
    body = json.dumps(order, sort_keys=True, separators=(",", ":")).encode()
    e, n = shared_delivery_key().e, shared_delivery_key().n
    assert verify((e, n), body, signature)

    # Delivered: the next reconcile sends nothing. A new revision is a delivery, not a
    # Deployment change.
    harness.kube.applied.clear()
    again = harness.reconcile({"prompts": ["x"]}, outcome.fields)
    assert len(harness.deliveries) == 1
    assert again.fields == outcome.fields
    newer = {**revision(2), "sha256": "cd" * 32}
    status = {**outcome.fields, "revisions": [*outcome.fields["revisions"], newer]}
    swapped = harness.reconcile({"prompts": ["x", "y"]}, status)
    assert swapped.fields["revision"] == 2
    assert swapped.fields["delivered"]["sha256"] == "cd" * 32
    assert len(harness.deliveries) == 2
    assert harness.kube.applied == []
    deployment = harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]
    assert deployment["spec"]["template"] == template


def test_a_running_preview_is_asked_for_its_activity() -> None:
    harness = Harness()
    harness.reconciler.cache.put("Pod", READY_POD)
    harness.seen = "2026-11-24T09:59:00Z"
    delivered = {"revision": 1, "sha256": SHA, "sandbox": "app-preview-1/p-1/0"}
    status = {
        "revisions": [revision(1)],
        "lastActivity": "2026-11-24T09:30:00Z",
        "delivered": delivered,
    }
    outcome = harness.reconcile({"prompts": ["x"]}, status)
    assert outcome.fields["phase"] == "Running"
    assert harness.deliveries == []  # the sandbox has it: no delivery, only the poll
    assert harness.polled == ["http://app-preview.ws-team.svc/"]
    assert outcome.fields["lastActivity"] == "2026-11-24T09:59:00Z"


def test_a_preview_that_never_answers_reads_its_logs_once() -> None:
    harness = Harness(preview_activity_poll=False)
    pod = {
        "kind": "Pod",
        "metadata": {
            "name": "app-preview-1",
            "namespace": NAMESPACE,
            "labels": {"vibeplane.io/app": "app", "app.kubernetes.io/component": "preview"},
        },
    }
    harness.reconciler.cache.put("Pod", pod)  # as its watch would
    harness.kube.pod_logs[(NAMESPACE, "app-preview-1")] = "Traceback\nSyntaxError: oops"
    deployed = {**revision(1), "deployedAt": "2026-11-24T09:00:00Z"}
    outcome = harness.reconcile({"prompts": ["x"]}, {"revisions": [deployed]})
    assert outcome.fields["phase"] == "Failed"
    ready = next(c for c in outcome.conditions if c.type == "PreviewReady")
    assert ready.message.endswith("log tail:\nTraceback\nSyntaxError: oops")
    assert outcome.fields["revisions"][0]["validation"] == "Failed"
    assert harness.kube.log_reads == [(NAMESPACE, "app-preview-1")]
    # Recorded: the next reconcile keeps the message and reads no logs.
    status = {**outcome.fields, "conditions": [vars(c) for c in outcome.conditions]}
    again = harness.reconcile({"prompts": ["x"]}, status)
    assert next(c for c in again.conditions if c.type == "PreviewReady").message == ready.message
    assert harness.kube.log_reads == [(NAMESPACE, "app-preview-1")]


def test_a_deleted_app_waits_for_its_attempt_then_cleans_up() -> None:
    harness = Harness()
    harness.generator.busy = True
    outcome = harness.reconcile({"prompts": ["x"]}, deleting=True)
    assert outcome.requeue_after == 5.0
    assert harness.store.deleted == []
    harness.generator.busy = False
    harness.reconcile({"prompts": ["x"]}, deleting=True)
    assert harness.store.deleted == [f"workspaces/{WORKSPACE}/apps/{UID}/"]
    assert harness.ledgers.released == [(WORKSPACE, "w-1", "Daily", f"{UID}:")]
    assert harness.kube.metadata_patches == [("app", NAMESPACE, {"finalizers": []})]


def test_a_retained_workspace_keeps_the_artifacts_of_a_deleted_app() -> None:
    harness = Harness()
    harness.kube.objects[("Namespace", None, NAMESPACE)]["metadata"]["labels"][LABEL_RETAIN] = (
        "true"
    )
    harness.workspace = None  # the workspace went first
    harness.reconcile({"prompts": ["x"]}, deleting=True)
    assert harness.store.deleted == []
    assert harness.ledgers.released == []
    assert harness.kube.metadata_patches == [("app", NAMESPACE, {"finalizers": []})]


_STATUS_FIELDS = {field.alias or name for name, field in VibeAppStatus.model_fields.items()}


def _as_status(outcome: Outcome) -> dict[str, Any]:
    """What the controller stores from an outcome (fields set to None are removed)."""
    conditions = [
        {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
        for c in outcome.conditions
    ]
    fields = {k: v for k, v in outcome.fields.items() if v is not None}
    return {**fields, "conditions": conditions}


def test_hostnames_dropped_and_publish_removed_free_claims_and_objects() -> None:
    harness = Harness(
        gateway_name="vibeplane",
        preview_domain="apps.test",
        preview_activity_poll=False,
        custom_domain_suffixes=("example.com",),
    )
    harness.kube.add(
        {"kind": "Gateway", "metadata": {"name": "vibeplane", "namespace": "vibeplane-gateway"}}
    )
    claims = "vibeplane-hostnames"
    harness.reconciler.frontdoor.watch()  # as setup() does: claims are known from the cache
    harness.reconciler.cache.prime()

    def claimed() -> set[str]:
        return {body["metadata"]["name"] for body in harness.kube.list_objects("", "Lease", claims)}

    status: dict[str, Any] = {"revisions": [{**revision(1), "validation": "Passed"}]}
    hosts = ["shop.example.com", "blog.example.com"]
    spec: dict[str, Any] = {"prompts": ["x"], "publish": {"revision": 1, "hostnames": hosts}}
    outcome = harness.reconcile(spec, status)
    # Every status field written is one the CRD keeps (the API server prunes the others).
    assert set(outcome.fields) <= _STATUS_FIELDS
    status = _as_status(outcome)
    preview = f"app-{NAMESPACE}.apps.test"
    assert claimed() == {preview, *hosts}
    assert ("Deployment", NAMESPACE, "app-published") in harness.kube.objects
    assert harness.kube.deleted == []

    # blog.example.com leaves the spec: its claim goes, nothing else.
    spec["publish"]["hostnames"] = ["shop.example.com"]
    status = _as_status(harness.reconcile(spec, status))
    assert claimed() == {preview, "shop.example.com"}
    assert harness.kube.deleted == [("Lease", claims, "blog.example.com")]
    route = harness.kube.objects[("HTTPRoute", NAMESPACE, "app-published")]
    assert route["spec"]["hostnames"] == ["shop.example.com"]

    # Publish removed: the published objects go, then the claim; status forgets production.
    harness.kube.deleted.clear()
    del spec["publish"]
    outcome = harness.reconcile(spec, status)
    assert set(harness.kube.deleted) == {
        ("HTTPRoute", NAMESPACE, "app-published"),
        ("Service", NAMESPACE, "app-published"),
        ("Deployment", NAMESPACE, "app-published"),
        ("Lease", claims, "shop.example.com"),
    }
    assert claimed() == {preview}
    assert outcome.fields["publishedURL"] is None
    assert outcome.fields["publishedRevision"] is None
    published = next(c for c in outcome.conditions if c.type == "Published")
    assert (published.status, published.reason) == ("False", "NotPublished")

    # Converged: nothing is deleted again.
    harness.kube.deleted.clear()
    harness.reconcile(spec, _as_status(outcome))
    assert harness.kube.deleted == []


def pool_member(
    name: str, version: str, created: str, workspace: str = WORKSPACE
) -> dict[str, Any]:
    """An idle, ready sandbox of the namespace's warm pool, as its ReplicaSet started it."""
    pool = desired.pool_deployment(NAMESPACE, workspace, "w-1", 1, Harness().reconciler.preview)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **pool["spec"]["template"]["metadata"],
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "creationTimestamp": created,
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "preview-warm-1", "uid": "rs", "controller": True}
            ],
        },
        "spec": pool["spec"]["template"]["spec"],
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_new_app_adopts_the_oldest_warm_sandbox_and_gets_its_revision_by_delivery() -> None:
    harness = Harness(preview_activity_poll=False)
    newer = pool_member("preview-warm-b", "8", "2026-12-03T10:01:00Z")
    older = pool_member("preview-warm-a", "7", "2026-12-03T10:00:00Z")
    elsewhere = pool_member("preview-warm-c", "9", "2026-12-03T09:00:00Z", workspace="other")
    for pod in (newer, older, elsewhere):
        harness.kube.add(pod)
        harness.reconciler.cache.put("Pod", pod)
    outcome = harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    # One compare-and-swap write took the oldest member of this workspace's pool.
    [taken] = harness.kube.writes
    assert taken["metadata"]["name"] == "preview-warm-a"
    assert taken["metadata"]["resourceVersion"] == "7"
    assert taken["metadata"]["labels"]["vibeplane.io/app"] == "app"
    assert "vibeplane.io/pool" not in taken["metadata"]["labels"]
    assert taken["metadata"]["ownerReferences"][0]["uid"] == UID
    # Its Deployment stays at 0 while it holds the adopted sandbox, and the revision was
    # delivered in the same reconcile.
    deployment = harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]
    assert deployment["spec"]["replicas"] == 0
    assert len(harness.deliveries) == 1
    assert outcome.fields["phase"] == "Running"
    # Converged: nothing more is written or taken.
    harness.kube.applied.clear()
    again = harness.reconcile({"prompts": ["x"]}, outcome.fields)
    assert harness.kube.applied == []
    assert len(harness.kube.writes) == 1
    assert again.fields["delivered"] == outcome.fields["delivered"]
    # Hibernated: the adopted sandbox goes (never back to the pool).
    harness.reconciler.cache.put("Pod", harness.kube.objects[("Pod", NAMESPACE, "preview-warm-a")])
    status = {**outcome.fields, "lastActivity": "2026-11-01T00:00:00Z"}
    harness.reconcile({"prompts": ["x"]}, status)
    assert ("Pod", NAMESPACE, "preview-warm-a") in harness.kube.deleted


def test_an_app_that_loses_the_race_for_a_sandbox_takes_the_next_or_starts_cold() -> None:
    harness = Harness(preview_activity_poll=False)
    member = pool_member("preview-warm-a", "7", "2026-12-03T10:00:00Z")
    harness.reconciler.cache.put("Pod", member)
    # Another app took it meanwhile: the API server has a newer version.
    harness.kube.add({**member, "metadata": {**member["metadata"], "resourceVersion": "8"}})
    outcome = harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    assert harness.kube.writes == []
    deployment = harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]
    assert deployment["spec"]["replicas"] == 1  # the cold path
    assert outcome.fields["phase"] == "Deploying"


def test_a_delivery_goes_to_the_newest_ready_sandbox_of_the_current_template() -> None:
    harness = Harness(preview_activity_poll=False, preview_local_node=True)
    digest = harness.reconciler.template

    def pod(name: str, port: int, created: str, template: str) -> dict[str, Any]:
        body = json.loads(json.dumps(READY_POD))
        body["metadata"].update(
            name=name,
            uid=f"uid-{name}",
            creationTimestamp=created,
            annotations={"vibeplane.io/local-port": str(port), "vibeplane.io/template": template},
        )
        return body

    # A rollout left three ready pods: the old template's newest, and two of today's.
    for body in (
        pod("app-preview-old", 40001, "2026-12-03T10:05:00Z", "0000"),
        pod("app-preview-a", 40002, "2026-12-03T10:00:00Z", digest),
        pod("app-preview-b", 40003, "2026-12-03T10:01:00Z", digest),
    ):
        harness.reconciler.cache.put("Pod", body)
    harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    [(url, _, _)] = harness.deliveries
    assert url == "http://127.0.0.1:40003/"


def test_an_unreachable_sandbox_is_retried_at_a_short_pace_within_the_reconcile() -> None:
    harness = Harness(preview_activity_poll=False)
    answers = [DeliveryResult(0, "unreachable: [Errno 111] Connection refused")] * 2
    delivered = harness._deliver

    def flaky(url: str, body: bytes, signature: str) -> DeliveryResult:
        return answers.pop(0) if answers else delivered(url, body, signature)

    harness.reconciler.deliver = flaky
    harness.reconciler.cache.put("Pod", READY_POD)
    sample = ("vibeplane_preview_deliveries_total", {"result": "unreachable"})
    before = REGISTRY.get_sample_value(*sample)
    outcome = harness.reconcile({"prompts": ["x"]}, {"revisions": [revision(1)]})
    assert outcome.fields["phase"] == "Running"
    assert len(harness.deliveries) == 1
    after = REGISTRY.get_sample_value(
        "vibeplane_preview_deliveries_total", {"result": "unreachable"}
    )
    assert (after or 0) - (before or 0) == 2


def test_a_new_app_adopts_while_its_first_revision_is_generated_and_lets_go_if_none_comes() -> None:
    harness = Harness(preview_activity_poll=False)
    member = pool_member("preview-warm-a", "7", "2026-12-03T10:00:00Z")
    harness.kube.add(member)
    harness.reconciler.cache.put("Pod", member)
    outcome = harness.reconcile({"prompts": ["x"]})
    # Adopted at once (configuration comes later, by delivery); its Service selects it now.
    [taken] = harness.kube.writes
    assert taken["metadata"]["labels"]["vibeplane.io/app"] == "app"
    assert harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]["spec"]["replicas"] == 0
    assert ("Service", NAMESPACE, "app-preview") in harness.kube.objects
    assert harness.deliveries == []
    # The revision arrives: one delivery to the adopted sandbox, no second adoption.
    record = {**revision(1), "key": f"{UID}:1:0"}
    harness.generator.results[f"{UID}:1:0"] = Result("succeeded", "Generated", "ok", record)
    done = harness.reconcile({"prompts": ["x"]}, outcome.fields)
    assert done.fields["phase"] == "Running"
    assert done.fields["delivered"]["sandbox"].startswith("preview-warm-a/")
    assert len(harness.kube.writes) == 1
    # No revision and none coming (the generation failed for good): the sandbox goes.
    harness.generator.submitted.clear()
    failed = {"phase": "Failed", "revisions": [{"number": 1, "validation": "Failed"}]}
    harness.reconcile({"prompts": ["x"]}, failed)
    assert ("Pod", NAMESPACE, "preview-warm-a") in harness.kube.deleted
    assert harness.kube.objects[("Deployment", NAMESPACE, "app-preview")]["spec"]["replicas"] == 0


def test_an_app_waiting_out_a_failed_generation_holds_no_sandbox() -> None:
    harness = Harness(preview_activity_poll=False)
    started = harness.reconcile({"prompts": ["x"]}).fields
    deployment = ("Deployment", NAMESPACE, "app-preview")
    assert harness.kube.objects[deployment]["spec"]["replicas"] == 1  # started meanwhile
    harness.generator.submitted.clear()
    failed = Result("failed", "NoModelAvailable", "no model", retry_after=60.0)
    harness.generator.results[f"{UID}:1:0"] = failed
    waiting = harness.reconcile({"prompts": ["x"]}, started)
    assert waiting.fields["generation"]["reason"] == "NoModelAvailable"
    assert harness.kube.objects[deployment]["spec"]["replicas"] == 0


def test_a_failure_that_comes_back_the_same_changes_nothing_while_it_is_retried() -> None:
    """No model may serve the app: each retry (every 10 s) fails the same way, and neither
    the retry nor its failure changes the status or the preview (no writes at rest); the
    retry's time is kept by the reconciler, not written."""
    harness = Harness(preview_activity_poll=False)
    spec = {"prompts": ["x"]}
    started = harness.reconcile(spec).fields
    failure = Result("failed", "NoModelAvailable", "no model", retry_after=10.0)
    harness.generator.results[f"{UID}:1:0"] = failure
    waiting = harness.reconcile(spec, started)
    assert waiting.fields["generation"]["reason"] == "NoModelAvailable"
    deployment = ("Deployment", NAMESPACE, "app-preview")
    assert harness.kube.objects[deployment]["spec"]["replicas"] == 0
    harness.kube.applied.clear()
    for _ in range(3):
        harness.generator.submitted.clear()
        # Before its time nothing is retried; the reconcile comes back then.
        early = harness.reconcile(spec, waiting.fields)
        assert harness.generator.submitted == []
        assert early.requeue_after is not None
        assert 0 < early.requeue_after <= 10.0
        harness.clock.advance(11)
        retrying = harness.reconcile(spec, waiting.fields)
        [job] = harness.generator.submitted
        assert job.key == f"{UID}:1:0"  # the same attempt, again
        assert (retrying.fields, retrying.conditions) == (waiting.fields, waiting.conditions)
        harness.generator.results[f"{UID}:1:0"] = failure
        harness.generator.submitted.clear()  # finished
        failed_again = harness.reconcile(spec, waiting.fields)
        assert (failed_again.fields, failed_again.conditions) == (
            waiting.fields,
            waiting.conditions,
        )
    assert harness.kube.applied == []  # no sandbox started and stopped per retry
    # Another failure is news: it is written.
    other = Result("refused", "BudgetExceeded", "the money limit 1 is reached", retry_after=60)
    harness.clock.advance(11)
    harness.reconcile(spec, waiting.fields)
    harness.generator.results[f"{UID}:1:0"] = other
    harness.generator.submitted.clear()
    refused = harness.reconcile(spec, waiting.fields)
    assert refused.fields["generation"]["reason"] == "BudgetExceeded"
    assert refused.fields["phase"] == "BudgetExceeded"


def test_a_wake_that_comes_with_the_refusal_it_answers_retries_at_once() -> None:
    """The budget's waiting line can wake an attempt (another app settled) before the app's
    reconcile has folded in that attempt's refusal: the wake must outlive the folding-in, or
    the app sleeps until its poll (CI: a security fixture waited 240 s for such an app)."""
    harness = Harness(preview_activity_poll=False)
    spec = {"prompts": ["x"]}
    started = harness.reconcile(spec).fields
    key = f"{UID}:1:0"
    refusal = Result("refused", "BudgetExceeded", "waiting for headroom", retry_after=120.0)
    harness.generator.results[key] = refusal
    harness.generator.woken.add(key)  # the ledger had room again by the time it was read
    harness.generator.submitted.clear()  # the refused attempt finished
    refused = harness.reconcile(spec, started)
    assert refused.fields["generation"]["reason"] == "BudgetExceeded"
    retried = harness.reconcile(spec, refused.fields)  # the fold-in's immediate requeue
    [job] = harness.generator.submitted  # asked again now, not at the 120 s poll
    assert job.key == key
    assert retried.fields["generation"]["key"] == key


def test_a_refused_app_says_it_generates_once_the_ledger_grants_its_retry() -> None:
    """A retry of a budget refusal keeps BudgetExceeded while the ledger may refuse it again
    (no write), but once granted it is generating and charged: the app is requeued at once and
    says Generating with BudgetOK True (CI stop 19: an app still said BudgetExceeded while its
    granted retry was charged, and looked like one left waiting)."""
    harness = Harness(preview_activity_poll=False)
    spec = {"prompts": ["x"]}
    started = harness.reconcile(spec).fields
    key = f"{UID}:1:0"
    refusal = Result("refused", "BudgetExceeded", "waiting for headroom", retry_after=120.0)
    harness.generator.results[key] = refusal
    harness.generator.submitted.clear()  # the refused attempt finished
    refused = harness.reconcile(spec, started)
    assert refused.fields["phase"] == "BudgetExceeded"
    harness.generator.woken.add(key)  # another app gave budget back
    retrying = harness.reconcile(spec, refused.fields)
    [job] = harness.generator.submitted
    assert job.key == key
    # Not granted yet: the status stays as it was (a refusal again would change nothing).
    assert (retrying.fields, retrying.conditions) == (refused.fields, refused.conditions)
    harness.requeued.clear()
    harness.generator.grant(key)
    assert harness.requeued == [ObjectKey(NAMESPACE, "app")]
    generating = harness.reconcile(spec, refused.fields)
    assert generating.fields["phase"] == "Generating"
    assert generating.fields["generation"]["key"] == key
    assert "reason" not in generating.fields["generation"]
    budget_ok = next(c for c in generating.conditions if c.type == "BudgetOK")
    assert budget_ok.status == "True"
    assert len(harness.generator.submitted) == 1  # the granted attempt is not started again


def test_a_retry_of_another_failure_keeps_its_reason_while_it_runs() -> None:
    """Only a budget refusal is answered by the ledger's grant: a retry after NoModelAvailable
    passes the budget too, and says nothing new until a model answers (no write per retry)."""
    harness = Harness(preview_activity_poll=False)
    spec = {"prompts": ["x"]}
    started = harness.reconcile(spec).fields
    key = f"{UID}:1:0"
    harness.generator.results[key] = Result("failed", "NoModelAvailable", "no", retry_after=10.0)
    harness.generator.submitted.clear()
    waiting = harness.reconcile(spec, started)
    harness.clock.advance(11)
    harness.reconcile(spec, waiting.fields)
    harness.generator.grant(key)
    retrying = harness.reconcile(spec, waiting.fields)
    assert (retrying.fields, retrying.conditions) == (waiting.fields, waiting.conditions)
