"""Kopf wiring of the ModelDeployment controller.

This version records the serving mode and the effective prices; serving itself (KServe
InferenceServices, external probes, the builtin modelserver) is not reconciled yet, and the
Ready condition says so rather than pretending.
"""

from __future__ import annotations

from vibeplane.api import modeldeployment as api
from vibeplane.kube.conditions import ConditionSpec
from vibeplane.kube.reconcile import Context, Controller, Outcome
from vibeplane.settings import OperatorSettings


def reconcile(context: Context) -> Outcome:
    spec: api.ModelDeploymentSpec = context.spec
    pricing = spec.pricing or api.Pricing()
    mode = spec.serving.mode
    return Outcome(
        [
            ConditionSpec(
                "Ready",
                "False",
                "ServingNotReconciled",
                f"serving.{mode} is valid; this operator version does not serve models yet",
            )
        ],
        {
            "servingMode": mode,
            "pricing": api.EffectivePricing(
                input_per_million=pricing.input_per_million,
                output_per_million=pricing.output_per_million,
                gpu_hour=pricing.gpu_hour,
            ).to_wire(),
        },
    )


def setup(settings: OperatorSettings) -> Controller:
    controller = Controller(api.INFO, reconcile, settings)
    controller.register()
    return controller
