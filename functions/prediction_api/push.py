"""Parsing of Pub/Sub push envelopes sent to the dead-letter handler."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from .errors import InvalidEnvelope

# Real Pub/Sub sets this on dead-lettered messages; the emulator does not.
DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True)
class DeadLetter:
    prediction_id: str
    model: str
    delivery_attempts: int | None


def parse_dead_letter(envelope: object) -> DeadLetter:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise InvalidEnvelope("expected a Pub/Sub push envelope: a JSON object with a 'message' object")
    message = envelope["message"]
    attributes = message.get("attributes") or {}
    try:
        payload = json.loads(base64.b64decode(message.get("data") or "", validate=True) or b"{}")
    except (binascii.Error, ValueError):
        raise InvalidEnvelope("message.data is not base64-encoded JSON") from None
    if not isinstance(payload, dict):
        raise InvalidEnvelope("message.data must encode a JSON object")
    prediction_id = attributes.get("prediction_id") or payload.get("id")
    model = attributes.get("model") or payload.get("model")
    if not isinstance(prediction_id, str) or not prediction_id or not isinstance(model, str):
        raise InvalidEnvelope("the message names no prediction id and model")
    count = attributes.get(DELIVERY_COUNT_ATTRIBUTE)
    return DeadLetter(prediction_id, model, int(count) if str(count or "").isdigit() else None)
