"""Bulk jobs: a bucket prefix or a manifest of images through one model, results in Cloud Storage.

The job's documents, their first state and every transition, as pure functions of
(document(s), now, ...) returning the fields to update (None: leave it alone), as
lifecycle.py does for predictions; the output layout and the result lines.

A job is one `jobs/{id}` document and one `job_shards/{id}-{shard:05d}` document
per JOB_SHARD_SIZE images (the shard holds its inputs), so that Firestore is
written a few times per shard, never per image. The API writes them
(`new_job`, `new_shard`) and publishes one message per shard on the model's jobs
topic. A model service claims a shard (`claim_shard`, a transaction over the
shard and its job), keeps its lease (`renew_shard`), gives it back after a
transient fault (`release_shard`), writes the shard's results object once (the
write is conditional on the object not existing: whatever is redelivered or
killed, each input appears once), then records it (`finish_shard`, which also
counts it into the job). The delivery that records the last shard finalizes
the job: summary.json first, then `finalize_job`.

Job statuses: queued -> running (first claim) -> succeeded | failed | cancelled.
`failed` is a job one of whose shards could not write its results (the output
became unwritable); an image that cannot be read or decoded is a `failed` line
of a succeeded job. A cancel (`request_cancel`) stops every shard that has not
started: its next delivery skips it (`claim_shard` answers CANCEL, then
`cancel_shard`), shards already running finish, and the job becomes `cancelled`
once every shard has finished or been skipped, so no result line appears after
the job is final.

The reconciler (`reconcile_shard`, `reconcile_job`) does not trust the
transport: a shard not claimed `redeliver_after` after it was queued, or whose
lease expired (its worker died), is published again; a job whose last shard was
recorded but which was not finalized is handed to a model service again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from .lifecycle_errors import LifecycleError
from .predictions import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED

JOBS_COLLECTION = "jobs"
SHARDS_COLLECTION = "job_shards"

JOB_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL_JOB_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})
SHARD_STATUSES = JOB_STATUSES
FINAL_SHARD_STATUSES = FINAL_JOB_STATUSES

# A line's status: the image's prediction succeeded or failed.
LINE_SUCCEEDED = SUCCEEDED
LINE_FAILED = FAILED

SUMMARY_NAME = "summary.json"
RESULTS_CONTENT_TYPE = "application/x-ndjson"

# The delivery that records a job's last shard finalizes it; if it has not within this, the
# reconciler hands the job to another delivery.
FINALIZE_WITHIN = timedelta(seconds=60)

# Republishing a stuck shard backs off from redeliver_after, doubling up to this many times.
MAX_BACKOFF_DOUBLINGS = 4


class UnknownJob(LifecycleError):
    """No document for the job or the shard (never created, or expired)."""


class ShardInProgress(LifecycleError):
    """Another delivery holds a fresh lease on the shard."""


class JobNotCancellable(LifecycleError):
    """The job is final already (succeeded or failed)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


# --- Names and the output layout ---------------------------------------------------------------

def shard_id(job_id: str, shard: int) -> str:
    return f"{job_id}-{shard:05d}"


def job_prefix(output: str, job_id: str) -> str:
    """gs://bucket/prefix/<job_id>/ : everything the job writes is under it."""
    return f"{output.rstrip('/')}/{job_id}/"


def results_uri(output: str, job_id: str, shard: int) -> str:
    return f"{job_prefix(output, job_id)}results-{shard:05d}.jsonl"


def summary_uri(output: str, job_id: str) -> str:
    return f"{job_prefix(output, job_id)}{SUMMARY_NAME}"


def succeeded_line(input_uri: str, result: object, model_version: int) -> dict:
    """One output line: an image the model answered."""
    return {"input": input_uri, "status": LINE_SUCCEEDED, "result": result, "model_version": model_version}


def failed_line(input_uri: str, code: str, message: str, model_version: int | None) -> dict:
    """One output line: an image that could not be predicted (unreadable, gone, undecodable)."""
    return {"input": input_uri, "status": LINE_FAILED, "error": {"code": code, "message": message},
            "model_version": model_version}


