"""The VibeApp controller: prompts -> revisions (generated off the loop) -> a gVisor preview.

State lives in the object's status (revisions, the attempt in flight) and in S3 (bundles and
the full revision index), never only in memory: a restarted operator recomputes everything
from them. Inputs that re-queue an app: the app itself, its preview Deployment and Pods (the
cache), a finished generation, and timers for readiness deadlines and idleness.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from vibeplane.api import vibeapp as api
from vibeplane.api.common import duration_seconds
from vibeplane.api.workspace import DEFAULT_BUDGET_PERIOD, WorkspaceSpec
from vibeplane.budget.limits import budget_limits
from vibeplane.controller.apply import apply_and_remember
from vibeplane.controller.cache import ObjectCache, WatchedKind
from vibeplane.controller.reconcile import Context, Controller, ObjectKey, Outcome, refusal_message
from vibeplane.generation.outcomes import OutcomeBoard
from vibeplane.kube.client import KubeClient
from vibeplane.kube.conditions import ConditionSpec, find, now_rfc3339
from vibeplane.metrics import PROMPT_TO_READY, WRITES
from vibeplane.settings import (
    FINALIZER,
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGER_NAME,
    OperatorSettings,
    field_manager,
)
from vibeplane.storage.s3 import ObjectStore, app_prefix
from vibeplane.timestamps import format_time, parse_time
from vibeplane.vibeapp import desired
from vibeplane.vibeapp.generate import Generator, Job, ModelTarget, Result
from vibeplane.wellknown import (
    ANNOTATION_BUNDLE_URL_EXPIRES,
    ANNOTATION_LOCAL_PORT,
    ANNOTATION_WAKE,
    LABEL_RETAIN,
)

log = logging.getLogger(__name__)
FIELD_MANAGER = field_manager("vibeapp")
KEPT_REVISIONS = 20
WAKE_ANNOTATION = ANNOTATION_WAKE
PREVIEW_KINDS = (
    WatchedKind(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        {LABEL_MANAGED_BY: MANAGER_NAME, desired.LABEL_COMPONENT: "preview"},
    ),
    WatchedKind(
        "",
        "v1",
        "services",
        "Service",
        {LABEL_MANAGED_BY: MANAGER_NAME, desired.LABEL_COMPONENT: "preview"},
    ),
    WatchedKind(
        "",
        "v1",
        "pods",
        "Pod",
        {LABEL_MANAGED_BY: MANAGER_NAME, desired.LABEL_COMPONENT: "preview"},
    ),
)


# Resolves the models an app may use, in the order to try them (see generation.router).
class ModelResolver(Protocol):
    """An app's call targets in order (vibeplane.vibeapp.models.ModelResolver)."""

    def __call__(
        self,
        spec: api.VibeAppSpec,
        namespace: str,
        workspace: WorkspaceSpec,
        soft: bool,
        workspace_name: str = "",
        generation_key: str = "",
    ) -> tuple[list[ModelTarget], str]: ...


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
        enqueue: Callable[[ObjectKey], None],
        outcomes: OutcomeBoard | None = None,
    ) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.cache = cache
        self.kube = kube
        self.workspace_body = workspace_body
        self.resolve_models = resolve_models
        self.generator = generator
        self.store = store
        self.enqueue = enqueue
        self.preview = desired.PreviewSettings(
            runtime_class=settings.runtime_class,
            image=settings.preview_image,
            command=settings.preview_command,
            local_node=settings.preview_local_node,
        )

    # ---- the reconcile -------------------------------------------------------------------

    def __call__(self, context: Context) -> Outcome:
        spec: api.VibeAppSpec = context.spec
        namespace = context.namespace or ""
        body, status = context.body, context.status
        metadata = body["metadata"]
        workspace = self._workspace(namespace)
        if metadata.get("deletionTimestamp"):
            if self.generator.app_busy(context.uid):
                # Its generation would store a bundle after the objects were removed: remove
                # them once it is done (its end re-queues the app; the requeue is a fallback).
                return Outcome([], requeue_after=5)
            self._finalize(context, workspace)
            return Outcome([])
        if workspace is None:
            return Outcome(
                [
                    ConditionSpec(
                        "Ready",
                        "False",
                        "NoWorkspace",
                        f"namespace {namespace} belongs to no Workspace",
                    )
                ],
                {"phase": "Pending"},
                requeue_after=10,
            )
        ws_meta = workspace["metadata"]
        try:
            ws_spec = WorkspaceSpec.model_validate(workspace.get("spec") or {})
        except ValidationError:
            # The workspace's own Ready condition (InvalidSpec) says what is wrong.
            return Outcome(
                [
                    ConditionSpec(
                        "Ready",
                        "False",
                        "WorkspaceInvalid",
                        f"workspace {ws_meta['name']} has an invalid spec (see its Ready "
                        "condition): no generations or previews until it is fixed",
                    )
                ],
                {"phase": "Pending"},
            )
        ws_status = workspace.get("status") or {}
        # Only apps of a workspace can have objects in S3: only they carry the finalizer.
        if FINALIZER not in (metadata.get("finalizers") or []):
            self._add_finalizer(context)

        revisions = [dict(r) for r in status.get("revisions") or []]
        in_flight: dict[str, Any] | None = status.get("generation")
        generated = _settled(revisions, status.get("conditions"))
        budget_ok = ConditionSpec(
            "BudgetOK", "True", "WithinBudget", "the budget allows generations"
        )
        fields: dict[str, Any] = {}
        requeue: float | None = None
        refused = False

        target = desired.next_revision(spec, revisions)
        fix_request = (in_flight or {}).get("fixRequest")
        if fix_request and target is None:  # a fix-up of the served revision (spec.autoFix)
            target = int((in_flight or {})["revision"])
        if ws_spec.suspended and target is not None:
            generated = ConditionSpec(
                "Generated",
                "False",
                "WorkspaceSuspended",
                "the workspace is suspended: no generations",
            )
            target = None
        if target is not None:
            attempt = (
                int(in_flight["attempt"]) if in_flight and in_flight["revision"] == target else 0
            )
            job = self._job(
                context, spec, ws_meta, ws_spec, ws_status, revisions, target, attempt, fix_request
            )
            result = self.generator.result(job.key)
            # Woken by the budget's waiting line: ask again now, not at the poll.
            woken = self.generator.take_wake(job.key)
            wait = 0.0 if woken else _remaining((in_flight or {}).get("notBefore"))
            if result is not None:
                revisions, in_flight, generated = self._absorb(job, result, revisions, in_flight)
                self.enqueue(ObjectKey(namespace, context.name))
            elif in_flight and wait > 0:
                generated = ConditionSpec(
                    "Generated",
                    "False",
                    str(in_flight.get("reason")),
                    str(in_flight.get("message", "")),
                )
                requeue = wait
            else:
                if not self.generator.running(job.key):
                    self.generator.submit(
                        job, lambda j: self.enqueue(ObjectKey(j.namespace, j.app))
                    )
                in_flight = {
                    "revision": target,
                    "attempt": job.attempt,
                    "key": job.key,
                    "started": (in_flight or {}).get("started") or now_rfc3339(),
                    "fixRequest": fix_request,
                }
                generated = ConditionSpec(
                    "Generated",
                    "False",
                    "Generating",
                    f"generating revision {target} (attempt {job.attempt})",
                )
            refused = bool(in_flight and in_flight.get("reason") == "BudgetExceeded")
            if refused:
                budget_ok = ConditionSpec(
                    "BudgetOK", "False", "BudgetExceeded", str((in_flight or {}).get("message", ""))
                )
        fields["generation"] = in_flight

        preview_ready, phase, url, serving, requeue2 = self._preview(
            context, spec, ws_spec, revisions
        )
        if preview_ready.reason == "ValidationFailed" and in_flight is None:
            in_flight = self._fix_up(context.uid, spec, revisions, preview_ready.message)
            if in_flight is not None:
                fields["generation"] = in_flight
                generated = ConditionSpec(
                    "Generated",
                    "False",
                    "FixingUp",
                    f"revision {in_flight['revision']} failed validation: asking the model to "
                    f"fix it (attempt {in_flight['attempt']})",
                )
                self.enqueue(ObjectKey(namespace, context.name))
        last_activity = str(status.get("lastActivity") or now_rfc3339())
        if generated.reason == "Generated":
            last_activity = now_rfc3339()  # a new prompt is activity
        elif phase == "Running" and url and self.settings.preview_activity_poll:
            seen = _poll_activity(url)
            if seen is not None and seen > last_activity:
                last_activity = seen
        if refused:
            phase = "BudgetExceeded"
        elif in_flight:
            phase = "Generating"
        elif phase == "Pending" and revisions and revisions[-1].get("validation") == "Failed":
            phase = "Failed"
        requeue = min(x for x in (requeue, requeue2, 3600.0) if x is not None)

        fields.update(
            {
                "phase": phase,
                "revision": serving,
                "revisions": revisions[-KEPT_REVISIONS:],
                "url": url,
                "totalCost": _total(revisions),
                "lastActivity": last_activity,
            }
        )
        return Outcome(
            desired.conditions_for(phase, generated, preview_ready, budget_ok),
            fields,
            requeue_after=requeue,
        )

    # ---- generation ----------------------------------------------------------------------

    def _job(
        self,
        context: Context,
        spec: api.VibeAppSpec,
        ws_meta: Mapping[str, Any],
        ws_spec: WorkspaceSpec,
        ws_status: Mapping[str, Any],
        revisions: list[dict[str, Any]],
        revision: int,
        attempt: int,
        fix_request: str | None = None,
    ) -> Job:
        soft = any(
            c.get("type") == "BudgetWarning" and c.get("status") == "True"
            for c in ws_status.get("conditions") or []
        )
        models, route_error = self.resolve_models(
            spec,
            context.namespace or "",
            ws_spec,
            soft,
            workspace_name=str(ws_meta["name"]),
            generation_key=desired.generation_key(context.uid, revision, 0),
        )
        # A fix-up edits the failing revision itself; a new revision builds on the newest.
        candidates = [r for r in revisions if r.get("sha256")]
        if fix_request:
            candidates = [r for r in candidates if r["number"] == revision]
        previous = candidates[-1] if candidates else None
        return Job(
            namespace=context.namespace or "",
            app=context.name,
            app_uid=context.uid,
            workspace=ws_meta["name"],
            workspace_uid=ws_meta["uid"],
            period=ws_spec.budget_period,
            limits=budget_limits(ws_spec),
            revision=revision,
            attempt=attempt,
            prompts=tuple(spec.prompts[:revision]),
            previous_sha256=previous["sha256"] if previous else None,
            stack=spec.stack,
            models=tuple(models),
            allow_training=bool(ws_spec.data_sharing and ws_spec.data_sharing.allow_training),
            fix_request=fix_request,
            route_error=route_error,
        )

    def _absorb(
        self,
        job: Job,
        result: Result,
        revisions: list[dict[str, Any]],
        in_flight: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, ConditionSpec]:
        """Fold a finished attempt into the status: (revisions, in flight, Generated)."""
        others = [r for r in revisions if r["number"] != job.revision]
        if result.outcome == "succeeded" and result.record is not None:
            record = {k: v for k, v in result.record.items() if k != "key"}
            if job.fix_request:
                before = next((r for r in revisions if r["number"] == job.revision), {})
                record["fixes"] = int(before.get("fixes") or 0) + 1
            return (
                [*others, record],
                None,
                ConditionSpec("Generated", "True", "Generated", result.message),
            )
        if result.retry_after is not None:
            attempt = job.attempt + 1 if result.next_attempt else job.attempt
            waiting = {
                "revision": job.revision,
                "attempt": attempt,
                "key": desired.generation_key(job.app_uid, job.revision, attempt),
                "started": (in_flight or {}).get("started") or now_rfc3339(),
                "notBefore": _after(result.retry_after),
                "reason": result.reason,
                "message": result.message[:2000],
                "fixRequest": job.fix_request,
            }
            return (
                revisions,
                waiting,
                ConditionSpec("Generated", "False", result.reason, result.message[:2000]),
            )
        failed: dict[str, Any] = {
            "number": job.revision,
            "time": now_rfc3339(),
            "promptDigest": desired.prompt_digest(job.prompts[-1]),
        }
        if result.record is not None:
            failed.update({k: v for k, v in result.record.items() if k != "key"})
        failed["validation"] = "Failed"
        return (
            [*others, failed],
            None,
            ConditionSpec("Generated", "False", result.reason, result.message[:2000]),
        )

    @staticmethod
    def _fix_up(
        app_uid: str, spec: api.VibeAppSpec, revisions: list[dict[str, Any]], failure: str
    ) -> dict[str, Any] | None:
        """A charged fix-up generation for the newest revision that failed validation, while
        spec.autoFix.attempts allows; None when there is none left (or a rollback is served)."""
        allowed = spec.auto_fix.attempts if spec.auto_fix else 0
        served = desired.served_revision(spec, revisions)
        newest = max((int(r["number"]) for r in revisions), default=0)
        if served is None or served["number"] != newest or int(served.get("fixes") or 0) >= allowed:
            return None
        attempt = int(served.get("attempt") or 0) + 1
        return {
            "revision": newest,
            "attempt": attempt,
            "key": desired.generation_key(app_uid, newest, attempt),
            "started": now_rfc3339(),
            "fixRequest": "The app you wrote did not start or its main page did not answer. "
            f"What happened:\n{failure[-1500:]}\nFix it and keep everything else as it is.",
        }

    # ---- the preview ---------------------------------------------------------------------

    def _preview(
        self,
        context: Context,
        spec: api.VibeAppSpec,
        ws_spec: WorkspaceSpec,
        revisions: list[dict[str, Any]],
    ) -> tuple[ConditionSpec, str, str | None, int | None, float | None]:
        """Apply the served revision's preview: (PreviewReady, phase, url, revision, requeue)."""
        namespace, name = context.namespace or "", context.name
        serve = desired.served_revision(spec, revisions)
        preview = spec.preview or api.Preview()
        with_bundle = [int(r["number"]) for r in revisions if r.get("sha256")]
        if serve is None and spec.pinned_revision is not None and with_bundle:
            return (
                ConditionSpec(
                    "PreviewReady",
                    "False",
                    "PinnedRevisionNotFound",
                    f"spec.pinnedRevision {spec.pinned_revision} is not a stored revision "
                    f"(stored: {', '.join(map(str, with_bundle))}); pin one of those, or remove "
                    "pinnedRevision to serve the latest",
                ),
                "Pending",
                None,
                None,
                None,
            )
        if serve is None:
            return (
                ConditionSpec(
                    "PreviewReady",
                    "False",
                    "NoRevision",
                    "no revision has files to serve"
                    if revisions
                    else "no revision has been generated yet",
                ),
                "Pending",
                None,
                None,
                None,
            )
        if not preview.enabled:
            return (
                ConditionSpec("PreviewReady", "False", "Disabled", "spec.preview.enabled is false"),
                "Running",
                None,
                int(serve["number"]),
                None,
            )
        live = self.cache.lookup("Deployment", desired.preview_name(name), namespace)
        hibernated = self._hibernated(context, preview, live)
        replicas = 0 if (ws_spec.suspended or hibernated) else 1
        url_expires, bundle_url = self._bundle_url(context, serve, live)
        deployment = desired.preview_deployment(
            name, namespace, context.uid, serve, bundle_url, url_expires, replicas, self.preview
        )
        number = int(serve["number"])
        try:
            stored = apply_and_remember(
                self.kube, self.cache, deployment, FIELD_MANAGER, "VibeApp", live
            )
            if stored is not None:
                live = stored
            service = desired.preview_service(
                name, namespace, context.uid, node_port=bool(self.settings.preview_node_address)
            )
            service_live = self.cache.lookup("Service", desired.preview_name(name), namespace)
            if self.kube.apply(service, FIELD_MANAGER, live=service_live, lookup=False) is not None:
                WRITES.labels("VibeApp", "Service").inc()
        except ApiException as error:
            if error.status not in (400, 422):
                raise
            # The app's name makes an invalid preview (a Service name is a DNS label of at
            # most 63 characters, a label value too): said here, with the revisions kept.
            return (
                ConditionSpec("PreviewReady", "False", "PreviewRefused", refusal_message(error)),
                "Failed",
                None,
                number,
                None,
            )

        if replicas == 0:
            reason = "WorkspaceSuspended" if ws_spec.suspended else "Hibernated"
            message = "the preview is scaled to zero"
            woke = (context.body["metadata"].get("annotations") or {}).get(WAKE_ANNOTATION)
            if woke and parse_time(woke) is None:
                message += (
                    f"; the {WAKE_ANNOTATION} annotation {woke[:64]!r} is not a time such as "
                    "2026-11-24T10:00:00Z and was ignored"
                )
            return (
                ConditionSpec("PreviewReady", "False", reason, message),
                "Hibernated",
                None,
                number,
                None,
            )
        if desired.deployment_ready(live, number):
            self._validated(serve, True)
            return (
                ConditionSpec("PreviewReady", "True", "Ready", f"revision {number} answers"),
                "Running",
                self._url(name, namespace),
                number,
                _idle_check(preview.idle_timeout),
            )
        waited = elapsed_since(serve.get("deployedAt"))
        if waited is None:
            serve["deployedAt"] = now_rfc3339()
        elif waited > self.settings.preview_ready_timeout and serve.get("validation") != "Passed":
            before = find(context.status.get("conditions"), "PreviewReady")
            if (
                serve.get("validation") == "Failed"
                and before
                and (before.get("reason") == "ValidationFailed")
            ):
                message = str(before.get("message"))  # the logs were read once already
            else:
                message = (
                    f"revision {number} did not become ready in "
                    f"{self.settings.preview_ready_timeout:.0f}s; log tail:\n"
                    f"{self._log_tail(name, namespace)}"
                )
            self._validated(serve, False)
            return (
                ConditionSpec("PreviewReady", "False", "ValidationFailed", message),
                "Failed",
                None,
                number,
                None,
            )
        return (
            ConditionSpec(
                "PreviewReady", "False", "Deploying", f"waiting for revision {number} to answer"
            ),
            "Deploying",
            None,
            number,
            5.0,
        )

    def _validated(self, revision: dict[str, Any], passed: bool) -> None:
        if revision.get("validation") in ("Passed", "Failed"):
            return
        revision["validation"] = "Passed" if passed else "Failed"
        if self.outcomes is not None:
            # The model's measured success and cost (rollouts, cost per app).
            self.outcomes.post(revision, passed)
        if passed:
            waited = elapsed_since(revision.get("time"))
            if waited is not None:
                PROMPT_TO_READY.observe(waited)

    def _bundle_url(
        self, context: Context, revision: dict[str, Any], live: Mapping[str, Any] | None
    ) -> tuple[str, str]:
        """A presigned URL of the served bundle: reused while it is valid for another 10
        minutes, so a converged preview's template (and so its pods) never changes."""
        if live is not None:
            template = live["spec"]["template"]
            annotations = template["metadata"].get("annotations") or {}
            env = {
                e["name"]: e.get("value") for e in template["spec"]["containers"][0].get("env", [])
            }
            expires = annotations.get(ANNOTATION_BUNDLE_URL_EXPIRES, "")
            if (
                env.get("BUNDLE_SHA256") == revision["sha256"]
                and (valid_until := parse_time(expires)) is not None
                and valid_until > datetime.now(UTC) + timedelta(minutes=10)
            ):
                return expires, str(env["BUNDLE_URL"])
        seconds = 3600
        key = str(revision["artifactUri"]).split("/", 3)[3]
        url = self.store.presigned_get(key, seconds)
        expires = format_time(datetime.now(UTC) + timedelta(seconds=seconds))
        return expires, url

    def _url(self, name: str, namespace: str) -> str:
        if self.settings.preview_local_node:
            for pod in self.cache.items("Pod", namespace):
                labels = pod["metadata"].get("labels") or {}
                port = (pod["metadata"].get("annotations") or {}).get(ANNOTATION_LOCAL_PORT)
                if labels.get(desired.LABEL_APP) == name and port and _pod_ready(pod):
                    return f"http://127.0.0.1:{port}/"
        if self.settings.preview_node_address:
            service = self.cache.lookup("Service", desired.preview_name(name), namespace)
            ports = ((service or {}).get("spec") or {}).get("ports") or []
            if ports and ports[0].get("nodePort"):
                return f"http://{self.settings.preview_node_address}:{ports[0]['nodePort']}/"
        if self.settings.preview_domain:
            return f"http://{name}-{namespace}.{self.settings.preview_domain}/"
        return f"http://{desired.preview_name(name)}.{namespace}.svc/"

    def _hibernated(
        self, context: Context, preview: api.Preview, live: Mapping[str, Any] | None
    ) -> bool:
        """Idle longer than idleTimeout (by status.lastActivity) and not woken since."""
        annotations = context.body["metadata"].get("annotations") or {}
        last = parse_time(context.status.get("lastActivity"))
        # Written by people: an unreadable value is ignored (and said so when hibernated).
        woke = parse_time(annotations.get(WAKE_ANNOTATION))
        newest = max((moment for moment in (last, woke) if moment), default=None)
        if newest is None:
            return False
        idle = (datetime.now(UTC) - newest).total_seconds()
        return idle > duration_seconds(preview.idle_timeout)

    def _log_tail(self, name: str, namespace: str) -> str:
        for pod in self.cache.items("Pod", namespace):
            if (pod["metadata"].get("labels") or {}).get(desired.LABEL_APP) != name:
                continue
            try:
                text = self.kube.read_pod_log(
                    pod["metadata"]["name"], namespace, container="app", tail_lines=20
                )
                return text[-1500:]
            except ApiException as error:
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                states = json.dumps([s.get("state") for s in statuses])[:1000]
                return f"(logs unavailable: {error.reason}) container state: {states}"
        return "(no pod)"

    # ---- workspace, finalizer --------------------------------------------------------------

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        ns = self.cache.lookup("Namespace", namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}

    def _workspace(self, namespace: str) -> Mapping[str, Any] | None:
        name = self._namespace_labels(namespace).get(LABEL_WORKSPACE)
        return self.workspace_body(name) if name else None

    def _add_finalizer(self, context: Context) -> None:
        finalizers = [*(context.body["metadata"].get("finalizers") or []), FINALIZER]
        self.kube.patch_metadata(
            api.INFO, context.name, context.namespace, {"finalizers": finalizers}
        )
        WRITES.labels("VibeApp", "VibeApp").inc()

    def _finalize(self, context: Context, workspace: Mapping[str, Any] | None) -> None:
        """Remove the app's objects from S3 unless its workspace retains artifacts."""
        finalizers = context.body["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        # The workspace may be gone already (its deletion takes the namespace and the apps
        # with it): the namespace's labels carry its name and retention until the end.
        labels = self._namespace_labels(context.namespace or "")
        workspace_name = labels.get(LABEL_WORKSPACE) or (
            (workspace or {}).get("metadata") or {}
        ).get("name")
        retain = labels.get(LABEL_RETAIN) == "true"
        # An app outside any workspace never generated anything: nothing to remove.
        if workspace_name and not retain:
            removed = self.store.delete_prefix(app_prefix(workspace_name, context.uid))
            log.info("deleted %d objects of %s/%s", removed, context.namespace, context.name)
        if workspace is not None:
            # What the app still holds in the ledger (an attempt reserved, then the operator
            # restarted) no generation will settle now: give it back, or it would hold the
            # workspace's budget for an hour. Keys are generation_key(): "<app uid>:...".
            budget = (workspace.get("spec") or {}).get("budget") or {}
            self.generator.ledgers.release_prefix(
                workspace["metadata"]["name"],
                workspace["metadata"]["uid"],
                budget.get("period", DEFAULT_BUDGET_PERIOD),
                f"{context.uid}:",
            )
        self.kube.patch_metadata(
            api.INFO,
            context.name,
            context.namespace,
            {"finalizers": [f for f in finalizers if f != FINALIZER]},
        )


def _settled(
    revisions: list[dict[str, Any]], conditions: list[Mapping[str, Any]] | None
) -> ConditionSpec:
    """Generated while no generation is due: True, unless the newest revision failed (the
    model declined, or every model failed): then the reason it failed with stays."""
    newest = max(revisions, key=lambda r: int(r["number"]), default=None)
    if newest is None or newest.get("sha256"):
        return ConditionSpec("Generated", "True", "UpToDate", "every prompt has a revision")
    before = find(conditions, "Generated")
    if before is not None and before.get("status") == "False":
        return ConditionSpec(
            "Generated", "False", str(before.get("reason")), str(before.get("message") or "")
        )
    return ConditionSpec(
        "Generated", "False", "GenerationFailed", f"revision {newest['number']} has no files"
    )


ACTIVITY_PATH = "/__vibeplane/activity"


def _poll_activity(url: str) -> str | None:
    """When the preview last served a person, as the preview runtime reports it."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + ACTIVITY_PATH, timeout=2) as response:
            seconds = int(json.loads(response.read())["lastActivity"])
    except (OSError, ValueError, KeyError):
        return None
    return format_time(datetime.fromtimestamp(seconds, UTC))


def _after(seconds: float) -> str:
    return format_time(datetime.now(UTC) + timedelta(seconds=seconds))


def elapsed_since(stamp: str | None) -> float | None:
    """Seconds since an RFC 3339 stamp (None without a readable one)."""
    moment = parse_time(stamp)
    return None if moment is None else max(0.0, (datetime.now(UTC) - moment).total_seconds())


def _remaining(stamp: str | None) -> float:
    """Seconds until `stamp` (0 when absent, unreadable or past)."""
    moment = parse_time(stamp)
    return 0.0 if moment is None else max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _idle_check(idle_timeout: str) -> float:
    return max(5.0, min(duration_seconds(idle_timeout) / 4, 300.0))


def _total(revisions: list[dict[str, Any]]) -> str:
    total = sum((Decimal(str(r.get("cost", "0"))) for r in revisions), Decimal(0))
    return format(total.normalize(), "f") if total else "0"


def setup(
    settings: OperatorSettings,
    cache: ObjectCache,
    kube: KubeClient,
    workspace_body: Callable[[str], Mapping[str, Any] | None],
    resolve_models: ModelResolver,
    generator: Generator,
    store: ObjectStore,
    outcomes: OutcomeBoard | None = None,
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
        enqueue=lambda key: controller.enqueue(key),
        outcomes=outcomes,
    )
    controller = Controller(api.INFO, reconciler, settings, cache, kube)
    controller.register()
    for kind in PREVIEW_KINDS:
        cache.watch(kind)
    return controller
