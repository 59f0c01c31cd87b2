"""Parsing of the Pub/Sub push envelope that carries a prediction request."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from .errors import InvalidEnvelope


@dataclass(frozen=True)
class PredictionRequest:
    prediction_id: str
    model: str
    image_uri: str
    callback_url: str | None
    message_id: str | None


def parse_envelope(envelope: object) -> PredictionRequest:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise InvalidEnvelope("expected a Pub/Sub push envelope: a JSON object with a 'message' object")
    message = envelope["message"]
    try:
        payload = json.loads(base64.b64decode(message.get("data") or "", validate=True))
    except (binascii.Error, ValueError):
        raise InvalidEnvelope("message.data is not base64-encoded JSON") from None
    if not isinstance(payload, dict):
        raise InvalidEnvelope("message.data must encode a JSON object")
    missing = [key for key in ("id", "model", "image_uri") if not isinstance(payload.get(key), str)]
    if missing:
        raise InvalidEnvelope(f"message.data lacks {', '.join(missing)}")
    callback = payload.get("callback_url")
    return PredictionRequest(
        prediction_id=payload["id"], model=payload["model"], image_uri=payload["image_uri"],
        callback_url=callback if isinstance(callback, str) and callback else None,
        message_id=message.get("messageId") or message.get("message_id"),
    )
