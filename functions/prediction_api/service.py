"""What the API does with an accepted request, independent of HTTP and of GCP."""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Protocol

from inference_contract import lifecycle
from inference_contract.callback_targets import ForbiddenTarget, Resolver, check_host, system_resolver
from inference_contract.messages import PredictionMessage
from inference_contract.predictions import FINAL_STATUSES, public_view

from .config import Settings
from .control import PredictionControl
from .errors import BackendUnavailable, Conflict, InvalidRequest, NotFound
from .images import Upload
from .urls import split_url

log = logging.getLogger(__name__)

class UploadStore(Protocol):
    # No delete: the API's account may only create objects (roles/storage.objectCreator);
    # an image whose prediction could not be recorded is removed by the bucket's lifecycle rule.
    def uri(self, object_name: str) -> str: ...
    def put(self, object_name: str, data: bytes, content_type: str) -> str: ...


class PredictionStore(Protocol):
    # The update time of the create, when the store has one: the message carries it, and the
    # model service claims with a write conditional on it instead of a read first.
    def create(self, document: dict) -> str | None: ...
    def delete(self, prediction_id: str) -> None: ...
    def get(self, prediction_id: str) -> dict | None: ...
    def watch(self, prediction_id: str, timeout: float,
              settled: Callable[[dict | None], bool]) -> dict | None:
        """Block until settled(the document, or None when there is none) or timeout
        seconds pass; the latest document (its first read included)."""
    def transact(self, prediction_id: str,
                 decide: Callable[[dict | None], tuple[dict | None, str]]) -> str: ...
    def overdue(self, now: datetime, limit: int) -> list[dict]: ...
    def oldest_queued(self) -> dict | None: ...
    def model_versions(self) -> list[dict]: ...


class IdempotencyStore(Protocol):
    def get(self, record_id: str) -> dict | None: ...
    def create(self, record_id: str, record: dict) -> bool: ...
    def set(self, record_id: str, record: dict) -> None: ...
    def delete(self, record_id: str) -> None: ...


class Publisher(Protocol):
    def publish(self, message: PredictionMessage) -> str: ...


# Ids Firestore accepts and this API issues: no "/", not "." or "..", not __reserved__.
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def valid_prediction_id(prediction_id: str) -> bool:
    return bool(_VALID_ID.match(prediction_id)) and not (
        prediction_id.startswith("__") and prediction_id.endswith("__"))


def request_fingerprint(model: str, images: list[Upload], callback_url: str | None,
                        deadline: timedelta | None = None) -> str:
    """What makes two submits "the same request" for an Idempotency-Key."""
    digest = hashlib.sha256()
    for part in (model, callback_url or "", *(f"{image.content_type}:{hashlib.sha256(image.data).hexdigest()}"
                                              for image in images)):
        digest.update(part.encode() + b"\n")
    if deadline is not None:  # absent from requests without one, so their fingerprints stay as they were
        digest.update(f"deadline:{deadline.total_seconds():.0f}\n".encode())
    return digest.hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


