"""The model service's store of prediction documents: the contract's transitions, made atomically.

Every rule is in inference_contract.lifecycle; a store only supplies `_transact`
(one atomic read-modify-write of a document), so the Firestore store
(firestore_runs.py) and the tests' in-memory store behave the same by construction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from inference_contract import lifecycle
from inference_contract.lifecycle import Claim


class PredictionRunStore:
    """The transitions a model service makes on prediction documents.

    Subclasses supply `_transact(prediction_id, decide)`: read the document, call
    decide(document or None) -> (update or None, value), write the update only if
    the document is still as read, and return value.
    """

    def _transact(self, prediction_id: str, decide):  # pragma: no cover - abstract
        raise NotImplementedError

    def know_created(self, prediction_id: str, document: dict, update_time: str) -> None:
        """The document as the API created it, with that create's update time (a first
        message carries both): a store that can write conditionally on an update time
        claims with that, without reading first. This one reads every time."""

    def claim(self, prediction_id: str, model_version: int, lease_seconds: float, now: datetime,
              lease_token: str) -> Claim:
        """Take the prediction for this delivery, or say it is final already.

        Raises PredictionInProgress while another delivery's lease is fresh, and
        UnknownPrediction when there is no such document.
        """
        return self._transact(prediction_id, lambda document: lifecycle.claim(
            document, now, prediction_id=prediction_id, model_version=model_version,
            lease=timedelta(seconds=lease_seconds), lease_token=lease_token))

    def renew(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> bool:
        def decide(document):
            update = lifecycle.renew(document, now, lease=timedelta(seconds=lease_seconds),
                                     lease_token=lease_token)
            return update, update is not None

        return self._transact(prediction_id, decide)

    def release(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> None:
        self._transact(prediction_id, lambda document: (lifecycle.release(
            document, now, lease=timedelta(seconds=lease_seconds), lease_token=lease_token), None))

    def finish(self, prediction_id: str, outcome: dict, lease_seconds: float,
               now: datetime) -> tuple[bool, dict]:
        """Write outcome (lifecycle.run_outcome) unless a final status is there; (whether this
        call wrote it, final document)."""
        def decide(document):
            update, final = lifecycle.finish(document, now, prediction_id=prediction_id,
                                             outcome=outcome, lease=timedelta(seconds=lease_seconds))
            return update, (update is not None, final)

        return self._transact(prediction_id, decide)

    def claim_callback(self, prediction_id: str, lease_seconds: float, now: datetime) -> dict | None:
        """The final document when this delivery should send its pending callback, else None."""
        def decide(document):
            update = lifecycle.claim_callback(document, now, lease=timedelta(seconds=lease_seconds))
            return update, ({**document, **update} if update else None)

        return self._transact(prediction_id, decide)

    def record_callback(self, prediction_id: str, now: datetime, delivered: bool,
                        error: str | None = None) -> None:
        self._transact(prediction_id, lambda document: (lifecycle.record_callback(
            document, now, delivered=delivered, error=error), None))
