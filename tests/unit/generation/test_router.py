"""The router's policy: preference, fallbacks, alternatives, downgrade, refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.api.workspace import WorkspaceSpec
from vibeplane.generation import router
from vibeplane.generation.router import ModelCandidate, Prices, Route, SecretRef

PLATFORM = "vibeplane-system"
TENANT = "ws-team-a"


def model(
    name: str,
    *,
    ready: bool = True,
    namespace: str = PLATFORM,
    output: str = "1",
    input_: str = "1",
    tier: Any = "medium",
    priority: int = 100,
    fallbacks: tuple[str, ...] = (),
) -> ModelCandidate:
    return ModelCandidate(
        name=name,
        namespace=namespace,
        url=f"http://{name}.{namespace}/openai/v1",
        served_model=name,
        ready=ready,
        tier=tier,
        pricing=Prices(Decimal(input_), Decimal(output)),
        priority=priority,
        fallbacks=fallbacks,
        not_ready="" if ready else "ProbeFailed: connection refused",
    )


def index(*candidates: ModelCandidate) -> dict[tuple[str, str], ModelCandidate]:
    return {candidate.key: candidate for candidate in candidates}


def workspace(**spec: Any) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(spec)


def run(
    candidates: dict[tuple[str, str], ModelCandidate],
    requested: str | None = None,
    ws: WorkspaceSpec | None = None,
    soft: bool = False,
    default: str = "base1",
) -> Route:
    return router.route(
        requested=requested,
        workspace=ws if ws is not None else workspace(),
        namespace=TENANT,
        past_soft_limit=soft,
        default_model=default,
        platform_namespace=PLATFORM,
        candidates=candidates,
    )


def names(result: Route) -> list[tuple[str, str]]:
    return [(choice.candidate.name, choice.reason) for choice in result.choices]


MODELS = index(
    model("base1", output="0.80", input_="0.20", tier="large", priority=10, fallbacks=("builtin",)),
    model("builtin", output="0.40", input_="0.10", tier="small", priority=100),
    model("frontier", output="15", input_="3", tier="large", priority=50, fallbacks=("base1",)),
)
ALL_ALLOWED = workspace(models={"allowed": ["base1", "builtin", "frontier"], "default": "base1"})


def test_the_platform_default_then_its_fallbacks() -> None:
    result = run(MODELS)
    assert names(result) == [("base1", "PlatformDefault"), ("builtin", "Fallback")]
    assert result.error is None


def test_the_default_down_uses_its_fallback() -> None:
    models = {**MODELS, **index(model("base1", ready=False, fallbacks=("builtin",)))}
    result = run(models, ws=ALL_ALLOWED)
    assert names(result) == [("builtin", "Fallback"), ("frontier", "Alternative")]


def test_all_down_is_no_model_available_naming_each() -> None:
    models = index(
        model("base1", ready=False, fallbacks=("builtin",)),
        model("builtin", ready=False),
    )
    result = run(models)
    assert result.choices == ()
    assert result.error is not None
    assert result.error.reason == "NoModelAvailable"
    assert "base1 (vibeplane-system): not Ready (ProbeFailed" in result.error.message
    assert "builtin (vibeplane-system): not Ready" in result.error.message


def test_nothing_known_is_no_model_available() -> None:
    result = run({})
    assert result.error is not None
    assert result.error.reason == "NoModelAvailable"
    assert "base1: not found in ws-team-a or vibeplane-system" in result.error.message


def test_an_app_model_down_falls_back_only_to_its_declared_fallbacks() -> None:
    models = {**MODELS, **index(model("frontier", ready=False, output="15", fallbacks=()))}
    result = run(models, requested="frontier", ws=ALL_ALLOWED)
    assert result.error is not None
    assert result.error.reason == "NoModelAvailable"
    assert "frontier (vibeplane-system): not Ready" in result.error.message


def test_the_app_model_first_when_allowed() -> None:
    result = run(MODELS, requested="frontier", ws=ALL_ALLOWED)
    assert names(result) == [
        ("frontier", "AppModel"),
        ("base1", "Fallback"),
        ("builtin", "Fallback"),
    ]


def test_an_app_model_not_allowed_is_refused() -> None:
    ws = workspace(models={"allowed": ["base1", "builtin"]})
    result = run(MODELS, requested="frontier", ws=ws)
    assert result.choices == ()
    assert result.error is not None
    assert result.error.reason == "ModelNotAllowed"
    assert "'frontier' is not allowed" in result.error.message
    assert "base1, builtin" in result.error.message


def test_an_unrestricted_workspace_may_use_only_the_default_and_its_chain() -> None:
    result = run(MODELS, requested="frontier")
    assert result.error is not None
    assert result.error.reason == "ModelNotAllowed"


def test_fallbacks_outside_allowed_are_skipped() -> None:
    ws = workspace(models={"allowed": ["frontier", "builtin"], "default": "frontier"})
    models = {**MODELS, **index(model("frontier", ready=False, fallbacks=("base1",)))}
    result = run(models, ws=ws)
    # base1 (frontier's fallback) is not allowed here; its own fallback builtin is.
    assert names(result) == [("builtin", "Fallback")]


def test_past_the_soft_limit_with_downgrade_the_cheapest_goes_first() -> None:
    ws = workspace(
        models={"allowed": ["base1", "builtin", "frontier"], "default": "frontier"},
        budget={"money": "100", "onExceeded": "Downgrade"},
    )
    result = run(MODELS, ws=ws, soft=True)
    assert names(result)[0] == ("builtin", "Downgrade")
    assert [name for name, _ in names(result)] == ["builtin", "frontier", "base1"]


def test_past_the_soft_limit_with_block_nothing_changes() -> None:
    ws = workspace(
        models={"allowed": ["base1", "builtin", "frontier"], "default": "frontier"},
        budget={"money": "100", "onExceeded": "Block"},
    )
    assert names(run(MODELS, ws=ws, soft=True))[0] == ("frontier", "WorkspaceDefault")


def test_downgrade_ties_break_on_input_price_then_tier() -> None:
    models = index(
        model("a", output="1", input_="2", tier="small"),
        model("b", output="1", input_="1", tier="large"),
        model("c", output="1", input_="1", tier="medium"),
    )
    ws = workspace(
        models={"allowed": ["a", "b", "c"], "default": "a"},
        budget={"tokens": 10, "onExceeded": "Downgrade"},
    )
    assert names(run(models, ws=ws, soft=True))[0] == ("c", "Downgrade")


def test_the_workspace_may_always_use_its_own_models() -> None:
    own = model("evil", namespace=TENANT, priority=1)
    result = run({**MODELS, **index(own)}, requested="evil")
    assert names(result) == [("evil", "AppModel")]
    # Without an app model it is one of the alternatives, by priority.
    assert names(run({**MODELS, **index(own)})) == [
        ("base1", "PlatformDefault"),
        ("builtin", "Fallback"),
        ("evil", "Alternative"),
    ]
    # ...even when models.allowed lists only shared ones.
    ws = workspace(models={"allowed": ["base1"], "default": "base1"})
    assert names(run({**MODELS, **index(own)}, requested="evil", ws=ws))[0] == (
        "evil",
        "AppModel",
    )
    # A platform model of the same name as nothing in the tenant namespace is still refused.
    assert run(MODELS, requested="evil").error is not None


def test_a_tenant_model_shadows_the_platform_one() -> None:
    tenant = model("base1", namespace=TENANT, fallbacks=())
    result = run({**MODELS, **index(tenant)})
    assert result.first is not None
    assert result.first.candidate.namespace == TENANT
    assert names(result) == [("base1", "PlatformDefault")]


def test_alternatives_follow_priority() -> None:
    models = index(
        model("d", ready=False),
        model("x", priority=30),
        model("y", priority=20),
        model("z", priority=20),
    )
    ws = workspace(models={"allowed": ["d", "x", "y", "z"], "default": "d"})
    assert [name for name, _ in names(run(models, ws=ws))] == ["y", "z", "x"]


def test_fallback_cycles_end() -> None:
    models = index(
        model("a", ready=False, fallbacks=("b",)),
        model("b", ready=False, fallbacks=("a", "c")),
        model("c", fallbacks=("a",)),
    )
    assert names(run(models, default="a")) == [("c", "Fallback")]


# ---- from bodies -------------------------------------------------------------------------


def body(name: str, namespace: str, spec: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {
            "url": "https://api.example.com/v1",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "EndpointReady" if ready else "SecretNotFound",
                    "message": "",
                }
            ],
        },
    }


def test_candidates_from_bodies() -> None:
    external = body(
        "frontier",
        PLATFORM,
        {
            "model": {"name": "frontier"},
            "serving": {
                "external": {
                    "baseURL": "https://api.example.com/v1",
                    "model": "frontier-2026",
                    "apiKeySecretRef": {"name": "key", "key": "apiKey"},
                }
            },
            "pricing": {"inputPerMillion": "3", "outputPerMillion": "15"},
            "tier": "large",
            "limits": {"outputTokens": 4096},
            "routing": {"priority": 5, "fallbacks": ["builtin"]},
        },
    )
    down = body("builtin", PLATFORM, {"model": {"name": "b"}, "serving": {"builtin": {}}}, False)
    invalid = body("bad", PLATFORM, {"model": {"name": "x"}, "serving": {}})
    found = router.candidates_from([external, down, invalid])
    assert set(found) == {(PLATFORM, "frontier"), (PLATFORM, "builtin")}
    frontier = found[(PLATFORM, "frontier")]
    assert frontier.served_model == "frontier-2026"
    assert frontier.api_key_secret_ref == SecretRef("key", "apiKey")
    assert frontier.pricing == Prices(Decimal(3), Decimal(15), Decimal(0))
    assert frontier.output_tokens == 4096
    assert frontier.fallbacks == ("builtin",)
    assert frontier.usable
    builtin = found[(PLATFORM, "builtin")]
    assert builtin.served_model == "b"
    assert not builtin.usable
    assert builtin.not_ready.startswith("SecretNotFound")


def test_describe_names_each_choice_and_why() -> None:
    builtin = body("builtin", PLATFORM, {"model": {"name": "builtin"}, "serving": {"builtin": {}}})
    result = run(router.candidates_from([builtin]), default="builtin")
    assert router.describe(result.choices) == "vibeplane-system/builtin (PlatformDefault)"


# ---- properties --------------------------------------------------------------------------

NAMES = ["m0", "m1", "m2", "m3", "m4", "m5"]
candidate_strategy = st.builds(
    lambda name, ready, ns, out, inp, tier, priority, fallbacks: model(
        name,
        ready=ready,
        namespace=ns,
        output=str(out),
        input_=str(inp),
        tier=tier,
        priority=priority,
        fallbacks=tuple(fallbacks),
    ),
    st.sampled_from(NAMES),
    st.booleans(),
    st.sampled_from([PLATFORM, TENANT]),
    st.integers(0, 20),
    st.integers(0, 20),
    st.sampled_from(["small", "medium", "large"]),
    st.integers(0, 200),
    st.lists(st.sampled_from(NAMES), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    candidates=st.lists(candidate_strategy, max_size=10),
    allowed=st.lists(st.sampled_from(NAMES), max_size=6, unique=True),
    requested=st.none() | st.sampled_from(NAMES),
    soft=st.booleans(),
    downgrade=st.booleans(),
)
def test_every_choice_is_allowed_ready_and_once(
    candidates: list[ModelCandidate],
    allowed: list[str],
    requested: str | None,
    soft: bool,
    downgrade: bool,
) -> None:
    known = index(*candidates)
    models: dict[str, Any] = {"allowed": allowed}
    if allowed:
        models["default"] = allowed[0]
    ws = workspace(
        models=models, budget={"money": "1", "onExceeded": "Downgrade" if downgrade else "Block"}
    )
    result = run(known, requested=requested, ws=ws, soft=soft, default="m0")
    assert bool(result.choices) != bool(result.error)
    keys = [choice.candidate.key for choice in result.choices]
    assert len(keys) == len(set(keys))
    for choice in result.choices:
        assert choice.candidate.usable
        if allowed:
            assert choice.candidate.name in allowed or choice.candidate.namespace == TENANT
    if result.choices and allowed and requested is None:
        # Without an app model, nothing allowed and Ready is left out.
        permitted = set(allowed) | {name for namespace, name in known if namespace == TENANT}
        resolved = [known.get((TENANT, name)) or known.get((PLATFORM, name)) for name in permitted]
        usable = {found.name for found in resolved if found is not None and found.usable}
        assert {choice.candidate.name for choice in result.choices} == usable
    if result.choices and soft and downgrade:
        cheapest = min(
            (choice.candidate for choice in result.choices),
            key=lambda c: (c.pricing.output_per_million, c.pricing.input_per_million),
        )
        first = result.choices[0].candidate
        assert (first.pricing.output_per_million, first.pricing.input_per_million) == (
            cheapest.pricing.output_per_million,
            cheapest.pricing.input_per_million,
        )
