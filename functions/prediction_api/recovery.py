"""What the reconciler and the dead-letter handler do to a prediction: pure functions of (document, now).

The transport is not trusted to deliver: a message can be dropped, dead-lettered
while its model service restarts, or never published. Every prediction that is
not finished carries `reconcile_at`, the time after which it is overdue; the
reconciler looks at overdue documents and, for each, decides here whether to
publish it again, fail it, or leave it. The model services set `reconcile_at`
when they claim, renew, release or finish a prediction
(cloudrun_model/model_service/transitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from inference_contract.predictions import (
    CALLBACK_FAILED,
    CALLBACK_PENDING,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    callback_pending,
)

REPUBLISH = "republished"
CALLBACK = "republished_for_callback"
TIMED_OUT = "timed_out"
DELIVERY_FAILED = "delivery_failed"
CALLBACK_ABANDONED = "callback_abandoned"
NOT_DUE = "not_due"
NOTHING_LEFT = "nothing_left"

# Actions that need the prediction's message on its topic again.
PUBLISHING_ACTIONS = frozenset({REPUBLISH, CALLBACK})
# Republishing backs off from redeliver_after, doubling up to this many times.
MAX_BACKOFF_DOUBLINGS = 4


@dataclass(frozen=True)
class RecoveryPolicy:
    redeliver_after: timedelta = timedelta(seconds=60)
    max_age: timedelta = timedelta(hours=1)
    max_attempts: int = 5
    callback_retry: timedelta = timedelta(hours=1)


def fail(document: dict, now: datetime, code: str, message: str) -> dict | None:
    """Mark an unfinished prediction failed; its callback, if any, becomes owed at once."""
    if document["status"] in FINAL_STATUSES:
        return None
    update = {"status": FAILED, "error": {"code": code, "message": message}, "completed_at": now,
              "lease_token": None, "lease_expires_at": None}
    if document.get("callback_url"):
        # Due now: the reconciler's next pass publishes it, and the model service calls back.
        update.update(callback={"state": CALLBACK_PENDING, "attempts": 0}, reconcile_at=now)
    else:
        update["reconcile_at"] = None
    return update


def _lease_is_fresh(document: dict, now: datetime) -> bool:
    expiry = document.get("lease_expires_at")
    return document["status"] == RUNNING and expiry is not None and now < expiry


def reconcile(document: dict | None, now: datetime, policy: RecoveryPolicy) -> tuple[dict | None, str]:
    """(update, action) for one document the reconciler found overdue."""
    if document is None:
        return None, NOTHING_LEFT
    due = document.get("reconcile_at")
    if due is None or now < due:
        return None, NOT_DUE  # changed since the query found it
    if document["status"] in FINAL_STATUSES:
        if not callback_pending(document):
            return {"reconcile_at": None}, NOTHING_LEFT
        callback = document["callback"]
        if now - (document.get("completed_at") or now) > policy.callback_retry:
            return ({"callback": {**callback, "state": CALLBACK_FAILED}, "reconcile_at": None},
                    CALLBACK_ABANDONED)
        return {"reconcile_at": now + policy.redeliver_after}, CALLBACK
    created = document.get("created_at") or now
    if now - created >= policy.max_age:
        return fail(document, now, "timed_out",
                    "the prediction was not finished within "
                    f"{policy.max_age.total_seconds():.0f} s"), TIMED_OUT
    if _lease_is_fresh(document, now):
        return {"reconcile_at": document["lease_expires_at"]}, NOT_DUE
    attempts = int(document.get("attempts") or 0)
    if attempts >= policy.max_attempts:
        return fail(document, now, "delivery_failed",
                    f"the {document.get('model')} model service did not finish this image "
                    f"in {attempts} attempts"), DELIVERY_FAILED
    redeliveries = int(document.get("redeliveries") or 0)
    backoff = policy.redeliver_after * 2 ** min(redeliveries, MAX_BACKOFF_DOUBLINGS)
    # Looked at again no later than its maximum age, when it times out.
    next_look = min(now + backoff, created + policy.max_age)
    return {"redeliveries": redeliveries + 1, "reconcile_at": next_look}, REPUBLISH


def dead_letter(document: dict | None, now: datetime, policy: RecoveryPolicy,
                delivery_attempts: int | None) -> tuple[dict | None, str]:
    """(update, action) for a message Pub/Sub gave up on.

    Pub/Sub counts failed pushes, including the 503s of a service that was
    loading and the 409s of one still running the prediction: those say
    nothing about the image. A prediction is failed here only once model
    services have really tried it `max_attempts` times; otherwise it is left to
    the reconciler, which publishes it again.
    """
    if document is None:
        return None, NOTHING_LEFT
    if document["status"] in FINAL_STATUSES:
        return None, NOTHING_LEFT
    attempts = int(document.get("attempts") or 0)
    if attempts >= policy.max_attempts:
        tries = f" after {delivery_attempts} delivery attempts" if delivery_attempts else ""
        return fail(document, now, "delivery_failed",
                    f"the {document.get('model')} model service could not process this image{tries}"), \
            DELIVERY_FAILED
    if document["status"] == QUEUED:
        return {"reconcile_at": now}, REPUBLISH  # the transport dropped it: due at once
    return None, NOT_DUE  # running: its lease decides when it is overdue
