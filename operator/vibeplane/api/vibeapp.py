"""VibeApp: prompts that become a generated app and its sandboxed preview.

The app is the result of applying the prompts one by one; appending a prompt asks for the next
revision. Each revision's files are stored in object storage and served by a gVisor preview.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from vibeplane.api.common import Conditions, Duration, KubeModel
from vibeplane.api.meta import AGE_COLUMN, KindInfo, PrinterColumn

Phase = Literal[
    "Pending", "Generating", "Deploying", "Running", "Hibernated", "Failed", "BudgetExceeded"
]


class Preview(KubeModel):
    """The app's live preview."""

    enabled: bool = True
    """Run a preview of the current revision."""
    idle_timeout: Duration = "30m"
    """Hibernate (scale to zero) after this long without traffic, e.g. "30m"."""


class AutoFix(KubeModel):
    """A bounded loop that sends a failing revision's error back to the model."""

    attempts: int = Field(default=0, ge=0, le=5)
    """How many charged fix-up generations to try when a revision fails validation (0-5)."""


class Publish(KubeModel):
    """Production: one chosen revision served on public hostnames by its own Deployment and
    Service, which never hibernate. Changing `revision` rolls the published pods over with no
    downtime (new pods must be ready before old ones go); setting an earlier one rolls back.
    The preview keeps following the latest revision."""

    revision: int = Field(ge=1)
    """The revision to publish; only one whose validation passed (status.revisions[].validation
    is Passed) is published, otherwise the Published condition says why and nothing changes."""
    hostnames: list[str] = Field(
        min_length=1,
        max_length=10,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 253}},
    )
    """Public hostnames, e.g. shop.example.com, or a name under the platform domain. A hostname
    belongs to one app: the first to claim it holds it, a later claim is refused (condition
    Published=False, HostnameTaken). Custom domains must end in one of the platform's allowed
    suffixes when it sets them; platform-reserved names are refused."""
    replicas: int = Field(default=1, ge=1, le=20)
    """Published pods (1-20); they count against the workspace's quota."""


class VibeAppSpec(KubeModel):
    """The desired state of one generated app."""

    prompts: list[str] = Field(
        min_length=1,
        max_length=500,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 20000}},
    )
    """The prompts, in order: the app is the result of applying them one by one, and
    appending a prompt asks for the next revision."""
    model: str | None = Field(default=None, max_length=253)
    """The ModelDeployment to generate with; defaults to the workspace's default model."""
    stack: Literal["static", "python", "node"] = "static"
    """What the generated app is written in and how the preview serves it."""
    preview: Preview | None = None
    """Preview settings."""
    pinned_revision: int | None = Field(default=None, ge=1)
    """Serve this revision instead of the latest (rollback); remove to return to the latest."""
    auto_fix: AutoFix | None = None
    """Fix-up generations for revisions that fail validation."""
    publish: Publish | None = None
    """Publish a revision to production on public hostnames; remove to unpublish."""


class RefusedAnswer(KubeModel):
    """A model's answer that the output checks refused before another model answered."""

    model: str
    """The ModelDeployment that answered."""
    reason: str
    """The rule the answer broke, e.g. UnsafePath or UnterminatedTag."""
    message: str | None = None
    """What was wrong, in words."""


