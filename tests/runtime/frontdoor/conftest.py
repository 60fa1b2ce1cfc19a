"""The real control plane's fixtures, for the front service's tests against it."""

from tests.integration.conftest import api, cluster  # noqa: F401 (fixtures)