def encode_lines(lines: list[dict]) -> bytes:
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def line_counts(data: bytes) -> dict:
    """{"succeeded", "failed"} of a results object as written (what a redelivery records)."""
    counts = {LINE_SUCCEEDED: 0, LINE_FAILED: 0}
    for raw in data.splitlines():
        if raw.strip():
            counts[json.loads(raw)["status"]] += 1
    return counts


# --- The API's documents -----------------------------------------------------------------------

def new_job(*, job_id: str, model: str, now: datetime, expire_at: datetime, input_uri: str, output: str,
            callback_url: str | None, api_key_id: str | None, total: int, shard_count: int,
            shard_size: int) -> dict:
    """The job document of a submit the API has accepted (every check passed)."""
    return {
        "id": job_id, "model": model, "status": QUEUED, "input": input_uri,
        "output": output.rstrip("/") + "/", "callback_url": callback_url, "api_key_id": api_key_id,
        "total": total, "shard_count": shard_count, "shard_size": shard_size,
        "succeeded": 0, "failed": 0, "shards_finished": 0, "shards_failed": 0, "model_versions": [],
        "created_at": now, "started_at": None, "completed_at": None, "cancel_requested_at": None,
        "expire_at": expire_at, "error": None,
        # Set while the job must be finalized and is not yet (see reconcile_job).
        "reconcile_at": None,
    }


def new_shard(*, job_id: str, shard: int, model: str, inputs: list[str], now: datetime,
              expire_at: datetime, redeliver_after: timedelta) -> dict:
    return {
        "id": shard_id(job_id, shard), "job_id": job_id, "shard": shard, "model": model,
        "inputs": list(inputs), "status": QUEUED, "succeeded": 0, "failed": 0, "model_version": None,
        "attempts": 0, "redeliveries": 0, "lease_token": None, "lease_expires_at": None,
        "created_at": now, "started_at": None, "completed_at": None, "expire_at": expire_at,
        "error": None,
        # Overdue from then on unless a model service claims it first: published again.
        "reconcile_at": now + redeliver_after,
    }


def shard_lease_is_fresh(shard: dict, now: datetime) -> bool:
    expiry = shard.get("lease_expires_at")
    return shard.get("status") == RUNNING and expiry is not None and now < expiry


def _job_complete(job: dict) -> bool:
    return int(job.get("shards_finished") or 0) >= int(job.get("shard_count") or 0)


def needs_finalizing(job: dict | None) -> bool:
    """Every shard is finished or skipped and the job is not final yet."""
    return bool(job) and job["status"] not in FINAL_JOB_STATUSES and _job_complete(job)


def final_status(job: dict) -> str:
    if job.get("cancel_requested_at") is not None:
        return CANCELLED
    return FAILED if int(job.get("shards_failed") or 0) else SUCCEEDED


# --- The model service's transitions -----------------------------------------------------------

RUN = "run"          # run the shard's images
FINISHED = "finished"  # the shard is final already: nothing to run (its job may need finalizing)
CANCEL = "cancel"    # the job is being cancelled and the shard has not finished: skip it


@dataclass(frozen=True)
class ShardClaim:
    action: str
    shard: dict
    job: dict


def claim_shard(shard: dict | None, job: dict | None, now: datetime, *, model_version: int,
                lease: timedelta, lease_token: str) -> tuple[dict | None, dict | None, ShardClaim]:
    """(shard update, job update, what to do) for a delivery of the shard.

    Raises UnknownJob without the shard or its job, ShardInProgress while another
    delivery's lease is fresh. A shard of a job being cancelled is not claimed:
    CANCEL asks the caller to record it (cancel_shard, or finish_shard when an
    earlier delivery wrote its results before dying).
    """
    if shard is None or job is None:
        raise UnknownJob("no such job or shard")
    if shard["status"] in FINAL_SHARD_STATUSES:
        return None, None, ShardClaim(FINISHED, shard, job)
    if shard_lease_is_fresh(shard, now):
        raise ShardInProgress(f"shard {shard['id']} is being processed")
    if job.get("cancel_requested_at") is not None or job["status"] in FINAL_JOB_STATUSES:
        return None, None, ShardClaim(CANCEL, shard, job)
    shard_update = {"status": RUNNING, "started_at": shard.get("started_at") or now,
                    "model_version": model_version, "attempts": int(shard.get("attempts") or 0) + 1,
                    "lease_token": lease_token, "lease_expires_at": now + lease, "reconcile_at": now + lease}
    job_update = {"status": RUNNING, "started_at": now} if job["status"] == QUEUED else None
    return shard_update, job_update, ShardClaim(RUN, {**shard, **shard_update}, {**job, **(job_update or {})})


