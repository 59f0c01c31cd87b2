"""One adapter per outside service: Storage (images), Firestore (predictions), HTTP callbacks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from google.api_core import exceptions as gexc

from .errors import ImageMissing, InvalidEnvelope, TransientError
from .transitions import PredictionRunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackResult:
    delivered: bool
    error: str | None = None

class GcsImageReader:
    def __init__(self, client, timeout_seconds: float) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._client = client
        self._timeout = timeout_seconds
        # Bound the client's own retries: past this, Pub/Sub's redelivery takes over.
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)

    def read(self, uri: str) -> bytes:
        if not uri.startswith("gs://") or "/" not in uri[5:]:
            raise InvalidEnvelope(f"image_uri must be gs://bucket/object, got {uri!r}")
        bucket, _, name = uri[5:].partition("/")
        try:
            return self._client.bucket(bucket).blob(name).download_as_bytes(
                timeout=self._timeout, retry=self._retry)
        except gexc.NotFound:
            raise ImageMissing(f"the uploaded image {uri} no longer exists") from None
        except (gexc.GoogleAPIError, requests.RequestException, OSError) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc


class FirestoreRunStore(PredictionRunStore):
    """Prediction documents in Firestore, each transition an atomic read-modify-write."""

    MAX_CONFLICTS = 5

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)

    def _transact(self, prediction_id: str, decide):
        """Run decide(document or None) -> (update or None, value) atomically; return value.

        Optimistic, on one document: read it, then write only if it is unchanged
        since (a precondition on its update time), else decide again. That is
        what a transaction does here, in two RPCs instead of three; the push
        path makes two of these per image.
        """
        reference = self._predictions.document(prediction_id)
        try:
            for _ in range(self.MAX_CONFLICTS):
                snapshot = reference.get()
                update, value = decide(snapshot.to_dict() if snapshot.exists else None)
                if not update:
                    return value
                try:
                    reference.update(update, option=self._client.write_option(
                        last_update_time=snapshot.update_time))
                    return value
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue  # changed (or deleted) since it was read: decide on the new state
        except (gexc.GoogleAPIError, OSError) as exc:
            raise TransientError(f"Firestore is unavailable: {type(exc).__name__}") from exc
        raise TransientError(f"prediction {prediction_id} kept changing; {self.MAX_CONFLICTS} writes conflicted")

    def register_version(self, description: dict) -> None:
        doc_id = f"{description['model']}-v{description['version']}"
        self._versions.document(doc_id).set(description, merge=True)


class HttpCallbackNotifier:
    """POSTs the final document to the client's callback URL, once per call.

    A failed attempt is recorded on the document and retried later by the
    reconciler, so one slow receiver never holds a push request for long.
    `webhook-id` is the prediction id on every attempt, so a receiver can drop
    a repeat (Standard Webhooks' headers).
    """

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._session = requests.Session()

    def notify(self, url: str, document: dict) -> CallbackResult:
        headers = {"webhook-id": document["id"], "webhook-timestamp": str(int(time.time()))}
        context = {"prediction_id": document["id"]}
        try:
            response = self._session.post(url, json=document, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("callback failed", extra={**context, "error": str(exc)})
            return CallbackResult(False, f"{type(exc).__name__}: {exc}"[:300])
        log.info("callback sent", extra={**context, "status_code": response.status_code})
        if 200 <= response.status_code < 300:
            return CallbackResult(True)
        return CallbackResult(False, f"the receiver answered {response.status_code}")
