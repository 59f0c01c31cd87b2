"""What the API does with an accepted request, independent of HTTP and of GCP."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol
from urllib.parse import urlsplit

from .config import Settings
from .errors import BackendUnavailable, InvalidRequest, NotFound
from . import recovery
from .images import Upload

log = logging.getLogger(__name__)

PUBLIC_FIELDS = (
    "id", "model", "model_version", "status", "result", "error",
    "created_at", "started_at", "completed_at",
)


class UploadStore(Protocol):
    def put(self, object_name: str, data: bytes, content_type: str) -> str: ...
    def delete(self, object_name: str) -> None: ...


class PredictionStore(Protocol):
    def create(self, document: dict) -> None: ...
    def delete(self, prediction_id: str) -> None: ...
    def get(self, prediction_id: str) -> dict | None: ...
    def wait_until_final(self, prediction_id: str, timeout: float) -> dict | None: ...
    def transact(self, prediction_id: str, decide: Callable[[dict | None], tuple[dict | None, str]]) -> str: ...
    def overdue(self, now: datetime, limit: int) -> list[dict]: ...
    def model_versions(self) -> list[dict]: ...


class Publisher(Protocol):
    def publish(self, model: str, payload: dict, attributes: dict[str, str]) -> str: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def prediction_message(document: dict) -> tuple[dict, dict[str, str]]:
    """The Pub/Sub message (payload, attributes) that asks a model service to run a prediction."""
    payload = {key: document.get(key) for key in ("id", "model", "image_uri", "content_type", "callback_url")}
    return payload, {"prediction_id": document["id"], "model": document["model"]}


def public_view(document: dict) -> dict:
    """The fields a client sees, with timestamps as ISO 8601 strings."""
    view = {}
    for field in PUBLIC_FIELDS:
        value = document.get(field)
        view[field] = value.isoformat() if isinstance(value, datetime) else value
    return view


class PredictionService:
    def __init__(self, settings: Settings, uploads: UploadStore, store: PredictionStore,
                 publisher: Publisher, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.settings = settings
        self._uploads = uploads
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._new_id = new_id

    def check_model(self, model: str) -> None:
        if model not in self.settings.models:
            raise NotFound(f"unknown model {model!r}; served models: {', '.join(self.settings.models)}")

    def check_callback_url(self, callback_url: str | None) -> str | None:
        if not callback_url:
            return None
        parts = urlsplit(callback_url)
        schemes = ("https", "http") if self.settings.callback_allow_http else ("https",)
        if parts.scheme not in schemes or not parts.netloc or len(callback_url) > 2048:
            raise InvalidRequest(
                f"callback_url must be an absolute {' or '.join(schemes)} URL of at most 2048 characters"
            )
        return callback_url

    def submit(self, model: str, images: list[Upload], callback_url: str | None) -> list[dict]:
        """Store, record and publish each image. All-or-nothing per image.

        Every check on the request has passed before this is called, so a failure
        here is the backend's: the failing image's writes are undone, and the ids
        of the images already queued are reported so the client does not resend them.
        """
        self.check_model(model)
        accepted: list[dict] = []
        for image in images:
            try:
                accepted.append(self._submit_one(model, image, callback_url))
            except BackendUnavailable as exc:
                exc.details["accepted"] = [document["id"] for document in accepted]
                raise
        return accepted

    def _submit_one(self, model: str, image: Upload, callback_url: str | None) -> dict:
        prediction_id = self._new_id()
        object_name = f"uploads/{model}/{prediction_id}"
        now = self._clock()
        image_uri = self._uploads.put(object_name, image.data, image.content_type)
        document = {
            "id": prediction_id,
            "model": model,
            "model_version": None,
            "status": "queued",
            "result": None,
            "error": None,
            "created_at": now,
            "started_at": None,
            "completed_at": None,
            "expire_at": now + timedelta(days=self.settings.prediction_ttl_days),
            "image_uri": image_uri,
            "content_type": image.content_type,
            "size_bytes": len(image.data),
            "filename": image.filename,
            "callback_url": callback_url,
            "callback": None,
            "attempts": 0,
            "redeliveries": 0,
            # Overdue from then on unless a model service claims it first: the
            # reconciler publishes it again (see recovery.py).
            "reconcile_at": now + timedelta(seconds=self.settings.redeliver_after_seconds),
        }
        try:
            self._store.create(document)
        except BackendUnavailable:
            self._undo(object_name, None)
            raise
        try:
            self._publisher.publish(model, *prediction_message(document))
        except BackendUnavailable:
            self._undo(object_name, prediction_id)
            raise
        log.info("prediction queued", extra={"prediction_id": prediction_id, "model": model,
                                              "size_bytes": len(image.data)})
        return document

    def _undo(self, object_name: str, prediction_id: str | None) -> None:
        try:
            if prediction_id:
                self._store.delete(prediction_id)
            self._uploads.delete(object_name)
        except Exception:  # the original failure matters more; leave a trace of this one
            log.exception("could not undo a partially accepted upload",
                          extra={"object_name": object_name, "prediction_id": prediction_id})

    def get(self, prediction_id: str, wait_seconds: float = 0) -> dict:
        document = self._store.get(prediction_id)
        if document is None:
            raise NotFound(f"no prediction with id {prediction_id!r}")
        if wait_seconds > 0 and document.get("status") not in recovery.FINAL_STATUSES:
            document = self._store.wait_until_final(prediction_id, wait_seconds) or document
        return public_view(document)

    def fail_undelivered(self, prediction_id: str, model: str, delivery_attempts: int | None) -> str:
        """A dead-lettered message: fail the prediction if it was really tried, else leave it to the reconciler."""
        now = self._clock()
        action = self._store.transact(prediction_id, lambda document: recovery.dead_letter(
            document, now, self.settings.recovery, delivery_attempts))
        log.warning("dead-lettered prediction", extra={
            "prediction_id": prediction_id, "model": model, "action": action,
            "delivery_attempts": delivery_attempts})
        return action

    def reconcile(self) -> dict[str, int]:
        """One pass over overdue predictions: publish again, fail, or leave each. Counts by action."""
        now = self._clock()
        policy = self.settings.recovery
        counts: dict[str, int] = {}
        for document in self._store.overdue(now, self.settings.reconcile_batch_size):
            _, planned = recovery.reconcile(document, now, policy)
            if planned in recovery.PUBLISHING_ACTIONS:
                # Published before the document is updated: a failure here leaves it
                # overdue for the next pass; a duplicate message is harmless.
                try:
                    self._publisher.publish(document["model"], *prediction_message(document))
                except BackendUnavailable:
                    counts["publish_failed"] = counts.get("publish_failed", 0) + 1
                    continue
            action = self._store.transact(document["id"], lambda fresh: recovery.reconcile(fresh, now, policy))
            counts[action] = counts.get(action, 0) + 1
            if action != recovery.NOT_DUE:
                log.info("reconciled prediction", extra={
                    "prediction_id": document["id"], "model": document.get("model"), "action": action,
                    "status": document.get("status"), "attempts": document.get("attempts"),
                    "redeliveries": document.get("redeliveries")})
        return counts

    def models(self) -> list[dict]:
        """The configured models, with the versions their services reported when loaded."""
        reported: dict[str, list[dict]] = {}
        for version in self._store.model_versions():
            reported.setdefault(version.get("model"), []).append(version)
        listing = []
        for name in self.settings.models:
            versions = sorted(reported.get(name, []), key=lambda v: v.get("version", 0))
            kinds = {v.get("kind") for v in versions if v.get("kind")}
            listing.append({
                "name": name,
                "kind": kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "unknown"),
                "versions": [
                    {key: (value.isoformat() if isinstance(value, datetime) else value)
                     for key, value in v.items() if key != "model"}
                    for v in versions
                ],
            })
        return listing
