"""Fetching model weights from `s3://` to a local folder before loading.

The S3 endpoint and credentials come from boto3's standard environment (`AWS_ENDPOINT_URL`
or `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`...), as
KServe's storage initializer does, so one Secret serves both. Keys are mapped to local paths
with the same care as generated files: a key that would land outside the target folder is
refused rather than written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class StorageError(RuntimeError):
    """The model could not be fetched (bad URI, nothing there, unsafe key)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of `s3://bucket/prefix`; the prefix without a leading slash."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"not an s3://bucket/prefix URI: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def default_download_dir(uri: str) -> Path:
    """A folder per URI under the temp dir (an emptyDir in a pod with a read-only root)."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "vibeplane-models" / digest


def relative_path(key: str, prefix: str) -> PurePosixPath:
    """Where `key` goes below the download folder; refuses keys that would escape it."""
    rest = key[len(prefix) :] if key.startswith(prefix) else key
    segments = rest.split("/")
    # Checked on the raw key: PurePosixPath would quietly fold "a//b" and "./a" into "a/b"
    # and "a", making two keys one file; ".." would climb out of the folder.
    if any(segment in ("", ".", "..") for segment in segments):
        raise StorageError(f"refusing the object key {key!r}: not a plain path below the prefix")
    return PurePosixPath(*segments)


def download_s3(uri: str, target: Path | None = None) -> Path:
    """Download every object under `uri` into `target` (default `default_download_dir`).

    A prefix naming a "folder" (the usual case: a saved model is several files) and a
    prefix naming one object both work. Returns the local folder.
    """
    import boto3  # the operator's dependency too; imported here to keep startup light

    bucket, prefix = split_s3_uri(uri)
    folder_prefix = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
    target = target or default_download_dir(uri)
    target.mkdir(parents=True, exist_ok=True)
    client = boto3.client("s3")
    paginator = client.get_paginator("list_objects_v2")
    count = 0
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue  # a "folder" marker object
            if key == prefix:
                rel = PurePosixPath(PurePosixPath(key).name)
            elif key.startswith(folder_prefix):
                rel = relative_path(key, folder_prefix)
            else:
                continue  # `prefix` is "models/a" and this is "models/ab/...": not ours
            dest = target.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + ".partial")
            client.download_file(bucket, key, os.fspath(partial))
            partial.replace(dest)
            count += 1
    if count == 0:
        raise StorageError(f"no objects under {uri!r}")
    log.info("downloaded %d objects from %s to %s", count, uri, target)
    return target
