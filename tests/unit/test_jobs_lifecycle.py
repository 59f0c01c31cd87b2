"""The bulk job's pure transitions (inference_contract.jobs): shards claimed, finished once, cancelled,
and the job finalized by the last one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from inference_contract import jobs
from inference_contract.job_messages import ShardMessage, decode_shard_push
from inference_contract.messages import MalformedMessage
from inference_contract.predictions import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)
AGAIN = timedelta(seconds=60)


def job(shard_count: int = 2, total: int = 5) -> dict:
    return jobs.new_job(job_id="j1", model="m", now=NOW, expire_at=NOW + timedelta(days=30),
                        input_uri="gs://in/photos/", output="gs://out/results", callback_url=None,
                        api_key_id="k", total=total, shard_count=shard_count, shard_size=3)


def shard(number: int = 0, inputs=("gs://in/a.jpg", "gs://in/b.jpg", "gs://in/c.jpg")) -> dict:
    return jobs.new_shard(job_id="j1", shard=number, model="m", inputs=list(inputs), now=NOW,
                          expire_at=NOW + timedelta(days=30), redeliver_after=AGAIN)


def claimed(document: dict, job_document: dict, token: str = "t1", now: datetime = NOW):
    shard_update, job_update, claim = jobs.claim_shard(document, job_document, now, model_version=3,
                                                       lease=LEASE, lease_token=token)
    return {**document, **(shard_update or {})}, {**job_document, **(job_update or {})}, claim


def test_the_output_layout_puts_everything_under_the_job_id():
    assert jobs.results_uri("gs://out/results/", "j1", 7) == "gs://out/results/j1/results-00007.jsonl"
    assert jobs.summary_uri("gs://out/results", "j1") == "gs://out/results/j1/summary.json"
    assert jobs.shard_id("j1", 12) == "j1-00012"


def test_a_first_claim_runs_the_shard_under_a_lease_and_starts_the_job():
    document, job_document, claim = claimed(shard(), job())
    assert claim.action == jobs.RUN
    assert document["status"] == RUNNING and document["attempts"] == 1
    assert document["lease_expires_at"] == NOW + LEASE == document["reconcile_at"]
    assert job_document["status"] == RUNNING and job_document["started_at"] == NOW


def test_a_second_delivery_waits_while_the_lease_is_fresh_and_takes_over_once_it_expired():
    document, job_document, _ = claimed(shard(), job())
    with pytest.raises(jobs.ShardInProgress):
        claimed(document, job_document, "t2", NOW + LEASE / 2)
    retaken, _, claim = claimed(document, job_document, "t2", NOW + LEASE)
    assert claim.action == jobs.RUN and retaken["attempts"] == 2 and retaken["lease_token"] == "t2"


def test_renew_and_release_only_for_the_lease_holder():
    document, _, _ = claimed(shard(), job())
    assert jobs.renew_shard(document, NOW + LEASE / 2, lease=LEASE, lease_token="other") is None
    assert jobs.renew_shard(document, NOW + LEASE / 2, lease=LEASE, lease_token="t1")["lease_expires_at"] \
        == NOW + LEASE * 1.5
    assert jobs.release_shard(document, NOW, lease=LEASE, lease_token="t1")["status"] == QUEUED


def test_finishing_counts_into_the_job_once_and_the_last_shard_asks_to_finalize():
    job_document = job()
    first, job_document, _ = claimed(shard(0), job_document)
    update, job_update, job_document = jobs.finish_shard(first, job_document, NOW, succeeded=2, failed=1,
                                                         model_version=3, redeliver_after=AGAIN)
    first = {**first, **update}
    assert first["status"] == SUCCEEDED and first["lease_token"] is None and first["reconcile_at"] is None
    assert job_document["succeeded"] == 2 and job_document["failed"] == 1
    assert not jobs.needs_finalizing(job_document) and job_update.get("reconcile_at") is None
    # A redelivery of the finished shard records nothing more.
    assert jobs.finish_shard(first, job_document, NOW, succeeded=2, failed=1, model_version=3,
                             redeliver_after=AGAIN)[:2] == (None, None)
    second, job_document, _ = claimed(shard(1, ["gs://in/d.jpg", "gs://in/e.jpg"]), job_document)
    _, job_update, job_document = jobs.finish_shard(second, job_document, NOW, succeeded=2, failed=0,
                                                    model_version=3, redeliver_after=AGAIN)
    assert jobs.needs_finalizing(job_document) and job_update["reconcile_at"] == NOW + AGAIN
    final = jobs.finalize_job(job_document, NOW)
    assert final["status"] == SUCCEEDED and final["reconcile_at"] is None
    assert jobs.finalize_job({**job_document, **final}, NOW) is None
    assert jobs.counts({**job_document, **final}) == {"total": 5, "succeeded": 4, "failed": 1, "pending": 0}
    assert job_document["model_versions"] == [3]


def test_a_shard_whose_results_could_not_be_written_fails_the_job():
    document, job_document, _ = claimed(shard(), job(shard_count=1, total=3))
    _, _, job_document = jobs.finish_shard(document, job_document, NOW, succeeded=0, failed=0,
                                           model_version=3, redeliver_after=AGAIN,
                                           error=("output_not_writable", "403"))
    assert jobs.finalize_job(job_document, NOW)["status"] == FAILED


def test_cancel_skips_shards_not_started_and_the_job_ends_cancelled_when_none_runs():
    job_document = job()
    running, job_document, _ = claimed(shard(0), job_document)
    update, job_document = jobs.request_cancel(job_document, NOW)
    assert update == {"cancel_requested_at": NOW}
    assert jobs.request_cancel(job_document, NOW)[0] is None  # idempotent
    queued = shard(1)
    _, _, claim = claimed(queued, job_document, "t2")
    assert claim.action == jobs.CANCEL
    shard_update, _, job_document = jobs.cancel_shard(queued, job_document, NOW, redeliver_after=AGAIN)
    assert shard_update["status"] == CANCELLED
    assert not jobs.needs_finalizing(job_document)  # shard 0 still runs: no line may come after final
    with pytest.raises(jobs.ShardInProgress):
        jobs.cancel_shard(running, job_document, NOW, redeliver_after=AGAIN)
    _, _, job_document = jobs.finish_shard(running, job_document, NOW, succeeded=3, failed=0,
                                           model_version=3, redeliver_after=AGAIN)
    final = {**job_document, **jobs.finalize_job(job_document, NOW)}
    assert final["status"] == CANCELLED
    assert jobs.counts(final) == {"total": 5, "succeeded": 3, "failed": 0, "pending": 2}
    assert jobs.request_cancel(final, NOW)[0] is None
    with pytest.raises(jobs.JobNotCancellable):
        jobs.request_cancel({**final, "status": SUCCEEDED, "cancel_requested_at": None}, NOW)


def test_the_reconciler_republishes_a_queued_or_dead_shard_with_backoff_and_leaves_a_live_one():
    document = shard()
    assert jobs.reconcile_shard(document, NOW, AGAIN) == (None, jobs.NOT_DUE)
    update, action = jobs.reconcile_shard(document, NOW + AGAIN, AGAIN)
    assert action == jobs.REPUBLISH and update == {"redeliveries": 1, "reconcile_at": NOW + 2 * AGAIN}
    running, _, _ = claimed(document, job())
    assert jobs.reconcile_shard({**running, "reconcile_at": NOW}, NOW + LEASE / 2, AGAIN)[1] == jobs.NOT_DUE
    assert jobs.reconcile_shard(running, NOW + LEASE, AGAIN)[1] == jobs.REPUBLISH  # its worker died


def test_the_reconciler_hands_on_a_complete_job_nobody_finalized():
    job_document = {**job(shard_count=1), "shards_finished": 1, "reconcile_at": NOW}
    update, action = jobs.reconcile_job(job_document, NOW, AGAIN)
    assert action == jobs.FINALIZE and update == {"reconcile_at": NOW + AGAIN}
    final = {**job_document, "status": SUCCEEDED}
    assert jobs.reconcile_job(final, NOW, AGAIN)[1] == jobs.NOTHING_LEFT


def test_result_lines_and_their_counts():
    data = jobs.encode_lines([jobs.succeeded_line("gs://in/a.jpg", {"top_k": []}, 3),
                              jobs.failed_line("gs://in/b.jpg", "invalid_image", "bad", 3)])
    assert jobs.line_counts(data) == {SUCCEEDED: 1, FAILED: 1}


def test_the_shard_message_round_trips_and_a_bad_one_is_malformed():
    import base64

    data, attributes = ShardMessage("j1", 4, "m").encode()
    envelope = {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                            "messageId": "9"}}
    assert decode_shard_push(envelope) == (ShardMessage("j1", 4, "m"), "9")
    with pytest.raises(MalformedMessage):
        decode_shard_push({"message": {"data": base64.b64encode(b'{"job_id": "j1"}').decode()}})


def test_the_public_view_has_counts_and_timings():
    document = {**job(), "status": SUCCEEDED, "succeeded": 5, "started_at": NOW,
                "completed_at": NOW + timedelta(seconds=2)}
    view = jobs.public_job_view(document)
    assert view["counts"]["pending"] == 0 and view["timings"]["images_per_second"] == 2.5
    assert view["output"] == "gs://out/results/j1/"
