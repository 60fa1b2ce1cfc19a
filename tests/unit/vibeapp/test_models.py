"""Which call targets carry the egress rule: a tenant's own external model only."""

from __future__ import annotations

from typing import Any

from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.generation.egress import EgressPolicy
from vibeplane.settings import OperatorSettings
from vibeplane.vibeapp.models import ModelResolver

SETTINGS = OperatorSettings()


def model(name: str, namespace: str, serving: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": name}, "serving": serving},
        "status": {
            "url": "http://127.0.0.1:9/v1",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
        },
    }


def test_a_tenants_external_model_is_called_under_the_rule_the_platforms_are_not() -> None:
    rule = EgressPolicy()
    bodies = [
        model("builtin", SETTINGS.platform_namespace, {"builtin": {}}),
        model(
            "rented",
            SETTINGS.platform_namespace,
            {"external": {"baseURL": "https://a.test", "model": "r"}},
        ),
        model("own", "ws-a", {"external": {"baseURL": "https://b.test", "model": "o"}}),
    ]
    resolve = ModelResolver(SETTINGS, lambda: bodies, egress=rule)
    workspace = WorkspaceSpec.model_validate(
        {"owner": "a@example.com", "models": {"allowed": ["builtin", "rented"]}}
    )
    targets, error = resolve(
        VibeAppSpec.model_validate({"prompts": ["x"]}), "ws-a", workspace, False
    )
    assert error == ""
    assert {target.name: target.egress for target in targets} == {
        "builtin": None,
        "rented": None,
        "own": rule,
    }


def test_the_routers_canary_share_holds_over_1000_generations() -> None:
    base = model("base1", SETTINGS.platform_namespace, {"builtin": {}})
    base["spec"]["adapters"] = [{"name": "cand", "uri": "s3://m/cand"}]
    base["spec"]["rollout"] = {"candidate": "cand", "canaryPercent": 15}
    resolve = ModelResolver(SETTINGS, lambda: [base])
    workspace = WorkspaceSpec.model_validate(
        {"owner": "a@example.com", "models": {"default": "base1"}}
    )
    served = [
        resolve(
            VibeAppSpec.model_validate({"prompts": ["x"]}),
            "ws-a",
            workspace,
            False,
            workspace_name="a",
            generation_key=f"uid-{i}:1:0",
        )[0][0].served_model
        for i in range(1000)
    ]
    assert abs(served.count("cand") / 1000 - 0.15) <= 0.05
    assert set(served) == {"cand", "base1"}


def test_the_smallest_generation_is_the_default_models_floor_on_the_shortest_prompt() -> None:
    builtin = model("builtin", SETTINGS.platform_namespace, {"builtin": {}})
    builtin["spec"].update(
        {
            "pricing": {"inputPerMillion": "0.10", "outputPerMillion": "0.40"},
            "limits": {"outputTokens": 4096, "minOutputTokens": 512},
        }
    )
    resolve = ModelResolver(SETTINGS, lambda: [builtin])
    floor = resolve.floor(WorkspaceSpec.model_validate({}), "ws-a")
    assert floor is not None
    assert (floor.model, floor.floor, floor.max_output) == ("builtin", 512, 4096)
    # The instructions alone: every app's prompt is at least this long.
    assert 0 < floor.prompt_tokens < 2000
    targets, _ = resolve(
        VibeAppSpec.model_validate({"prompts": ["x"]}), "ws-a", WorkspaceSpec(), False
    )
    assert targets[0].min_output_tokens == 512
    assert ModelResolver(SETTINGS, list).floor(WorkspaceSpec(), "ws-a") is None
