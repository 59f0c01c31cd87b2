"""What a model service does with one shard of a bulk job, independent of HTTP (app.py's /jobs).

Claim the shard (a lease the LeaseKeeper renews), read its images in parallel, run them through
the batcher's low-priority lane, write the shard's results object once (if_generation_match=0),
record it on the shard and its job, and, for the last shard, write summary.json and finalize the
job. An image that cannot be read or decoded is its own line's error; a transient fault gives
the shard back and answers 503, so Pub/Sub (or the reconciler) delivers it again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from inference_contract import jobs
from inference_contract.job_messages import ShardMessage

from .batcher import MicroBatcher
from .errors import InvalidEnvelope, ModelNotReady, PredictionFailure, TransientError
from .handler import LeaseKeeper
from .job_storage import JobStorage, OutputRefused
from .job_store import FirestoreShardStore

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ShardLeases:
    """The LeaseKeeper's store interface for shards: renew(shard id, token, lease, now)."""

    def __init__(self, store: FirestoreShardStore) -> None:
        self._store = store

    def renew(self, shard_id: str, lease_token: str, lease_seconds: float, now: datetime) -> bool:
        return self._store.renew(shard_id, lease_token, lease_seconds, now)


class ShardHandler:
    def __init__(self, model_name: str, model, batcher: MicroBatcher, store: FirestoreShardStore,
                 storage: JobStorage, notifier, lease_seconds: float, read_threads: int = 16,
                 model_ready_wait_seconds: float = 0.0, clock: Callable[[], datetime] = utcnow) -> None:
        self._model_name = model_name
        self._model = model
        self._batcher = batcher
        self._store = store
        self._storage = storage
        self._notifier = notifier
        self._lease_seconds = lease_seconds
        self._model_ready_wait = model_ready_wait_seconds
        self._clock = clock
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="job-reader")
        self.leases = LeaseKeeper(ShardLeases(store), lease_seconds, clock)

    def handle(self, message: ShardMessage, message_id: str | None = None) -> str:
        """Run one shard to its recorded end. Returns the outcome for logs."""
        if message.model != self._model_name:
            raise InvalidEnvelope(f"shard is for model {message.model!r}; "
                                  f"this service serves {self._model_name!r}")
        if not self._model.wait_ready(self._model_ready_wait):
            raise ModelNotReady("the model is still loading")
        context = {"job_id": message.job_id, "shard": message.shard, "model": self._model_name,
                   "message_id": message_id}
        version = self._model.info.version
        token = uuid.uuid4().hex
        try:
            claim = self._store.claim(message.job_id, message.shard, version, self._lease_seconds,
                                      self._clock(), token)
        except jobs.UnknownJob:
            log.warning("message for an unknown job or shard acknowledged", extra=context)
            return "unknown"
        if claim.action == jobs.FINISHED:
            self._finalize_if_complete(claim.job, context)
            return "duplicate"
        if claim.action == jobs.CANCEL:
            self._finalize_if_complete(self._skip(claim, context), context)
            return "cancelled"
        started = time.monotonic()
        uri = jobs.results_uri(claim.job["output"], message.job_id, message.shard)
        with self.leases.hold(claim.shard["id"], token):
            try:
                counts, error = self._results(uri, claim.shard["inputs"], version)
            except Exception:
                self._release(message, token, context)
                raise
        job = self._store.finish(message.job_id, message.shard, self._clock(),
                                 succeeded=counts[jobs.LINE_SUCCEEDED],
                                 failed=counts[jobs.LINE_FAILED], model_version=version,
                                 redeliver_after=jobs.FINALIZE_WITHIN, error=error)
        log.info("shard finished", extra={**context, "images": len(claim.shard["inputs"]),
                                          "succeeded": counts[jobs.LINE_SUCCEEDED],
                                          "failed": counts[jobs.LINE_FAILED], "error": error,
                                          "seconds": round(time.monotonic() - started, 3)})
        self._finalize_if_complete(job, context)
        return "failed" if error else "succeeded"

    def _release(self, message: ShardMessage, token: str, context: dict) -> None:
        try:
            self._store.release(message.job_id, message.shard, token, self._lease_seconds, self._clock())
        except Exception:  # the lease then expires on its own
            log.exception("could not release a shard after a transient fault", extra=context)

    def _results(self, uri: str, inputs: list[str], version: int) -> tuple[dict, tuple[str, str] | None]:
        """The shard's line counts: from its results object if a delivery wrote it already, else
        from running its images and writing the object (once, whoever else tries)."""
        existing = self._storage.read(uri)
        if existing is not None:
            return jobs.line_counts(existing), None
        data = jobs.encode_lines(self._lines(inputs, version))
        try:
            written = self._storage.write_once(uri, data)
        except OutputRefused as exc:
            return {jobs.LINE_SUCCEEDED: 0, jobs.LINE_FAILED: 0}, ("output_not_writable", str(exc))
        if not written:  # another delivery wrote it first: its lines are the shard's
            data = self._storage.read(uri) or data
        return jobs.line_counts(data), None

    def _lines(self, inputs: list[str], version: int) -> list[dict]:
        """One line per input, in order. Images are read in parallel and each goes to the batcher's
        bulk lane as soon as it is read."""
        predictions: list[Future | PredictionFailure] = [None] * len(inputs)  # type: ignore[list-item]
        reads = [self._readers.submit(self._storage.read_image, uri) for uri in inputs]
        for index, read in enumerate(reads):
            try:
                predictions[index] = self._batcher.submit(read.result(), bulk=True)
            except PredictionFailure as failure:
                predictions[index] = failure
            except Exception:
                for other in reads:
                    other.cancel()
                raise
        futures = [p for p in predictions if isinstance(p, Future)]
        inferred = iter(self._batcher.wait_each(futures))
        lines = []
        for uri, prediction in zip(inputs, predictions, strict=True):
            outcome = next(inferred) if isinstance(prediction, Future) else prediction
            if isinstance(outcome, Exception) and not isinstance(outcome, PredictionFailure):
                raise TransientError(f"the model failed a batch: {type(outcome).__name__}") from outcome
            result = outcome if isinstance(outcome, PredictionFailure) else outcome.result
            if isinstance(result, PredictionFailure):
                lines.append(jobs.failed_line(uri, result.code, result.message, version))
            else:
                lines.append(jobs.succeeded_line(uri, result, version))
        return lines

    def _skip(self, claim: jobs.ShardClaim, context: dict) -> dict:
        """A shard of a job being cancelled: recorded from its results object if an earlier delivery
        wrote it before dying, else skipped. The job as it is after."""
        job_id, number = claim.shard["job_id"], claim.shard["shard"]
        if int(claim.shard.get("attempts") or 0) > 0:
            existing = self._storage.read(jobs.results_uri(claim.job["output"], job_id, number))
            if existing is not None:
                counts = jobs.line_counts(existing)
                return self._store.finish(job_id, number, self._clock(),
                                          succeeded=counts[jobs.LINE_SUCCEEDED],
                                          failed=counts[jobs.LINE_FAILED],
                                          model_version=claim.shard.get("model_version"),
                                          redeliver_after=jobs.FINALIZE_WITHIN)
        log.info("shard skipped: its job is being cancelled", extra=context)
        return self._store.skip(job_id, number, self._clock(), jobs.FINALIZE_WITHIN)

    def _finalize_if_complete(self, job: dict | None, context: dict) -> None:
        """For the delivery that recorded the last shard (or one the reconciler sent): summary.json,
        written last, then the job's final status, then its callback."""
        if not jobs.needs_finalizing(job):
            return
        now = self._clock()
        try:
            self._storage.write_once(jobs.summary_uri(job["output"], job["id"]),
                                     (jobs.encode_lines([jobs.summary(job, now)])), "application/json")
        except OutputRefused:
            log.warning("could not write a job's summary", extra=context)
        final = self._store.finalize(job["id"], now)
        if final is None:
            return
        log.info("job finished", extra={**context, "status": final["status"], **jobs.counts(final)})
        if final.get("callback_url"):
            self._notifier.notify(final["callback_url"], jobs.public_job_view(final))
