"""Revision delivery to a running preview: the operator's signing key and the signed order.

The operator tells a preview sandbox which revision to serve by POSTing a small JSON order
(namespace, app, app uid, revision, bundle sha256, a short-lived presigned bundle URL, when it
was issued and when it expires), signed with the platform's delivery key: RSASSA-PKCS1-v1_5
over SHA-256. The pod template carries only the public key (`<e>:<n hex>`), so nothing in a
sandbox, tenant code included, can sign an order; the preview runtime
(`vibeplane_sandbox.preview.verify`, standard library only) checks it.

Why RSA by hand: the preview runtime has the standard library only (no Ed25519 there), and a
PKCS#1 v1.5 verification that rebuilds and compares the whole encoded block is a few lines with
nothing to parse; the operator signs with the same arithmetic, so it needs no crypto package.
Pure: no I/O here (the key's storage is the handlers').
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

KEY_BITS = 2048
# DER prefix of a SHA-256 DigestInfo (RFC 8017, 9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
PUBLIC_EXPONENT = 65537
ORDER_SECONDS = 60
"""How long a signed order is valid: it is sent at once, or a newer one replaces it."""
_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


def _probably_prime(candidate: int, rounds: int = 40) -> bool:
    if any(candidate % p == 0 for p in _SMALL_PRIMES):
        return candidate in _SMALL_PRIMES
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        a = secrets.randbelow(candidate - 3) + 2
        x = pow(a, d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, candidate)
            if x == candidate - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        # Top two bits set: the product has exactly 2*bits bits.
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (candidate - 1) % PUBLIC_EXPONENT and _probably_prime(candidate):
            return candidate


@dataclass(frozen=True)
class DeliveryKey:
    """The platform's delivery key (private: the operator's alone)."""

    n: int
    d: int
    e: int = PUBLIC_EXPONENT
    p: int = 0
    q: int = 0
    """The primes, when known: signing by the Chinese remainder theorem (about 3x faster)."""

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> DeliveryKey:
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            if p != q:
                break
        phi = (p - 1) * (q - 1)
        return cls(n=p * q, d=pow(PUBLIC_EXPONENT, -1, phi), p=p, q=q)

    @property
    def public(self) -> str:
        """What a preview pod gets (VIBEPLANE_DELIVERY_KEY): `<e>:<n in hex>`."""
        return f"{self.e}:{self.n:x}"

    def sign(self, message: bytes) -> str:
        """The signature of `message`, in hex."""
        size = (self.n.bit_length() + 7) // 8
        suffix = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        block = b"\x00\x01" + b"\xff" * (size - len(suffix) - 3) + b"\x00" + suffix
        m = int.from_bytes(block, "big")
        if self.p and self.q:
            p, q = self.p, self.q
            mp, mq = pow(m, self.d % (p - 1), p), pow(m, self.d % (q - 1), q)
            value = mq + q * ((pow(q, -1, p) * (mp - mq)) % p)
        else:
            value = pow(m, self.d, self.n)
        return f"{value:0{2 * size}x}"

    def dumps(self) -> str:
        fields = {"n": self.n, "d": self.d, "p": self.p, "q": self.q}
        return json.dumps({**{k: f"{v:x}" for k, v in fields.items()}, "e": self.e})

    @classmethod
    def loads(cls, text: str) -> DeliveryKey:
        """From `dumps`, or a PKCS#1 PEM (`RSA PRIVATE KEY`, what Helm's genPrivateKey and
        `openssl genrsa -traditional` write)."""
        if "-----BEGIN RSA PRIVATE KEY-----" in text:
            return _from_pkcs1(text)
        data = json.loads(text)
        n, d, p, q = (int(data.get(k) or "0", 16) for k in ("n", "d", "p", "q"))
        key = cls(n=n, d=d, e=int(data["e"]), p=p, q=q)
        if p * q not in (0, n):
            raise ValueError("the delivery key's primes do not match its modulus")
        return key


def _from_pkcs1(text: str) -> DeliveryKey:
    """RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, ... } (RFC 8017, A.1.2)."""
    body = text.split("-----BEGIN RSA PRIVATE KEY-----", 1)[1].split("-----END", 1)[0]
    der = base64.b64decode("".join(body.split()))

    def read(offset: int, tag: int) -> tuple[bytes, int]:
        if der[offset] != tag:
            raise ValueError(f"not a PKCS#1 RSA private key (tag {der[offset]:#x} at {offset})")
        length, offset = der[offset + 1], offset + 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[offset : offset + count], "big")
            offset += count
        return der[offset : offset + length], offset + length

    sequence, _ = read(0, 0x30)
    der, offset, numbers = sequence, 0, []
    for _ in range(6):
        value, offset = read(offset, 0x02)
        numbers.append(int.from_bytes(value, "big"))
    _version, n, e, d, p, q = numbers
    if p * q != n:
        raise ValueError("the delivery key's primes do not match its modulus")
    return DeliveryKey(n=n, d=d, e=e, p=p, q=q)


@dataclass(frozen=True)
class Order:
    """One delivery: the revision a preview of one app must serve."""

    namespace: str
    app: str
    app_uid: str
    revision: int
    sha256: str
    url: str
    issued_ms: int
    """When it was issued (milliseconds since the epoch): a sandbox refuses an older one."""

    def body(self) -> bytes:
        payload: dict[str, Any] = {
            "namespace": self.namespace,
            "app": self.app,
            "appUid": self.app_uid,
            "revision": self.revision,
            "sha256": self.sha256,
            "url": self.url,
            "issued": self.issued_ms,
            "expires": self.issued_ms / 1000 + ORDER_SECONDS,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signed(key: DeliveryKey, order: Order) -> tuple[bytes, str]:
    """The order's body and its signature (the X-Vibeplane-Signature header)."""
    body = order.body()
    return body, key.sign(body)
