"""A local folder (or manifest file) as a job's input: uploaded to a bucket first, then named by gs:// URI.

The upload goes through the google-cloud-storage client, so it reaches the real
Cloud Storage with the caller's own credentials, or the local stack's Storage
emulator when STORAGE_EMULATOR_HOST is set (the client reads it).
"""

from __future__ import annotations

import mimetypes
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError
from requests import RequestException

GCS_PREFIX = "gs://"
# Where uploaded inputs go in the bucket: one fresh folder per submit, so two
# submits of the same folder never mix.
UPLOAD_ROOT = "jobs-input"


class InputError(Exception):
    """An INPUT or OUTPUT the command can't use; the message is one line for the user."""


class UploadFailed(Exception):
    """The upload of a local INPUT was refused or could not reach Cloud Storage; one line for the user."""


@dataclass(frozen=True)
class LocalInput:
    """What will be uploaded: (file, object name relative to the upload folder) pairs."""

    root: Path
    files: tuple[tuple[Path, str], ...]
    is_manifest: bool


def is_gcs_uri(argument: str) -> bool:
    return argument.startswith(GCS_PREFIX) and len(argument) > len(GCS_PREFIX)


def _is_image(path: Path) -> bool:
    content_type = mimetypes.guess_type(path.name)[0] or ""
    return content_type.startswith("image/")


def local_input(argument: str) -> LocalInput:
    """The files of a local folder's images (recursively, hidden ones left out), or one manifest file."""
    path = Path(argument)
    if path.is_file():
        return LocalInput(path, ((path, path.name),), is_manifest=True)
    if not path.is_dir():
        raise InputError(f"{argument}: no such folder or file (INPUT is a gs:// prefix or manifest, "
                         "a local folder of images, or a local manifest file)")
    files = tuple(
        (file, file.relative_to(path).as_posix())
        for file in sorted(path.rglob("*"))
        if file.is_file() and _is_image(file)
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise InputError(f"{argument}: no image files in this folder (JPEG, PNG, WebP, GIF or BMP, "
                         "by file extension)")
    return LocalInput(path, files, is_manifest=False)


def check_output(argument: str) -> str:
    """OUTPUT must be a gs:// prefix: the model services write the results there."""
    if not is_gcs_uri(argument):
        raise InputError(f"{argument}: OUTPUT must be a gs://bucket/prefix/ the service can write to")
    return argument


def upload(source: LocalInput, bucket_name: str, *, client=None, concurrency: int = 8,
           on_uploaded: Callable[[Path], None] | None = None) -> str:
    """Uploads every file under jobs-input/<uuid>/ in bucket_name; the job's input URI (prefix or
    manifest)."""
    if client is None:
        from google.cloud import storage

        # Uploading needs no project: without GOOGLE_CLOUD_PROJECT none is looked for (the client's
        # own search fails where Application Default Credentials carry none).
        client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
    bucket = client.bucket(bucket_name)
    folder = f"{UPLOAD_ROOT}/{uuid.uuid4().hex}/"

    def one(item: tuple[Path, str]) -> None:
        file, name = item
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        bucket.blob(folder + name).upload_from_filename(str(file), content_type=content_type)
        if on_uploaded:
            on_uploaded(file)

    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            for _ in pool.map(one, source.files):  # re-raises the first failure
                pass
    except (GoogleAPIError, GoogleAuthError, RequestException, OSError) as exc:
        raise UploadFailed(f"uploading {source.root} to gs://{bucket_name}: {exc}") from None
    if source.is_manifest:
        return f"{GCS_PREFIX}{bucket_name}/{folder}{source.files[0][1]}"
    return f"{GCS_PREFIX}{bucket_name}/{folder}"
