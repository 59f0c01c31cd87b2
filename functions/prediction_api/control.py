"""What a client does with predictions it already submitted: cancel one, list its own.

Apart from service.py (which accepts predictions) so that each has one reason to
change. Ownership is the same rule as for reads: with API keys on, another key's
prediction is not found (404), never forbidden, so ids cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from inference_contract import lifecycle
from inference_contract.predictions import STATUSES, public_view

from .config import Settings
from .errors import InvalidRequest, NotCancellable, NotFound

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def parse_page_size(page_size: str | None) -> int:
    """A listing's page_size query parameter (predictions and jobs alike)."""
    try:
        size = DEFAULT_PAGE_SIZE if page_size is None else int(page_size)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return size


MIN_DEADLINE_SECONDS = 1


class ListingStore(Protocol):
    def transact(self, prediction_id: str,
                 decide: Callable[[dict | None], tuple[dict | None, object]]) -> object: ...
    def list_owned(self, api_key_id: str | None, model: str | None, status: str | None,
                   limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """Up to limit predictions of api_key_id (None: those made without a key), newest
        first (created_at, then id, both descending), strictly after the cursor."""


def parse_deadline(raw: str | None, settings: Settings) -> timedelta | None:
    """deadline_seconds of a submit: whole seconds from 1 to the maximum prediction age
    (beyond it the reconciler fails the prediction as timed_out anyway)."""
    if raw is None or raw == "":
        return None
    upper = settings.max_prediction_age_seconds
    try:
        seconds = int(raw)
    except ValueError:
        seconds = None
    if seconds is None or not MIN_DEADLINE_SECONDS <= seconds <= upper:
        raise InvalidRequest(f"deadline_seconds must be a whole number of seconds from "
                             f"{MIN_DEADLINE_SECONDS} to {upper}, got {raw[:40]!r}")
    return timedelta(seconds=seconds)


def encode_page_token(document: dict) -> str:
    cursor = {"c": document["created_at"].isoformat(), "i": document["id"]}
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The cursor a page token carries; a token this API did not issue is a 400."""
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_at, prediction_id = datetime.fromisoformat(cursor["c"]), cursor["i"]
        if not isinstance(prediction_id, str) or created_at.tzinfo is None:
            raise ValueError
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidRequest("page_token is not one this API issued; start again without it") from None
    return created_at, prediction_id


class PredictionControl:
    def __init__(self, settings: Settings, store: ListingStore, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock

    def cancel(self, prediction_id: str, api_key_id: str | None, valid_id: bool = True) -> dict:
        """Cancel a queued prediction; the public view of the cancelled one (again, if it was already).

        NotFound for an unknown id or another key's prediction; NotCancellable with the
        current status for one running or final otherwise.
        """
        missing = NotFound(f"no prediction with id {prediction_id!r}")
        if not valid_id:
            raise missing
        now = self._clock()

        def decide(document: dict | None) -> tuple[dict | None, dict]:
            if document is None or (api_key_id is not None and document.get("api_key_id") != api_key_id):
                raise missing
            return lifecycle.cancel(document, now)

        try:
            document = self._store.transact(prediction_id, decide)
        except lifecycle.NotCancellable as exc:
            raise NotCancellable(exc.message, status=exc.status) from None
        log.info("prediction cancelled", extra={"prediction_id": prediction_id,
                                                "model": document.get("model")})
        return public_view(document)

    def list_page(self, api_key_id: str | None, model: str | None, status: str | None,
             page_size: str | None, page_token: str | None) -> dict:
        """One page of the caller's predictions, newest first, and the token of the next page
        (None on the last)."""
        if model is not None and model not in self.settings.models:
            raise InvalidRequest(f"unknown model {model!r}; served models: {', '.join(self.settings.models)}")
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got {status[:40]!r}")
        size = parse_page_size(page_size)
        after = decode_page_token(page_token) if page_token else None
        documents = self._store.list_owned(api_key_id, model, status, size + 1, after)
        page = documents[:size]
        return {"predictions": [public_view(document) for document in page],
                "next_page_token": encode_page_token(page[-1]) if len(documents) > size else None}
