"""The real control plane's fixtures, for the front service's tests against it."""

from tests.integration.conftest import (  # noqa: F401 (fixtures)
    api,
    cluster,
    without_other_operators,
)