def renew_shard(shard: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    if shard and shard["status"] == RUNNING and shard.get("lease_token") == lease_token:
        return {"lease_expires_at": now + lease, "reconcile_at": now + lease}
    return None


def release_shard(shard: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    """Give the shard back after a transient fault; the redelivery may take it at once."""
    if shard and shard["status"] == RUNNING and shard.get("lease_token") == lease_token:
        return {"status": QUEUED, "lease_token": None, "lease_expires_at": None, "reconcile_at": now + lease}
    return None


def _finish(shard: dict, job: dict, now: datetime, shard_update: dict,
            redeliver_after: timedelta) -> tuple[dict, dict]:
    shard_update = {**shard_update, "completed_at": now, "lease_token": None, "lease_expires_at": None,
                    "reconcile_at": None}
    job_update = {"shards_finished": int(job.get("shards_finished") or 0) + 1}
    if _job_complete({**job, **job_update}):
        # This delivery finalizes the job; if it dies first, the reconciler hands it on.
        job_update["reconcile_at"] = now + redeliver_after
    return shard_update, job_update


def finish_shard(shard: dict | None, job: dict | None, now: datetime, *, succeeded: int, failed: int,
                 model_version: int | None, redeliver_after: timedelta,
                 error: tuple[str, str] | None = None) -> tuple[dict | None, dict | None, dict]:
    """Record the shard's results object (its line counts), or with error (code, message) a shard
    whose results could not be written. Returns (shard update, job update, job after).

    Idempotent: a final shard is left alone. The counts come from the one results
    object, so whichever delivery records it records the same.
    """
    if shard is None or job is None:
        raise UnknownJob("no such job or shard")
    if shard["status"] in FINAL_SHARD_STATUSES:
        return None, None, job
    status = FAILED if error else SUCCEEDED
    shard_update, job_update = _finish(shard, job, now, {
        "status": status, "succeeded": succeeded, "failed": failed, "model_version": model_version,
        "error": {"code": error[0], "message": error[1]} if error else None}, redeliver_after)
    job_update.update(succeeded=int(job.get("succeeded") or 0) + succeeded,
                      failed=int(job.get("failed") or 0) + failed)
    if error:
        job_update["shards_failed"] = int(job.get("shards_failed") or 0) + 1
    versions = list(job.get("model_versions") or [])
    if model_version is not None and model_version not in versions:
        job_update["model_versions"] = sorted([*versions, model_version])
    return shard_update, job_update, {**job, **job_update}


def cancel_shard(shard: dict | None, job: dict | None, now: datetime, *,
                 redeliver_after: timedelta) -> tuple[dict | None, dict | None, dict | None]:
    """Skip a shard of a job being cancelled: (shard update, job update, job after)."""
    if shard is None or job is None:
        raise UnknownJob("no such job or shard")
    if shard["status"] in FINAL_SHARD_STATUSES:
        return None, None, job
    if shard_lease_is_fresh(shard, now):
        raise ShardInProgress(f"shard {shard['id']} is being processed")
    shard_update, job_update = _finish(shard, job, now, {"status": CANCELLED}, redeliver_after)
    return shard_update, job_update, {**job, **job_update}


def finalize_job(job: dict | None, now: datetime) -> dict | None:
    """The job's final status once every shard is finished or skipped (summary.json written first)."""
    if not needs_finalizing(job):
        return None
    return {"status": final_status(job), "completed_at": now, "reconcile_at": None}


def summary(job: dict, now: datetime) -> dict:
    """summary.json, written last under the job's prefix: what the job did."""
    return {
        "job_id": job["id"], "model": job["model"], "status": final_status(job), "input": job["input"],
        "output": job_prefix(job["output"], job["id"]),
        "counts": counts(job), "model_versions": list(job.get("model_versions") or []),
        "shards": {"total": job.get("shard_count"), "failed": job.get("shards_failed") or 0},
        "created_at": _iso(job.get("created_at")), "started_at": _iso(job.get("started_at")),
        "completed_at": _iso(now), "cancel_requested_at": _iso(job.get("cancel_requested_at")),
    }


# --- The API's transitions ---------------------------------------------------------------------

def request_cancel(job: dict | None, now: datetime) -> tuple[dict | None, dict]:
    """Ask a job to stop: shards not yet started never start. (update, job after).

    Idempotent on a job cancelled or being cancelled; JobNotCancellable on one that
    succeeded or failed.
    """
    if job is None:
        raise UnknownJob("no such job")
    if job["status"] == CANCELLED or (job.get("cancel_requested_at") is not None
                                      and job["status"] not in FINAL_JOB_STATUSES):
        return None, job
    if job["status"] in FINAL_JOB_STATUSES:
        raise JobNotCancellable(f"the job is {job['status']}: only a queued or running job can be cancelled",
                                job["status"])
    update = {"cancel_requested_at": now}
    return update, {**job, **update}


REPUBLISH = "republished"
NOT_DUE = "not_due"
NOTHING_LEFT = "nothing_left"
FINALIZE = "finalize"


def reconcile_shard(shard: dict | None, now: datetime, redeliver_after: timedelta) -> tuple[dict | None, str]:
    """(update, action) for a shard the reconciler found overdue: publish it again (queued, or
    running with an expired lease: its worker died), or nothing."""
    if shard is None:
        return None, NOTHING_LEFT
    due = shard.get("reconcile_at")
    if due is None or now < due:
        return None, NOT_DUE
    if shard["status"] in FINAL_SHARD_STATUSES:
        return {"reconcile_at": None}, NOTHING_LEFT
    if shard_lease_is_fresh(shard, now):
        return {"reconcile_at": shard["lease_expires_at"]}, NOT_DUE
    redeliveries = int(shard.get("redeliveries") or 0)
    backoff = redeliver_after * 2 ** min(redeliveries, MAX_BACKOFF_DOUBLINGS)
    return {"redeliveries": redeliveries + 1, "reconcile_at": now + backoff}, REPUBLISH


def reconcile_job(job: dict | None, now: datetime, redeliver_after: timedelta) -> tuple[dict | None, str]:
    """(update, action) for a job found overdue: every shard is recorded but nobody finalized it
    (the finalizing delivery died): FINALIZE asks for one of its shards' messages again, whose
    delivery finds the shard final and the job complete, and finalizes it."""
    if job is None:
        return None, NOTHING_LEFT
    due = job.get("reconcile_at")
    if due is None or now < due:
        return None, NOT_DUE
    if not needs_finalizing(job):
        return {"reconcile_at": None}, NOTHING_LEFT
    return {"reconcile_at": now + redeliver_after}, FINALIZE


# --- What a client sees ------------------------------------------------------------------------

def counts(job: dict) -> dict:
    total = int(job.get("total") or 0)
    succeeded, failed = int(job.get("succeeded") or 0), int(job.get("failed") or 0)
    return {"total": total, "succeeded": succeeded, "failed": failed,
            "pending": max(0, total - succeeded - failed)}


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def public_job_view(job: dict) -> dict:
    """The fields a client sees of a job (GET /v1/jobs/{id}, the listing, the callback)."""
    started, completed = job.get("started_at"), job.get("completed_at")
    run_seconds = (completed - started).total_seconds() if started and completed else None
    done = counts(job)["succeeded"] + counts(job)["failed"]
    return {
        "id": job["id"], "model": job["model"], "status": job["status"], "input": job["input"],
        "output": job_prefix(job["output"], job["id"]), "counts": counts(job),
        "model_versions": list(job.get("model_versions") or []), "error": job.get("error"),
        "created_at": _iso(job.get("created_at")), "started_at": _iso(started),
        "completed_at": _iso(completed), "cancel_requested_at": _iso(job.get("cancel_requested_at")),
        "timings": {
            "queue_ms": round((started - job["created_at"]).total_seconds() * 1000, 1)
            if started and job.get("created_at") else None,
            "run_ms": round(run_seconds * 1000, 1) if run_seconds is not None else None,
            "images_per_second": round(done / run_seconds, 2) if run_seconds else None,
        },
    }
