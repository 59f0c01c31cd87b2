"""One adapter per outside service: Storage (images), Firestore (predictions), HTTP callbacks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
from google.api_core import exceptions as gexc

from .errors import (
    ImageMissing, InvalidEnvelope, PredictionInProgress, TransientError, UnknownPrediction,
)

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"succeeded", "failed"})


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


class FirestorePredictionStore:
    """State transitions of prediction documents, each in a transaction."""

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)

    def _transaction(self, prediction_id: str, decide):
        """Run decide(snapshot) -> (update or None, value) atomically; return value."""
        from google.cloud import firestore

        reference = self._predictions.document(prediction_id)

        @firestore.transactional
        def run(transaction):
            snapshot = reference.get(transaction=transaction)
            update, value = decide(snapshot.to_dict() if snapshot.exists else None)
            if update:
                transaction.update(reference, update)
            return value

        try:
            return run(self._client.transaction())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise TransientError(f"Firestore is unavailable: {type(exc).__name__}") from exc

    def claim(self, prediction_id: str, model_version: int, lease_seconds: int,
              now: datetime) -> dict | None:
        """Mark the prediction running for this delivery.

        Returns the document when this delivery should run it, None when it is
        already final (a redelivery). Raises PredictionInProgress while another
        delivery's lease is fresh.
        """
        def decide(document):
            if document is None:
                raise UnknownPrediction(f"no prediction document {prediction_id}")
            if document["status"] in FINAL_STATUSES:
                return None, None
            started = document.get("started_at")
            if document["status"] == "running" and started and now - started < timedelta(seconds=lease_seconds):
                raise PredictionInProgress(f"prediction {prediction_id} is being processed")
            update = {"status": "running", "started_at": now, "model_version": model_version,
                      "attempts": int(document.get("attempts") or 0) + 1}
            return update, {**document, **update}

        return self._transaction(prediction_id, decide)

    def finish(self, prediction_id: str, update: dict) -> dict:
        """Write a final status unless one is there already; return the final document."""
        def decide(document):
            if document is None:
                raise UnknownPrediction(f"no prediction document {prediction_id}")
            if document["status"] in FINAL_STATUSES:
                return None, document
            return update, {**document, **update}

        return self._transaction(prediction_id, decide)

    def release(self, prediction_id: str, started_at: datetime) -> None:
        """Put a running prediction back to queued, if this delivery still holds it."""
        def decide(document):
            if document and document["status"] == "running" and document.get("started_at") == started_at:
                return {"status": "queued", "started_at": None}, None
            return None, None

        self._transaction(prediction_id, decide)

    def register_version(self, description: dict) -> None:
        doc_id = f"{description['model']}-v{description['version']}"
        self._versions.document(doc_id).set(description, merge=True)


class HttpCallbackNotifier:
    """POSTs the final document to the client's callback URL. Best effort:

    the result is already in Firestore, so a callback that fails is logged, not
    retried through Pub/Sub (which would find the prediction final and stop).
    """

    def __init__(self, timeout_seconds: float, attempts: int = 2) -> None:
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._session = requests.Session()

    def notify(self, url: str, document: dict) -> bool:
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._session.post(url, json=document, timeout=self._timeout)
                if response.status_code < 500:
                    log.info("callback sent", extra={"prediction_id": document.get("id"),
                                                     "status_code": response.status_code})
                    return response.ok
            except requests.RequestException as exc:
                log.warning("callback failed", extra={"prediction_id": document.get("id"),
                                                      "attempt": attempt, "error": str(exc)})
        return False
