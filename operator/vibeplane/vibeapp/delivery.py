"""Revision delivery to a running preview: the operator's signing key and the signed order.

The operator tells a preview sandbox which revision to serve by POSTing a small JSON order
(namespace, app, app uid, revision, bundle sha256, a short-lived presigned bundle URL, when it
was issued and when it expires), signed with the platform's delivery key: RSASSA-PKCS1-v1_5
over SHA-256. The pod template carries only the public key (`<e>:<n hex>`), so nothing in a
sandbox, tenant code included, can sign an order; the preview runtime
(`vibeplane_sandbox.preview.verify`, standard library only: a PKCS#1 v1.5 verification that
rebuilds and compares the whole encoded block, nothing to parse) checks it.

The operator signs with the `cryptography` package (OpenSSL): the chart's key is Helm's
genPrivateKey, 4096 bits, and signing one order by hand in Python took about 130 ms of the
prompt-to-preview path (bench.swap prints both). Pure: no I/O here (the key's storage is the
handlers').
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048
PUBLIC_EXPONENT = 65537
ORDER_SECONDS = 60
"""How long a signed order is valid: it is sent at once, or a newer one replaces it."""


@dataclass(frozen=True)
class DeliveryKey:
    """The platform's delivery key (private: the operator's alone)."""

    n: int
    d: int
    e: int = PUBLIC_EXPONENT
    p: int = 0
    q: int = 0
    """The primes (recovered from n, e and d when not given)."""

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> DeliveryKey:
        return cls._of(rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits))

    @classmethod
    def _of(cls, key: rsa.RSAPrivateKey) -> DeliveryKey:
        numbers = key.private_numbers()
        public = numbers.public_numbers
        return cls(n=public.n, d=numbers.d, e=public.e, p=numbers.p, q=numbers.q)

    @property
    def public(self) -> str:
        """What a preview pod gets (VIBEPLANE_DELIVERY_KEY): `<e>:<n in hex>`."""
        return f"{self.e}:{self.n:x}"

    @cached_property
    def _private(self) -> rsa.RSAPrivateKey:
        p, q = (
            (self.p, self.q)
            if self.p and self.q
            else rsa.rsa_recover_prime_factors(self.n, self.e, self.d)
        )
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=self.d,
            dmp1=rsa.rsa_crt_dmp1(self.d, p),
            dmq1=rsa.rsa_crt_dmq1(self.d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(self.e, self.n),
        )
        return numbers.private_key()

    def sign(self, message: bytes) -> str:
        """The signature of `message` (PKCS#1 v1.5, SHA-256), in hex."""
        signature = self._private.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return signature.hex()

    def dumps(self) -> str:
        fields = {"n": self.n, "d": self.d, "p": self.p, "q": self.q}
        return json.dumps({**{k: f"{v:x}" for k, v in fields.items()}, "e": self.e})

    @classmethod
    def loads(cls, text: str) -> DeliveryKey:
        """From `dumps`, or a PEM private key (PKCS#1 `RSA PRIVATE KEY`, what Helm's
        genPrivateKey and `openssl genrsa -traditional` write, or PKCS#8)."""
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("the delivery key is not an RSA private key")
            return cls._of(key)
        data = json.loads(text)
        n, d, p, q = (int(data.get(k) or "0", 16) for k in ("n", "d", "p", "q"))
        key_ = cls(n=n, d=d, e=int(data["e"]), p=p, q=q)
        if p * q not in (0, n):
            raise ValueError("the delivery key's primes do not match its modulus")
        return key_


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
