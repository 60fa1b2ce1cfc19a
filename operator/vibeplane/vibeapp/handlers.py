"""Kopf wiring of the VibeApp controller.

This version validates the spec and reports the app as Pending; generation, storage and
previews are not reconciled yet, and the conditions say so rather than pretending.
"""

from __future__ import annotations

from vibeplane.api import vibeapp as api
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.kube.reconcile import Context, Controller, Outcome
from vibeplane.settings import OperatorSettings


def reconcile(context: Context) -> Outcome:
    spec: api.VibeAppSpec = context.spec
    return Outcome(
        [
            ConditionSpec(
                "Ready",
                "False",
                "GenerationNotReconciled",
                f"{len(spec.prompts)} prompt(s) accepted; this operator version does not "
                "generate apps yet",
            )
        ],
        {"phase": "Pending"},
    )


def setup(settings: OperatorSettings) -> Controller:
    controller = Controller(api.INFO, reconcile, settings)
    controller.register()
    return controller
