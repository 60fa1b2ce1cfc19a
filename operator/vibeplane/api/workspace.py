"""Workspace: a tenant of the platform.

A Workspace owns a namespace with its RBAC, quota, limits and network isolation, and a budget
that generations draw from. It is cluster-scoped because it creates and owns a namespace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from vibeplane.api.common import (
    Conditions,
    DecimalString,
    DNSLabel,
    KubeModel,
    Quantity,
)
from vibeplane.api.meta import AGE_COLUMN, READY_COLUMN, KindInfo, PrinterColumn

Role = Literal["admin", "editor", "viewer"]


class Member(KubeModel):
    """A user or group and the role they hold in the workspace."""

    kind: Literal["User", "Group"] = "User"
    """Whether name is a user or a group, as the API server's authenticator reports it."""
    name: str = Field(min_length=1, max_length=253)
    """The user or group name."""
    role: Role
    """admin manages apps and models and reads secrets; editor manages apps; viewer only reads."""


class Quota(KubeModel):
    """Hard limits on what the workspace's namespace may consume."""

    cpu: Quantity | None = None
    """Total CPU requests and limits of all pods, e.g. "8" or "8000m"."""
    memory: Quantity | None = None
    """Total memory requests and limits of all pods, e.g. "16Gi"."""
    gpu: int | None = Field(default=None, ge=0)
    """Total nvidia.com/gpu requests."""
    pods: int | None = Field(default=None, ge=0)
    """Maximum number of pods."""
    storage: Quantity | None = None
    """Total storage requested by persistent volume claims."""
    previews: int | None = Field(default=None, ge=0)
    """Maximum number of previews running at once."""
    apps: int | None = Field(default=None, ge=0)
    """Maximum number of VibeApps (and so of preview Services)."""


class ContainerLimits(KubeModel):
    """Defaults for containers that set no requests or limits, so that they still count."""

    default_cpu: Quantity | None = None
    """CPU limit (and request) given to a container that sets none, e.g. "500m"."""
    default_memory: Quantity | None = None
    """Memory limit (and request) given to a container that sets none, e.g. "512Mi"."""


class Network(KubeModel):
    """Network isolation: everything is denied except what is listed here."""

    allow_internet_egress: bool = False
    """Allow pods of the workspace to open connections to the internet."""
    allowed_egress_cidrs: list[str] = Field(
        default_factory=list,
        alias="allowedEgressCIDRs",
        max_length=64,
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 64,
                "x-kubernetes-validations": [
                    {"rule": "isCIDR(self)", "message": "must be a CIDR such as 10.1.0.0/16"}
                ],
            }
        },
    )
    """Extra destinations pods may reach, as CIDRs (e.g. a package mirror)."""


BudgetPeriodKind = Literal["Monthly", "Weekly", "Daily"]
DEFAULT_BUDGET_PERIOD: BudgetPeriodKind = "Monthly"
"""The period of a workspace without a budget, of a budget that names none, and of the
platform's own ledger."""


class Budget(KubeModel):
    """What the workspace may spend per period; generations are refused past the hard limit."""

    period: BudgetPeriodKind = DEFAULT_BUDGET_PERIOD
    """The calendar-aligned period after which usage resets (UTC)."""
    tokens: int | None = Field(default=None, ge=0)
    """Model tokens (input plus output) per period."""
    money: DecimalString | None = None
    """Money per period, as a decimal string in the platform's currency, e.g. "250.00"."""
    gpu_hours: DecimalString | None = None
    """GPU-hours per period, as a decimal string, e.g. "12.5"."""
    soft_limit_percent: int = Field(default=80, ge=1, le=99)
    """Percent of any limit at which the workspace is warned (BudgetWarning)."""
    on_exceeded: Literal["Block", "Downgrade"] = "Block"
    """Past the soft limit, Downgrade routes generations to a cheaper allowed model; at the
    hard limit generations are refused either way."""


class Models(KubeModel):
    """Which ModelDeployments the workspace may generate with."""

    allowed: list[str] = Field(default_factory=list, max_length=64)
    """ModelDeployment names the workspace may use; empty means the platform default only."""
    default: str | None = Field(default=None, max_length=253)
    """The model used when a VibeApp names none; must be one of allowed when allowed is set."""


