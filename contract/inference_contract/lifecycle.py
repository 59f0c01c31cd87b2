"""The prediction document's lifecycle: its first state and every transition, for both units.

Each transition is a pure function of (document, now, ...) that returns the fields
to update (None: leave the document alone), and for some a value for the caller.
The stores run them as one atomic read-modify-write: the API in a Firestore
transaction, the model service as a write conditional on the document's update
time (model_service.firestore_runs); the tests' in-memory stores run the same
functions, so the rules are tested once, where they live.

A prediction goes queued -> running -> succeeded | failed, or from queued to
cancelled (`cancel`, asked by its owner) or to failed with `deadline_exceeded`
(not started by its `deadline_at`: `claim` refuses to run it, and `reconcile`
fails it). The API writes the first document (`new_prediction`); a model service
claims it (`claim`), keeps its lease (`renew`), gives it back after a transient
fault (`release`) and finishes it (`finish`), then owes its callback
(`claim_callback`, `record_callback`). The API's reconciler and dead-letter handler look after what
the transport lost (`reconcile`, `dead_letter`, both of which may `fail` it).

Fields this module owns on the document, besides the public ones of predictions.py:

- `attempts`: how many times a model service claimed it; `redeliveries`: how
  many times the reconciler published it again.
- `lease_token`, `lease_expires_at`: which delivery runs a `running` prediction,
  and until when. The running delivery renews the lease while it works, so a
  short lease is enough and a dead worker's prediction is retaken within it.
- `deadline_at`: when a prediction not started by then fails instead of running
  (None: only the maximum age applies). Written once, with the first document.
- `reconcile_at`: when the reconciler should look at the document next if
  nothing else happens to it (None: nothing left to do).
- `callback`: {"state": "pending" | "delivered" | "failed", "attempts",
  "sending_until" (a delivery is sending it until then), "next_attempt_at" (a
  failed one is not tried again before), ...}. These are the callback's own
  times, apart from `reconcile_at`, which only says when the reconciler looks.

The exceptions here say what happened, not how to answer it: each unit maps
them to an HTTP status in its errors module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The transitions' errors, importable from here as from lifecycle_errors.
from .lifecycle_errors import LifecycleError as LifecycleError
from .lifecycle_errors import NotCancellable as NotCancellable
from .lifecycle_errors import PredictionInProgress as PredictionInProgress
from .lifecycle_errors import UnknownPrediction as UnknownPrediction
from .predictions import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    CALLBACK_PENDING,
    CANCELLED,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    callback_pending,
)

# Fields only the lifecycle writes; tests/unit/test_lifecycle_ownership.py holds the units to it.
LIFECYCLE_FIELDS = frozenset({
    "status", "started_at", "completed_at", "attempts", "redeliveries", "lease_token",
    "lease_expires_at", "reconcile_at", "callback", "deadline_at",
})

# The error code of a prediction that was not started by its deadline.
DEADLINE_EXCEEDED = "deadline_exceeded"

# A callback that failed is tried again after this, doubling up to the cap.
CALLBACK_FIRST_RETRY = timedelta(seconds=10)
CALLBACK_MAX_RETRY = timedelta(minutes=10)


def new_prediction(*, prediction_id: str, model: str, now: datetime, expire_at: datetime,
                   image_uri: str, content_type: str, size_bytes: int, filename: str | None,
                   callback_url: str | None, api_key_id: str | None, redeliver_after: timedelta,
                   deadline: timedelta | None = None) -> dict:
    """The document of a prediction the API has just accepted; with a deadline, it fails
    instead of running if no model service has started it by now + deadline."""
    deadline_at = now + deadline if deadline is not None else None
    return {
        "id": prediction_id,
        "model": model,
        "model_version": None,
        "status": QUEUED,
        "result": None,
        "error": None,
        "created_at": now,
        "started_at": None,
        "completed_at": None,
        "expire_at": expire_at,
        "image_uri": image_uri,
        "content_type": content_type,
        "size_bytes": size_bytes,
        "filename": filename,
        "callback_url": callback_url,
        "callback": None,
        # The id of the API key that created it (never the key): only that key reads it.
        "api_key_id": api_key_id,
        "attempts": 0,
        "redeliveries": 0,
        "deadline_at": deadline_at,
        # Overdue from then on unless a model service claims it first: the
        # reconciler publishes it again, or fails it once its deadline has passed.
        "reconcile_at": _no_later_than_deadline(now + redeliver_after, deadline_at),
    }


def _no_later_than_deadline(when: datetime, deadline_at: datetime | None) -> datetime:
    return min(when, deadline_at) if deadline_at is not None else when


def deadline_passed(document: dict, now: datetime) -> bool:
    """Whether a prediction that is not running nor final has missed its deadline."""
    deadline_at = document.get("deadline_at")
    return (deadline_at is not None and now >= deadline_at
            and document.get("status") not in FINAL_STATUSES and not lease_is_fresh(document, now))


def _deadline_failure(document: dict, now: datetime) -> dict | None:
    return fail(document, now, DEADLINE_EXCEEDED,
                "no model service started the prediction before its deadline "
                f"({document['deadline_at'].isoformat()})")


def lease_is_fresh(document: dict, now: datetime) -> bool:
    """Whether a delivery still holds the prediction: running, with a lease not yet expired.

    The one lease rule of both units. A running document without
    `lease_expires_at` (none is written so since leases were renewed) holds no lease.
    """
    expiry = document.get("lease_expires_at")
    return document.get("status") == RUNNING and expiry is not None and now < expiry


def _owns_lease(document: dict | None, lease_token: str) -> bool:
    return bool(document) and document["status"] == RUNNING and document.get("lease_token") == lease_token


def _final(document: dict, now: datetime, update: dict, callback_due: datetime,
           sending_until: datetime | None = None) -> dict:
    """update completed as a final state: lease dropped, and the callback owed from callback_due
    (held by this delivery until sending_until when given), or nothing left to reconcile."""
    update = {**update, "completed_at": now, "lease_token": None, "lease_expires_at": None}
    if document.get("callback_url"):
        callback = {"state": CALLBACK_PENDING, "attempts": 0}
        if sending_until is not None:
            callback["sending_until"] = sending_until
        update.update(callback=callback, reconcile_at=callback_due)
    else:
        update["reconcile_at"] = None
    return update


# --- The model service's transitions ---------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """What a delivery should do with the prediction it names."""

    run: bool  # True: run the model; False: the prediction is final already
    document: dict
    expired: bool = False  # this claim found it past its deadline and failed it


def claim(document: dict | None, now: datetime, *, prediction_id: str, model_version: int,
          lease: timedelta, lease_token: str) -> tuple[dict | None, Claim]:
    """Take the prediction for this delivery, or say it is final already (cancelled
    included), or fail it, final, when its deadline has passed: it never runs then.

    Raises PredictionInProgress while another delivery's lease is fresh, and
    UnknownPrediction when there is no such document.
    """
    if document is None:
        raise UnknownPrediction(f"no prediction document {prediction_id}")
    if document["status"] in FINAL_STATUSES:
        return None, Claim(False, document)
    if lease_is_fresh(document, now):
        raise PredictionInProgress(f"prediction {prediction_id} is being processed")
    if deadline_passed(document, now):
        update = _deadline_failure(document, now)
        return update, Claim(False, {**document, **update}, expired=True)
    update = {"status": RUNNING, "started_at": now, "model_version": model_version,
              "attempts": int(document.get("attempts") or 0) + 1, "lease_token": lease_token,
              "lease_expires_at": now + lease, "reconcile_at": now + lease}
    return update, Claim(True, {**document, **update})


def renew(document: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    """Extend the lease of a prediction this delivery is still running."""
    if _owns_lease(document, lease_token):
        return {"lease_expires_at": now + lease, "reconcile_at": now + lease}
    return None


def release(document: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    """Give a running prediction back after a transient fault, so a redelivery runs it at once."""
    if _owns_lease(document, lease_token):
        return {"status": QUEUED, "started_at": None, "lease_token": None,
                "lease_expires_at": None, "reconcile_at": now + lease}
    return None


def run_outcome(*, model_version: int, timings: dict, result: object = None,
            error: tuple[str, str] | None = None) -> dict:
    """What a model service found: a result, or error (code, message) for a prediction that
    can never succeed. finish() writes it."""
    if error is not None:
        code, message = error
        return {"status": FAILED, "error": {"code": code, "message": message},
                "timings": timings, "model_version": model_version}
    return {"status": SUCCEEDED, "result": result, "error": None, "timings": timings,
            "model_version": model_version}


def finish(document: dict | None, now: datetime, *, prediction_id: str, outcome: dict,
           lease: timedelta) -> tuple[dict | None, dict]:
    """Write a final status (a run_outcome()) unless one is there already. Returns (update, final document).

    A callback to send is marked pending and being sent by this delivery for one
    lease; `reconcile_at` is one lease ahead too: if this process dies before
    recording the callback, the reconciler finds it then.
    """
    if document is None:
        raise UnknownPrediction(f"no prediction document {prediction_id}")
    if document["status"] in FINAL_STATUSES:
        return None, document
    update = _final(document, now, outcome, callback_due=now + lease, sending_until=now + lease)
    return update, {**document, **update}


def claim_callback(document: dict | None, now: datetime, *, lease: timedelta) -> dict | None:
    """Take the right to send a pending callback, unless another delivery is sending it
    or its retry is not due yet.

    Finishing a prediction takes it for one lease, so a redelivery that arrives
    while the first delivery is still calling back does not send it twice.
    """
    if not document or document["status"] not in FINAL_STATUSES or not callback_pending(document):
        return None
    callback = document["callback"]
    for not_before in (callback.get("sending_until"), callback.get("next_attempt_at")):
        if not_before and now < not_before:
            return None
    return {"callback": {**callback, "sending_until": now + lease}}


def record_callback(document: dict | None, now: datetime, *, delivered: bool,
                    error: str | None = None) -> dict | None:
    """The outcome of one callback attempt; a failed one is retried later by the reconciler."""
    if not document or not callback_pending(document):
        return None
    attempts = int(document["callback"].get("attempts") or 0) + 1
    if delivered:
        return {"callback": {"state": CALLBACK_DELIVERED, "attempts": attempts, "delivered_at": now},
                "reconcile_at": None}
    delay = min(CALLBACK_FIRST_RETRY * 2 ** (attempts - 1), CALLBACK_MAX_RETRY)
    return {"callback": {"state": CALLBACK_PENDING, "attempts": attempts, "last_error": error,
                         "last_attempt_at": now, "next_attempt_at": now + delay},
            "reconcile_at": now + delay}


# --- The API's reconciler and dead-letter handler ----------------------------------------------
#
# The transport is not trusted to deliver: a message can be dropped, dead-lettered
# while its model service restarts, or never published. Every prediction that is
# not finished carries `reconcile_at`; the reconciler looks at overdue documents
# and, for each, decides here whether to publish it again, fail it, or leave it.

REPUBLISH = "republished"
CALLBACK = "republished_for_callback"
TIMED_OUT = "timed_out"
DEADLINE_MISSED = "deadline_exceeded"
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
    # Due now: the reconciler's next pass publishes it, and the model service calls back.
    return _final(document, now, {"status": FAILED, "error": {"code": code, "message": message}},
                  callback_due=now)


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
    if lease_is_fresh(document, now):
        return {"reconcile_at": document["lease_expires_at"]}, NOT_DUE
    if deadline_passed(document, now):
        return _deadline_failure(document, now), DEADLINE_MISSED
    attempts = int(document.get("attempts") or 0)
    if attempts >= policy.max_attempts:
        return fail(document, now, "delivery_failed",
                    f"the {document.get('model')} model service did not finish this image "
                    f"in {attempts} attempts"), DELIVERY_FAILED
    redeliveries = int(document.get("redeliveries") or 0)
    backoff = policy.redeliver_after * 2 ** min(redeliveries, MAX_BACKOFF_DOUBLINGS)
    # Looked at again no later than its maximum age, when it times out.
    next_look = _no_later_than_deadline(min(now + backoff, created + policy.max_age),
                                        document.get("deadline_at"))
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
    if document is None or document["status"] in FINAL_STATUSES:
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


# --- The API's cancel -------------------------------------------------------------------------

def cancel(document: dict | None, now: datetime) -> tuple[dict | None, dict]:
    """End a queued prediction as cancelled: (update, final document).

    Idempotent: a prediction cancelled already is returned as it is (no update).
    One running or final otherwise raises NotCancellable with its status; a model
    service's claim refuses a cancelled one, so it never reaches the model. Its
    callback, if any, is owed at once, as for fail(): the reconciler's next pass
    publishes it, and the model service calls back.
    """
    if document is None:
        raise UnknownPrediction("no such prediction")
    status = document["status"]
    if status == CANCELLED:
        return None, document
    if status != QUEUED:
        raise NotCancellable(f"the prediction is {status}: only a queued prediction can be cancelled",
                             status)
    update = _final(document, now, {"status": CANCELLED}, callback_due=now)
    return update, {**document, **update}
