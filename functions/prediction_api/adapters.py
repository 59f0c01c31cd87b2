"""One small adapter per GCP service the API uses: Storage, Firestore, Pub/Sub.

Each adapter turns the client library's failures into BackendUnavailable, so the
rest of the API never sees a google.api_core exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter
from inference_contract import billable_operations as billed
from inference_contract.messages import PredictionMessage
from inference_contract.naming import topic_name
from inference_contract.predictions import QUEUED

from .errors import BackendUnavailable

# GET /v1/predictions: a key's predictions (LISTING_OWNER), optionally filtered by each of
# LISTING_FILTERS, newest first. Every combination has its composite index in
# terraform/modules/firestore (tests/terraform/test_listing_indexes.py).
LISTING_OWNER = "api_key_id"
LISTING_FILTERS = ("model", "status")
LISTING_ORDER = "created_at"


def _unavailable(service: str, exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"{service} is unavailable: {type(exc).__name__}")


# The client retries a contended transaction at once, MAX_ATTEMPTS (5) times, then gives up with
# a ValueError. On a document another unit keeps writing (a running job's counts) all five can
# abort; a few more rounds after short pauses let a user's cancel through instead of a 503.
CONTENDED_PAUSES_SECONDS = (0.05, 0.2, 0.5)


def run_transaction(client, run: Callable):
    """run (a @firestore.transactional function) in a new transaction of client's; again after each
    pause while the client gives up on contention. BackendUnavailable when it still does, or when
    Firestore fails; what run raises otherwise comes out unchanged."""
    pauses = iter(CONTENDED_PAUSES_SECONDS)
    while True:
        try:
            return run(client.transaction())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        except ValueError as exc:  # the client's own "Failed to commit transaction in 5 attempts."
            if not str(exc).startswith("Failed to commit transaction"):
                raise
            pause = next(pauses, None)
            if pause is None:
                raise _unavailable("Firestore", exc) from exc
            time.sleep(pause)


def _query_results(snapshots) -> list[dict]:
    """A query's documents, counted as Firestore bills them: one read each, and one for a
    query that returns none."""
    documents = [snapshot.to_dict() for snapshot in snapshots]
    billed.count(billed.FIRESTORE_READ, max(1, len(documents)))
    return documents


class GcsUploadStore:
    """Writes uploaded image bytes to the uploads bucket."""

    def __init__(self, client, bucket: str) -> None:
        self._bucket = client.bucket(bucket)
        self._bucket_name = bucket

    def uri(self, object_name: str) -> str:
        return f"gs://{self._bucket_name}/{object_name}"

    def put(self, object_name: str, data: bytes, content_type: str) -> str:
        billed.count(billed.STORAGE_CLASS_A)  # an object insert
        try:
            self._bucket.blob(object_name).upload_from_string(data, content_type=content_type)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Cloud Storage", exc) from exc
        return self.uri(object_name)



class FirestorePredictionStore:
    """Prediction documents, and the model versions the model services report."""

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)

    def create(self, document: dict) -> str:
        """Create the document; the update time Firestore gave it (RFC 3339, nanoseconds)."""
        billed.count(billed.FIRESTORE_WRITE)
        try:
            result = self._predictions.document(document["id"]).create(document)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return result.update_time.rfc3339()

    def delete(self, prediction_id: str) -> None:
        billed.count(billed.FIRESTORE_DELETE)
        self._predictions.document(prediction_id).delete()

    def get(self, prediction_id: str) -> dict | None:
        try:
            snapshot = self._predictions.document(prediction_id).get()
            billed.count(billed.FIRESTORE_READ)  # a missing document is billed as one read too
        except (gexc.InvalidArgument, ValueError):
            # An id Firestore cannot hold (`__name__`, `..`, over 1500 bytes) names no prediction.
            return None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def watch(self, prediction_id: str, timeout: float,
              settled: Callable[[dict | None], bool]) -> dict | None:
        """The document as a listener to it sees it (None: there is none), held until
        settled(document) or timeout seconds pass; the latest seen.

        The listener's first snapshot is the long poll's read of the document: a separate
        get before it would be billed one read more per long poll. One listener per waiter:
        a shared query listener (completed since it started) made the Firestore emulator run
        out of direct memory under the benchmark's load, re-sending the growing result set,
        so it was taken out.
        """
        done = threading.Event()
        latest: dict[str, dict | None] = {}

        def on_snapshot(snapshots, _changes, _read_time) -> None:
            # A listener is billed a read for its first snapshot and for each change it receives.
            billed.count(billed.FIRESTORE_READ, max(1, len(snapshots)))
            for snapshot in snapshots:
                latest["document"] = snapshot.to_dict() if snapshot.exists else None
                if settled(latest["document"]):
                    done.set()

        try:
            watch = self._predictions.document(prediction_id).on_snapshot(on_snapshot)
        except (gexc.InvalidArgument, ValueError):
            return None  # an id Firestore cannot hold names no prediction
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        try:
            done.wait(timeout)
        finally:
            # Closed before the answer, though closing takes 0.65-1 ms: closed in the background
            # instead, a write to the same document from this process while it closed failed on
            # the Firestore emulator with CANCELLED (2 of 300), which a client would see as a 503.
            watch.unsubscribe()
        # No snapshot at all in the time (a slow listener): read it once.
        return latest["document"] if "document" in latest else self.get(prediction_id)

    def transact(self, prediction_id: str, decide):
        """Run decide(document or None) -> (update or None, value) in a transaction; return value
        (what decide raises comes out unchanged)."""
        from google.cloud import firestore

        reference = self._predictions.document(prediction_id)

        @firestore.transactional
        def run(transaction):
            snapshot = reference.get(transaction=transaction)
            billed.count(billed.FIRESTORE_READ)  # again on each retry, as each retry reads again
            update, value = decide(snapshot.to_dict() if snapshot.exists else None)
            if update:
                billed.count(billed.FIRESTORE_WRITE)
                transaction.update(reference, update)
            return value

        return run_transaction(self._client, run)

    def overdue(self, now, limit: int) -> list[dict]:
        """Predictions whose reconcile_at has passed, oldest first (a single-field index)."""
        try:
            query = (self._predictions.where(filter=FieldFilter("reconcile_at", "<=", now))
                     .order_by("reconcile_at").limit(limit))
            return _query_results(query.stream())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def list_owned(self, api_key_id, model, status, limit: int, after) -> list[dict]:
        """A key's predictions, newest first, after the cursor (created_at, id).

        Each combination of filters has its composite index (api_key_id[, model][, status],
        created_at descending), declared in terraform/modules/firestore. api_key_id None (API
        keys off) lists the predictions made without a key: all of them then.
        """
        query = self._predictions.where(filter=FieldFilter(LISTING_OWNER, "==", api_key_id))
        for field, value in zip(LISTING_FILTERS, (model, status), strict=True):
            if value is not None:
                query = query.where(filter=FieldFilter(field, "==", value))
        query = (query.order_by(LISTING_ORDER, direction="DESCENDING")
                 .order_by("__name__", direction="DESCENDING"))
        if after is not None:
            query = query.start_after({LISTING_ORDER: after[0], "__name__": after[1]})
        try:
            return _query_results(query.limit(limit).stream())
        except (gexc.InvalidArgument, ValueError):
            return []  # a cursor id Firestore cannot hold names no prediction
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def oldest_queued(self) -> dict | None:
        """The queued prediction accepted first (composite index status, created_at)."""
        try:
            query = (self._predictions.where(filter=FieldFilter("status", "==", QUEUED))
                     .order_by("created_at").limit(1))
            return next(iter(_query_results(query.stream())), None)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def model_versions(self) -> list[dict]:
        try:
            return _query_results(self._versions.stream())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class FirestoreKeyStore:
    """API key records (hashes, never keys) in the api_keys collection, by key id."""

    def __init__(self, client, collection: str = "api_keys") -> None:
        self._keys = client.collection(collection)

    def get(self, key_id: str) -> dict | None:
        billed.count(billed.FIRESTORE_READ)
        try:
            snapshot = self._keys.document(key_id).get()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def put(self, record: dict) -> None:
        billed.count(billed.FIRESTORE_WRITE)
        try:
            self._keys.document(record["id"]).set(record)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def all(self) -> list[dict]:
        try:
            return _query_results(self._keys.stream())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class FirestoreIdempotencyStore:
    """Idempotency-Key records, one document each; Firestore's TTL policy on expire_at deletes them."""

    def __init__(self, client, collection: str = "idempotency_keys") -> None:
        self._records = client.collection(collection)

    def get(self, record_id: str) -> dict | None:
        billed.count(billed.FIRESTORE_READ)
        try:
            snapshot = self._records.document(record_id).get()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def create(self, record_id: str, record: dict) -> bool:
        """Store record unless one exists; False if it did (create is atomic)."""
        billed.count(billed.FIRESTORE_WRITE)
        try:
            self._records.document(record_id).create(record)
        except gexc.AlreadyExists:
            return False
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return True

    def set(self, record_id: str, record: dict) -> None:
        billed.count(billed.FIRESTORE_WRITE)
        try:
            self._records.document(record_id).set(record)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def delete(self, record_id: str) -> None:
        billed.count(billed.FIRESTORE_DELETE)
        try:
            self._records.document(record_id).delete()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class PubSubPublisher:
    """Publishes prediction requests to the topic of their model."""

    def __init__(self, client, project: str, timeout: float = 30.0) -> None:
        self._client = client
        self._project = project
        self._timeout = timeout

    def publish(self, message: PredictionMessage) -> str:
        topic = self._client.topic_path(self._project, topic_name(message.model))
        data, attributes = message.encode()
        billed.count_publish(data, attributes)
        try:
            return self._client.publish(topic, data, **attributes).result(timeout=self._timeout)
        except Exception as exc:  # publish futures raise api_core and concurrent errors alike
            raise _unavailable("Pub/Sub", exc) from exc
