"""The VibeApp controller: prompts -> revisions (generated off the loop) -> a gVisor preview.

A reconcile gathers one input (`AppInput`: spec, status, workspace, the attempt in flight as
the generator knows it, the live preview objects, the time), decides in pure functions
(`vibeplane.vibeapp.decide`: the next generation step, the preview's state, phase and
conditions) and applies what was decided here: start an attempt, apply the preview, clean up
a deleted app. The reads a decision may need beyond the input (the pod's logs once a preview
failed, the preview's last activity) are injected too.

State lives in the object's status (revisions, the attempt in flight) and in S3 (bundles and
the full revision index), never only in memory: a restarted operator recomputes everything
from them. Inputs that re-queue an app: the app itself, its preview Deployment and Pods (the
cache), a finished generation, and timers for readiness deadlines and idleness.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vibeplane.api import vibeapp as api
from vibeplane.api.workspace import DEFAULT_BUDGET_PERIOD, WorkspaceSpec
from vibeplane.budget.limits import budget_limits
from vibeplane.budget.periods import PeriodKind
from vibeplane.budget.store import LedgerStore
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.clock import SYSTEM_CLOCK, Clock
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome, refusal_message
from vibeplane.generation.outcome_store import OutcomeStore
from vibeplane.kube.client import Conflict, KubeClient
from vibeplane.kube.conditions import is_true
from vibeplane.metrics import DELIVERIES, PROMPT_TO_READY, WARM_POOL, WRITES
from vibeplane.settings import (
    FINALIZER,
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGER_NAME,
    OperatorSettings,
    field_manager,
)
from vibeplane.storage.s3 import ObjectStore, app_prefix
from vibeplane.timestamps import format_time
from vibeplane.vibeapp import decide, desired
from vibeplane.vibeapp.decide import (
    LONGEST_WAIT,
    AppInput,
    AttemptPlan,
    AttemptState,
    DeliveryResult,
    PreviewPlan,
    PreviewState,
    WorkspaceView,
)
from vibeplane.vibeapp.decide import pool as pool_decide
from vibeplane.vibeapp.decide.publish import BUNDLE_URL_SECONDS as PUBLISHED_BUNDLE_SECONDS
from vibeplane.vibeapp.decide.publish import plan_unpublish
from vibeplane.vibeapp.delivery import DeliveryKey, Order, signed
from vibeplane.vibeapp.frontdoor import FrontDoor
from vibeplane.vibeapp.generate import Generator, Job, ModelTarget
from vibeplane.wellknown import ANNOTATION_WAKE, REVISION_PATH, SIGNATURE_HEADER

log = logging.getLogger(__name__)
FIELD_MANAGER = field_manager("vibeapp")
WAKE_ANNOTATION = ANNOTATION_WAKE
PREVIEW_LABELS = {LABEL_MANAGED_BY: MANAGER_NAME, desired.LABEL_COMPONENT: "preview"}
PREVIEW_KINDS = (
    WatchedKind("apps", "v1", "deployments", "Deployment", PREVIEW_LABELS),
    WatchedKind("", "v1", "services", "Service", PREVIEW_LABELS),
    WatchedKind("", "v1", "pods", "Pod", PREVIEW_LABELS),
)
ACTIVITY_PATH = "/__vibeplane/activity"


class ModelResolver(Protocol):
    """An app's call targets in order (vibeplane.vibeapp.models.ModelResolver; the policy is
    vibeplane.generation.router's)."""

    def __call__(
        self,
        spec: api.VibeAppSpec,
        namespace: str,
        workspace: WorkspaceSpec,
        soft: bool,
        workspace_name: str = "",
        generation_key: str = "",
    ) -> tuple[list[ModelTarget], str]: ...


# When the preview at a URL last served a person (RFC 3339), None when it cannot tell.
ActivityProbe = Callable[[str], str | None]


