"""One generation attempt, end to end, off the event loop.

reserve -> model call (falling through the routed models) -> parse -> apply to the previous
revision -> safety checks -> bundle to S3 -> revision index -> settle -> training record.
In `Generator`: `_reserve`, `_call_models` (each model by `_try_model`, falling through on a
failed call or a refused answer; `_cut_off` for an answer cut off at max_tokens), then
`_store_and_settle`.

Restart safety comes from the order and the idempotency key (app uid + revision + attempt):
the revision index in S3 is written before the charge is settled, so an attempt that is run
again after a crash finds its revision in the index and only settles (a no-op if it already
did); an attempt that crashed before the index write reserves again (the ledger returns the
existing reservation) and calls the model again, charged once. An answer that ends the attempt
without files (declined, cut off) is indexed before it is settled too: without that, a crash
between its settle and the status write left a closed key and no record, and the attempt after
it called the model and charged the same revision again.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from vibeplane.api.common import API_VERSION
from vibeplane.budget.explain import money, refusal_message
from vibeplane.budget.ledger import Amount, Limits
from vibeplane.budget.periods import PeriodKind
from vibeplane.budget.store import LedgerStore
from vibeplane.generation import client as model_client
from vibeplane.generation.checks import FileLimits, UnsafeOutputError, check_files
from vibeplane.generation.egress import EgressPolicy
from vibeplane.generation.format import (
    ChatMessage,
    OutputFormatError,
    apply_output,
    build_messages,
    parse_output,
)
from vibeplane.kube import client as kube_client
from vibeplane.metrics import ANSWERS_REFUSED, GENERATION_COST, GENERATION_TOKENS, GENERATIONS
from vibeplane.storage import bundles
from vibeplane.storage.s3 import ObjectStore, StorageError, bundle_key, training_key
from vibeplane.timestamps import now_text
from vibeplane.vibeapp.desired import (
    estimate_tokens,
    generation_ask,
    generation_cost,
    generation_key,
    prompt_digest,
)


@dataclass(frozen=True)
class ModelTarget:
    """A routed model: where to call it and what it costs."""

    name: str
    url: str
    served_model: str
    api_key: str | None
    pricing: Mapping[str, str]
    output_tokens: int
    reason: str
    egress: EgressPolicy | None = None
    """The guard on a tenant's external model (vibeplane.generation.egress); None: none."""
    namespace: str = ""
    """The ModelDeployment's namespace (its outcomes are counted there)."""
    arm: str = ""
    """Which arm of the model's rollout this is (vibeplane.generation.rollout), if any."""
    min_output_tokens: int = 1024
    """The floor of a bounded generation (ModelDeployment spec.limits.minOutputTokens)."""

    def __repr__(self) -> str:  # never print the key
        return f"ModelTarget({self.name!r}, {self.url!r}, reason={self.reason!r})"


@dataclass(frozen=True)
class Job:
    """Everything one attempt needs; built by the reconcile, run on a worker thread."""

    namespace: str
    app: str
    app_uid: str
    workspace: str
    workspace_uid: str
    period: PeriodKind
    limits: Limits
    revision: int
    attempt: int
    prompts: tuple[str, ...]
    previous_sha256: str | None
    stack: str
    models: tuple[ModelTarget, ...]
    allow_training: bool
    fix_request: str | None = None
    route_error: str = ""
    """Why no model could be routed to (when `models` is empty)."""

    @property
    def key(self) -> str:
        return generation_key(self.app_uid, self.revision, self.attempt)


log = logging.getLogger(__name__)
DECLINED, TRUNCATED = "Declined", "Truncated"
FINAL_WITHOUT_FILES = {
    DECLINED: ("ModelDeclined", "the model answered in words, without files"),
    TRUNCATED: ("OutputTruncated", "the answer was cut off at its output limit"),
}
"""An index entry's validation for an answer that ended its attempt without a revision ->
the failure it is (reason, message) when the attempt is found again after a restart."""
Outcome = Literal["succeeded", "failed", "refused"]
Warn = Callable[["Job", str, str], None]


