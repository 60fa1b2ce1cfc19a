"""The VibeApp's pure builders (UPDATE_GOLDEN=1 rewrites the golden files)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import yaml

from vibeplane.api.vibeapp import VibeAppSpec
from vibeplane.budget.ledger import Amount
from vibeplane.vibeapp import desired

GOLDEN = Path(__file__).parent / "golden"
UID = "00000000-0000-4000-8000-00000000a991"
PREVIEW = desired.PreviewSettings(
    runtime_class="gvisor",
    image="ghcr.io/vibeplane/preview:0.1.0",
    command=("python3", "-m", "vibeplane_sandbox.preview"),
    local_node=True,
    delivery_key="65537:c0ffee",
)


def _golden(name: str, document: object) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump(document, sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs; UPDATE_GOLDEN=1 to accept"


def test_preview_deployment_and_service_match_golden() -> None:
    deployment = desired.preview_deployment("todo", "ws-demo", UID, 1, PREVIEW)
    _golden("preview-deployment", deployment)
    _golden("preview-service", desired.preview_service("todo", "ws-demo", UID))


def test_preview_pod_is_restricted_and_sandboxed() -> None:
    pod = desired.preview_deployment("a", "n", UID, 1, PREVIEW)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["limits"] == container["resources"]["requests"]
    assert not any("AWS" in e["name"] for e in container["env"])
    # No revision, no bundle URL in the template: a new revision changes no pod.
    assert "BUNDLE_URL" not in str(container["env"])
    assert {"name": "VIBEPLANE_DELIVERY_KEY", "value": "65537:c0ffee"} in container["env"]


def test_revisions_follow_the_prompts() -> None:
    spec = VibeAppSpec.model_validate({"prompts": ["a todo list", "add a priority field"]})
    assert desired.next_revision(spec, []) == 1
    one = {"number": 1, "sha256": "x"}
    assert desired.next_revision(spec, [one]) == 2
    two = {"number": 2, "validation": "Failed"}
    assert desired.next_revision(spec, [one, two]) is None
    assert desired.served_revision(spec, [one, two]) == one
    pinned = VibeAppSpec.model_validate({"prompts": ["a", "b"], "pinnedRevision": 1})
    three = {"number": 2, "sha256": "y"}
    assert desired.served_revision(pinned, [one, three]) == one
    assert desired.served_revision(spec, [one, three]) == three


def test_costs_and_reservations() -> None:
    pricing = {"inputPerMillion": "0.10", "outputPerMillion": "0.40"}
    assert desired.generation_cost(1000, 2000, pricing) == Decimal("0.0009")
    cheap = SimpleNamespace(
        name="small", pricing=pricing, output_tokens=8192, min_output_tokens=1024
    )
    dear = SimpleNamespace(
        name="large",
        pricing={"inputPerMillion": "1", "outputPerMillion": "0.20"},
        output_tokens=4096,
        min_output_tokens=2048,
    )
    ask = desired.generation_ask(100, [cheap])
    assert ask.amount(8192) == Amount(8292, Decimal("0.003287"))
    assert ask.floor == 1024
    # Falling through to another model: the largest limit at the highest prices, so any
    # answer costs no more than the reservation; the floor is the first model's.
    both = desired.generation_ask(100, [cheap, dear])
    assert (both.max_output, both.min_output, both.model) == (8192, 1024, "small")
    assert (both.input_per_million, both.output_per_million) == (Decimal(1), Decimal("0.40"))
    assert desired.generation_key("uid", 3, 1) == "uid:3:1"


def test_a_preview_service_is_a_node_port_only_where_the_machine_reaches_the_node() -> None:
    assert "type" not in desired.preview_service("todo", "ws-demo", UID)["spec"]
    service = desired.preview_service("todo", "ws-demo", UID, node_port=True)
    assert service["spec"]["type"] == "NodePort"


def test_a_warm_pool_is_the_preview_pod_without_an_app() -> None:
    pool = desired.pool_deployment("ws-demo", "demo", "w-uid", 1, PREVIEW)
    _golden("pool-deployment", pool)
    deployment = desired.preview_deployment("todo", "ws-demo", UID, 1, PREVIEW)
    template, members = deployment["spec"]["template"], pool["spec"]["template"]
    # The same sandbox an app's Deployment starts, and the same digest on both.
    assert members["spec"] == template["spec"]
    assert members["metadata"]["annotations"] == template["metadata"]["annotations"]
    # No app label: no app's Service selects a member until an app adopts it.
    assert desired.LABEL_APP not in members["metadata"]["labels"]
    assert pool["metadata"]["ownerReferences"][0]["kind"] == "Workspace"
    # The pool's selector stops matching a member once its pool label goes.
    selector = pool["spec"]["selector"]["matchLabels"]
    assert all(members["metadata"]["labels"][k] == v for k, v in selector.items())
    assert "vibeplane.io/pool" in selector


def test_adoption_moves_labels_and_ownership_and_drops_the_pool_for_good() -> None:
    pool = desired.pool_deployment("ws-demo", "demo", "w-uid", 1, PREVIEW)
    live = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **pool["spec"]["template"]["metadata"],
            "name": "preview-warm-5d9c-x2",
            "namespace": "ws-demo",
            "uid": "p-1",
            "resourceVersion": "41",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "preview-warm-5d9c", "uid": "r"}],
        },
        "spec": pool["spec"]["template"]["spec"],
        "status": {"phase": "Running"},
    }
    taken = desired.adopted(live, "todo", UID)
    labels = taken["metadata"]["labels"]
    assert labels[desired.LABEL_APP] == "todo"
    assert "vibeplane.io/pool" not in labels
    selector = pool["spec"]["selector"]["matchLabels"]
    assert not all(labels.get(k) == v for k, v in selector.items())  # out of the pool
    service = desired.preview_service("todo", "ws-demo", UID)
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())  # in the app's
    assert taken["metadata"]["ownerReferences"] == [desired.owner_reference("todo", UID)]
    # Written against what was read (two apps cannot both take it); status is not ours.
    assert taken["metadata"]["resourceVersion"] == "41"
    assert "status" not in taken
    # Another template makes another digest (stale members).
    other = desired.PreviewSettings(**{**PREVIEW.__dict__, "image": "preview:0.2.0"})
    assert desired.template_digest(desired.preview_pod_spec(other)) != desired.template_digest(
        live["spec"]
    )
