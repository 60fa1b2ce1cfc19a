"""What of a person's request travels on to the preview, and what of the answer comes back.

The person's credentials stop here: the Authorization header and the front service's cookie
are removed before the request enters the sandbox (its code is generated and untrusted).
Hop-by-hop headers are the proxy's own (RFC 9110 section 7.6.1).
"""

from __future__ import annotations

from collections.abc import Iterable

from vibeplane_frontdoor.cookies import COOKIE_NAME

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CREDENTIALS = frozenset({"authorization", "proxy-authorization"})


def strip_cookie(value: str) -> str:
    """The Cookie header without the front service's own cookie."""
    kept = [
        part.strip()
        for part in value.split(";")
        if part.strip() and part.strip().split("=", 1)[0].strip() != COOKIE_NAME
    ]
    return "; ".join(kept)


def upstream_request_headers(
    headers: Iterable[tuple[str, str]], client: str, host: str, scheme: str
) -> list[tuple[str, str]]:
    listed = list(headers)
    connection_named = {
        token.strip().lower()
        for name, value in listed
        if name.lower() == "connection"
        for token in value.split(",")
    }
    out: list[tuple[str, str]] = []
    for name, value in listed:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in CREDENTIALS or lower in connection_named:
            continue
        if lower in ("host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"):
            continue
        if lower == "cookie":
            value = strip_cookie(value)
            if not value:
                continue
        out.append((name, value))
    out += [
        ("X-Forwarded-For", client),
        ("X-Forwarded-Host", host),
        ("X-Forwarded-Proto", scheme),
    ]
    return out


def downstream_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The preview's answer headers, less hop-by-hop ones (the app may set its own cookies,
    but never one named like the front service's: it would sign a person out)."""
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            continue
        if lower == "set-cookie" and value.split("=", 1)[0].strip() == COOKIE_NAME:
            continue
        out.append((name, value))
    return out