class PredictionService:
    def __init__(self, settings: Settings, uploads: UploadStore, store: PredictionStore,
                 publisher: Publisher, clock: Callable[[], datetime] = utcnow,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                 idempotency: IdempotencyStore | None = None,
                 resolve: Resolver = system_resolver,
                 on_step: Callable[[str, float], None] | None = None) -> None:
        self.settings = settings
        self._uploads, self._store, self._publisher = uploads, store, publisher
        self._idempotency, self._clock, self._new_id, self._resolve = idempotency, clock, new_id, resolve
        # Each accepted image's upload runs here while its document is recorded.
        self._uploading = ThreadPoolExecutor(8, thread_name_prefix="upload")
        self._on_step = on_step  # seconds of each step of a submit: upload, record, publish
        self.control = PredictionControl(settings, store, clock)  # cancel and list

    def check_model(self, model: str) -> None:
        if model not in self.settings.models:
            raise NotFound(f"unknown model {model!r}; served models: {', '.join(self.settings.models)}")

    def check_callback_url(self, callback_url: str | None) -> str | None:
        """The callback URL, if its scheme is allowed and its host is, and resolves only to, public addresses.

        The model service checks the address again when it sends (DNS may have changed).
        """
        if not callback_url:
            return None
        parts = split_url(callback_url, "callback_url")
        schemes = ("https", "http") if self.settings.callback_allow_http else ("https",)
        if parts.scheme not in schemes or not parts.netloc or len(callback_url) > 2048:
            raise InvalidRequest(
                f"callback_url must be an absolute {' or '.join(schemes)} URL of at most 2048 characters"
            )
        if parts.username is not None or parts.password is not None:
            raise InvalidRequest("callback_url must not carry credentials")
        port = parts.port or (443 if parts.scheme == "https" else 80)  # split_url checked its range
        allowed = self.settings.callback_allowed_hosts
        if allowed and (parts.hostname or "").lower() not in allowed:
            raise InvalidRequest("callback_url is refused: this deployment calls back only to "
                                 f"{', '.join(allowed)}")
        try:
            check_host(parts.hostname or "", port, self.settings.callback_allow_loopback, self._resolve)
        except ForbiddenTarget as exc:
            raise InvalidRequest(f"callback_url is refused: {exc}") from None
        return callback_url

    def submit_once(self, model: str, images: list[Upload], callback_url: str | None,
                    api_key_id: str | None, idempotency_key: str | None,
                    deadline: timedelta | None = None) -> tuple[list[dict], bool]:
        """submit(), or with an Idempotency-Key the predictions its first use created: (documents, replayed).

        The same key from the same API key within the window returns the original
        predictions; a different request under it is a Conflict, and so is a retry
        while the first is still being accepted.
        """
        if idempotency_key is None or self._idempotency is None:
            return self.submit(model, images, callback_url, api_key_id, deadline), False
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise InvalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters without spaces")
        record_id = hashlib.sha256(f"{api_key_id or '-'}\n{idempotency_key}".encode()).hexdigest()
        fingerprint = request_fingerprint(model, images, callback_url, deadline)
        now = self._clock()
        window = timedelta(seconds=self.settings.idempotency_window_seconds)
        pending = {"fingerprint": fingerprint, "state": "pending", "prediction_ids": [],
                   "api_key_id": api_key_id, "created_at": now, "expire_at": now + window}
        for _ in range(2):
            # Created first, read only when it is there already: a key's first use (the usual
            # case) costs no Firestore read.
            if self._idempotency.create(record_id, pending):
                break
            existing = self._idempotency.get(record_id)
            if existing is None:
                continue  # the request that held it failed and freed it a moment ago
            if existing["created_at"] + window <= now:
                self._idempotency.delete(record_id)  # expired: the key may be used afresh
                continue
            if existing["fingerprint"] != fingerprint:
                raise Conflict("this Idempotency-Key was used with a different request in the last "
                               f"{self.settings.idempotency_window_seconds // 3600} hours")
            if existing["state"] != "done":
                raise Conflict("a request with this Idempotency-Key is still being accepted; retry shortly")
            documents = [self._store.get(prediction_id) for prediction_id in existing["prediction_ids"]]
            return [d for d in documents if d is not None], True
        else:
            raise Conflict("a request with this Idempotency-Key is still being accepted; retry shortly")
        try:
            documents = self.submit(model, images, callback_url, api_key_id, deadline)
        except BaseException:
            self._idempotency.delete(record_id)
            raise
        self._idempotency.set(record_id, {**pending, "state": "done",
                                          "prediction_ids": [d["id"] for d in documents]})
        return documents, False

    def submit(self, model: str, images: list[Upload], callback_url: str | None,
               api_key_id: str | None = None, deadline: timedelta | None = None) -> list[dict]:
        """Store, record and publish each image. All-or-nothing per image.

        Every check on the request has passed before this is called, so a failure
        here is the backend's: the failing image's writes are undone, and the ids
        of the images already queued are reported so the client does not resend them.
        """
        self.check_model(model)
        accepted: list[dict] = []
        for image in images:
            try:
                accepted.append(self._submit_one(model, image, callback_url, api_key_id, deadline))
            except BackendUnavailable as exc:
                exc.details["accepted"] = [document["id"] for document in accepted]
                raise
        return accepted

    def _submit_one(self, model: str, image: Upload, callback_url: str | None,
                    api_key_id: str | None, deadline: timedelta | None) -> dict:
        prediction_id = self._new_id()
        object_name = f"uploads/{model}/{prediction_id}"
        now = self._clock()
        document = lifecycle.new_prediction(
            prediction_id=prediction_id, model=model, now=now,
            expire_at=now + timedelta(days=self.settings.prediction_ttl_days),
            image_uri=self._uploads.uri(object_name),
            content_type=image.content_type, size_bytes=len(image.data), filename=image.filename,
            callback_url=callback_url, api_key_id=api_key_id,
            redeliver_after=timedelta(seconds=self.settings.redeliver_after_seconds), deadline=deadline)
        # The image is stored while its document is recorded (two round trips at once); the
        # message is published only once both are done, so a model service never reads a
        # document whose image is not there yet. If anything fails, the stored image is left for
        # the uploads bucket's lifecycle rule to delete (the API's account cannot delete objects),
        # and a recorded document is deleted again.
        upload = self._uploading.submit(self._step, "upload", self._uploads.put, object_name, image.data,
                                        image.content_type)
        try:
            created = self._step("record", self._store.create, document)
        except BaseException:
            upload.exception()  # wait for it: nothing of this image is left running
            raise
        try:
            upload.result()
            self._step("publish", self._publisher.publish, PredictionMessage.for_document(document, created))
        except BackendUnavailable:
            self._undo(object_name, prediction_id)
            raise
        log.info("prediction queued", extra={"prediction_id": prediction_id, "model": model,
                                              "size_bytes": len(image.data)})
        return document

    def _step(self, step: str, call: Callable, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            if self._on_step:
                self._on_step(step, time.perf_counter() - started)

    def _undo(self, object_name: str, prediction_id: str) -> None:
        """Forget a prediction that was recorded but never published; its image stays until
        the lifecycle rule."""
        try:
            self._store.delete(prediction_id)
        except Exception:  # the original failure matters more; leave a trace of this one
            log.exception("could not undo a partially accepted upload",
                          extra={"object_name": object_name, "prediction_id": prediction_id})

    def get(self, prediction_id: str, wait_seconds: float = 0, api_key_id: str | None = None,
            until: str = "final") -> dict:
        """The public view of a prediction. With keys on, another key's prediction is not found.

        With wait_seconds, held until it is final (until="final") or its status is no
        longer the one it had on arrival (until="change")."""
        missing = NotFound(f"no prediction with id {prediction_id!r}")
        if not valid_prediction_id(prediction_id):
            raise missing  # Firestore would refuse the id; it cannot be one this API issued

        def visible(document: dict | None) -> bool:
            return document is not None and (api_key_id is None or document.get("api_key_id") == api_key_id)

        if wait_seconds > 0:
            arrival: dict[str, str | None] = {}

            def settled(document: dict | None) -> bool:
                # Missing, another key's, final, or (until="change") no longer as it arrived.
                if not visible(document):
                    return True
                status = document.get("status")
                arrived = arrival.setdefault("status", status)
                return status in FINAL_STATUSES or (until == "change" and status != arrived)

            # The listener's first snapshot is the read (no get before it: one read less).
            document = self._store.watch(prediction_id, wait_seconds, settled)
        else:
            document = self._store.get(prediction_id)
        if not visible(document):
            raise missing
        return public_view(document)

    def fail_undelivered(self, prediction_id: str, model: str, delivery_attempts: int | None) -> str:
        """A dead-lettered message: fail the prediction if it was really tried, else leave it
        to the reconciler."""
        now = self._clock()
        action = self._store.transact(prediction_id, lambda document: lifecycle.dead_letter(
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
            _, planned = lifecycle.reconcile(document, now, policy)
            if planned in lifecycle.PUBLISHING_ACTIONS:
                # Published before the document is updated: a failure here leaves it
                # overdue for the next pass; a duplicate message is harmless.
                try:
                    self._publisher.publish(PredictionMessage.for_document(document))
                except BackendUnavailable:
                    counts["publish_failed"] = counts.get("publish_failed", 0) + 1
                    continue
            action = self._store.transact(document["id"],
                                          lambda fresh: lifecycle.reconcile(fresh, now, policy))
            counts[action] = counts.get(action, 0) + 1
            if action != lifecycle.NOT_DUE:
                log.info("reconciled prediction", extra={
                    "prediction_id": document["id"], "model": document.get("model"), "action": action,
                    "status": document.get("status"), "attempts": document.get("attempts"),
                    "redeliveries": document.get("redeliveries")})
        return counts

    def oldest_queued_age(self) -> float:
        """Seconds since the oldest still-queued prediction was accepted (0 when none), logged
        for Cloud Logging's log-based metric and the local /metrics."""
        document = self._store.oldest_queued()
        age = max(0.0, (self._clock() - document["created_at"]).total_seconds()) if document else 0.0
        log.info("queue age", extra={"oldest_queued_age_seconds": round(age, 3),
                                     "prediction_id": document["id"] if document else None})
        return age

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
