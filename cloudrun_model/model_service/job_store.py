"""The Firestore adapter of a model service's bulk job shards: each transition of
inference_contract.jobs run in a transaction over the shard and its job, every read and write
counted as Firestore bills it.

A shard is a few transitions (claim, a lease renewal or two, finish) for JOB_SHARD_SIZE
images, so the public client API and its transactions are used here: the grouped,
private-API path of prediction documents (firestore_runs.py) is for one document per image.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from inference_contract import billable_operations as ops
from inference_contract import jobs
from inference_contract.jobs import JOBS_COLLECTION, SHARDS_COLLECTION, ShardClaim

from .errors import TransientError


class FirestoreShardStore:
    def __init__(self, client) -> None:
        self._client = client
        self._jobs = client.collection(JOBS_COLLECTION)
        self._shards = client.collection(SHARDS_COLLECTION)

    def _transact(self, job_id: str, shard_id: str | None, decide):
        """decide(shard or None, job or None) -> (shard update, job update, value), atomically."""
        from google.cloud import firestore

        job_ref = self._jobs.document(job_id)
        shard_ref = self._shards.document(shard_id) if shard_id else None

        @firestore.transactional
        def run(transaction):
            shard = None
            if shard_ref is not None:
                snapshot = shard_ref.get(transaction=transaction)
                shard = snapshot.to_dict() if snapshot.exists else None
            snapshot = job_ref.get(transaction=transaction)
            job = snapshot.to_dict() if snapshot.exists else None
            ops.count(ops.FIRESTORE_READ, 2 if shard_ref is not None else 1)
            shard_update, job_update, value = decide(shard, job)
            for reference, update in ((shard_ref, shard_update), (job_ref, job_update)):
                if update:
                    transaction.update(reference, update)
                    ops.count(ops.FIRESTORE_WRITE)
            return value

        return _committed(run, self._client)

    def claim(self, job_id: str, shard: int, model_version: int, lease_seconds: float, now: datetime,
              lease_token: str) -> ShardClaim:
        return self._transact(job_id, jobs.shard_id(job_id, shard), lambda s, j: jobs.claim_shard(
            s, j, now, model_version=model_version, lease=timedelta(seconds=lease_seconds),
            lease_token=lease_token))

    def renew(self, shard_id: str, lease_token: str, lease_seconds: float, now: datetime) -> bool:
        """The LeaseKeeper's renewal of a running shard's lease (the shard document only)."""
        from google.cloud import firestore

        reference = self._shards.document(shard_id)

        @firestore.transactional
        def run(transaction):
            snapshot = reference.get(transaction=transaction)
            ops.count(ops.FIRESTORE_READ)
            update = jobs.renew_shard(snapshot.to_dict() if snapshot.exists else None, now,
                                      lease=timedelta(seconds=lease_seconds), lease_token=lease_token)
            if update:
                transaction.update(reference, update)
                ops.count(ops.FIRESTORE_WRITE)
            return update is not None

        return _committed(run, self._client)

    def release(self, job_id: str, shard: int, lease_token: str, lease_seconds: float, now: datetime) -> None:
        self._transact(job_id, jobs.shard_id(job_id, shard), lambda s, j: (jobs.release_shard(
            s, now, lease=timedelta(seconds=lease_seconds), lease_token=lease_token), None, None))

    def finish(self, job_id: str, shard: int, now: datetime, *, succeeded: int, failed: int,
               model_version: int | None, redeliver_after: timedelta,
               error: tuple[str, str] | None = None) -> dict:
        """Record the shard's results; the job as it is after."""
        return self._transact(job_id, jobs.shard_id(job_id, shard), lambda s, j: jobs.finish_shard(
            s, j, now, succeeded=succeeded, failed=failed, model_version=model_version,
            redeliver_after=redeliver_after, error=error))

    def skip(self, job_id: str, shard: int, now: datetime, redeliver_after: timedelta) -> dict:
        """Skip a shard of a job being cancelled; the job as it is after."""
        return self._transact(job_id, jobs.shard_id(job_id, shard), lambda s, j: jobs.cancel_shard(
            s, j, now, redeliver_after=redeliver_after))

    def finalize(self, job_id: str, now: datetime) -> dict | None:
        """The job's final status (summary.json is written already); the final job, None if it was."""
        def decide(_shard, job):
            update = jobs.finalize_job(job, now)
            return None, update, ({**job, **update} if update else None)

        return self._transact(job_id, None, decide)


def _committed(run, client):
    """run(transaction)'s value; TransientError (503: delivered again) when Firestore fails or the
    client gives up on a contended document ("Failed to commit transaction in N attempts")."""
    try:
        return run(client.transaction())
    except (gexc.GoogleAPIError, OSError) as exc:
        raise TransientError(f"Firestore is unavailable: {type(exc).__name__}") from exc
    except ValueError as exc:
        if not str(exc).startswith("Failed to commit transaction"):
            raise
        raise TransientError("Firestore: the job's documents kept changing; try again") from exc