def post_warning(job: Job, reason: str, message: str) -> None:
    """A Warning Event on the job's VibeApp (best effort: a refused Event changes nothing)."""
    app = {
        "apiVersion": API_VERSION,
        "kind": "VibeApp",
        "metadata": {"name": job.app, "namespace": job.namespace, "uid": job.app_uid},
    }
    try:
        kube_client.post_event(app, "Warning", reason, message)
    except ApiException as error:
        log.warning("could not post an Event for %s/%s: %s", job.namespace, job.app, error.reason)


MAX_ATTEMPTS = 3  # attempts whose every model failed before the revision counts as failed
WAITING_POLL = 120.0
"""Seconds before a refused generation asks again by itself (spread by up to half)."""


def truncated_message(
    answer: model_client.ChatResult,
    target: ModelTarget,
    bound: int | None,
    bounded: bool,
    record: Mapping[str, Any],
) -> str:
    limit = min(bound or target.output_tokens, target.output_tokens)
    why = (
        f"all the workspace budget could hold of the model's {target.output_tokens:,}"
        if bounded and limit < target.output_tokens
        else "the model's output limit"
    )
    return (
        f"the answer of {target.name} was cut off at {answer.completion_tokens:,} output tokens "
        f"(max_tokens {limit:,}: {why}); no revision was made, and "
        f"{money(Decimal(str(record['cost'])))} was charged "
        "for the tokens used"
    )


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str
    message: str
    record: dict[str, Any] | None = None
    model_calls: int = 0
    retry_after: float | None = None
    """Transient: try again after this many seconds (None: the outcome is final)."""
    next_attempt: bool = False
    """The retry needs a new attempt (this one's key was closed by a release)."""


@dataclass(frozen=True)
class Conversation:
    """What an attempt sends the models."""

    previous: dict[str, str] | None
    """The previous revision's files (None: the first revision)."""
    messages: list[ChatMessage]


@dataclass(frozen=True)
class Grant:
    """What the ledger reserved for an attempt."""

    bound: int | None
    """The output tokens granted: each call's max_tokens, so that the answer cannot cost more
    than was reserved (None: a reservation made before bounds existed)."""
    bounded: bool
    """Whether the budget bounded it below what was asked."""

    def max_tokens(self, target: ModelTarget) -> int:
        return min(self.bound or target.output_tokens, target.output_tokens)


@dataclass
class Attempt:
    """One attempt while it falls through the routed models."""

    job: Job
    conversation: Conversation
    grant: Grant
    calls: int = 0
    failures: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    """Answers the checks refused, in the revision record."""


def _resumed(recorded: dict[str, Any]) -> Result:
    """The Result of an attempt whose outcome an earlier run stored before a restart."""
    final = FINAL_WITHOUT_FILES.get(str(recorded.get("validation")))
    if recorded.get("sha256") or final is None:
        return Result("succeeded", "Generated", "resumed after a restart", recorded)
    reason, message = final
    return Result("failed", reason, f"{message} (found again after a restart)", recorded)


