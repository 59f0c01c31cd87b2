"""The lifecycle's cancel and deadline rules: a cancelled or late prediction never runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from inference_contract import lifecycle
from inference_contract.predictions import (
    CALLBACK_PENDING,
    CANCELLED,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
)

from tests.unit.test_lifecycle import LEASE, NOW

POLICY = lifecycle.RecoveryPolicy(redeliver_after=timedelta(seconds=60))


def accepted(callback_url: str | None = None, deadline: timedelta | None = None) -> dict:
    return lifecycle.new_prediction(
        prediction_id="p1", model="m", now=NOW, expire_at=NOW + timedelta(days=30), image_uri="gs://b/o",
        content_type="image/jpeg", size_bytes=3, filename="a.jpg", callback_url=callback_url,
        api_key_id="k", redeliver_after=timedelta(seconds=60), deadline=deadline)


def claim(document: dict, now=NOW):
    return lifecycle.claim(document, now, prediction_id="p1", model_version=1, lease=LEASE, lease_token="t")


def test_cancelled_is_a_final_status_of_the_contract():
    assert CANCELLED in STATUSES and CANCELLED in FINAL_STATUSES


def test_cancelling_a_queued_prediction_ends_it_and_owes_its_callback_at_once():
    update, final = lifecycle.cancel(accepted("https://client.example/done"), NOW)
    assert final["status"] == CANCELLED and update["completed_at"] == NOW
    # The same shape as a failure's: the reconciler's next pass publishes it for the callback.
    assert update["callback"] == {"state": CALLBACK_PENDING, "attempts": 0} and update["reconcile_at"] == NOW
    _, action = lifecycle.reconcile(final, NOW, POLICY)
    assert action == lifecycle.CALLBACK


def test_a_cancelled_prediction_without_callback_leaves_nothing_to_reconcile():
    update, _ = lifecycle.cancel(accepted(), NOW)
    assert update["reconcile_at"] is None and "callback" not in update


def test_cancelling_twice_answers_the_same_document_without_writing():
    _, final = lifecycle.cancel(accepted(), NOW)
    update, again = lifecycle.cancel(final, NOW + timedelta(seconds=5))
    assert update is None and again == final


@pytest.mark.parametrize("status", [RUNNING, SUCCEEDED, FAILED])
def test_a_started_or_final_prediction_cannot_be_cancelled(status):
    with pytest.raises(lifecycle.NotCancellable) as caught:
        lifecycle.cancel({**accepted(), "status": status}, NOW)
    assert caught.value.status == status


def test_the_model_service_never_claims_a_cancelled_prediction():
    _, final = lifecycle.cancel(accepted(), NOW)
    update, claimed = claim(final)
    assert update is None and claimed.run is False and claimed.document["status"] == CANCELLED
    assert not claimed.expired


def test_a_deadline_bounds_when_the_reconciler_first_looks():
    assert accepted(deadline=timedelta(seconds=5))["deadline_at"] == NOW + timedelta(seconds=5)
    assert accepted(deadline=timedelta(seconds=5))["reconcile_at"] == NOW + timedelta(seconds=5)
    assert accepted(deadline=timedelta(seconds=600))["reconcile_at"] == NOW + timedelta(seconds=60)
    assert accepted()["deadline_at"] is None


def test_a_claim_before_the_deadline_runs_it():
    update, claimed = claim(accepted(deadline=timedelta(seconds=5)), NOW + timedelta(seconds=4))
    assert claimed.run and update["status"] == RUNNING


def test_a_claim_after_the_deadline_fails_it_without_running_and_owes_the_callback():
    document = accepted("https://client.example/done", deadline=timedelta(seconds=1))
    late = NOW + timedelta(seconds=1)
    update, claimed = claim(document, late)
    assert claimed.run is False and claimed.expired
    assert update["status"] == FAILED and update["error"]["code"] == lifecycle.DEADLINE_EXCEEDED
    assert "attempts" not in update and "started_at" not in update
    # The delivery that found it late sends the callback (claim_callback takes it at once).
    assert lifecycle.claim_callback(claimed.document, late, lease=LEASE) is not None


def test_the_reconciler_fails_a_prediction_not_started_by_its_deadline():
    document = accepted(deadline=timedelta(seconds=1))
    update, action = lifecycle.reconcile(document, NOW + timedelta(seconds=1), POLICY)
    assert action == lifecycle.DEADLINE_MISSED
    assert update["status"] == FAILED and update["error"]["code"] == lifecycle.DEADLINE_EXCEEDED
    # Before it, the reconciler republishes and looks again no later than the deadline.
    early = accepted(deadline=timedelta(seconds=90))
    update, action = lifecycle.reconcile({**early, "reconcile_at": NOW}, NOW, POLICY)
    assert action == lifecycle.REPUBLISH and update["reconcile_at"] == NOW + timedelta(seconds=60)
    update, _ = lifecycle.reconcile({**early, "reconcile_at": NOW + timedelta(seconds=60)},
                                    NOW + timedelta(seconds=60), POLICY)
    assert update["reconcile_at"] == NOW + timedelta(seconds=90)


def test_a_running_prediction_with_a_fresh_lease_is_not_failed_by_its_deadline():
    document = {**accepted(deadline=timedelta(seconds=1)), "status": RUNNING,
                "lease_expires_at": NOW + timedelta(seconds=30), "reconcile_at": NOW + timedelta(seconds=2)}
    update, action = lifecycle.reconcile(document, NOW + timedelta(seconds=2), POLICY)
    assert action == lifecycle.NOT_DUE and update == {"reconcile_at": document["lease_expires_at"]}
    assert not lifecycle.deadline_passed(document, NOW + timedelta(seconds=2))
    assert lifecycle.deadline_passed({**document, "status": QUEUED}, NOW + timedelta(seconds=2))
