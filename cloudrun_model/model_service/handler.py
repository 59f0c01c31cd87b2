"""What the model service does with one prediction request, independent of HTTP."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol

from inference_contract.lifecycle import Claim, UnknownPrediction, run_outcome
from inference_contract.messages import PredictionMessage, PushedMessage
from inference_contract.predictions import callback_pending, public_view

from .batcher import Inference
from .errors import InvalidEnvelope, ModelNotReady, PredictionFailure

log = logging.getLogger(__name__)

class Model(Protocol):
    ready: bool
    info: object

    def wait_ready(self, timeout: float) -> bool: ...


class ImageReader(Protocol):
    def read(self, uri: str) -> bytes: ...


class PredictionStore(Protocol):
    def know_created(self, prediction_id: str, document: dict, update_time: str) -> None: ...
    def claim(self, prediction_id: str, model_version: int, lease_seconds: float, now: datetime,
              lease_token: str) -> Claim: ...
    def renew(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> bool: ...
    def release(self, prediction_id: str, lease_token: str, lease_seconds: float, now: datetime) -> None: ...
    def finish(self, prediction_id: str, outcome: dict, lease_seconds: float,
               now: datetime) -> tuple[bool, dict]: ...
    def claim_callback(self, prediction_id: str, lease_seconds: float, now: datetime) -> dict | None: ...
    def record_callback(self, prediction_id: str, now: datetime, delivered: bool,
                        error: str | None = None) -> None: ...


class CallbackNotifier(Protocol):
    def notify(self, url: str, document: dict): ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if not later or not earlier:
        return None
    return round((later - earlier).total_seconds() * 1000, 1)


def timings(document: dict, inference: Inference | None, completed_at: datetime,
            delivered: tuple[datetime | None, datetime] | None = None) -> dict:
    """Where a prediction's time went: `queue_ms` (accepted by the API until a model
    service claimed it), of it `delivery_ms` (Pub/Sub's part: published until this
    delivery was received; delivered is (published, received)), `model_ms` (the model
    call of its batch), `batch_size` (images in that call), `total_ms` (accepted until
    final)."""
    return {
        "queue_ms": _ms(document.get("started_at"), document.get("created_at")),
        "delivery_ms": _ms(delivered[1], delivered[0]) if delivered else None,
        "model_ms": round(inference.model_seconds * 1000, 1) if inference else None,
        "batch_size": inference.batch_size if inference else None,
        "total_ms": _ms(completed_at, document.get("created_at")),
    }


class _Observer(Protocol):
    def observe_prediction(self, model: str, status: str, timings: dict) -> None: ...
    def observe_step(self, model: str, step: str, seconds: float) -> None: ...


class _Timed:
    """Runs a call and remembers how long it took, for the step timings of /metrics."""

    def __init__(self, call: Callable, *args) -> None:
        self.seconds = 0.0
        self._call, self._args = call, args

    def __call__(self):
        started = time.perf_counter()
        try:
            return self._call(*self._args)
        finally:
            self.seconds = time.perf_counter() - started


class LeaseKeeper:
    """Renews the leases of the predictions this process is running.

    A lease is short, so that a prediction whose worker died is retaken within
    seconds; a live worker keeps its own by renewing every third of a lease. Only
    predictions held longer than that are renewed, which most never are.
    """

    def __init__(self, store: PredictionStore, lease_seconds: float,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, prediction_id: str, lease_token: str):
        with self._lock:
            self._held[prediction_id] = (lease_token, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(prediction_id, None)

    def renew_due(self) -> int:
        """Renew every lease held for a third of a lease or more; how many were renewed."""
        interval = self._lease_seconds / 3
        now_monotonic = time.monotonic()
        with self._lock:
            due = [(prediction_id, token) for prediction_id, (token, since) in self._held.items()
                   if now_monotonic - since >= interval]
        renewed = 0
        for prediction_id, token in due:
            try:
                renewed += self._store.renew(prediction_id, token, self._lease_seconds, self._clock())
            except Exception:  # the next round tries again; the lease is three rounds long
                log.exception("could not renew a lease", extra={"prediction_id": prediction_id})
            with self._lock:
                if prediction_id in self._held:
                    self._held[prediction_id] = (token, time.monotonic())
        return renewed

    def run_forever(self) -> None:
        while True:
            time.sleep(self._lease_seconds / 6)
            self.renew_due()


class PredictionHandler:
    def __init__(self, model_name: str, model: Model, predict_one: Callable[[bytes], Inference],
                 store: PredictionStore, reader: ImageReader, notifier: CallbackNotifier,
                 lease_seconds: float, model_ready_wait_seconds: float = 0.0,
                 clock: Callable[[], datetime] = utcnow, leases: LeaseKeeper | None = None,
                 metrics: _Observer | None = None, image_readers: int = 32) -> None:
        self._model_name = model_name
        self._model = model
        self._predict_one = predict_one
        self._store = store
        self._reader = reader
        self._notifier = notifier
        self._lease_seconds = lease_seconds
        self._model_ready_wait = model_ready_wait_seconds
        self._clock = clock
        self.leases = leases or LeaseKeeper(store, lease_seconds, clock)
        self._metrics = metrics
        # The image is read while the prediction is claimed: the two round trips overlap.
        self._image_reads = ThreadPoolExecutor(image_readers, thread_name_prefix="image-read")

    def _observe(self, step: str, seconds: float) -> None:
        if self._metrics:
            self._metrics.observe_step(self._model_name, step, seconds)

    def _release(self, prediction_id: str, lease_token: str, context: dict) -> None:
        try:
            self._store.release(prediction_id, lease_token, self._lease_seconds, self._clock())
        except Exception:  # the lease then expires on its own
            log.exception("could not release a prediction after a transient fault", extra=context)

    def handle(self, pushed: PushedMessage) -> str:
        """Run one prediction to a final status. Returns the outcome for logs."""
        received = self._clock()
        request = pushed.prediction
        if request.model != self._model_name:
            raise InvalidEnvelope(
                f"message is for model {request.model!r}; this service serves {self._model_name!r}")
        # Held, not refused: a burst that arrives while the model loads waits for it
        # instead of coming back as hundreds of 503s.
        if not self._model.wait_ready(self._model_ready_wait):
            raise ModelNotReady("the model is still loading")
        context = {"prediction_id": request.prediction_id, "model": self._model_name,
                   "message_id": pushed.message_id}
        version = self._model.info.version
        lease_token = uuid.uuid4().hex
        # Read while claiming: the upload is immutable, so reading it before the claim changes
        # nothing but the wait. Only a claimed prediction uses it; a duplicate delivery wastes one
        # object read (a class B operation), and what the read raised is raised below, as before.
        read = _Timed(self._reader.read, request.image_uri)
        image_read: Future = self._image_reads.submit(read)
        if request.created is not None:  # a first publish: the claim needs no read
            self._store.know_created(request.prediction_id, request.created.document,
                                     request.created.update_time)
        claim = _Timed(self._store.claim, request.prediction_id, version, self._lease_seconds,
                       self._clock(), lease_token)
        try:
            claimed = claim()
        except UnknownPrediction as exc:
            log.warning("message for an unknown prediction acknowledged",
                        extra={**context, "reason": exc.message})
            return "unknown"
        self._observe("claim", claim.seconds)
        if not claimed.run:
            if claimed.expired:
                log.info("prediction not run: its deadline passed", extra={
                    **context, "deadline_at": claimed.document["deadline_at"]})
            return self._redelivered_final(request, context)
        inference: Inference | None = None
        with self.leases.hold(request.prediction_id, lease_token):
            try:
                image = image_read.result()
                self._observe("image_read", read.seconds)
                inference = self._predict_one(image)
                result = inference.result
            except PredictionFailure as failure:
                result = failure
            except Exception:
                # Transient: give the claim back so Pub/Sub's redelivery can run it at once.
                self._release(request.prediction_id, lease_token, context)
                raise
        now = self._clock()
        spent = timings(claimed.document, inference, now, (pushed.published_at, received))
        if isinstance(result, PredictionFailure):
            outcome = run_outcome(model_version=version, timings=spent, error=(result.code, result.message))
        else:
            outcome = run_outcome(model_version=version, timings=spent, result=result)
        finish = _Timed(self._store.finish, request.prediction_id, outcome, self._lease_seconds, now)
        wrote, final = finish()
        self._observe("finish", finish.seconds)
        if wrote:
            # One line per prediction; Cloud Logging's log-based metrics read queue_ms and total_ms.
            log.info("prediction finished", extra={**context, "status": final["status"],
                                                   "model_version": version, **spent})
            if self._metrics:
                self._metrics.observe_prediction(self._model_name, final["status"], spent)
        if wrote and callback_pending(final):
            self._call_back(final, context)
        return final["status"]

    def _redelivered_final(self, request: PredictionMessage, context: dict) -> str:
        """A final prediction delivered again: send its callback if that is still owed."""
        document = self._store.claim_callback(request.prediction_id, self._lease_seconds, self._clock())
        if document is None:
            log.info("redelivery of a finished prediction ignored", extra=context)
            return "duplicate"
        self._call_back(document, context)
        return "callback"

    def _call_back(self, document: dict, context: dict) -> None:
        result = self._notifier.notify(document["callback_url"], public_view(document))
        try:
            self._store.record_callback(document["id"], self._clock(), result.delivered, result.error)
        except Exception:  # the document still says pending: the reconciler retries
            log.exception("could not record a callback's outcome", extra=context)
