"""The Pub/Sub message that asks a model service for a prediction: encoded by the
API here, decoded here by the model services and by the dead-letter handler.

The data is a JSON object; the attributes repeat the prediction id and the model,
so that a message can be routed and logged without parsing its data.

A first publish also carries the document as the API created it and the update
time Firestore gave that create ("created"). A model service claims the
prediction with one write conditional on that update time, instead of reading
the document first; if anything has written the document since (a redelivery
claimed it, a cancel), the condition fails and the claim is decided on a read,
as for a message without it. The reconciler's publishes carry none.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime


class MalformedMessage(ValueError):
    """A push envelope that will never decode: the receiver answers 400."""


@dataclass(frozen=True)
class CreatedDocument:
    """A prediction document as the API created it, and the update time of that create
    (RFC 3339, to the nanosecond, as Firestore returned it)."""

    document: dict
    update_time: str


def _to_json(value: object) -> object:
    if isinstance(value, datetime):
        return {"$timestamp": value.isoformat()}
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return value


def _from_json(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$timestamp"}:
            return datetime.fromisoformat(value["$timestamp"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _created(value: object, prediction_id: str) -> CreatedDocument | None:
    """The created document of a message's data, or None: it only spares a read, so a message
    whose copy is missing, malformed or of another prediction is decided on a read instead."""
    if not isinstance(value, dict) or not isinstance(value.get("document"), dict):
        return None
    update_time = _text(value.get("update_time"))
    try:
        document = _from_json(value["document"])
    except (TypeError, ValueError):
        return None
    if update_time is None or document.get("id") != prediction_id:
        return None
    return CreatedDocument(document, update_time)


@dataclass(frozen=True)
class PredictionMessage:
    prediction_id: str
    model: str
    # None only in a message that names just its prediction (the dead-letter
    # handler accepts those; a model service needs the image).
    image_uri: str | None
    content_type: str | None = None
    callback_url: str | None = None
    created: CreatedDocument | None = None

    @classmethod
    def for_document(cls, document: dict, created_update_time: str | None = None) -> PredictionMessage:
        """The message for document; with the update time of its create, carrying it as created."""
        created = CreatedDocument(document, created_update_time) if created_update_time else None
        return cls(prediction_id=document["id"], model=document["model"], image_uri=document.get("image_uri"),
                   content_type=document.get("content_type"), callback_url=document.get("callback_url"),
                   created=created)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        """(data, attributes), as published."""
        data = {"id": self.prediction_id, "model": self.model, "image_uri": self.image_uri,
                "content_type": self.content_type, "callback_url": self.callback_url}
        if self.created is not None:
            data["created"] = {"document": _to_json(self.created.document),
                               "update_time": self.created.update_time}
        # Compact: with the created copy a message nears Pub/Sub's 1,000 billed bytes.
        return (json.dumps(data, separators=(",", ":")).encode(),
                {"prediction_id": self.prediction_id, "model": self.model})


@dataclass(frozen=True)
class PushedMessage:
    """A message as a push subscription delivers it."""

    prediction: PredictionMessage
    message_id: str | None
    attributes: dict[str, str] = field(default_factory=dict)
    # When Pub/Sub accepted the publish (the envelope's publishTime): where a delivery's wait began.
    published_at: datetime | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp as Pub/Sub writes it (UTC, "Z", up to nanoseconds); None if it is not
    one: it only measures the delivery, so a message is never refused for it."""
    text = _text(value)
    if text is None:
        return None
    head, dot, fraction = text.rstrip("Zz").partition(".")
    try:  # datetime keeps microseconds: the rest of the nanoseconds dropped
        parsed = datetime.fromisoformat(f"{head}.{fraction[:6]}" if dot and fraction.isdigit() else head)
    except ValueError:
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or UTC)


def envelope_parts(envelope: object) -> tuple[dict, dict, dict]:
    """(message, data, attributes) of a Pub/Sub push envelope (the parsed JSON body of the push
    request), data decoded from base64 JSON."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise MalformedMessage("expected a Pub/Sub push envelope: a JSON object with a 'message' object")
    message = envelope["message"]
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedMessage("message.attributes must be an object")
    try:
        data = json.loads(base64.b64decode(message.get("data") or "", validate=True) or b"{}")
    except (binascii.Error, ValueError):
        raise MalformedMessage("message.data is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise MalformedMessage("message.data must encode a JSON object")
    return message, data, attributes


def decode_push(envelope: object) -> PushedMessage:
    """The message in a Pub/Sub push envelope (the parsed JSON body of the push request)."""
    message, data, attributes = envelope_parts(envelope)
    prediction_id = _text(data.get("id")) or _text(attributes.get("prediction_id"))
    model = _text(data.get("model")) or _text(attributes.get("model"))
    missing = [name for name, value in (("id", prediction_id), ("model", model)) if value is None]
    if missing:
        raise MalformedMessage(f"the message names no {' and no '.join(missing)}")
    prediction = PredictionMessage(prediction_id=prediction_id, model=model,
                                   image_uri=_text(data.get("image_uri")),
                                   content_type=_text(data.get("content_type")),
                                   callback_url=_text(data.get("callback_url")),
                                   created=_created(data.get("created"), prediction_id))
    return PushedMessage(prediction, _text(message.get("messageId")) or _text(message.get("message_id")),
                         {str(key): str(value) for key, value in attributes.items()},
                         _timestamp(message.get("publishTime") or message.get("publish_time")))
