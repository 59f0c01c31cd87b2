"""The Cloud Storage adapter for gs:// images a user names: read with the API's own identity.

In the cloud that identity is the functions' service account (SERVICE_ACCOUNT_EMAIL):
a user grants it roles/storage.objectViewer on their bucket. Locally the client
talks to the Storage emulator (STORAGE_EMULATOR_HOST), which checks no permission.
"""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud.storage.retry import DEFAULT_RETRY
from inference_contract import billable_operations as billed

from .errors import BackendUnavailable, FetchFailed, ImageAccessDenied, ImageNotFound
from .image_sources import too_large


class GcsImageReader:
    def __init__(self, client, service_account_email: str | None) -> None:
        self._client = client
        self._account = service_account_email

    def read(self, bucket: str, name: str, max_bytes: int, timeout: float) -> bytes:
        uri = f"gs://{bucket}/{name}"
        retry = DEFAULT_RETRY.with_timeout(timeout)  # the client's own retries end with the request's time
        try:
            billed.count(billed.STORAGE_CLASS_B)  # the object's metadata
            blob = self._client.bucket(bucket).get_blob(name, timeout=timeout, retry=retry)
            if blob is None:
                raise ImageNotFound(f"{uri} does not exist")
            if (blob.size or 0) > max_bytes:
                raise too_large(uri, max_bytes)
            # The generation whose size was checked, and no other.
            billed.count(billed.STORAGE_CLASS_B)  # its bytes
            return blob.download_as_bytes(if_generation_match=blob.generation, timeout=timeout, retry=retry)
        except (gexc.Forbidden, gexc.Unauthorized):
            account = self._account or "the API's service account"
            raise ImageAccessDenied(
                f"{account} may not read {uri}: grant it roles/storage.objectViewer on bucket {bucket}",
                service_account=self._account) from None
        except gexc.NotFound:  # the bucket itself
            raise ImageNotFound(f"{uri} does not exist") from None
        except gexc.PreconditionFailed:
            raise FetchFailed(f"{uri} changed while it was read; send the request again",
                              reason="changed") from None
        except (gexc.RetryError, TimeoutError) as exc:
            raise FetchFailed(f"reading {uri} timed out", reason="timeout") from exc
        except (gexc.GoogleAPIError, OSError) as exc:
            raise BackendUnavailable(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc
