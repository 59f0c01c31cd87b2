"""The Cloud Storage (and https) adapter of bulk jobs: read a job's images, write a shard's results
object once, read one back. Every operation counted as Cloud Storage bills it."""

from __future__ import annotations

import urllib3
from google.api_core import exceptions as gexc
from inference_contract import billable_operations as ops
from inference_contract.jobs import RESULTS_CONTENT_TYPE
from inference_contract.pinned_http import REFUSED, pinned_session

from .client_internals import DataCorruption, image_fetcher
from .errors import ImageMissing, PredictionFailure, TransientError


class FetchFailed(PredictionFailure):
    """An https image that could not be fetched (its server's answer, a refused address)."""

    code = "fetch_failed"


class OutputRefused(Exception):
    """The results object may not be written (the bucket is gone, or access was revoked)."""


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


class JobStorage:
    def __init__(self, client, timeout_seconds: float, pool_size: int, use_private_api: bool = True,
                 allow_loopback: bool = False, max_image_bytes: int = 10 << 20) -> None:
        self._client = client
        self._timeout = timeout_seconds
        self._fetcher = image_fetcher(client, timeout_seconds, pool_size, use_private_api)
        self._https = pinned_session(timeout_seconds, timeout_seconds, allow_loopback)
        self._max_image_bytes = max_image_bytes

    def read_image(self, uri: str) -> bytes:
        """The image's bytes; a PredictionFailure for this image alone, TransientError to retry the shard."""
        if uri.startswith("https://"):
            return self._read_https(uri)
        bucket, name = _split(uri)
        try:
            ops.count(ops.STORAGE_CLASS_B)
            return self._fetcher.fetch(bucket, name)
        except gexc.NotFound:
            raise ImageMissing(f"{uri} does not exist") from None
        except (gexc.Forbidden, gexc.Unauthorized):
            raise ImageMissing(f"{uri} may not be read by the model service's account") from None
        except (gexc.GoogleAPIError, urllib3.exceptions.HTTPError, OSError, DataCorruption) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc

    def _read_https(self, uri: str) -> bytes:
        import requests

        try:
            with self._https.get(uri, stream=True, allow_redirects=False, timeout=self._timeout) as response:
                if response.status_code != 200:
                    raise FetchFailed(f"{uri} answered {response.status_code}")
                data = bytearray()
                for chunk in response.iter_content(64 << 10):
                    data += chunk
                    if len(data) > self._max_image_bytes:
                        raise FetchFailed(f"{uri} is over {self._max_image_bytes} bytes")
                return bytes(data)
        except REFUSED as exc:
            raise FetchFailed(f"{uri} is refused: {exc}") from None
        except requests.RequestException as exc:
            raise FetchFailed(f"{uri} could not be fetched: {type(exc).__name__}") from None

    def read(self, uri: str) -> bytes | None:
        """An object's bytes, None if it does not exist."""
        bucket, name = _split(uri)
        try:
            ops.count(ops.STORAGE_CLASS_B)
            return self._client.bucket(bucket).blob(name).download_as_bytes(timeout=self._timeout)
        except gexc.NotFound:
            return None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc

    def write_once(self, uri: str, data: bytes, content_type: str = RESULTS_CONTENT_TYPE) -> bool:
        """Create the object unless it exists (if_generation_match=0): True if this call wrote it.

        The one write that makes each input appear once: a redelivery, or a second delivery
        racing the first, finds the object there and writes nothing.
        """
        bucket, name = _split(uri)
        try:
            ops.count(ops.STORAGE_CLASS_A)
            self._client.bucket(bucket).blob(name).upload_from_string(
                data, content_type=content_type, if_generation_match=0, timeout=self._timeout)
            return True
        except gexc.PreconditionFailed:
            return False
        except (gexc.Forbidden, gexc.Unauthorized, gexc.NotFound) as exc:
            raise OutputRefused(f"{uri} may not be written: {type(exc).__name__}") from None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc
