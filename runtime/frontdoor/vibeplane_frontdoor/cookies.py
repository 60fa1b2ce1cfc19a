"""The session cookie: who passed the access check for one app's host, until when.

`<payload>.<signature>`, both base64url without padding; the payload is compact JSON
`{"h": host, "u": username, "e": expiry (unix seconds)}` and the signature HMAC-SHA256 of the
payload's text under the front service's key. The cookie is host-only (no Domain attribute),
and the host inside it is checked too: a cookie copied to another app's host is refused even
where a browser would send it. The access decision was made when the cookie was issued; its
short life bounds how long a revoked role keeps working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

COOKIE_NAME = "vibeplane_session"
# Long enough that a person is not asked again while working, short enough that losing a role
# takes effect soon.
DEFAULT_TTL_SECONDS = 600
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Session:
    host: str
    user: str
    expires: int  # unix seconds


class CookieRefused(ValueError):
    """The cookie grants nothing; the message says why (never echoing its content)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the cookie signing key must be at least {MIN_KEY_BYTES} bytes")


def sign(session: Session, key: bytes) -> str:
    _check_key(key)
    payload = json.dumps(
        {"h": session.host, "u": session.user, "e": session.expires},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(value: str, key: bytes, host: str, now: float) -> Session:
    """The session the cookie proves for `host` at `now`, else CookieRefused."""
    _check_key(key)
    encoded, dot, encoded_signature = value.partition(".")
    if not dot or not encoded or not encoded_signature:
        raise CookieRefused("malformed")
    try:
        payload = _unb64(encoded)
        signature = _unb64(encoded_signature)
    except (binascii.Error, ValueError) as error:
        raise CookieRefused("malformed") from error
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise CookieRefused("bad signature")
    try:
        fields = json.loads(payload)
        session = Session(str(fields["h"]), str(fields["u"]), int(fields["e"]))
    except (ValueError, KeyError, TypeError) as error:
        raise CookieRefused("malformed") from error
    if session.host != host:
        raise CookieRefused("issued for another host")
    if session.expires <= now:
        raise CookieRefused("expired")
    return session


def set_cookie_header(value: str, ttl_seconds: int, secure: bool) -> str:
    """Host-only (no Domain), every path, not readable by the app's scripts."""
    attributes = [
        f"{COOKIE_NAME}={value}",
        "Path=/",
        f"Max-Age={ttl_seconds}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def clear_cookie_header() -> str:
    return f"{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
