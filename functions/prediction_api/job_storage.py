"""The Cloud Storage adapter of bulk jobs: list an input prefix, read a manifest, check that the
output can be written, list what a job wrote. Read and written with the API's own identity (in the
cloud the functions' service account, which a user grants access to their buckets)."""

from __future__ import annotations

import uuid

from google.api_core import exceptions as gexc
from inference_contract import billable_operations as ops

from .errors import BackendUnavailable, InputNotReadable, InvalidRequest, NoImages, OutputNotWritable
from .job_inputs import GcsLocation, is_image_name

# Listing pages of this many objects: one class A operation each.
LIST_PAGE_SIZE = 1000
MAX_MANIFEST_BYTES = 64 << 20


def _unavailable(exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"Cloud Storage is unavailable: {type(exc).__name__}")


class GcsJobStorage:
    def __init__(self, client, service_account_email: str | None = None) -> None:
        self._client = client
        self._account = service_account_email or "the API's service account"

    def _denied(self, uri: str, role: str) -> str:
        return f"{self._account} may not use {uri}: grant it {role} on the bucket"

    def list_images(self, location: GcsLocation, limit: int) -> list[str]:
        """gs:// URIs of the images under the prefix, in name order, at most limit + 1."""
        found: list[str] = []
        try:
            pages = self._client.list_blobs(location.bucket, prefix=location.name or None,
                                            page_size=LIST_PAGE_SIZE).pages
            for page in pages:
                ops.count(ops.STORAGE_CLASS_A)
                for blob in page:
                    if not blob.name.endswith("/") and is_image_name(blob.name, blob.content_type):
                        found.append(f"gs://{location.bucket}/{blob.name}")
                if len(found) > limit:
                    break
        except (gexc.Forbidden, gexc.Unauthorized):
            raise InputNotReadable(self._denied(location.uri, "roles/storage.objectViewer")) from None
        except gexc.NotFound:
            raise InputNotReadable(f"the bucket of {location.uri} does not exist") from None
        except gexc.BadRequest:
            raise InvalidRequest(f"Cloud Storage refuses the name {location.uri[:200]!r}") from None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        if not found:
            raise NoImages(f"no image under {location.uri} (by extension: .jpg, .jpeg, .png, .gif, .bmp, "
                           ".webp, or an image/* content type)")
        return found

    def read_manifest(self, location: GcsLocation) -> bytes:
        try:
            blob = self._client.bucket(location.bucket).get_blob(location.name)
            ops.count(ops.STORAGE_CLASS_B)
            if blob is None:
                raise InputNotReadable(f"the manifest {location.uri} does not exist")
            if (blob.size or 0) > MAX_MANIFEST_BYTES:
                raise InvalidRequest(f"the manifest {location.uri} is over {MAX_MANIFEST_BYTES >> 20} MiB")
            ops.count(ops.STORAGE_CLASS_B)
            return blob.download_as_bytes(if_generation_match=blob.generation)
        except (gexc.Forbidden, gexc.Unauthorized):
            raise InputNotReadable(self._denied(location.uri, "roles/storage.objectViewer")) from None
        except gexc.NotFound:
            raise InputNotReadable(f"the manifest {location.uri} does not exist") from None
        except gexc.BadRequest:
            raise InvalidRequest(f"Cloud Storage refuses the name {location.uri[:200]!r}") from None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    def check_writable(self, prefix: str) -> None:
        """Write and delete a probe object under prefix (gs://bucket/name/); OutputNotWritable if refused."""
        bucket_name, _, name = prefix[5:].partition("/")
        probe = f"{name}.write-check-{uuid.uuid4().hex}"
        blob = self._client.bucket(bucket_name).blob(probe)
        try:
            ops.count(ops.STORAGE_CLASS_A)
            blob.upload_from_string(b"", content_type="text/plain", if_generation_match=0)
        except (gexc.Forbidden, gexc.Unauthorized):
            raise OutputNotWritable(self._denied(prefix, "roles/storage.objectCreator")) from None
        except gexc.NotFound:
            raise OutputNotWritable(f"the bucket of {prefix} does not exist") from None
        except gexc.BadRequest:
            raise InvalidRequest(f"Cloud Storage refuses the name {prefix[:200]!r}") from None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        try:
            blob.delete()  # free; an account that may only create objects leaves it there
        except (gexc.GoogleAPIError, OSError):
            pass

    def list_outputs(self, prefix: str, limit: int = 1000) -> list[str]:
        """gs:// URIs of what a job wrote so far (its results files and summary), in name order."""
        bucket_name, _, name = prefix[5:].partition("/")
        try:
            ops.count(ops.STORAGE_CLASS_A)
            blobs = self._client.list_blobs(bucket_name, prefix=name, max_results=limit)
            return [f"gs://{bucket_name}/{blob.name}" for blob in blobs
                    if not blob.name[len(name):].startswith(".")]
        except (gexc.GoogleAPIError, OSError):
            return []  # the listing is informative; the counts are the job's state
