"""Reading one key of a Secret, for the credentials the operator uses at call time (a model's
API key): read when needed and never stored, so a rotated key takes effect at the next call."""

from __future__ import annotations

import base64

from vibeplane.kube import client
from vibeplane.kube.client import KubeClient


class SecretProblem(Exception):
    """The API key cannot be read: `reason` is SecretNotFound or SecretKeyNotFound."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message


def read_secret_key(namespace: str, name: str, key: str, kube: KubeClient | None = None) -> str:
    """The value of one key of a Secret, surrounding whitespace removed (a key written with
    `echo` ends in a newline that no HTTP header can carry). Raises SecretProblem, whose
    message names the Secret and key but never holds any of its content."""
    secret = (kube or client.ApiServerClient()).get("v1", "Secret", name, namespace)
    if secret is None:
        raise SecretProblem(
            "SecretNotFound", f"Secret {name} (key {key}) not found in namespace {namespace}"
        )
    data = secret.get("data") or {}
    if key not in data:
        raise SecretProblem(
            "SecretKeyNotFound", f"Secret {name} in namespace {namespace} has no key {key}"
        )
    return base64.b64decode(data[key]).decode("utf-8", errors="replace").strip()
