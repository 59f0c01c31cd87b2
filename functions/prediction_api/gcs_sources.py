"""The Cloud Storage adapter for gs:// images a user names: read with the API's own identity.

In the cloud that identity is the functions' service account (SERVICE_ACCOUNT_EMAIL):
a user grants it roles/storage.objectViewer on their bucket. Locally the client
talks to the Storage emulator (STORAGE_EMULATOR_HOST), which checks no permission.
"""

from __future__ import annotations

import io

from google.api_core import exceptions as gexc
from google.cloud.storage.retry import DEFAULT_RETRY
from inference_contract import billable_operations as billed

from .errors import BackendUnavailable, FetchFailed, ImageAccessDenied, ImageNotFound
from .image_sources import too_large


class _Bounded(io.BytesIO):
    """What a download writes, up to max_bytes: a byte more ends the download as too large."""

    def __init__(self, uri: str, max_bytes: int) -> None:
        super().__init__()
        self._uri, self._max_bytes = uri, max_bytes

    def write(self, data) -> int:
        if self.tell() + len(data) > self._max_bytes:
            raise too_large(self._uri, self._max_bytes)
        return super().write(data)


class GcsImageReader:
    def __init__(self, client, service_account_email: str | None) -> None:
        self._client = client
        self._account = service_account_email

    def read(self, bucket: str, name: str, max_bytes: int, timeout: float) -> bytes:
        uri = f"gs://{bucket}/{name}"
        retry = DEFAULT_RETRY.with_timeout(timeout)  # the client's own retries end with the request's time
        try:
            # One object get (class B), no metadata get before it: the size is checked as the
            # bytes arrive, and the client asks for the generation it started on if it resumes.
            billed.count(billed.STORAGE_CLASS_B)
            received = _Bounded(uri, max_bytes)
            self._client.bucket(bucket).blob(name).download_to_file(received, timeout=timeout, retry=retry)
            return received.getvalue()
        except (gexc.Forbidden, gexc.Unauthorized):
            account = self._account or "the API's service account"
            raise ImageAccessDenied(
                f"{account} may not read {uri}: grant it roles/storage.objectViewer on bucket {bucket}",
                service_account=self._account) from None
        except gexc.NotFound:  # the object or its bucket
            raise ImageNotFound(f"{uri} does not exist") from None
        except gexc.PreconditionFailed:
            raise FetchFailed(f"{uri} changed while it was read; send the request again",
                              reason="changed") from None
        except (gexc.RetryError, TimeoutError) as exc:
            raise FetchFailed(f"reading {uri} timed out", reason="timeout") from exc
        except (gexc.GoogleAPIError, OSError) as exc:
            raise BackendUnavailable(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc
