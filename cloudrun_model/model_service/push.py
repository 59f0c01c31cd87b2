"""The push envelope that carries a prediction request, decoded by the contract's one decoder."""

from __future__ import annotations

from inference_contract.job_messages import ShardMessage, decode_shard_push
from inference_contract.messages import MalformedMessage, PushedMessage, decode_push

from .errors import InvalidEnvelope


def parse_envelope(envelope: object) -> PushedMessage:
    try:
        pushed = decode_push(envelope)
    except MalformedMessage as exc:
        raise InvalidEnvelope(str(exc)) from None
    if pushed.prediction.image_uri is None:
        raise InvalidEnvelope("message.data lacks image_uri")
    return pushed


def parse_shard_envelope(envelope: object) -> tuple[ShardMessage, str | None]:
    """A bulk job's shard message (POST /jobs) and its message id."""
    try:
        return decode_shard_push(envelope)
    except MalformedMessage as exc:
        raise InvalidEnvelope(str(exc)) from None
