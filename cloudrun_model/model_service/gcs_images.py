"""The Cloud Storage adapter: reads the uploaded image a prediction names."""

from __future__ import annotations

import urllib3
from google.api_core import exceptions as gexc
from inference_contract import billable_operations as billed

from .client_internals import DataCorruption, image_fetcher
from .errors import ImageMissing, InvalidEnvelope, TransientError


class GcsImageReader:
    """Reads an uploaded image, retrying the client's transient answers for at most timeout_seconds.

    The read itself is client_internals' (the client's private API unless switched
    off); pool_size is how many connections it keeps, one per request thread.
    """

    def __init__(self, client, timeout_seconds: float, pool_size: int = 64,
                 use_private_api: bool = True) -> None:
        self._fetcher = image_fetcher(client, timeout_seconds, pool_size, use_private_api)

    def read(self, uri: str) -> bytes:
        if not uri.startswith("gs://") or "/" not in uri[5:]:
            raise InvalidEnvelope(f"image_uri must be gs://bucket/object, got {uri!r}")
        bucket, _, name = uri[5:].partition("/")
        billed.count(billed.STORAGE_CLASS_B)  # one object get
        try:
            return self._fetcher.fetch(bucket, name)
        except gexc.NotFound:
            raise ImageMissing(f"the uploaded image {uri} no longer exists") from None
        except (gexc.GoogleAPIError, urllib3.exceptions.HTTPError, OSError, DataCorruption) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc
