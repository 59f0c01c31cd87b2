"""Bulk jobs: accept one (every check before the first write), read, cancel and list a key's own,
and reconcile what the transport lost. The rules are inference_contract.jobs'; the adapters are
job_store.py (Firestore, Pub/Sub) and job_storage.py (Cloud Storage)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from inference_contract import jobs
from inference_contract.job_messages import ShardMessage

from .config import Settings
from .control import decode_page_token, encode_page_token, parse_page_size
from .errors import BackendUnavailable, InvalidRequest, JobNotCancellable, NoImages, NotFound
from .job_inputs import is_manifest, output_prefix, parse_gs, parse_manifest
from .service import valid_prediction_id

log = logging.getLogger(__name__)

JOB_FIELDS = ("input", "output", "callback_url")


class JobService:
    def __init__(self, settings: Settings, store, storage, publisher, clock: Callable[[], datetime],
                 check_callback_url: Callable[[str | None], str | None],
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.settings = settings
        self._store, self._storage, self._publisher = store, storage, publisher
        self._clock, self._check_callback_url, self._new_id = clock, check_callback_url, new_id

    # --- submit ---------------------------------------------------------------------------------

    def inputs(self, body: object) -> tuple[list[str], str, str | None]:
        """(image URIs, output prefix, callback URL) of a submit's body, every check made, nothing
        written but the output's probe."""
        if not isinstance(body, dict):
            raise InvalidRequest('send a JSON object: {"input": "gs://...", "output": "gs://...", '
                                 '"callback_url": optional}')
        unknown = sorted(set(body) - set(JOB_FIELDS))
        if unknown:
            raise InvalidRequest(f"unknown field(s) {', '.join(unknown)[:200]}; a job takes "
                                 f"{', '.join(JOB_FIELDS)}")
        source = parse_gs(body.get("input"), "input")
        output = output_prefix(body.get("output"))
        callback_url = body.get("callback_url")
        if callback_url is not None and not isinstance(callback_url, str):
            raise InvalidRequest("callback_url must be a string")
        callback_url = self._check_callback_url(callback_url or None)
        limit = self.settings.max_job_images
        if is_manifest(source):
            uris = parse_manifest(self._storage.read_manifest(source), source.uri)
            if not uris:
                raise NoImages(f"the manifest {source.uri} names no image")
        else:
            uris = self._storage.list_images(source, limit)
        if len(uris) > limit:
            raise InvalidRequest(f"the input holds more than {limit} images, the most one job may hold "
                                 "(MAX_JOB_IMAGES); split it")
        return uris, output.uri, callback_url

    def submit(self, model: str, body: object, api_key_id: str | None,
               charge: Callable[[int], None] = lambda images: None) -> dict:
        """Check the input, the output (a probe object written and deleted) and the quota
        (charge(images) raises if spent), then write the job and its shards and publish one
        message per shard. A refusal writes nothing."""
        uris, output, callback_url = self.inputs(body)
        job_id = self._new_id()
        self._storage.check_writable(jobs.job_prefix(output, job_id))
        charge(len(uris))
        input_uri = body["input"]
        now = self._clock()
        expire_at = now + timedelta(days=self.settings.prediction_ttl_days)
        redeliver_after = timedelta(seconds=self.settings.redeliver_after_seconds)
        size = self.settings.job_shard_size
        chunks = [uris[start:start + size] for start in range(0, len(uris), size)]
        shards = [jobs.new_shard(job_id=job_id, shard=number, model=model, inputs=chunk, now=now,
                                 expire_at=expire_at, redeliver_after=redeliver_after)
                  for number, chunk in enumerate(chunks)]
        job = jobs.new_job(job_id=job_id, model=model, now=now, expire_at=expire_at, input_uri=input_uri,
                           output=output, callback_url=callback_url, api_key_id=api_key_id,
                           total=len(uris), shard_count=len(shards), shard_size=size)
        self._store.create(job, shards)
        try:
            self._publisher.publish_all([ShardMessage(job_id, number, model)
                                         for number in range(len(shards))])
        except BackendUnavailable:
            # Accepted all the same: every shard is overdue after REDELIVER_AFTER_SECONDS and the
            # reconciler publishes it then.
            log.warning("job accepted but not all its shards were published; the reconciler will",
                        extra={"job_id": job_id, "model": model})
        log.info("job queued", extra={"job_id": job_id, "model": model, "total": len(uris),
                                      "shards": len(shards)})
        return job

    # --- read, cancel, list ---------------------------------------------------------------------

    def _owned(self, job_id: str, api_key_id: str | None) -> dict:
        missing = NotFound(f"no job with id {job_id!r}")
        if not valid_prediction_id(job_id):
            raise missing
        job = self._store.get(job_id)
        if job is None or (api_key_id is not None and job.get("api_key_id") != api_key_id):
            raise missing
        return job

    def view(self, job: dict, with_outputs: bool = True) -> dict:
        body = jobs.public_job_view(job)
        if with_outputs:
            body["outputs"] = self._storage.list_outputs(body["output"])
        return body

    def get(self, job_id: str, api_key_id: str | None) -> dict:
        return self.view(self._owned(job_id, api_key_id))

    def cancel(self, job_id: str, api_key_id: str | None) -> dict:
        self._owned(job_id, api_key_id)
        now = self._clock()
        try:
            job = self._store.transact_job(job_id, lambda document: jobs.request_cancel(document, now))
        except jobs.UnknownJob:
            raise NotFound(f"no job with id {job_id!r}") from None
        except jobs.JobNotCancellable as exc:
            raise JobNotCancellable(exc.message, status=exc.status) from None
        log.info("job cancel requested", extra={"job_id": job_id, "model": job.get("model")})
        return self.view(job, with_outputs=False)

    def list_page(self, api_key_id: str | None, status: str | None, page_size: str | None,
                  page_token: str | None) -> dict:
        if status is not None and status not in jobs.JOB_STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(jobs.JOB_STATUSES)}, got {status[:40]!r}")
        size = parse_page_size(page_size)
        after = decode_page_token(page_token) if page_token else None
        documents = self._store.list_owned(api_key_id, status, size + 1, after)
        page = documents[:size]
        return {"jobs": [self.view(job, with_outputs=False) for job in page],
                "next_page_token": encode_page_token(page[-1]) if len(documents) > size else None}

    # --- the reconciler ---------------------------------------------------------------------------

    def reconcile(self) -> dict[str, int]:
        """Publish again every shard whose message was lost or whose worker died, and a shard of every
        job nobody finalized. Counts by action, prefixed job_."""
        now = self._clock()
        again = timedelta(seconds=self.settings.redeliver_after_seconds)
        limit = self.settings.reconcile_batch_size
        counts: dict[str, int] = {}

        def tally(action: str) -> None:
            counts[f"job_{action}"] = counts.get(f"job_{action}", 0) + 1

        for shard in self._store.overdue_shards(now, limit):
            try:
                action = self._store.transact_shard(
                    shard["id"], lambda fresh: jobs.reconcile_shard(fresh, now, again))
            except BackendUnavailable:  # contended or unavailable: overdue still, the next pass
                tally("failed")
                continue
            if action == jobs.REPUBLISH:
                # After the update: a failure here leaves it overdue again at the backoff.
                action = self._publish(ShardMessage(shard["job_id"], shard["shard"], shard["model"]), action)
            tally(action)
        for job in self._store.overdue_jobs(now, limit):
            try:
                action = self._store.transact_job(job["id"],
                                                  lambda fresh: jobs.reconcile_job(fresh, now, again))
            except BackendUnavailable:
                tally("failed")
                continue
            if action == jobs.FINALIZE:
                action = self._publish(ShardMessage(job["id"], 0, job["model"]), action)
            tally(action)
        return counts

    def _publish(self, message: ShardMessage, action: str) -> str:
        try:
            self._publisher.publish_all([message])
        except BackendUnavailable:
            return "publish_failed"
        log.info("reconciled job shard", extra={"job_id": message.job_id, "shard": message.shard,
                                                "action": action})
        return action