class DataSharing(KubeModel):
    """Whether the platform may learn from this workspace."""

    allow_training: bool = False
    """Record each generation as a training example for the platform's own model."""


class Retention(KubeModel):
    """What happens to stored artifacts when their app is deleted."""

    artifacts: Literal["Delete", "Retain"] = "Delete"
    """Delete removes an app's bundles from object storage with the app; Retain keeps them."""


class WorkspaceSpec(KubeModel):
    """The desired state of a tenant."""

    display_name: str | None = Field(default=None, max_length=256)
    """A human-readable name."""
    namespace: DNSLabel | None = None
    """The namespace the workspace owns; defaults to ws-<name>. Immutable once set."""
    members: list[Member] = Field(default_factory=list, max_length=256)
    """Who may use the workspace and with which role."""
    quota: Quota | None = None
    """Resource quota of the namespace."""
    limits: ContainerLimits | None = None
    """Default container requests and limits."""
    network: Network | None = None
    """Network isolation allowances."""
    budget: Budget | None = None
    """Spending limits; without one, spending is only reported."""
    models: Models | None = Field(
        default=None,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.default) || !has(self.allowed) || size(self.allowed) == 0"
                    " || self.default in self.allowed",
                    "message": "models.default must be one of models.allowed",
                }
            ]
        },
    )
    """Models the workspace may use."""
    data_sharing: DataSharing | None = None
    """Whether interactions may train the platform model (default: no)."""
    retention: Retention | None = None
    """Artifact retention when apps are deleted."""
    suspended: bool = False
    """Scale every preview to zero and refuse generations."""
    warm_pool: int | None = Field(default=None, ge=0, le=10)
    """Idle preview sandboxes kept started in the namespace for new apps to adopt (each is a
    pod counted in the quota, and in quota.previews); unset: the platform's default (the
    chart's preview.warmPool); 0: none, new previews start cold."""

    @property
    def budget_period(self) -> BudgetPeriodKind:
        """The period usage is counted in (the default without a budget)."""
        return self.budget.period if self.budget is not None else DEFAULT_BUDGET_PERIOD


class BudgetPeriod(KubeModel):
    """The budget period usage is counted in."""

    name: str
    """The period's name, e.g. 2026-11 (Monthly), 2026-W48 (Weekly), 2026-11-24 (Daily)."""
    start: datetime
    """When the period began (inclusive, UTC)."""
    end: datetime
    """When the period ends (exclusive, UTC)."""


class Usage(KubeModel):
    """Amounts consumed or remaining in the current period."""

    tokens: int = 0
    """Model tokens."""
    money: str = "0"
    """Money, as a decimal string."""
    gpu_hours: str = "0"
    """GPU-hours, as a decimal string."""


class WorkspaceStatus(KubeModel):
    """The observed state of a tenant."""

    namespace: str | None = None
    """The namespace the workspace owns."""
    period: BudgetPeriod | None = None
    """The current budget period."""
    usage: Usage | None = None
    """What was spent (settled) in the current period."""
    reserved: Usage | None = None
    """What generations in flight hold now (settled when they finish)."""
    remaining: Usage | None = None
    """What is left in the current period, for each limit that is set."""
    used_percent: int | None = None
    """The highest share of any budget limit used, in percent."""
    apps: int | None = None
    """Number of VibeApps in the workspace."""
    previews_running: int | None = None
    """Number of previews running now."""
    default_model: str | None = None
    """The ModelDeployment generations use when an app names none."""
    conditions: Conditions = Field(default_factory=list)
    """Ready, BudgetWarning, BudgetExceeded, Suspended."""
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""


INFO = KindInfo(
    kind="Workspace",
    plural="workspaces",
    short_names=("ws",),
    scope="Cluster",
    spec=WorkspaceSpec,
    status=WorkspaceStatus,
    description=(
        "A Workspace is a tenant of the platform: a namespace with RBAC, quota, limits, "
        "network isolation and a budget that generations draw from."
    ),
    printer_columns=(
        PrinterColumn("Namespace", ".status.namespace"),
        PrinterColumn("Used %", ".status.usedPercent", type="integer"),
        PrinterColumn("Apps", ".status.apps", type="integer"),
        READY_COLUMN,
        AGE_COLUMN,
    ),
)
