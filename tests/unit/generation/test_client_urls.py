"""Any base URL the ModelDeployment schema admits fails, if it fails, as a ModelCallError.

The CRD checks `serving.external.baseURL` only against `^https?://[^\\s/]+`: "http://my host/v1"
and hosts with control characters pass it. The reconcile turns a ModelCallError into a
condition (ProbeFailed); anything else raised from the client would fail that reconcile on
every retry without ever saying why. No test here reaches the network: the hosts are invalid
(refused before connecting) or a closed port on loopback.
"""

from __future__ import annotations

import re
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibeplane.generation.client import ModelCallError, chat, probe

# The CRD's rule, with RE2's \s (what the API server evaluates) spelled out.
SCHEMA_RULE = re.compile(r"^https?://[^\t\n\f\r /]+")
# http.client refuses these in a host; urlsplit drops tab, CR and LF before it looks.
BAD_HOST_CHARACTERS = st.sampled_from([" ", "\x00", "\x01", "\x0b", "\x1f", "\x7f"])


def _closed_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
    return port  # nothing listens there once the socket is closed


CLOSED = _closed_port()
SCHEME = st.sampled_from(["http", "https"])
# The rule needs one host character that is neither whitespace nor a slash.
HOST_START = st.characters(blacklist_characters="\t\n\f\r /", blacklist_categories=["Cs"])
REST = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)

BASE_URLS = st.one_of(
    # A host with a character no HTTP request line can carry.
    st.builds(
        lambda s, a, bad, b: f"{s}://{a}{bad}{b}", SCHEME, HOST_START, BAD_HOST_CHARACTERS, REST
    ),
    # Anything at all after a host that refuses connections.
    st.builds(lambda s, rest: f"{s}://127.0.0.1:{CLOSED}{rest}", SCHEME, REST),
    # Ports and brackets that do not parse.
    st.builds(lambda s, rest: f"{s}://[{rest}", SCHEME, REST),
    st.builds(lambda s, port: f"{s}://127.0.0.1:{port}/v1", SCHEME, st.integers(65536, 10**9)),
)


@settings(max_examples=300, deadline=None)
@given(BASE_URLS)
def test_a_base_url_the_schema_admits_fails_only_as_a_model_call_error(base_url: str) -> None:
    if not SCHEMA_RULE.match(base_url):
        return  # the API server refuses it before the operator sees it
    with pytest.raises(ModelCallError) as probed:
        probe(base_url, "sk-key", timeout=2)
    with pytest.raises(ModelCallError) as chatted:
        chat(base_url, "m", [{"role": "user", "content": "hi"}], "sk-key", timeout=2)
    for error in (probed.value, chatted.value):
        assert error.reason in ("ClientError", "ConnectionFailed")
        assert "sk-key" not in str(error)


def test_a_host_with_a_space_is_a_client_error() -> None:
    # The first URL that failed differently: http.client refused the host while the
    # connection was being built, outside the client's error mapping.
    with pytest.raises(ModelCallError) as refused:
        probe("http://my host/v1", None, timeout=2)
    assert (refused.value.reason, refused.value.retryable) == ("ClientError", False)
    assert "invalid URL http://my host/v1/models" in refused.value.message
