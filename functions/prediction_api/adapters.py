"""One small adapter per GCP service the API uses: Storage, Firestore, Pub/Sub.

Each adapter turns the client library's failures into BackendUnavailable, so the
rest of the API never sees a google.api_core exception.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from .errors import BackendUnavailable
from .recovery import FINAL_STATUSES



def _unavailable(service: str, exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"{service} is unavailable: {type(exc).__name__}")


class GcsUploadStore:
    """Writes uploaded image bytes to the uploads bucket."""

    def __init__(self, client, bucket: str) -> None:
        self._bucket = client.bucket(bucket)
        self._bucket_name = bucket

    def put(self, object_name: str, data: bytes, content_type: str) -> str:
        try:
            self._bucket.blob(object_name).upload_from_string(data, content_type=content_type)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Cloud Storage", exc) from exc
        return f"gs://{self._bucket_name}/{object_name}"



class CompletionWatcher:
    """One Firestore listener per process that wakes every `?wait=` long poll.

    A listener per waiter costs a gRPC stream and a consumer thread each; here
    one query listener (predictions completed since shortly before it started)
    serves all waiters of the process. It starts with the first waiter, is
    renewed every RENEW_AFTER (the listener keeps the documents it matched in
    memory), and stops once nobody has waited for IDLE_AFTER.
    """

    RENEW_AFTER = 600.0
    IDLE_AFTER = 60.0
    # Completions this much older than the listener's start are still delivered,
    # so a clock difference between this process and Firestore loses nothing.
    OVERLAP = timedelta(seconds=30)

    def __init__(self, predictions) -> None:
        self._predictions = predictions
        self._lock = threading.Lock()
        self._waiters: dict[str, list[tuple[threading.Event, dict]]] = {}
        self._watch = None
        self._started = 0.0
        self._last_waiter = 0.0
        self._stopper_running = False

    def wait(self, prediction_id: str, timeout: float, read: Callable[[], dict | None]) -> dict | None:
        event, box = threading.Event(), {}
        with self._lock:
            self._waiters.setdefault(prediction_id, []).append((event, box))
            self._ensure_listening()
        try:
            # Read once more after registering: a completion delivered just before is not missed.
            document = read()
            if document is None or document.get("status") in FINAL_STATUSES:
                return document
            event.wait(timeout)
            return box.get("document") or read()
        finally:
            with self._lock:
                waiters = self._waiters.get(prediction_id, [])
                if (event, box) in waiters:
                    waiters.remove((event, box))
                if not waiters:
                    self._waiters.pop(prediction_id, None)
                self._last_waiter = time.monotonic()

    def _ensure_listening(self) -> None:
        now = time.monotonic()
        if self._watch is not None and now - self._started < self.RENEW_AFTER:
            return
        old = self._watch
        since = datetime.now(timezone.utc) - self.OVERLAP
        try:
            self._watch = self._predictions.where(filter=FieldFilter("completed_at", ">=", since)) \
                .on_snapshot(self._on_snapshot)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        self._started = now
        if old is not None:  # the new one covers from before the old one's end
            threading.Thread(target=old.unsubscribe, daemon=True).start()
        if not self._stopper_running:
            self._stopper_running = True
            threading.Thread(target=self._stop_when_idle, name="completion-watcher-idle", daemon=True).start()

    def _on_snapshot(self, _snapshots, changes, _read_time) -> None:
        for change in changes:
            document = change.document.to_dict() or {}
            if document.get("status") not in FINAL_STATUSES:
                continue
            with self._lock:
                for event, box in self._waiters.get(change.document.id, []):
                    box["document"] = document
                    event.set()

    def _stop_when_idle(self) -> None:
        while True:
            time.sleep(self.IDLE_AFTER / 4)
            with self._lock:
                if self._waiters or time.monotonic() - self._last_waiter < self.IDLE_AFTER:
                    continue
                watch, self._watch = self._watch, None
                self._stopper_running = False
            if watch is not None:
                watch.unsubscribe()
            return


class FirestorePredictionStore:
    """Prediction documents, and the model versions the model services report."""

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)
        self._completions = CompletionWatcher(self._predictions)

    def create(self, document: dict) -> None:
        try:
            self._predictions.document(document["id"]).create(document)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def delete(self, prediction_id: str) -> None:
        self._predictions.document(prediction_id).delete()

    def get(self, prediction_id: str) -> dict | None:
        try:
            snapshot = self._predictions.document(prediction_id).get()
        except (gexc.InvalidArgument, ValueError):
            # An id Firestore cannot hold (`__name__`, `..`, over 1500 bytes) names no prediction.
            return None
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def wait_until_final(self, prediction_id: str, timeout: float,
                         changed_from: str | None = None) -> dict | None:
        """Block until the document is final (or its status is no longer changed_from,
        when given) or time is up.

        Waiting for a final status, the common case, costs no listener of its own: one
        shared listener wakes every such waiter. Waiting for any change (the web page's
        until=change) needs to see `running`, which that listener does not carry, so it
        listens to its document.
        """
        if changed_from is None:
            return self._completions.wait(prediction_id, timeout, lambda: self.get(prediction_id))
        changed = threading.Event()
        latest: dict[str, dict] = {}

        def on_snapshot(snapshots, _changes, _read_time) -> None:
            for snapshot in snapshots:
                if snapshot.exists:
                    latest["document"] = snapshot.to_dict()
                    status = latest["document"].get("status")
                    if status in FINAL_STATUSES or status != changed_from:
                        changed.set()

        try:
            watch = self._predictions.document(prediction_id).on_snapshot(on_snapshot)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        try:
            changed.wait(timeout)
        finally:
            watch.unsubscribe()
        return latest.get("document") or self.get(prediction_id)

    def transact(self, prediction_id: str, decide) -> str:
        """Run decide(document or None) -> (update or None, action) in a transaction; return action."""
        from google.cloud import firestore

        reference = self._predictions.document(prediction_id)

        @firestore.transactional
        def run(transaction) -> str:
            snapshot = reference.get(transaction=transaction)
            update, action = decide(snapshot.to_dict() if snapshot.exists else None)
            if update:
                transaction.update(reference, update)
            return action

        try:
            return run(self._client.transaction())
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def overdue(self, now, limit: int) -> list[dict]:
        """Predictions whose reconcile_at has passed, oldest first (a single-field index)."""
        try:
            query = (self._predictions.where(filter=FieldFilter("reconcile_at", "<=", now))
                     .order_by("reconcile_at").limit(limit))
            return [snapshot.to_dict() for snapshot in query.stream()]
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def oldest_queued(self) -> dict | None:
        """The queued prediction accepted first (composite index status, created_at)."""
        try:
            query = (self._predictions.where(filter=FieldFilter("status", "==", "queued"))
                     .order_by("created_at").limit(1))
            return next((snapshot.to_dict() for snapshot in query.stream()), None)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def model_versions(self) -> list[dict]:
        try:
            return [snapshot.to_dict() for snapshot in self._versions.stream()]
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class FirestoreKeyStore:
    """API key records (hashes, never keys) in the api_keys collection, by key id."""

    def __init__(self, client, collection: str = "api_keys") -> None:
        self._keys = client.collection(collection)

    def get(self, key_id: str) -> dict | None:
        try:
            snapshot = self._keys.document(key_id).get()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def put(self, record: dict) -> None:
        try:
            self._keys.document(record["id"]).set(record)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def all(self) -> list[dict]:
        try:
            return [snapshot.to_dict() for snapshot in self._keys.stream()]
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class FirestoreIdempotencyStore:
    """Idempotency-Key records, one document each; Firestore's TTL policy on expire_at deletes them."""

    def __init__(self, client, collection: str = "idempotency_keys") -> None:
        self._records = client.collection(collection)

    def get(self, record_id: str) -> dict | None:
        try:
            snapshot = self._records.document(record_id).get()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return snapshot.to_dict() if snapshot.exists else None

    def create(self, record_id: str, record: dict) -> bool:
        """Store record unless one exists; False if it did (create is atomic)."""
        try:
            self._records.document(record_id).create(record)
        except gexc.AlreadyExists:
            return False
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc
        return True

    def set(self, record_id: str, record: dict) -> None:
        try:
            self._records.document(record_id).set(record)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc

    def delete(self, record_id: str) -> None:
        try:
            self._records.document(record_id).delete()
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable("Firestore", exc) from exc


class PubSubPublisher:
    """Publishes prediction requests to the topic of their model."""

    def __init__(self, client, project: str, topic_prefix: str = "predictions-",
                 timeout: float = 30.0) -> None:
        self._client = client
        self._project = project
        self._prefix = topic_prefix
        self._timeout = timeout

    def publish(self, model: str, payload: dict, attributes: dict[str, str]) -> str:
        topic = self._client.topic_path(self._project, f"{self._prefix}{model}")
        data = json.dumps(payload).encode()
        try:
            return self._client.publish(topic, data, **attributes).result(timeout=self._timeout)
        except Exception as exc:  # publish futures raise api_core and concurrent errors alike
            raise _unavailable("Pub/Sub", exc) from exc
