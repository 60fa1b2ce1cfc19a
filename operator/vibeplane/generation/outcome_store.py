"""Measured outcomes of generations, from the VibeApp path to the ModelDeployment controller,
kept on the API server so that no restart, crash or leader change loses or doubles them.

When a revision's validation settles (its preview answered, or did not), the VibeApp reconciler
posts the revision's record: it is added, by compare-and-swap, to the totals per served model
(the base model or an adapter) in the ModelDeployment's outcomes ConfigMap, together with the
generation's key, so a post repeated after a crash is counted once (the last KEEP_KEYS keys are
kept: a repeat comes within seconds). The ConfigMap is `outcomes-<ModelDeployment uid>` in the
platform namespace, beside the budget ledgers and for the same reasons: tenants cannot read or
forge the counts a promotion rests on, and a ModelDeployment created again under the same name
starts afresh. The ConfigMap goes with its model by owner reference (the garbage collector,
no finalizer): a model in the platform namespace owns it; a tenant's model cannot (an owner
must be in the dependent's namespace), so its tenant Namespace owns it (gone with the
workspace) and the ModelDeployment controller deletes it when the model is deleted
(`ModelDeploymentReconciler.forget`), or, if no operator ran then, at the next start
(`sweep`). The ModelDeployment reconciler reads the totals (level-based) and derives its
status from them: economics (cost per generated app) and the rollout's arms (totals since the
candidate started). One write per settled generation, the rate of the ledger's settle; none at
rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from vibeplane.api.common import owner_reference
from vibeplane.generation.outcomes import (
    OUTCOMES_KEY,
    ModelKey,
    Totals,
    config_map_name,
    fold,
    outcome_of,
    parse,
)
from vibeplane.kube.client import Conflict, KubeClient
from vibeplane.settings import LABEL_MANAGED_BY, MANAGER_NAME
from vibeplane.wellknown import ANNOTATION_MODELDEPLOYMENT, LABEL_COMPONENT

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
COMPONENT_OUTCOMES = "outcomes"


def owners(
    platform_namespace: str,
    model_namespace: str,
    model: str,
    model_uid: str,
    namespace_uid: str | None,
) -> list[dict[str, Any]]:
    """The owner references of a model's outcomes ConfigMap (in `platform_namespace`): the
    ModelDeployment where it lives beside it, else the model's Namespace (cluster-scoped, so
    it may own across namespaces; none while its uid is unknown)."""
    if model_namespace == platform_namespace:
        reference = owner_reference("ModelDeployment", model, model_uid)
        # Nothing waits for the counts when the model goes.
        return [{**reference, "blockOwnerDeletion": False}]
    if not namespace_uid:
        return []
    return [
        {"apiVersion": "v1", "kind": "Namespace", "name": model_namespace, "uid": namespace_uid}
    ]


def sweep(kube: KubeClient, namespace: str, list_models: Callable[[], list[Any]]) -> list[str]:
    """Delete the outcomes ConfigMaps in `namespace` (the platform namespace) whose
    ModelDeployment is gone: a tenant model deleted while no operator ran (its ConfigMap waits
    for its Namespace otherwise), or one written before owner references. `list_models` lists
    every ModelDeployment now; the ConfigMaps are listed first, so a model created meanwhile is
    in the later list. The names deleted."""
    selector = f"{LABEL_COMPONENT}={COMPONENT_OUTCOMES}"
    config_maps = kube.list_objects("v1", "ConfigMap", namespace, label_selector=selector)
    live = {str((model.get("metadata") or {}).get("uid")) for model in list_models()}
    swept = []
    for config_map in config_maps:
        name = str((config_map.get("metadata") or {}).get("name") or "")
        uid = name.removeprefix(config_map_name(""))
        if (
            uid
            and name != uid
            and uid not in live
            and kube.delete("v1", "ConfigMap", name, namespace)
        ):
            swept.append(name)
    if swept:
        log.info("deleted the outcomes of %d ModelDeployment(s) that are gone", len(swept))
    return swept


def delete(kube: KubeClient, namespace: str, model_uid: str) -> bool:
    """Delete a model's outcomes ConfigMap (`namespace`: the platform namespace); False when
    there was none."""
    return kube.delete("v1", "ConfigMap", config_map_name(model_uid), namespace)


def totals_of(kube: KubeClient, namespace: str, model_uid: str) -> dict[str, Totals]:
    """The totals per served model of a ModelDeployment (none yet: empty); `namespace` is the
    platform namespace."""
    return parse(kube.get("v1", "ConfigMap", config_map_name(model_uid), namespace))[0]


class OutcomeStore:
    """Posts outcomes into their model's ConfigMap (see the module doc)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        uid_of: Callable[[str, str], str | None],
        on_post: Callable[[ModelKey], None] | None = None,
        namespace_uid: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        """The platform namespace, where outcomes ConfigMaps live."""
        self.uid_of = uid_of
        """(namespace, name) of a ModelDeployment -> its uid, None when it is gone."""
        self.on_post = on_post
        """Called after a post (the manager re-queues the ModelDeployment)."""
        self.namespace_uid = namespace_uid
        """A namespace's uid (the owner of a tenant model's ConfigMap), None when unknown."""

    def post(self, record: Mapping[str, Any], passed: bool) -> None:
        found = outcome_of(record, passed)
        if found is None:
            return
        (namespace, model), outcome = found
        key = str(record.get("key") or "")
        uid = self.uid_of(namespace, model)
        if not key or not uid:
            log.info("outcome of %r not counted: no key, or %s/%s is gone", key, namespace, model)
            return
        name = config_map_name(uid)
        for _ in range(MAX_ATTEMPTS):
            live = self.kube.get("v1", "ConfigMap", name, self.namespace)
            totals, keys = parse(live)
            folded = fold(totals, keys, key, outcome)
            if folded is None:
                break
            try:
                self.kube.write(self._manifest(namespace, model, uid, live, *folded))
            except Conflict:
                continue
            break
        else:
            log.warning("outcome of %s not counted: %s kept changing", key, name)
            return
        if self.on_post is not None:
            self.on_post((namespace, model))

    def _manifest(
        self,
        namespace: str,
        model: str,
        uid: str,
        live: Mapping[str, Any] | None,
        totals: Mapping[str, Totals],
        keys: list[str],
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": config_map_name(uid),
            "namespace": self.namespace,
            "labels": {LABEL_COMPONENT: COMPONENT_OUTCOMES, LABEL_MANAGED_BY: MANAGER_NAME},
            "annotations": {ANNOTATION_MODELDEPLOYMENT: f"{namespace}/{model}"},
        }
        references = owners(self.namespace, namespace, model, uid, self.namespace_uid(namespace))
        if references:
            metadata["ownerReferences"] = references
        if live is not None:
            metadata["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        document = {
            "models": {served: value.to_wire() for served, value in sorted(totals.items())},
            "keys": keys,
        }
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {OUTCOMES_KEY: json.dumps(document, sort_keys=True, separators=(",", ":"))},
        }


__all__ = ["OutcomeStore", "delete", "owners", "sweep", "totals_of"]
