"""How a delivery moves a prediction document: pure functions of (document, now).

The Firestore store runs each of them inside a transaction; the tests' in-memory
store runs the same functions, so the rules are tested once, where they live.

Each returns the fields to update (None: leave the document alone), and for
some a value for the caller. Fields this module owns on the document:

- `lease_token`, `lease_expires_at`: which delivery runs a `running` prediction,
  and until when. The running delivery renews the lease while it works, so a
  short lease is enough and a dead worker's prediction is retaken within it.
- `reconcile_at`: when the reconciler should look at the document next if
  nothing else happens to it (None: nothing left to do).
- `callback`: {"state": "pending" | "delivered" | "failed", "attempts",
  "sending_until" (a delivery is sending it until then), "next_attempt_at" (a
  failed one is not tried again before), ...}. These are the callback's own
  times, apart from `reconcile_at`, which only says when the reconciler looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from inference_contract.predictions import (
    CALLBACK_DELIVERED,
    CALLBACK_PENDING,
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    callback_pending,
)

from .errors import PredictionInProgress, UnknownPrediction

# A callback that failed is tried again after this, doubling up to the cap.
CALLBACK_FIRST_RETRY = timedelta(seconds=10)
CALLBACK_MAX_RETRY = timedelta(minutes=10)


@dataclass(frozen=True)
class Claim:
    """What a delivery should do with the prediction it names."""

    run: bool  # True: run the model; False: the prediction is final already
    document: dict


def lease_expiry(document: dict, lease: timedelta) -> datetime | None:
    if document.get("lease_expires_at"):
        return document["lease_expires_at"]
    # Documents written before leases were renewed carry only started_at.
    started = document.get("started_at")
    return started + lease if started else None


def claim(document: dict | None, now: datetime, *, prediction_id: str, model_version: int,
          lease: timedelta, lease_token: str) -> tuple[dict | None, Claim]:
    if document is None:
        raise UnknownPrediction(f"no prediction document {prediction_id}")
    if document["status"] in FINAL_STATUSES:
        return None, Claim(False, document)
    expiry = lease_expiry(document, lease)
    if document["status"] == RUNNING and expiry and now < expiry:
        raise PredictionInProgress(f"prediction {prediction_id} is being processed")
    update = {"status": RUNNING, "started_at": now, "model_version": model_version,
              "attempts": int(document.get("attempts") or 0) + 1, "lease_token": lease_token,
              "lease_expires_at": now + lease, "reconcile_at": now + lease}
    return update, Claim(True, {**document, **update})


def renew(document: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    """Extend the lease of a prediction this delivery is still running."""
    if document and document["status"] == RUNNING and document.get("lease_token") == lease_token:
        return {"lease_expires_at": now + lease, "reconcile_at": now + lease}
    return None


def release(document: dict | None, now: datetime, *, lease: timedelta, lease_token: str) -> dict | None:
    """Give a running prediction back after a transient fault, so a redelivery runs it at once."""
    if document and document["status"] == RUNNING and document.get("lease_token") == lease_token:
        return {"status": QUEUED, "started_at": None, "lease_token": None,
                "lease_expires_at": None, "reconcile_at": now + lease}
    return None


def finish(document: dict | None, now: datetime, *, prediction_id: str, outcome: dict,
           lease: timedelta) -> tuple[dict | None, dict]:
    """Write a final status unless one is there already. Returns (update, final document).

    A callback to send is marked pending and being sent by this delivery for one
    lease; `reconcile_at` is one lease ahead too: if this process dies before
    recording the callback, the reconciler finds it then.
    """
    if document is None:
        raise UnknownPrediction(f"no prediction document {prediction_id}")
    if document["status"] in FINAL_STATUSES:
        return None, document
    update = {**outcome, "completed_at": now, "lease_token": None, "lease_expires_at": None}
    if document.get("callback_url"):
        update.update(callback={"state": CALLBACK_PENDING, "attempts": 0, "sending_until": now + lease},
                      reconcile_at=now + lease)
    else:
        update["reconcile_at"] = None
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


class PredictionRunStore:
    """The transitions a model service makes on prediction documents.

    Subclasses supply `_transact` (one atomic read-modify-write of a document);
    every rule is in `transitions`, so the Firestore store and the tests'
    in-memory store behave the same by construction.
    """

    def _transact(self, prediction_id: str, decide):  # pragma: no cover - abstract
        raise NotImplementedError

    def claim(self, prediction_id: str, model_version: int, lease_seconds: float, now: datetime,
              lease_token: str) -> Claim:
        """Take the prediction for this delivery, or say it is final already.

        Raises PredictionInProgress while another delivery's lease is fresh, and
        UnknownPrediction when there is no such document.
        """
        return self._transact(prediction_id, lambda document: claim(
            document, now, prediction_id=prediction_id, model_version=model_version,
            lease=timedelta(seconds=lease_seconds), lease_token=lease_token))

    def renew(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> bool:
        def decide(document):
            update = renew(document, now, lease=timedelta(seconds=lease_seconds),
                                       lease_token=lease_token)
            return update, update is not None

        return self._transact(prediction_id, decide)

    def release(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> None:
        self._transact(prediction_id, lambda document: (release(
            document, now, lease=timedelta(seconds=lease_seconds), lease_token=lease_token), None))

    def finish(self, prediction_id: str, outcome: dict, lease_seconds: float,
               now: datetime) -> tuple[bool, dict]:
        """Write a final status unless one is there; (whether this call wrote it, final document)."""
        def decide(document):
            update, final = finish(document, now, prediction_id=prediction_id,
                                               outcome=outcome, lease=timedelta(seconds=lease_seconds))
            return update, (update is not None, final)

        return self._transact(prediction_id, decide)

    def claim_callback(self, prediction_id: str, lease_seconds: float, now: datetime) -> dict | None:
        """The final document when this delivery should send its pending callback, else None."""
        def decide(document):
            update = claim_callback(document, now, lease=timedelta(seconds=lease_seconds))
            return update, ({**document, **update} if update else None)

        return self._transact(prediction_id, decide)

    def record_callback(self, prediction_id: str, now: datetime, delivered: bool,
                        error: str | None = None) -> None:
        self._transact(prediction_id, lambda document: (record_callback(
            document, now, delivered=delivered, error=error), None))
