"""Small helpers to drive the local stack the way a client and Pub/Sub would."""

from __future__ import annotations

import base64
import json
import time

import requests
from inference_contract.predictions import FINAL_STATUSES

# The key every request to the API carries: the test stack's development key, set by
# the stack fixture (tests/conftest.py) once the stack is up.
HEADERS: dict[str, str] = {}


def post_images(stack, model: str, *images: tuple[str, bytes, str], headers: dict | None = None,
                **form) -> requests.Response:
    files = [("image", image) for image in images]
    return requests.post(f"{stack.api_url}/v1/models/{model}/predictions", files=files,
                         data=form, headers=headers if headers is not None else HEADERS, timeout=60)


def wait_final(status_url: str, timeout: float = 60.0, headers: dict | None = None) -> dict:
    """Long-poll the status URL until the prediction is final (with the stack's key, or headers)."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{status_url} not final after {timeout:.0f} s: {body}")
        response = requests.get(status_url, params={"wait": min(10, max(1, int(remaining)))},
                                headers=HEADERS if headers is None else headers, timeout=40)
        response.raise_for_status()
        body = response.json()
        if body["status"] in FINAL_STATUSES:
            return body


def push_envelope(payload: dict, message_id: str = "direct-1") -> dict:
    return {"message": {"data": base64.b64encode(json.dumps(payload).encode()).decode(),
                        "messageId": message_id, "attributes": {}},
            "subscription": "projects/test-project/subscriptions/direct"}


def queued_document(prefix: str, model: str = "cat") -> dict:
    """A new prediction's document, as the API creates it, naming an image nobody reads."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from inference_contract.lifecycle import new_prediction

    now = datetime.now(UTC)
    return new_prediction(
        prediction_id=f"{prefix}-{uuid.uuid4().hex}", model=model, now=now,
        expire_at=now + timedelta(days=1), image_uri="gs://b/o", content_type="image/jpeg",
        size_bytes=3, filename=None, callback_url=None, api_key_id=None,
        redeliver_after=timedelta(seconds=30))


def firestore_document(stack, prediction_id: str) -> dict | None:
    from google.cloud import firestore

    snapshot = firestore.Client(project=stack.config.project).collection("predictions") \
        .document(prediction_id).get()
    return snapshot.to_dict() if snapshot.exists else None
