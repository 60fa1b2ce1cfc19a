"""The vibeplane.io/v1alpha1 API: pydantic models, the one source of truth for the CRDs."""

from vibeplane.api import modeldeployment, modeltraining, vibeapp, workspace
from vibeplane.api.common import API_VERSION, GROUP, VERSION
from vibeplane.api.meta import KindInfo

ALL_KINDS: tuple[KindInfo, ...] = (
    workspace.INFO,
    modeldeployment.INFO,
    vibeapp.INFO,
    modeltraining.INFO,
)

__all__ = ["ALL_KINDS", "API_VERSION", "GROUP", "VERSION", "KindInfo"]
