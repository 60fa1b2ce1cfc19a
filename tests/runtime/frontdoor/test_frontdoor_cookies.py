from __future__ import annotations

import pytest

from vibeplane_frontdoor import cookies
from vibeplane_frontdoor.cookies import CookieRefused, Session

KEY = b"k" * 32
HOST = "todo-ws-demo.vibeplane.localhost"


def _signed(host: str = HOST, expires: int = 2000, key: bytes = KEY) -> str:
    return cookies.sign(Session(host, "alice", expires), key)


def test_a_signed_cookie_proves_its_session_for_its_host_until_it_expires() -> None:
    assert cookies.verify(_signed(), KEY, HOST, now=1999) == Session(HOST, "alice", 2000)


@pytest.mark.parametrize(
    ("value", "host", "now", "reason"),
    [
        (_signed(), HOST, 2000, "expired"),
        (_signed(), "other-ws-demo.vibeplane.localhost", 1000, "issued for another host"),
        (_signed(key=b"x" * 32), HOST, 1000, "bad signature"),
        ("garbage", HOST, 1000, "malformed"),
        ("YQ.YQ", HOST, 1000, "bad signature"),
        ("a.b.c", HOST, 1000, "malformed"),
        ("", HOST, 1000, "malformed"),
    ],
)
def test_a_cookie_is_refused_with_its_reason(value: str, host: str, now: int, reason: str) -> None:
    with pytest.raises(CookieRefused, match=reason):
        cookies.verify(value, KEY, host, now)


def test_a_payload_edited_without_the_key_is_refused() -> None:
    payload, signature = _signed().split(".")
    forged = cookies.sign(Session(HOST, "mallory", 10**10), b"m" * 32).split(".")[0]
    with pytest.raises(CookieRefused, match="bad signature"):
        cookies.verify(f"{forged}.{signature}", KEY, HOST, 1000)
    assert cookies.verify(f"{payload}.{signature}", KEY, HOST, 1000).user == "alice"


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        cookies.sign(Session(HOST, "alice", 1), b"short")


def test_the_cookie_is_host_only_and_hidden_from_scripts() -> None:
    header = cookies.set_cookie_header("v", 600, secure=True)
    assert "Domain" not in header
    assert {"HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600", "Path=/"} <= set(
        header.split("; ")
    )
    assert "Secure" not in cookies.set_cookie_header("v", 600, secure=False)
