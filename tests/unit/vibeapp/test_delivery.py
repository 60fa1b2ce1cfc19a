"""The delivery key: what the operator signs, the preview runtime (stdlib only) verifies."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.delivery import shared_delivery_key
from vibeplane.vibeapp.delivery import DeliveryKey, Order, signed
from vibeplane_sandbox.preview import parse_public_key, verify

ORDER = Order("ws-a", "todo", "uid-1", 3, "ab" * 32, "http://s3.invalid/x", 1_700_000_000_000)


def test_an_order_signed_by_the_operator_verifies_in_the_sandbox_and_nothing_else_does() -> None:
    key = shared_delivery_key()
    body, signature = signed(key, ORDER)
    public = parse_public_key(key.public)
    assert verify(public, body, signature)
    assert not verify(public, body.replace(b"todo", b"evil"), signature)
    other = DeliveryKey.generate()
    assert not verify(parse_public_key(other.public), body, signature)


def test_keys_load_from_their_file_and_from_helms_pem() -> None:
    key = shared_delivery_key()
    again = DeliveryKey.loads(key.dumps())
    assert again == key
    # Without the primes (an older file): recovered, the same signatures.
    bare = DeliveryKey(n=key.n, d=key.d, e=key.e)
    assert bare.sign(b"order") == key.sign(b"order")
    # Helm's genPrivateKey "rsa": 4096 bits, PKCS#1 PEM.
    helm = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    pem = helm.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert "BEGIN RSA PRIVATE KEY" in pem
    loaded = DeliveryKey.loads(pem)
    assert loaded.n == helm.public_key().public_numbers().n
    body, signature = signed(loaded, ORDER)
    assert verify(parse_public_key(loaded.public), body, signature)
    with pytest.raises(ValueError, match="primes do not match"):
        DeliveryKey.loads(DeliveryKey(n=key.n, d=key.d, p=3, q=5).dumps())