def poll_activity(url: str) -> str | None:
    """When the preview last served a person, as the preview runtime reports it."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + ACTIVITY_PATH, timeout=2) as response:
            seconds = int(json.loads(response.read())["lastActivity"])
    except (OSError, ValueError, KeyError):
        return None
    return format_time(datetime.fromtimestamp(seconds, UTC))


# Sends one signed order to a preview's runtime: (base URL, body, signature) -> the answer.
Deliver = Callable[[str, bytes, str], DeliveryResult]
DELIVERY_RETRY_WITHIN = 1.5
"""Seconds an unreachable delivery is retried within one reconcile (at DELIVERY_RETRY_PACE)."""
DELIVERY_RETRY_PACE = 0.05
DELIVERY_TIMEOUT = 30.0
"""Seconds a delivery may take: the sandbox fetches, verifies and extracts before answering."""


def post_delivery(base_url: str, body: bytes, signature: str) -> DeliveryResult:
    """POST a signed order to the preview runtime; its answer (status 0: unreachable)."""
    request = urllib.request.Request(
        base_url.rstrip("/") + REVISION_PATH,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:
            answer = json.loads(response.read())
            return DeliveryResult(response.status, "", str(answer.get("pod") or ""))
    except urllib.error.HTTPError as error:
        try:
            message = str(json.loads(error.read()).get("error") or error.reason)
        except (ValueError, OSError):
            message = str(error.reason)
        return DeliveryResult(error.code, message[:1000])
    except (OSError, ValueError) as error:
        return DeliveryResult(0, f"unreachable: {getattr(error, 'reason', error)}")


def load_delivery_key(path: str) -> DeliveryKey:
    """The platform's delivery key from `path`, created there (0600) when missing; a key of
    this process only when no path is set."""
    if not path:
        log.warning("no delivery_key_file: previews roll over to a new key at each restart")
        return DeliveryKey.generate()
    try:
        with open(path) as existing:
            return DeliveryKey.loads(existing.read())
    except FileNotFoundError:
        pass
    key = DeliveryKey.generate()
    scratch = f"{path}.{os.getpid()}"
    try:
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(key.dumps())
        try:
            os.link(scratch, path)  # the first writer wins; a concurrent one reads its key
        except FileExistsError:
            pass
        finally:
            os.unlink(scratch)
    except OSError as error:
        log.warning("cannot keep the delivery key in %s (%s): a key of this process", path, error)
        return key
    with open(path) as stored:
        return DeliveryKey.loads(stored.read())


def preview_settings(settings: OperatorSettings, key: DeliveryKey) -> desired.PreviewSettings:
    """How preview sandboxes run (every app's, and the warm pools')."""
    return desired.PreviewSettings(
        runtime_class=settings.runtime_class,
        image=settings.preview_image,
        command=settings.preview_command,
        local_node=settings.preview_local_node,
        delivery_key=key.public,
    )


class VibeAppReconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        cache: ObjectCache,
        kube: KubeClient,
        workspace_body: Callable[[str], Mapping[str, Any] | None],
        resolve_models: ModelResolver,
        generator: Generator,
        store: ObjectStore,
        ledgers: LedgerStore,
        enqueue: Callable[[ObjectKey], None],
        outcomes: OutcomeStore | None = None,
        activity: ActivityProbe = poll_activity,
        clock: Clock = SYSTEM_CLOCK,
        delivery_key: DeliveryKey | None = None,
        deliver: Deliver = post_delivery,
    ) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.cache = cache
        self.kube = kube
        self.workspace_body = workspace_body
        self.resolve_models = resolve_models
        self.generator = generator
        self.store = store
        self.ledgers = ledgers
        self.enqueue = enqueue
        self.activity = activity
        self.clock = clock
        self.delivery_key = delivery_key or load_delivery_key(settings.delivery_key_file)
        self.deliver = deliver
        # app uid -> (generation key, when it may run again): a retry's time after a failure
        # that came back the same, which the status does not record (it would be a write).
        self.retry_at: dict[str, tuple[str, str]] = {}
        self.preview = preview_settings(settings, self.delivery_key)
        self.template = desired.template_digest(desired.preview_pod_spec(self.preview))
        self.frontdoor = FrontDoor(settings, cache, kube, FIELD_MANAGER)

    # ---- the reconcile: gather, decide, apply ----------------------------------------------

    def __call__(self, context: Context) -> Outcome:
        inp = self._gather(context)
        if inp.deleting:
            self.retry_at.pop(inp.uid, None)  # a deleted app's retry time is nobody's
            return self._delete(inp)
        blocked = decide.blocked(inp)
        if blocked is not None:
            return Outcome(blocked.conditions, {"phase": blocked.phase}, blocked.requeue_after)
        if decide.needs_finalizer(inp):
            self._add_finalizer(inp)
        step = decide.generation_step(inp)
        if step.absorbed:
            self._requeue(inp)
            if step.retry_at is not None and step.in_flight is not None:
                self.retry_at[inp.uid] = (str(step.in_flight["key"]), step.retry_at)
            else:
                self.retry_at.pop(inp.uid, None)
        if step.submit is not None:
            # A retry of a budget refusal keeps its status until the ledger grants it: then
            # the app is reconciled at once to say it generates.
            refused = (step.in_flight or {}).get("reason") == "BudgetExceeded"
            self._submit(inp, step.submit, refused=refused)
        # A generation running now (not one waiting out a failure: no sandbox meanwhile).
        coming = (
            step.in_flight is not None
            and step.generated.reason == "Generating"
            and not step.refused
        )
        preview = self._preview(inp, step.revisions, coming)
        url = decide.activity_url(inp, step, preview)
        status = decide.app_status(inp, step, preview, self.activity(url) if url else None)
        if status.fixing_up:
            self._requeue(inp)
        conditions, fields, waits = (
            list(status.conditions),
            dict(status.fields),
            [status.requeue_after],
        )
        if self.frontdoor.enabled and inp.workspace is not None:
            # The route's URL is the app's URL; the preview's own address stays what the
            # activity probe above asks.
            route = self.frontdoor.preview(
                inp.name, inp.namespace, inp.uid, inp.workspace.name, inp.workspace.uid
            )
            fields["url"] = route.url
            conditions.append(route.condition)
            waits.append(route.requeue_after or LONGEST_WAIT)
        if inp.spec.publish is not None and inp.workspace is not None:
            published = self.frontdoor.publish(
                inp.name,
                inp.namespace,
                inp.uid,
                inp.spec.publish,
                fields.get("revisions") or [],
                inp.status.get("publishedRevision"),
                inp.now,
                lambda revision: self._presign(revision, PUBLISHED_BUNDLE_SECONDS),
                self.preview,
            )
            # Refused input changes nothing: production keeps its URL.
            fields["publishedURL"] = published.url or inp.status.get("publishedURL")
            fields["publishedRevision"] = published.published_revision
            conditions.append(published.condition)
            waits.append(published.requeue_after or LONGEST_WAIT)
            self.frontdoor.settle_claims(
                inp.name, inp.namespace, inp.spec.publish, applied=bool(published.revision)
            )
        elif inp.workspace is not None and (unpublish := plan_unpublish(inp.status)) is not None:
            if unpublish.remove:
                self.frontdoor.unpublish(inp.name, inp.namespace)
                fields["publishedURL"] = None
                fields["publishedRevision"] = None
            conditions.append(unpublish.condition)
            self.frontdoor.settle_claims(inp.name, inp.namespace, None, applied=False)
        return Outcome(conditions, fields, requeue_after=min(waits))

    def _gather(self, context: Context) -> AppInput:
        """Everything the decisions read, from the cache, the generator and the clock."""
        metadata = context.body["metadata"]
        namespace = context.namespace or ""
        labels = self._namespace_labels(namespace)
        app = {desired.LABEL_APP: context.name}
        in_namespace = self.cache.items("Pod", namespace)
        pods = [pod for pod in in_namespace if _labelled(pod, app)]
        pool = [pod for pod in in_namespace if pool_decide.idle(pod)]
        preview = desired.preview_name(context.name)
        inp = AppInput(
            name=context.name,
            namespace=namespace,
            uid=context.uid,
            spec=context.spec,
            status=context.status,
            now=self.clock.now(),
            settings=self.settings,
            annotations=metadata.get("annotations") or {},
            finalizers=tuple(metadata.get("finalizers") or ()),
            deleting=bool(metadata.get("deletionTimestamp")),
            namespace_labels=labels,
            workspace=self._workspace(labels.get(LABEL_WORKSPACE)),
            deployment=self.cache.lookup("Deployment", preview, namespace),
            service=self.cache.lookup("Service", preview, namespace),
            pods=tuple(pods),
            pool=tuple(pool),
            template=self.template,
        )
        if inp.deleting:
            return replace(inp, busy=self.generator.app_busy(context.uid))
        plan = decide.plan_attempt(inp)
        if plan is None:
            return inp
        result = self.generator.result(plan.key)
        # Woken by the budget's waiting line: ask again now, not at the poll. A wake that came
        # before the refusal it answers was folded in stays for the next reconcile, which the
        # folding-in requeues at once (taken now, it would be lost and the app would sleep
        # until its poll, minutes later).
        woken = result is None and self.generator.take_wake(plan.key)
        key, retry_at = self.retry_at.get(context.uid, ("", None))
        attempt = AttemptState(
            result,
            running=self.generator.running(plan.key),
            admitted=self.generator.admitted(plan.key),
            woken=woken,
            retry_at=retry_at if key == plan.key else None,
        )
        return replace(inp, attempt=attempt)

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        ns = self.cache.lookup("Namespace", namespace)
        labels: Mapping[str, str] = ((ns or {}).get("metadata") or {}).get("labels") or {}
        return labels

    def _workspace(self, name: str | None) -> WorkspaceView | None:
        body = self.workspace_body(name) if name else None
        if body is None:
            return None
        raw = body.get("spec") or {}
        try:
            spec: WorkspaceSpec | None = WorkspaceSpec.model_validate(raw)
        except ValidationError:
            spec = None  # the workspace's own Ready condition (InvalidSpec) says what is wrong
        period = cast(PeriodKind, (raw.get("budget") or {}).get("period") or DEFAULT_BUDGET_PERIOD)
        soft = is_true((body.get("status") or {}).get("conditions"), "BudgetWarning")
        metadata = body["metadata"]
        return WorkspaceView(metadata["name"], metadata["uid"], spec, period, soft)

    def _requeue(self, inp: AppInput) -> None:
        self.enqueue(ObjectKey(inp.namespace, inp.name))

    # ---- generation ----------------------------------------------------------------------

    def _submit(self, inp: AppInput, plan: AttemptPlan, refused: bool = False) -> None:
        def requeue(job: Job) -> None:
            self.enqueue(ObjectKey(job.namespace, job.app))

        self.generator.submit(self._job(inp, plan), requeue, requeue if refused else None)

    def _job(self, inp: AppInput, plan: AttemptPlan) -> Job:
        workspace = inp.workspace
        assert workspace is not None
        assert workspace.spec is not None
        spec = workspace.spec
        models, route_error = self.resolve_models(
            inp.spec,
            inp.namespace,
            spec,
            workspace.past_soft_limit,
            workspace_name=workspace.name,
            generation_key=desired.generation_key(inp.uid, plan.revision, 0),
        )
        return Job(
            namespace=inp.namespace,
            app=inp.name,
            app_uid=inp.uid,
            workspace=workspace.name,
            workspace_uid=workspace.uid,
            period=spec.budget_period,
            limits=budget_limits(spec),
            revision=plan.revision,
            attempt=plan.attempt,
            prompts=tuple(inp.spec.prompts[: plan.revision]),
            previous_sha256=plan.previous_sha256,
            stack=inp.spec.stack,
            models=tuple(models),
            allow_training=bool(spec.data_sharing and spec.data_sharing.allow_training),
            fix_request=plan.fix_request,
            route_error=route_error,
        )

    # ---- the preview ---------------------------------------------------------------------

    def _preview(
        self, inp: AppInput, revisions: list[dict[str, Any]], coming: bool = False
    ) -> PreviewState:
        """Apply the served revision's preview (or prepare it while the revision is being
        generated); its state once applied."""
        plan = decide.plan_preview(inp, revisions, coming)
        if plan.state is not None and not plan.prepare:
            return plan.state
        inp, replicas = self._sandbox(inp, plan)
        try:
            service = self._apply_preview(inp, replicas)
        except ApiException as error:
            if error.status not in (400, 422):
                raise
            return decide.refused_preview(plan, refusal_message(error))
        if plan.state is not None:
            return plan.state  # prepared: nothing to deliver yet
        if service is not None:
            # A new Service's node port is known now, not when its watch event arrives.
            inp = replace(inp, service=service)
        sandbox = decide.delivery_needed(inp, plan)
        result = self._deliver(inp, plan, sandbox) if sandbox is not None else None
        log_tail = self._log_tail(inp) if decide.needs_log_tail(inp, plan) else ""
        state = decide.preview_state(inp, plan, result, log_tail)
        validation = state.revision_update.get("validation")
        if validation is not None:
            self._validated({**plan.serve, **state.revision_update}, validation == "Passed", inp)
        return state

    def _deliver(
        self, inp: AppInput, plan: PreviewPlan, sandbox: Mapping[str, Any]
    ) -> DeliveryResult:
        """Swap the revision into the running sandbox: one signed order, answered once the
        sandbox serves it (or refused, the old revision serving on)."""
        if not self.settings.preview_delivery:
            # Simulated nodes: nothing runs in the pod, its readiness stands for the swap.
            return DeliveryResult(200, "", decide.sandbox_id(sandbox))
        _, url = self._presign(plan.serve)
        order = Order(
            namespace=inp.namespace,
            app=inp.name,
            app_uid=inp.uid,
            revision=int(plan.serve["number"]),
            sha256=str(plan.serve["sha256"]),
            url=url,
            issued_ms=time.time_ns() // 1_000_000,
        )
        body, signature = signed(self.delivery_key, order)
        url = decide.delivery_url(inp)
        result = self.deliver(url, body, signature)
        # A sandbox just adopted or just ready, behind a Service just made, is reachable a
        # moment later (the node programs the Service's port): retried here at a short pace,
        # for a bounded time, rather than at the next reconcile.
        deadline = time.monotonic() + DELIVERY_RETRY_WITHIN
        while result.status == 0 and time.monotonic() < deadline:
            DELIVERIES.labels("unreachable").inc()
            time.sleep(DELIVERY_RETRY_PACE)
            result = self.deliver(url, body, signature)
        DELIVERIES.labels(_delivery_result(result.status)).inc()
        if result.status == 200:
            # Recorded as the sandbox that answered, with its restarts as the cache saw them.
            answered = result.sandbox or ""
            pods = [p for p in inp.pods if _pod_key(p) == answered] or [sandbox]
            result = replace(result, sandbox=decide.sandbox_id(pods[0]))
        else:
            log.info(
                "delivery of %s/%s revision %s: HTTP %s %s",
                inp.namespace,
                inp.name,
                order.revision,
                result.status,
                result.message,
            )
        return result

    def _validated(self, revision: Mapping[str, Any], passed: bool, inp: AppInput) -> None:
        """A revision's first validation: the model's measured outcome, the time to ready."""
        if self.outcomes is not None:
            # The model's measured success and cost (rollouts, cost per app), counted once
            # per generation (its key: status keeps the revision without it).
            key = desired.generation_key(
                inp.uid, int(revision.get("number") or 0), int(revision.get("attempt") or 0)
            )
            self.outcomes.post({**revision, "key": key}, passed)
        waited = decide.elapsed_since(revision.get("time"), inp.now) if passed else None
        if waited is not None:
            PROMPT_TO_READY.observe(waited)

    def _sandbox(self, inp: AppInput, plan: PreviewPlan) -> tuple[AppInput, int]:
        """The app's sandbox: keep or drop an adopted one, adopt a warm one when it has none;
        the input with what changed and the replicas its Deployment must have."""
        candidates: list[Mapping[str, Any]] = []
        if inp.workspace is not None:
            candidates = pool_decide.adoptable(inp.pool, inp.workspace.name, inp.template)
        sandbox = pool_decide.plan_sandbox(inp.pods, plan.replicas, inp.template, len(candidates))
        for name in sandbox.delete:
            self.kube.delete("v1", "Pod", name, inp.namespace)
            WRITES.labels("VibeApp", "Pod").inc()
            WARM_POOL.labels("dropped").inc()
        if not sandbox.adopt:
            return inp, sandbox.replicas
        for member in candidates:
            try:
                stored = self.kube.write(desired.adopted(member, inp.name, inp.uid))
            except Conflict:
                continue  # another app took it, or it changed: the next one
            except ApiException as error:
                if error.status not in (404, 409, 422):
                    raise
                continue
            WRITES.labels("VibeApp", "Pod").inc()
            WARM_POOL.labels("adopted").inc()
            stored.setdefault("kind", "Pod")
            stored.setdefault("status", member.get("status"))  # a pod's write keeps its status
            # The next reconcile may run before the watch says so: it must see the app's.
            self.cache.put("Pod", stored)
            log.info(
                "%s/%s adopted warm sandbox %s",
                inp.namespace,
                inp.name,
                stored["metadata"]["name"],
            )
            return replace(inp, pods=(*inp.pods, stored)), sandbox.replicas
        WARM_POOL.labels("drained").inc()
        return inp, plan.replicas

    def _apply_preview(self, inp: AppInput, replicas: int) -> dict[str, Any] | None:
        """Apply the preview's Deployment and Service (unchanged by a new revision; at 0
        replicas while the app holds a sandbox it adopted); the Service as stored, if written."""
        deployment = desired.preview_deployment(
            inp.name, inp.namespace, inp.uid, replicas, self.preview
        )
        apply_and_remember(
            self.kube, self.cache, deployment, FIELD_MANAGER, "VibeApp", inp.deployment
        )
        node_port = bool(self.settings.preview_node_address)
        service = desired.preview_service(inp.name, inp.namespace, inp.uid, node_port=node_port)
        service_live = dict(inp.service) if inp.service is not None else None
        stored = self.kube.apply(service, FIELD_MANAGER, live=service_live, lookup=False)
        if stored is not None:
            WRITES.labels("VibeApp", "Service").inc()
        return stored

    def _presign(
        self, revision: Mapping[str, Any], seconds: int = decide.BUNDLE_URL_SECONDS
    ) -> tuple[str, str]:
        """A new presigned URL of the revision's bundle: (expires, URL)."""
        key = str(revision["artifactUri"]).split("/", 3)[3]
        url = self.store.presigned_get(key, seconds)
        expires = self.clock.now() + timedelta(seconds=seconds)
        return format_time(expires), url

    def _log_tail(self, inp: AppInput) -> str:
        for pod in inp.pods:
            try:
                text = self.kube.read_pod_log(
                    pod["metadata"]["name"], inp.namespace, container="app", tail_lines=20
                )
                return text[-1500:]
            except ApiException as error:
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                states = json.dumps([s.get("state") for s in statuses])[:1000]
                return f"(logs unavailable: {error.reason}) container state: {states}"
        return "(no pod)"

    # ---- finalizer, deletion ---------------------------------------------------------------

    def _add_finalizer(self, inp: AppInput) -> None:
        finalizers = [*inp.finalizers, FINALIZER]
        self.kube.patch_metadata(api.INFO, inp.name, inp.namespace, {"finalizers": finalizers})
        WRITES.labels("VibeApp", "VibeApp").inc()

    def _delete(self, inp: AppInput) -> Outcome:
        """Clean up what a deleted app leaves (its objects in S3, what it holds in the
        ledger), then let it go."""
        plan = decide.deletion(inp)
        self.retry_at.pop(inp.uid, None)
        if plan.wait:
            # Its generation would store a bundle after the objects were removed: remove them
            # once it is done (its end re-queues the app; the requeue is a fallback).
            return Outcome([], requeue_after=decide.BUSY_RECHECK)
        if plan.delete_prefix_of is not None:
            removed = self.store.delete_prefix(app_prefix(plan.delete_prefix_of, inp.uid))
            log.info("deleted %d objects of %s/%s", removed, inp.namespace, inp.name)
        if plan.release_budget and inp.workspace is not None:
            # Keys are generation_key(): "<app uid>:...".
            workspace = inp.workspace
            self.ledgers.release_prefix(
                workspace.name, workspace.uid, workspace.period, f"{inp.uid}:"
            )
        if plan.remove_finalizer:
            # Its hosts are free for others once it is gone (claims are not owned: they live
            # in the claims namespace).
            self.frontdoor.release(inp.name, inp.namespace)
            kept = [f for f in inp.finalizers if f != FINALIZER]
            self.kube.patch_metadata(api.INFO, inp.name, inp.namespace, {"finalizers": kept})
        return Outcome([])


