"""The contract's lifecycle rules that both units share: one lease rule, one owed callback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from inference_contract import lifecycle
from inference_contract.predictions import CALLBACK_PENDING, FAILED, QUEUED, RUNNING, SUCCEEDED

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=10)


def accepted(callback_url: str | None = None) -> dict:
    return lifecycle.new_prediction(
        prediction_id="p1", model="m", now=NOW, expire_at=NOW + timedelta(days=30), image_uri="gs://b/o",
        content_type="image/jpeg", size_bytes=3, filename="a.jpg", callback_url=callback_url,
        api_key_id="k", redeliver_after=timedelta(seconds=60))


def test_the_first_document_is_queued_and_overdue_after_redeliver_after():
    document = accepted()
    assert document["status"] == QUEUED and document["attempts"] == 0 and document["redeliveries"] == 0
    assert document["reconcile_at"] == NOW + timedelta(seconds=60)
    assert {"started_at", "completed_at", "callback", "result", "error"} <= set(document)


@pytest.mark.parametrize(("changes", "fresh"), [
    ({"status": RUNNING, "lease_expires_at": NOW + LEASE}, True),
    ({"status": RUNNING, "lease_expires_at": NOW}, False),
    ({"status": RUNNING, "started_at": NOW}, False),  # no lease written: none held
    ({"status": QUEUED, "lease_expires_at": NOW + LEASE}, False),
])
def test_one_lease_rule_for_the_claim_and_the_reconciler(changes, fresh):
    document = {**accepted(), **changes}
    assert lifecycle.lease_is_fresh(document, NOW) is fresh
    if fresh:
        with pytest.raises(lifecycle.PredictionInProgress):
            lifecycle.claim(document, NOW, prediction_id="p1", model_version=1, lease=LEASE, lease_token="t")
    else:
        update, claim = lifecycle.claim(document, NOW, prediction_id="p1", model_version=1, lease=LEASE,
                                        lease_token="t")
        assert claim.run and update["lease_expires_at"] == NOW + LEASE
    _, action = lifecycle.reconcile({**document, "reconcile_at": NOW}, NOW, lifecycle.RecoveryPolicy())
    assert (action == lifecycle.NOT_DUE) is fresh


def test_finishing_and_failing_owe_the_callback_in_the_same_shape():
    document = {**accepted("https://client.example/done"), "status": RUNNING, "lease_token": "t"}
    outcome = lifecycle.run_outcome(model_version=1, timings={}, result={"x": 1})
    finished, final = lifecycle.finish(document, NOW, prediction_id="p1", outcome=outcome, lease=LEASE)
    failed = lifecycle.fail(document, NOW, "timed_out", "too old")
    assert final["status"] == SUCCEEDED and failed["status"] == FAILED
    for update in (finished, failed):
        assert update["callback"]["state"] == CALLBACK_PENDING and update["callback"]["attempts"] == 0
        assert update["lease_token"] is None and update["completed_at"] == NOW
    # The delivery that finished it holds the sending for a lease; a failure is owed at once.
    assert finished["callback"]["sending_until"] == NOW + LEASE and finished["reconcile_at"] == NOW + LEASE
    assert "sending_until" not in failed["callback"] and failed["reconcile_at"] == NOW


def test_lifecycle_errors_carry_no_http_status():
    for error in (lifecycle.UnknownPrediction("x"), lifecycle.PredictionInProgress("y")):
        assert not hasattr(error, "status") and isinstance(error, lifecycle.LifecycleError)
