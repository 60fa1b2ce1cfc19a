from __future__ import annotations

from vibeplane_frontdoor.headers import (
    downstream_response_headers,
    strip_cookie,
    upstream_request_headers,
)
from vibeplane_frontdoor.pages import safe_next


def test_no_credential_of_the_person_enters_the_sandbox() -> None:
    out = upstream_request_headers(
        [
            ("Host", "todo-ws-demo.vibeplane.localhost"),
            ("Authorization", "Bearer secret-token"),
            ("Proxy-Authorization", "Basic x"),
            ("Cookie", "theme=dark; vibeplane_session=abc.def; lang=en"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "hop"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Accept", "text/html"),
        ],
        client="10.0.0.1",
        host="todo-ws-demo.vibeplane.localhost",
        scheme="http",
    )
    assert out == [
        ("Cookie", "theme=dark; lang=en"),
        ("Accept", "text/html"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-Host", "todo-ws-demo.vibeplane.localhost"),
        ("X-Forwarded-Proto", "http"),
    ]
    assert "secret" not in repr(out)
    assert "abc.def" not in repr(out)


def test_a_cookie_header_of_only_ours_is_dropped() -> None:
    assert strip_cookie("vibeplane_session=x") == ""
    headers = upstream_request_headers([("Cookie", "vibeplane_session=x")], "c", "h", "http")
    assert [name for name, _ in headers if name == "Cookie"] == []


def test_the_app_cannot_overwrite_the_session_cookie() -> None:
    out = downstream_response_headers(
        [
            ("Set-Cookie", "vibeplane_session=evil; Path=/"),
            ("Set-Cookie", "cart=1"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/html"),
        ]
    )
    assert out == [("Set-Cookie", "cart=1"), ("Content-Type", "text/html")]


def test_sign_in_returns_only_to_a_local_path() -> None:
    assert safe_next("/app?x=1") == "/app?x=1"
    for bad in (
        "https://evil.example",
        "//evil.example",
        "/\\evil",
        None,
        "",
        "/__vibeplane/signin",
    ):
        assert safe_next(bad) == "/"