def _delivery_result(status: int) -> str:
    if status == 200:
        return "delivered"
    if status == 0:
        return "unreachable"
    return "refused" if status == 422 else "failed"


def _pod_key(pod: Mapping[str, Any]) -> str:
    """How the preview runtime names its pod (POD_NAME/POD_UID)."""
    return f"{pod['metadata']['name']}/{pod['metadata'].get('uid', '')}"


def _labelled(body: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    found = (body.get("metadata") or {}).get("labels") or {}
    return all(found.get(key) == value for key, value in labels.items())


def setup(
    settings: OperatorSettings,
    cache: ObjectCache,
    kube: KubeClient,
    workspace_body: Callable[[str], Mapping[str, Any] | None],
    resolve_models: ModelResolver,
    generator: Generator,
    store: ObjectStore,
    ledgers: LedgerStore,
    outcomes: OutcomeStore | None = None,
    delivery_key: DeliveryKey | None = None,
) -> Controller:
    """Build the VibeApp controller and register its watches."""
    controller: Controller
    reconciler = VibeAppReconciler(
        settings,
        cache,
        kube,
        workspace_body,
        resolve_models,
        generator,
        store,
        ledgers,
        enqueue=lambda key: controller.enqueue(key),
        outcomes=outcomes,
        delivery_key=delivery_key,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    for kind in PREVIEW_KINDS:
        cache.watch(kind)
    reconciler.frontdoor.watch()
    return controller


__all__ = [
    "PREVIEW_KINDS",
    "WAKE_ANNOTATION",
    "VibeAppReconciler",
    "load_delivery_key",
    "preview_settings",
    "setup",
]
