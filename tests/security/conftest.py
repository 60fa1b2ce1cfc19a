"""Two tenants on the real platform, each with a generated app running in its preview.

The integration fixtures are imported, not redefined (the real control plane, MinIO, the
model server, the operator, the gVisor preview node). On top of them, once for the whole
suite (`platform`):

- tenant A, whose admin rents an external model: its API key is a planted value kept in a
  Secret of A's namespace, and the "provider" is a StubModel that records every request
  whole and answers like a model that does whatever it is asked: it writes an app holding
  everything it was told (so anything secret in its context would end up in the bundle);
- tenant B, generating with the platform's builtin model (the real model server): a todo
  list, and an app with the same prompt as A's (the builtin model declines it);
- A's app asks for the environment, the service-account token and the kubeconfig; it and
  B's todo list are generated and served in gVisor previews.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiClient

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    OperatorProcess,
    api,
    audit,
    cluster,
    kubectl,
    model_server,
    namespace,
    operator,
    preview_node,
    s3,
)
from tests.integration.support import GROUP, VERSION, StubModel, create_object
from tests.security.support import (
    ASKED,
    INJECTION,
    Platform,
    compliant_model,
    custom,
    make_workspace,
    tenant,
    wait_app,
)


@pytest.fixture(scope="package")
def platform(
    api: ApiClient,  # noqa: F811 (fixtures imported above)
    operator: OperatorProcess,  # noqa: F811
    preview_node: str,  # noqa: F811
) -> Iterator[Platform]:
    core = kubernetes.client.CoreV1Api(api)
    members_a = {"admin": "adam", "editor": "alice", "viewer": "vera"}
    members_b = {"admin": "beth", "editor": "bob", "viewer": "vince"}

    def spec(members: dict[str, str]) -> dict[str, Any]:
        return {
            "members": [{"kind": "User", "name": u, "role": r} for r, u in members.items()],
            "budget": {"tokens": 5_000_000, "money": "100"},
            "dataSharing": {"allowTraining": True},  # training records are searched too
        }

    ws_a = make_workspace(api, "sec-a", spec(members_a))
    ws_b = make_workspace(api, "sec-b", spec(members_b))
    ns_a, ns_b = ws_a["status"]["namespace"], ws_b["status"]["namespace"]
    planted = f"sk-planted-{uuid.uuid4().hex}"
    provider = StubModel(compliant_model)
    try:
        core.create_namespaced_secret(
            ns_a, {"metadata": {"name": "provider-key"}, "stringData": {"apiKey": planted}}
        )
        create_object(
            api,
            "ModelDeployment",
            "rented",
            {
                "model": {"name": "rented"},
                "serving": {
                    "external": {
                        "baseURL": provider.url,
                        "model": "frontier-large",
                        "apiKeySecretRef": {"name": "provider-key", "key": "apiKey"},
                    }
                },
                "pricing": {"inputPerMillion": "3", "outputPerMillion": "15"},
            },
            namespace=ns_a,
        )
        create_object(api, "VibeApp", "leaky", {"prompts": [INJECTION], "model": "rented"}, ns_a)
        create_object(api, "VibeApp", "todo", {"prompts": ["a todo list with due dates"]}, ns_b)
        asked = {"prompts": [INJECTION], "preview": {"enabled": False}}
        create_object(api, "VibeApp", ASKED, asked, ns_b)
        app_a = wait_app(api, ns_a, "leaky", ("Running",))
        app_b = wait_app(api, ns_b, "todo", ("Running",))
        wait_app(api, ns_b, ASKED, ("Running", "Failed"))
        yield Platform(
            tenant(ws_a, members_a, app_a), tenant(ws_b, members_b, app_b), provider, planted
        )
    finally:
        provider.close()
        for workspace in (ws_a, ws_b):
            custom(api).delete_cluster_custom_object(
                GROUP, VERSION, "workspaces", workspace["metadata"]["name"]
            )


SETUP_TIMEOUT = 600
"""Seconds for a test that builds the platform: two workspaces, three generations, two
gVisor previews, on a busy machine."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and "platform" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(SETUP_TIMEOUT))