@dataclass
class Generator:
    """Runs attempts on a bounded pool, at most `per_workspace` at once per workspace.

    An attempt whose workspace is at its limit waits in that workspace's line, not on a pool
    thread: a thread blocked on one busy workspace would leave others idle (10 apps of one
    workspace queued first would hold the pool while 99 workspaces waited).
    """

    ledgers: LedgerStore
    store: ObjectStore
    file_limits: FileLimits
    workers: int = 4
    per_workspace: int = 2
    timeout: float = 120.0
    warn: Warn = field(default_factory=lambda: post_warning)
    """Posts a Warning Event about the job's app (injected: unit tests collect them)."""
    _pool: ThreadPoolExecutor = field(init=False)
    _running: dict[str, Future[Result]] = field(default_factory=dict)
    _active: dict[str, int] = field(default_factory=dict)
    _waiting: dict[str, deque[tuple[Job, Future[Result]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _woken: set[str] = field(default_factory=set)
    _admitted: set[str] = field(default_factory=set)
    """Running attempts the ledger granted (past the budget's check, calling models)."""
    _on_admitted: dict[str, Callable[[Job], None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="generate")

    def submit(
        self,
        job: Job,
        done: Callable[[Job], None],
        admitted: Callable[[Job], None] | None = None,
    ) -> None:
        """Start `job` unless the same attempt is already running (or waiting) here. `done`
        is called when it finished; `admitted`, if given, once the ledger granted it (a retry
        of a refused attempt says so then: its status said BudgetExceeded until now)."""
        with self._lock:
            if job.key in self._running:
                return
            future: Future[Result] = Future()
            self._running[job.key] = future
            if admitted is not None:
                self._on_admitted[job.key] = admitted
            if self._active.get(job.workspace, 0) < self.per_workspace:
                self._active[job.workspace] = self._active.get(job.workspace, 0) + 1
                self._start(job, future)
            else:
                self._waiting.setdefault(job.workspace, deque()).append((job, future))
        future.add_done_callback(lambda _: done(job))

    def _start(self, job: Job, future: Future[Result]) -> None:
        """Run `job` on the pool; it holds one of its workspace's slots (taken by the caller)."""

        def run() -> None:
            try:
                result = self.run(job)
            except Exception as error:  # handed to whoever takes the result
                self._next_in_line(job.workspace)
                future.set_exception(error)
            else:
                self._next_in_line(job.workspace)
                future.set_result(result)

        self._pool.submit(run)

    def _next_in_line(self, workspace: str) -> None:
        """A slot of `workspace` is free: give it to the next waiting attempt, if any."""
        with self._lock:
            line = self._waiting.get(workspace)
            if line:
                self._start(*line.popleft())
                return
            self._waiting.pop(workspace, None)
            self._active[workspace] -= 1
            if not self._active[workspace]:
                del self._active[workspace]

    def result(self, key: str) -> Result | None:
        """The result of a finished attempt (taken once), None while running or unknown."""
        with self._lock:
            future = self._running.get(key)
            if future is None or not future.done():
                return None
            self._forget(key)
        error = future.exception()
        if error is not None:
            log.error("generation %s failed", key, exc_info=error)
            # The same attempt again, never a new one: the error may have come after the
            # revision was stored (during settlement), and only the same attempt finds it and
            # settles it once; a new attempt would generate and charge a second time.
            return Result(
                "failed",
                "InternalError",
                f"generation failed: {error}",
                retry_after=30,
            )
        return future.result()

    def wake(self, key: str) -> None:
        """The refused attempt `key` fits the budget now (`ledger.admittable`): its app's next
        reconcile asks again at once instead of at its poll."""
        with self._lock:
            self._woken.add(key)

    def take_wake(self, key: str) -> bool:
        """Whether `key` was woken since it last asked (answered once)."""
        with self._lock:
            if key in self._woken:
                self._woken.discard(key)
                return True
            return False

    def running(self, key: str) -> bool:
        with self._lock:
            return key in self._running

    def app_busy(self, app_uid: str) -> bool:
        """Whether an attempt of this app is still running here. Finished ones are dropped:
        this asks for an app being deleted, and nobody will take their results."""
        prefix = f"{app_uid}:"
        with self._lock:
            for key in [k for k, future in self._running.items() if k.startswith(prefix)]:
                if not self._running[key].done():
                    return True
                self._forget(key)
            return False

    def admitted(self, key: str) -> bool:
        """Whether the running attempt `key` got its grant from the ledger."""
        with self._lock:
            return key in self._admitted

    def _forget(self, key: str) -> None:
        """Drop a finished attempt (the lock is held)."""
        del self._running[key]
        self._admitted.discard(key)
        self._on_admitted.pop(key, None)

    def _admit(self, job: Job) -> None:
        with self._lock:
            self._admitted.add(job.key)
            tell = self._on_admitted.pop(job.key, None)
        if tell is not None:
            tell(job)

    # ---- one attempt ---------------------------------------------------------------------

    def run(self, job: Job) -> Result:
        try:
            return self._run(job)
        except StorageError as error:
            return Result("failed", "StorageFailed", str(error), retry_after=10)

    def _run(self, job: Job) -> Result:
        recorded = self._recorded(job)
        if recorded is not None:  # stored before a restart: only make sure it is settled
            self._settle(job, recorded)
            return _resumed(recorded)
        if not job.models:
            reason, _, message = (job.route_error or "NoModelAvailable: no model").partition(": ")
            return Result("failed", reason, message, retry_after=10)
        conversation = self._conversation(job)
        grant = self._reserve(job, conversation.messages)
        if isinstance(grant, Result):
            return grant
        self._admit(job)
        return self._call_models(Attempt(job, conversation, grant))

    def _conversation(self, job: Job) -> Conversation:
        """The messages to send: the prompts over the previous revision's files, and the fix
        request of a fix-up."""
        previous = self._previous_files(job)
        messages = build_messages(job.prompts, previous, job.stack)
        if job.fix_request:
            messages.append({"role": "user", "content": job.fix_request})
        return Conversation(previous, messages)

    def _reserve(self, job: Job, messages: Sequence[Mapping[str, Any]]) -> Grant | Result:
        """Reserve the most the attempt may cost; a Result when it may not go on."""
        prompt_tokens = estimate_tokens("".join(str(m["content"]) for m in messages))
        reserved = self.ledgers.reserve(
            job.workspace,
            job.workspace_uid,
            job.period,
            job.key,
            generation_ask(prompt_tokens, job.models),
            job.limits,
            app=f"{job.namespace}/{job.app}",
        )
        if reserved.decision == "refused":
            GENERATIONS.labels("refused", job.models[0].name).inc()
            return Result(
                "refused",
                "BudgetExceeded",
                refusal_message(reserved.refusal)
                if reserved.refusal is not None
                else f"the workspace budget cannot cover this generation ({reserved.over})",
                # In the ledger's waiting line: woken as soon as it fits (the workspace
                # watches the ledger); this slow, spread poll is only the fallback.
                retry_after=WAITING_POLL * random.uniform(1.0, 1.5),
            )
        if reserved.decision == "already-closed":
            return Result(
                "failed",
                "AttemptClosed",
                "this attempt was closed before a restart",
                retry_after=0,
                next_attempt=True,
            )
        return Grant(reserved.output_tokens, reserved.bounded)

    def _call_models(self, attempt: Attempt) -> Result:
        """Each routed model in turn until one answers with files that pass the checks; an
        answer that is a final outcome (cut off, declined) ends the attempt too."""
        job = attempt.job
        for target in job.models:
            attempt.calls += 1
            result = self._try_model(attempt, target)
            if result is not None:
                return result
        self.ledgers.release(job.workspace, job.workspace_uid, job.period, job.key)
        final = job.attempt + 1 >= MAX_ATTEMPTS
        return Result(
            "failed",
            "AllModelsFailed",
            "; ".join(attempt.failures)[-1500:],
            None,
            attempt.calls,
            retry_after=None if final else 10,
            next_attempt=True,
        )

    def _try_model(self, attempt: Attempt, target: ModelTarget) -> Result | None:
        """One model's answer as the attempt's Result, or None to fall through to the next."""
        job = attempt.job
        try:
            answer = model_client.chat(
                target.url,
                target.served_model,
                attempt.conversation.messages,
                target.api_key,
                timeout=self.timeout,
                max_tokens=attempt.grant.max_tokens(target),
                egress=target.egress,
            )
            if answer.finish_reason == "length":
                return self._cut_off(attempt, target, answer)
            parsed = parse_output(answer.text)
            previous = attempt.conversation.previous
            files = apply_output(previous or {}, parsed) if parsed.actions else {}
            if not files:
                # The model answered in words: a real answer, charged, but no revision.
                record = self._final(job, target, answer, DECLINED, attempt.refused)
                GENERATIONS.labels("failed", target.name).inc()
                return Result(
                    "failed",
                    "ModelDeclined",
                    parsed.message[:500] or "the model wrote no files",
                    record,
                    attempt.calls,
                )
            check_files(files, self.file_limits)
        except model_client.ModelCallError as error:
            attempt.failures.append(f"{target.name}: {error.reason}: {error.message}")
            GENERATIONS.labels("failed", target.name).inc()
            return None
        except (OutputFormatError, UnsafeOutputError) as error:
            attempt.failures.append(f"{target.name}: {error.reason}: {error.message}")
            GENERATIONS.labels("failed", target.name).inc()
            self._refused(job, target, error.reason, error.message, attempt.refused)
            return None
        return self._store_and_settle(attempt, target, answer, files)

    def _cut_off(
        self, attempt: Attempt, target: ModelTarget, answer: model_client.ChatResult
    ) -> Result:
        """A cut-off answer: charged for what it used, and never half an app."""
        job = attempt.job
        record = self._final(job, target, answer, TRUNCATED, attempt.refused)
        GENERATIONS.labels("truncated", target.name).inc()
        return Result(
            "failed",
            "OutputTruncated",
            truncated_message(answer, target, attempt.grant.bound, attempt.grant.bounded, record),
            record,
            attempt.calls,
        )

    def _store_and_settle(
        self,
        attempt: Attempt,
        target: ModelTarget,
        answer: model_client.ChatResult,
        files: dict[str, str],
    ) -> Result:
        """Bundle to S3 and index the revision, then settle (in that order: see the module
        docstring), then the training record."""
        job = attempt.job
        bundle = bundles.build(files)
        try:
            uri = self.store.put_bundle(job.workspace, job.app_uid, bundle.sha256, bundle.data)
            record = self._record(
                job, target, answer, uri, bundle.sha256, "Pending", attempt.refused
            )
            self._index(job, record)
        except StorageError as error:
            self.ledgers.release(job.workspace, job.workspace_uid, job.period, job.key)
            return Result(
                "failed",
                "StorageFailed",
                str(error),
                None,
                attempt.calls,
                retry_after=10,
                next_attempt=True,
            )
        self._settle(job, record)
        self._training(job, record, attempt.conversation.messages, answer.text)
        GENERATIONS.labels("succeeded", target.name).inc()
        return Result(
            "succeeded",
            "Generated",
            f"revision {job.revision} by {target.name}",
            record,
            attempt.calls,
        )

    def _refused(
        self,
        job: Job,
        target: ModelTarget,
        reason: str,
        message: str,
        refused: list[dict[str, str]],
    ) -> None:
        """Say why a model's answer was refused: in the record, an Event and a metric."""
        refused.append({"model": target.name, "reason": reason, "message": message[:300]})
        ANSWERS_REFUSED.labels(target.name, reason).inc()
        self.warn(
            job,
            "ModelAnswerRefused",
            f"revision {job.revision}: the answer of model {target.name} was refused "
            f"({reason}: {message[:300]}); the next routed model is tried",
        )

    def _final(
        self,
        job: Job,
        target: ModelTarget,
        answer: model_client.ChatResult,
        validation: str,
        refused: Sequence[Mapping[str, str]],
    ) -> dict[str, Any]:
        """An answer that ends the attempt without a revision: indexed, then settled (the
        order of `_store_and_settle`, for the same reason)."""
        record = self._record(job, target, answer, None, None, validation, refused)
        self._index(job, record)
        self._settle(job, record)
        return record

    def _recorded(self, job: Job) -> dict[str, Any] | None:
        """What an earlier run of this revision stored, a revision or a final answer without
        one (any attempt: one per number)."""
        for entry in self.store.read_index(job.workspace, job.app_uid):
            # A fix-up (a later attempt) must not take the revision it is fixing for its own.
            if (
                entry.get("number") == job.revision
                and (entry.get("sha256") or entry.get("validation") in FINAL_WITHOUT_FILES)
                and int(entry.get("attempt") or 0) >= job.attempt
            ):
                return dict(entry)
        return None

    def _previous_files(self, job: Job) -> dict[str, str] | None:
        if not job.previous_sha256:
            return None
        data = self.store.get(bundle_key(job.workspace, job.app_uid, job.previous_sha256))
        return bundles.extract(data) if data else None

    def _record(
        self,
        job: Job,
        target: ModelTarget,
        answer: model_client.ChatResult,
        uri: str | None,
        sha256: str | None,
        validation: str,
        refused: Sequence[Mapping[str, str]] = (),
    ) -> dict[str, Any]:
        cost = generation_cost(answer.prompt_tokens, answer.completion_tokens, target.pricing)
        record: dict[str, Any] = {
            "number": job.revision,
            "attempt": job.attempt,
            "key": job.key,
            "promptDigest": prompt_digest(job.prompts[-1]),
            "model": target.name,
            "modelNamespace": target.namespace,
            "servedModel": target.served_model,
            "fixUp": bool(job.fix_request),
            "latencySeconds": round(answer.latency_s, 3),
            "routeReason": target.reason,
            "tokensIn": answer.prompt_tokens,
            "tokensOut": answer.completion_tokens,
            "cost": format(cost.normalize(), "f"),
            "validation": validation,
            "time": now_text(),
        }
        if target.arm:  # the schema's enum has no empty value: no rollout, no arm
            record["arm"] = target.arm
        if uri and sha256:
            record.update({"artifactUri": uri, "sha256": sha256})
        if refused:
            record["refusedAnswers"] = [dict(answer) for answer in refused]
        return record

    def _index(self, job: Job, record: Mapping[str, Any]) -> None:
        index = [
            e
            for e in self.store.read_index(job.workspace, job.app_uid)
            if e.get("number") != job.revision
        ]
        index.append(dict(record))
        index.sort(key=lambda entry: int(entry["number"]))
        self.store.write_index(job.workspace, job.app_uid, index)

    def _settle(self, job: Job, record: Mapping[str, Any]) -> None:
        tokens_in, tokens_out = int(record["tokensIn"]), int(record["tokensOut"])
        cost = Decimal(str(record["cost"]))
        charged = self.ledgers.settle(
            job.workspace,
            job.workspace_uid,
            job.period,
            str(record.get("key", job.key)),
            Amount(tokens_in + tokens_out, cost),
        )
        if charged:
            GENERATION_TOKENS.labels("input", record["model"]).inc(tokens_in)
            GENERATION_TOKENS.labels("output", record["model"]).inc(tokens_out)
            GENERATION_COST.labels(record["model"]).inc(float(cost))

    def _training(
        self,
        job: Job,
        record: Mapping[str, Any],
        messages: Sequence[Mapping[str, Any]],
        output: str,
    ) -> None:
        """One JSONL record per generation, only when the workspace allows training."""
        if not job.allow_training:
            return
        context = "".join(str(m["content"]) for m in messages[:-1])
        self.store.put_training_record(
            training_key(job.workspace, job.app_uid, job.revision, job.attempt, datetime.now(UTC)),
            {
                "workspace": job.workspace,
                "app": job.app_uid,
                "revision": job.revision,
                "attempt": job.attempt,
                "prompt": job.prompts[-1],
                "contextDigest": "sha256:" + hashlib.sha256(context.encode()).hexdigest(),
                "outputDigest": "sha256:" + hashlib.sha256(output.encode()).hexdigest(),
                "model": record["model"],
                "tokensIn": record["tokensIn"],
                "tokensOut": record["tokensOut"],
                "validation": record["validation"],
                "followUpPrompt": None,
                "time": record["time"],
            },
        )
