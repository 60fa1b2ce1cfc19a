"""Chaos runs: the integration tests' cluster, object store and model server, with our own
operator pointed at fault-injecting proxies in front of them.

The integration fixtures are imported, not redefined. pytest keeps one instance of a session
fixture per conftest that defines or imports it, so where a session runs both directories
there are two of each: harmless for the cluster, the object store and the API clients (the
second finds them running and reuses them), a second model server on its own port. Two
operators, or two preview nodes, would fight: so the preview node is the session's one (the
first instance starts it, the others share it), and the other operators of the session are
stopped while ours runs and started again after (`OperatorProcess.running`).
"""

from __future__ import annotations

import pytest

from tests.chaos.fixtures import (  # noqa: F401 (fixtures)
    REPORTS,
    chaos_form,
    chaos_operator,
    chaos_preview_node,
    form,
    model_faults,
    s3_faults,
    seed,
)
from tests.integration.conftest import (  # noqa: F401 (fixtures)
    api,
    audit,
    cluster,
    model_server,
    preview_node,
    s3,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A whole run (a test with the chaos operator) gets its form's time limit, before it starts.
    # The limit is the run's own: starting the session's cluster and preview node (the real
    # node, when chaos is the first to need it) happens in fixtures, which have their own waits.
    limit = chaos_form(config).test_timeout
    for item in items:
        if "chaos_operator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(limit, func_only=True))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The counts of each chaos run, shown with or without -s."""
    for line in config.stash.get(REPORTS, []):
        terminalreporter.write_line(line)
