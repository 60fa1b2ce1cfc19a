"""The S3 side of vibeplane: buckets, bundles, revision indexes, training records.

Layout in the bucket (one prefix per workspace, so a workspace's objects can be listed,
retained or deleted together, and a presigned URL names one object only):

    workspaces/<workspace>/apps/<app uid>/bundles/<sha256>.tar.gz   content-addressed bundles
    workspaces/<workspace>/apps/<app uid>/revisions.json            the full revision index
    datasets/interactions/date=YYYY-MM-DD/<workspace>.<app uid>.<revision>.<attempt>.jsonl

Every call is blocking (boto3): callers run it on worker threads, never on the event loop.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


@dataclass(frozen=True)
class S3Settings:
    """Where objects go. Credentials come from the standard AWS environment or files."""

    endpoint: str | None
    bucket: str
    region: str = "us-east-1"
    encryption: bool = True
    """Ask for server-side encryption (AES256) where the server supports it."""
    use_aws: bool = False
    """Without an endpoint, talk to AWS S3 only when this is set: never by accident."""

    @property
    def configured(self) -> bool:
        return bool(self.endpoint) or self.use_aws

    @classmethod
    def from_env(cls) -> S3Settings:
        return cls(
            use_aws=os.environ.get("VIBEPLANE_S3_USE_AWS", "false") == "true",
            endpoint=os.environ.get("VIBEPLANE_S3_ENDPOINT") or None,
            bucket=os.environ.get("VIBEPLANE_S3_BUCKET", "vibeplane"),
            region=os.environ.get("AWS_REGION", "us-east-1"),
            encryption=os.environ.get("VIBEPLANE_S3_ENCRYPTION", "true") == "true",
        )


class StorageError(RuntimeError):
    """Object storage refused or failed; the message says which operation."""


def app_prefix(workspace: str, app_uid: str) -> str:
    return f"workspaces/{workspace}/apps/{app_uid}/"


def bundle_key(workspace: str, app_uid: str, sha256: str) -> str:
    return f"{app_prefix(workspace, app_uid)}bundles/{sha256}.tar.gz"


def training_key(workspace: str, app_uid: str, revision: int, attempt: int, day: datetime) -> str:
    return (
        f"datasets/interactions/date={day.strftime('%Y-%m-%d')}/"
        f"{workspace}.{app_uid}.{revision}.{attempt}.jsonl"
    )


class ObjectStore:
    """Thin, typed wrapper over one bucket."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._bucket_ready = False

    @functools.cached_property
    def _client(self) -> Any:
        if not self.settings.configured:
            raise StorageError(
                "object storage is not configured: set VIBEPLANE_S3_ENDPOINT "
                "(or VIBEPLANE_S3_USE_AWS=true for AWS S3)"
            )
        return boto3.client(
            "s3",
            endpoint_url=self.settings.endpoint,
            region_name=self.settings.region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self._ensure_bucket()
        except BotoCoreError as error:  # the server is unreachable or answered garbage
            raise StorageError(f"object storage unreachable: {error}") from error
        self._bucket_ready = True

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.settings.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StorageError(f"checking bucket {self.settings.bucket}: {error}") from error
            try:
                self._client.create_bucket(Bucket=self.settings.bucket)
            except ClientError as create_error:
                code = create_error.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(
                        f"creating bucket {self.settings.bucket}: {create_error}"
                    ) from create_error
        self._bucket_ready = True

    def _encryption(self) -> dict[str, str]:
        return {"ServerSideEncryption": "AES256"} if self.settings.encryption else {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store an object, with server-side encryption when the server does it."""
        self.ensure_bucket()
        try:
            self._put(key, data, content_type)
        except BotoCoreError as error:
            raise StorageError(f"storing {key}: {error}") from error

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._client.put_object(
                Bucket=self.settings.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                **self._encryption(),
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if self.settings.encryption and code in (
                "NotImplemented",
                "KMS.NotConfigured",
                "InvalidArgument",
                "KMSNotConfigured",
            ):
                # This server cannot encrypt at rest: store plainly rather than lose the write.
                self._client.put_object(
                    Bucket=self.settings.bucket, Key=key, Body=data, ContentType=content_type
                )
                return
            raise StorageError(f"storing {key}: {error}") from error

    def get(self, key: str) -> bytes | None:
        self.ensure_bucket()
        try:
            response = self._client.get_object(Bucket=self.settings.bucket, Key=key)
            data: bytes = response["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"reading {key}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"reading {key}: {error}") from error
        return data

    def exists(self, key: str) -> bool:
        self.ensure_bucket()
        try:
            self._client.head_object(Bucket=self.settings.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"checking {key}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"checking {key}: {error}") from error
        return True

    def presigned_get(self, key: str, seconds: int) -> str:
        """A URL that reads exactly this object for `seconds`; no credentials leave here."""
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.settings.bucket, "Key": key}, ExpiresIn=seconds
        )
        return url

    def keys(self, prefix: str) -> list[str]:
        self.ensure_bucket()
        found: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
                found += [item["Key"] for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"listing {prefix}: {error}") from error
        return found

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many."""
        keys = self.keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                self._client.delete_objects(
                    Bucket=self.settings.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as error:
                raise StorageError(f"deleting under {prefix}: {error}") from error
        return len(keys)

    # ---- vibeplane's objects -------------------------------------------------------------

    def put_bundle(self, workspace: str, app_uid: str, sha256: str, data: bytes) -> str:
        """Store a bundle under its address (idempotent); returns its s3:// URI."""
        key = bundle_key(workspace, app_uid, sha256)
        if not self.exists(key):
            self.put(key, data, "application/gzip")
        return f"s3://{self.settings.bucket}/{key}"

    def read_index(self, workspace: str, app_uid: str) -> list[dict[str, Any]]:
        data = self.get(f"{app_prefix(workspace, app_uid)}revisions.json")
        return list(json.loads(data)) if data else []

    def write_index(
        self, workspace: str, app_uid: str, revisions: Sequence[Mapping[str, Any]]
    ) -> None:
        body = json.dumps(list(revisions), sort_keys=True, indent=1).encode()
        self.put(f"{app_prefix(workspace, app_uid)}revisions.json", body, "application/json")

    def put_training_record(self, key: str, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        self.put(key, line.encode(), "application/x-ndjson")
