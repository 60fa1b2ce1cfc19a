"""Which models an app generates with, in the order to try them.

The policy (preference, fallbacks, downgrade past the soft limit) is the router's
(`vibeplane.generation.router`); this module turns its choices into call targets: the
endpoint from the ModelDeployment's status, the API key read from its Secret at call time
(never stored, never logged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args

from vibeplane.api import vibeapp as api
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.budget.ledger import Ask
from vibeplane.generation import rollout, router
from vibeplane.generation.egress import EgressPolicy
from vibeplane.generation.format import build_messages
from vibeplane.kube.secrets import SecretProblem, read_secret_key
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp.desired import estimate_tokens, generation_ask
from vibeplane.vibeapp.generate import ModelTarget


class ModelResolver:
    """Resolve an app's models to call targets from the ModelDeployments the operator watches."""

    def __init__(
        self,
        settings: OperatorSettings,
        bodies: Callable[[], Iterable[Mapping[str, Any]]],
        egress: EgressPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.bodies = bodies
        self.egress = egress or EgressPolicy.from_settings(
            settings.model_egress_allow, settings.cluster_cidrs
        )

    def __call__(
        self,
        spec: api.VibeAppSpec,
        namespace: str,
        workspace: WorkspaceSpec,
        soft: bool,
        workspace_name: str = "",
        generation_key: str = "",
    ) -> tuple[list[ModelTarget], str]:
        """Call targets in order. `workspace_name` picks the workspace's private adapters;
        `generation_key` places the generation in a rollout's canary share or not (default:
        the app's namespace, prompt count and last prompt)."""
        result = router.route(
            requested=spec.model,
            workspace=workspace,
            namespace=namespace,
            past_soft_limit=soft,
            default_model=self.settings.default_model,
            platform_namespace=self.settings.platform_namespace,
            candidates=router.candidates_from(self.bodies()),
        )
        if result.error is not None:
            return [], f"{result.error.reason}: {result.error.message}"
        targets: list[ModelTarget] = []
        unreadable: list[str] = []
        for choice in result.choices:
            candidate = choice.candidate
            why = f"{choice.reason}: {choice.message}" if choice.message else choice.reason
            try:
                key = api_key(candidate)
            except SecretProblem as problem:
                unreadable.append(f"{candidate.name}: {problem.message}")
                continue
            served, arm = rollout.choose(
                candidate.served_model,
                candidate.adapters,
                candidate.rollout,
                workspace_name,
                generation_key or f"{namespace}/{len(spec.prompts)}/{spec.prompts[-1]}",
            )
            targets.append(
                ModelTarget(
                    name=candidate.name,
                    url=candidate.url or "",
                    served_model=served,
                    api_key=key,
                    pricing={
                        "inputPerMillion": str(candidate.pricing.input_per_million),
                        "outputPerMillion": str(candidate.pricing.output_per_million),
                        "gpuHour": str(candidate.pricing.gpu_hour),
                    },
                    output_tokens=candidate.output_tokens,
                    reason=why,
                    namespace=candidate.namespace,
                    arm=arm if candidate.adapters or candidate.rollout else "",
                    min_output_tokens=candidate.min_output_tokens,
                    # A tenant's own external model: its URL is the tenant's choice.
                    egress=self.egress
                    if candidate.external
                    and candidate.namespace != self.settings.platform_namespace
                    else None,
                )
            )
        return targets, "" if targets else "NoModelAvailable: " + "; ".join(unreadable)

    def floor(self, workspace: WorkspaceSpec, namespace: str) -> Ask | None:
        """The smallest generation an app of the workspace can ask for: the shortest prompt
        (the instructions alone) and the floor of its default model, priced like an app's
        reservation (None when no model is routable). The workspace compares its budget to it.
        """
        result = router.route(
            requested=None,
            workspace=workspace,
            namespace=namespace,
            past_soft_limit=False,
            default_model=self.settings.default_model,
            platform_namespace=self.settings.platform_namespace,
            candidates=router.candidates_from(self.bodies()),
        )
        if not result.choices:
            return None
        candidate = result.choices[0].candidate
        shortest = min(
            estimate_tokens("".join(str(m["content"]) for m in build_messages([""], None, stack)))
            for stack in get_args(api.VibeAppSpec.model_fields["stack"].annotation)
        )
        return generation_ask(
            shortest,
            [
                ModelTarget(
                    name=candidate.name,
                    url="",
                    served_model=candidate.served_model,
                    api_key=None,
                    pricing={
                        "inputPerMillion": str(candidate.pricing.input_per_million),
                        "outputPerMillion": str(candidate.pricing.output_per_million),
                    },
                    output_tokens=candidate.output_tokens,
                    reason="",
                    min_output_tokens=candidate.min_output_tokens,
                )
            ],
        )


def api_key(candidate: router.ModelCandidate) -> str | None:
    """The candidate's API key, read now from its Secret in the candidate's namespace (None
    when it needs none). Read at call time and never stored: a rotated key takes effect at
    the next call.

    Raises `SecretProblem` (SecretNotFound, SecretKeyNotFound); the caller falls through to
    the next choice as for a failed call."""
    ref = candidate.api_key_secret_ref
    if ref is None:
        return None
    return read_secret_key(candidate.namespace, ref.name, ref.key)
