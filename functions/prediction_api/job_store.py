"""The Firestore adapter of bulk jobs: job and shard documents (inference_contract.jobs), each
operation counted as Firestore bills it (inference_contract.billable_operations)."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter
from inference_contract import billable_operations as ops
from inference_contract.jobs import JOBS_COLLECTION, SHARDS_COLLECTION

from .adapters import run_transaction
from .errors import BackendUnavailable

# GET /v1/jobs: a key's jobs (LISTING_OWNER), optionally by status, newest first. Both
# combinations have their composite index in Terraform.
LISTING_OWNER = "api_key_id"
LISTING_ORDER = "created_at"
# A batch commit takes at most 500 writes.
WRITES_PER_COMMIT = 400


def _unavailable(exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"Firestore is unavailable: {type(exc).__name__}")


def _documents(query) -> list[dict]:
    found = [snapshot.to_dict() for snapshot in query.stream()]
    ops.count(ops.FIRESTORE_READ, max(1, len(found)))  # a query that returns nothing bills one read
    return found


class FirestoreJobStore:
    def __init__(self, client) -> None:
        self._client = client
        self._jobs = client.collection(JOBS_COLLECTION)
        self._shards = client.collection(SHARDS_COLLECTION)

    def create(self, job: dict, shards: list[dict]) -> None:
        """The shards first, the job last: a job that exists has all its shards (a failure
        part-way leaves shards no job names, which the reconciler drops)."""
        try:
            for start in range(0, len(shards), WRITES_PER_COMMIT):
                batch = self._client.batch()
                for shard in shards[start:start + WRITES_PER_COMMIT]:
                    batch.create(self._shards.document(shard["id"]), shard)
                batch.commit()
                ops.count(ops.FIRESTORE_WRITE, len(shards[start:start + WRITES_PER_COMMIT]))
            self._jobs.document(job["id"]).create(job)
            ops.count(ops.FIRESTORE_WRITE)
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    def get(self, job_id: str) -> dict | None:
        try:
            snapshot = self._jobs.document(job_id).get()
        except (gexc.InvalidArgument, ValueError):
            return None  # an id Firestore cannot hold names no job
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        ops.count(ops.FIRESTORE_READ)
        return snapshot.to_dict() if snapshot.exists else None

    def _transact(self, reference, decide):
        from google.cloud import firestore

        @firestore.transactional
        def run(transaction):
            snapshot = reference.get(transaction=transaction)
            ops.count(ops.FIRESTORE_READ)
            update, value = decide(snapshot.to_dict() if snapshot.exists else None)
            if update:
                transaction.update(reference, update)
                ops.count(ops.FIRESTORE_WRITE)
            return value

        return run_transaction(self._client, run)

    def transact_job(self, job_id: str, decide):
        """decide(job or None) -> (update or None, value), atomically; value."""
        return self._transact(self._jobs.document(job_id), decide)

    def transact_shard(self, shard_id: str, decide):
        return self._transact(self._shards.document(shard_id), decide)

    def list_owned(self, api_key_id, status, limit: int, after) -> list[dict]:
        query = self._jobs.where(filter=FieldFilter(LISTING_OWNER, "==", api_key_id))
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status))
        query = (query.order_by(LISTING_ORDER, direction="DESCENDING")
                 .order_by("__name__", direction="DESCENDING"))
        if after is not None:
            query = query.start_after({LISTING_ORDER: after[0], "__name__": after[1]})
        try:
            return _documents(query.limit(limit))
        except (gexc.InvalidArgument, ValueError):
            return []
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc

    def overdue_shards(self, now, limit: int) -> list[dict]:
        return self._overdue(self._shards, now, limit)

    def overdue_jobs(self, now, limit: int) -> list[dict]:
        return self._overdue(self._jobs, now, limit)

    @staticmethod
    def _overdue(collection, now, limit: int) -> list[dict]:
        try:
            return _documents(collection.where(filter=FieldFilter("reconcile_at", "<=", now))
                              .order_by("reconcile_at").limit(limit))
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc


class JobPublisher:
    """Publishes shard messages to their model's jobs topic (the bulk lane)."""

    def __init__(self, client, project: str, timeout: float = 30.0) -> None:
        self._client = client
        self._project = project
        self._timeout = timeout

    def publish_all(self, messages: list) -> None:
        """Every message, published concurrently; BackendUnavailable if any failed."""
        from inference_contract.naming import jobs_topic_name

        futures = []
        try:
            for message in messages:
                data, attributes = message.encode()
                topic = self._client.topic_path(self._project, jobs_topic_name(message.model))
                futures.append(self._client.publish(topic, data, **attributes))
                ops.count_publish(data, attributes)
            for future in futures:
                future.result(timeout=self._timeout)
        except Exception as exc:  # publish futures raise api_core and concurrent errors alike
            raise BackendUnavailable(f"Pub/Sub is unavailable: {type(exc).__name__}") from exc
