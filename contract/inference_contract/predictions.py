"""The prediction document, as both units read and write it in Firestore."""

from __future__ import annotations

from datetime import datetime

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
# Ended by its owner before a model service started it (POST /v1/predictions/{id}:cancel).
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})

# What a client sees of a prediction: the API's responses and the callbacks' bodies.
PUBLIC_FIELDS = (
    "id", "model", "model_version", "status", "result", "error",
    "created_at", "started_at", "completed_at", "timings", "deadline_at",
)


def public_view(document: dict) -> dict:
    """The fields a client sees, with timestamps as ISO 8601 strings."""
    view = {}
    for field in PUBLIC_FIELDS:
        value = document.get(field)
        view[field] = value.isoformat() if isinstance(value, datetime) else value
    return view


# The `callback` map of a prediction with a callback_url: its delivery's state.
CALLBACK_PENDING = "pending"
CALLBACK_DELIVERED = "delivered"
CALLBACK_FAILED = "failed"


def callback_pending(document: dict) -> bool:
    """Whether the prediction's callback is still owed."""
    return (bool(document.get("callback_url"))
            and (document.get("callback") or {}).get("state") == CALLBACK_PENDING)
