"""One delivery key for the unit tests (generating a 2048-bit key takes about a second)."""

from __future__ import annotations

from functools import cache

from vibeplane.vibeapp.delivery import DeliveryKey


@cache
def shared_delivery_key() -> DeliveryKey:
    return DeliveryKey.generate()
