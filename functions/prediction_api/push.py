"""The push envelopes sent to the dead-letter handler, decoded by the contract's one decoder."""

from __future__ import annotations

from dataclasses import dataclass

from inference_contract.messages import MalformedMessage, decode_push

from .errors import InvalidEnvelope

# Real Pub/Sub sets this on dead-lettered messages; the emulator does not.
DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True)
class DeadLetter:
    prediction_id: str
    model: str
    delivery_attempts: int | None


def parse_dead_letter(envelope: object) -> DeadLetter:
    try:
        pushed = decode_push(envelope)
    except MalformedMessage as exc:
        raise InvalidEnvelope(str(exc)) from None
    count = pushed.attributes.get(DELIVERY_COUNT_ATTRIBUTE, "")
    return DeadLetter(pushed.prediction.prediction_id, pushed.prediction.model,
                      int(count) if count.isdigit() else None)