class Revision(KubeModel):
    """One generated revision of the app."""

    number: int = Field(ge=1)
    """The revision number, from 1."""
    prompt_digest: str | None = None
    """sha256 of the prompt that produced it."""
    model: str | None = None
    """The ModelDeployment that generated it."""
    model_namespace: str | None = None
    """That ModelDeployment's namespace (its outcomes are counted there)."""
    served_model: str | None = None
    """The model name asked for: the base model, or an adapter on it."""
    arm: Literal["base", "private", "incumbent", "candidate"] | None = None
    """Where routing put it: the base model, the workspace's private adapter, or a rollout's
    incumbent or candidate."""
    fix_up: bool | None = None
    """Generated as a fix-up of a failed revision (not a success of the model's own)."""
    latency_seconds: float | None = None
    """How long the model took to answer."""
    route_reason: str | None = None
    """Why the router chose that model."""
    tokens_in: int | None = None
    """Input tokens charged."""
    tokens_out: int | None = None
    """Output tokens charged."""
    cost: str | None = None
    """What the generation cost, as a decimal string."""
    artifact_uri: str | None = None
    """The bundle in object storage, e.g. s3://bucket/workspaces/ws/apps/app/<sha256>.tar.gz."""
    sha256: str | None = None
    """sha256 of the bundle."""
    validation: Literal["Pending", "Passed", "Failed"] | None = None
    """Whether the preview of this revision became ready."""
    time: datetime | None = None
    """When the revision was generated."""
    deployed_at: datetime | None = None
    """When its preview was first deployed (the readiness deadline counts from here)."""
    fixes: int | None = None
    """Fix-up generations spent on this revision (spec.autoFix)."""
    attempt: int | None = None
    """The generation attempt that produced it (retries and fix-ups count up)."""
    refused_answers: list[RefusedAnswer] | None = None
    """Answers of earlier models in the route that the output checks refused, and why."""


class GenerationInFlight(KubeModel):
    """The generation attempt under way; a restarted operator resumes it."""

    revision: int
    """The revision being generated."""
    attempt: int = 0
    """The attempt (0 first; fix-ups and retries after a restart count up)."""
    key: str
    """The idempotency key: app uid, revision and attempt."""
    started: datetime | None = None
    """When the attempt began."""
    not_before: datetime | None = None
    """The attempt waits until then (a refused budget, a model or store that failed)."""
    reason: str | None = None
    """Why it waits, e.g. BudgetExceeded, NoModelAvailable."""
    message: str | None = None
    """Why it waits, for people."""
    fix_request: str | None = Field(default=None, max_length=4000)
    """For a fix-up attempt: what failed, sent back to the model."""


class Delivered(KubeModel):
    """The revision the preview sandbox took last (a swap), and which sandbox took it."""

    revision: int
    sha256: str
    sandbox: str
    """The pod (name/uid) and its container restarts: another sandbox needs a delivery."""


class VibeAppStatus(KubeModel):
    """The observed state of one generated app."""

    phase: Phase | None = None
    """Pending, Generating, Deploying, Running, Hibernated, Failed or BudgetExceeded."""
    revision: int | None = None
    """The revision served now."""
    delivered: Delivered | None = None
    """The revision the preview's sandbox serves, as it answered its delivery."""
    revisions: list[Revision] = Field(default_factory=list)
    """The last revisions, newest last (older ones are in the revision index in storage)."""
    url: str | None = None
    """Where the preview answers (its route's URL when the platform names a Gateway)."""
    published_url: str | None = Field(default=None, alias="publishedURL")
    """Where the published revision answers (the first of spec.publish.hostnames)."""
    published_revision: int | None = None
    """The revision production serves now."""
    generation: GenerationInFlight | None = None
    """The generation under way, if any."""
    total_cost: str | None = None
    """What all of the app's generations cost, as a decimal string."""
    last_activity: datetime | None = None
    """The last prompt or preview request."""
    conditions: Conditions = Field(default_factory=list)
    """Generated, PreviewReady, BudgetOK, Ready; Routed and Published with the front door."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""


INFO = KindInfo(
    kind="VibeApp",
    plural="vibeapps",
    short_names=("va",),
    scope="Namespaced",
    spec=VibeAppSpec,
    status=VibeAppStatus,
    description=(
        "A VibeApp is an app generated from prompts, stored per revision in object storage "
        "and served as a gVisor-sandboxed preview."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Rev", ".status.revision", type="integer"),
        PrinterColumn("URL", ".status.url"),
        PrinterColumn("Cost", ".status.totalCost"),
        AGE_COLUMN,
    ),
)
