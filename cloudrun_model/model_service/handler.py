"""What the model service does with one prediction request, independent of HTTP."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable, Protocol

from .errors import (
    InvalidEnvelope, ModelNotReady, PredictionFailure, UnknownPrediction,
)
from .push import PredictionRequest

log = logging.getLogger(__name__)

PUBLIC_FIELDS = ("id", "model", "model_version", "status", "result", "error",
                 "created_at", "started_at", "completed_at")


class Model(Protocol):
    ready: bool
    info: object

    def predict(self, images: list[bytes]) -> list: ...


class ImageReader(Protocol):
    def read(self, uri: str) -> bytes: ...


class PredictionStore(Protocol):
    def claim(self, prediction_id: str, model_version: int, lease_seconds: int,
              now: datetime) -> dict | None: ...
    def finish(self, prediction_id: str, update: dict) -> dict: ...
    def release(self, prediction_id: str, started_at: datetime) -> None: ...


class CallbackNotifier(Protocol):
    def notify(self, url: str, document: dict) -> bool: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def public_document(document: dict) -> dict:
    return {field: (document.get(field).isoformat() if isinstance(document.get(field), datetime)
                    else document.get(field)) for field in PUBLIC_FIELDS}


class PredictionHandler:
    def __init__(self, model_name: str, model: Model, predict_one: Callable[[bytes], object],
                 store: PredictionStore, reader: ImageReader, notifier: CallbackNotifier,
                 lease_seconds: int, clock: Callable[[], datetime] = utcnow) -> None:
        self._model_name = model_name
        self._model = model
        self._predict_one = predict_one
        self._store = store
        self._reader = reader
        self._notifier = notifier
        self._lease_seconds = lease_seconds
        self._clock = clock

    def _release(self, prediction_id: str, started_at: datetime, context: dict) -> None:
        try:
            self._store.release(prediction_id, started_at)
        except Exception:  # the lease then expires on its own
            log.exception("could not release a prediction after a transient fault", extra=context)

    def handle(self, request: PredictionRequest) -> str:
        """Run one prediction to a final status. Returns the outcome for logs."""
        if request.model != self._model_name:
            raise InvalidEnvelope(
                f"message is for model {request.model!r}; this service serves {self._model_name!r}")
        if not self._model.ready:
            raise ModelNotReady("the model is still loading")
        context = {"prediction_id": request.prediction_id, "model": self._model_name,
                   "message_id": request.message_id}
        version = self._model.info.version
        try:
            claimed = self._store.claim(request.prediction_id, version, self._lease_seconds, self._clock())
        except UnknownPrediction as exc:
            log.warning("message for an unknown prediction acknowledged", extra={**context, "reason": exc.message})
            return "unknown"
        if claimed is None:
            log.info("redelivery of a finished prediction ignored", extra=context)
            return "duplicate"
        try:
            outcome = self._predict_one(self._reader.read(request.image_uri))
        except PredictionFailure as failure:
            outcome = failure
        except Exception:
            # Transient: give the claim back so Pub/Sub's redelivery can run it at once.
            self._release(request.prediction_id, claimed["started_at"], context)
            raise
        if isinstance(outcome, PredictionFailure):
            update = {"status": "failed", "error": {"code": outcome.code, "message": outcome.message}}
        else:
            update = {"status": "succeeded", "result": outcome, "error": None}
        final = self._store.finish(request.prediction_id, {
            **update, "completed_at": self._clock(), "model_version": version})
        log.info("prediction finished", extra={**context, "status": final["status"],
                                               "model_version": version})
        callback = request.callback_url or final.get("callback_url")
        if callback:
            self._notifier.notify(callback, public_document(final))
        return final["status"]
