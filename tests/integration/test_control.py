"""Cancel, deadlines and the list of one's own predictions, on the real emulators.

A model service is stopped (and kept down: the stack's supervisor is told to
forget it) while its predictions are cancelled or miss their deadline; once it
is back, its log must show no batch at all, though the message reached it: it
sends the callback of the final prediction.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import requests
from inference_contract.lifecycle import DEADLINE_EXCEEDED
from inference_contract.predictions import CANCELLED, FAILED, QUEUED

from scripts.fault_injection import CallbackReceiver
from tests.images import tabby_bytes
from tests.integration.client import HEADERS, firestore_document, post_images, wait_final
from tests.integration.test_security import create_key

pytestmark = pytest.mark.integration

MODEL = "dog"  # no other test sends to it meanwhile: any batch in its log would be ours


def tabby() -> tuple[str, bytes, str]:
    return ("tabby.jpg", tabby_bytes(), "image/jpeg")


@contextlib.contextmanager
def model_service_down(stack, model: str):
    """The model service stopped for the block, then started again and ready. Yields a
    function that reads the lines its log gained since it was started again."""
    process = stack.model_processes[model]
    stack.supervisor.forget(process)  # first, so that it is not restarted behind our back
    process.stop()
    offset = process.log_path.stat().st_size
    restarted = {}

    def log_since_restart() -> list[dict]:
        with open(process.log_path, "rb") as log:
            log.seek(restarted.get("offset", offset))
            lines = log.read().decode(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    try:
        yield log_since_restart
    finally:
        restarted["offset"] = process.log_path.stat().st_size
        process.start()
        stack.supervisor.watch(process)
        process.wait_http(f"{stack.model_urls[model]}/healthz", stack.config.model_ready_timeout)


def _cancel(stack, prediction_id: str, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{stack.api_url}/v1/predictions/{prediction_id}:cancel",
                         headers=HEADERS if headers is None else headers, timeout=30)


def _wait_for_callback(receiver: CallbackReceiver, prediction_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in list(receiver.received):
            if received["id"] == prediction_id:
                return received["body"]
        time.sleep(0.2)
    raise AssertionError(f"no callback for {prediction_id} within {timeout:.0f} s: {receiver.received}")


def _assert_never_run(lines: list[dict], prediction_id: str) -> None:
    assert [line for line in lines if line.get("message") == "batch"] == [], lines
    assert not [line for line in lines if line.get("prediction_id") == prediction_id
                and line.get("message") == "prediction finished"], lines
    # The message did reach the model service: it sent the final prediction's callback.
    assert any(line.get("prediction_id") == prediction_id and line.get("message") == "callback sent"
               for line in lines), lines


def test_a_queued_prediction_cancelled_before_a_claim_ends_cancelled_and_is_never_run(stack):
    receiver = CallbackReceiver()
    try:
        with model_service_down(stack, MODEL) as log_since_restart:
            response = post_images(stack, MODEL, tabby(), callback_url=receiver.url)
            assert response.status_code == 202, response.text
            prediction_id = response.json()["id"]
            cancelled = _cancel(stack, prediction_id)
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == CANCELLED
            again = _cancel(stack, prediction_id)  # idempotent
            assert again.status_code == 200 and again.json() == cancelled.json()
        final = wait_final(f"{stack.api_url}/v1/predictions/{prediction_id}", timeout=30)
        assert final["status"] == CANCELLED and final["result"] is None, final
        called_back = _wait_for_callback(receiver, prediction_id)
        assert called_back["status"] == CANCELLED
        stored = firestore_document(stack, prediction_id)
        assert stored["attempts"] == 0 and stored["started_at"] is None
        _assert_never_run(log_since_restart(), prediction_id)
    finally:
        receiver.close()


def test_a_prediction_past_its_deadline_fails_deadline_exceeded_and_is_never_run(stack):
    receiver = CallbackReceiver()
    try:
        with model_service_down(stack, MODEL) as log_since_restart:
            response = post_images(stack, MODEL, tabby(), callback_url=receiver.url, deadline_seconds="1")
            assert response.status_code == 202, response.text
            prediction_id = response.json()["id"]
            time.sleep(2)  # past the deadline while no model service can start it
        final = wait_final(f"{stack.api_url}/v1/predictions/{prediction_id}", timeout=60)
        assert final["status"] == FAILED and final["error"]["code"] == DEADLINE_EXCEEDED, final
        assert final["deadline_at"] and final["started_at"] is None
        assert _wait_for_callback(receiver, prediction_id)["error"]["code"] == DEADLINE_EXCEEDED
        assert firestore_document(stack, prediction_id)["attempts"] == 0
        _assert_never_run(log_since_restart(), prediction_id)
        # Not too late: a deadline that is not reached changes nothing.
        response = post_images(stack, MODEL, tabby(), deadline_seconds="60")
        assert wait_final(response.json()["status_url"], timeout=60)["status"] == "succeeded"
    finally:
        receiver.close()


def _list(stack, headers: dict, **query) -> dict:
    response = requests.get(f"{stack.api_url}/v1/predictions", params=query, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_second_key_sees_none_of_the_first_keys_predictions_and_cannot_cancel_them(stack):
    first = {"X-API-Key": create_key(stack, "list-first", 600)}
    second = {"X-API-Key": create_key(stack, "list-second", 600)}
    response = post_images(stack, "tiny-test", tabby(), tabby(), tabby(), headers=first)
    assert response.status_code == 202, response.text
    ids = [p["id"] for p in response.json()["predictions"]]
    for prediction_id in ids:
        wait_final(f"{stack.api_url}/v1/predictions/{prediction_id}", timeout=60, headers=first)

    # Newest first, two pages, on the emulator's query with the real adapter.
    page = _list(stack, first, page_size=2)
    assert [p["id"] for p in page["predictions"]] == ids[::-1][:2] and page["next_page_token"]
    rest = _list(stack, first, page_size=2, page_token=page["next_page_token"])
    assert [p["id"] for p in rest["predictions"]] == ids[:1] and rest["next_page_token"] is None
    succeeded = _list(stack, first, model="tiny-test", status="succeeded")["predictions"]
    assert [p["id"] for p in succeeded] == ids[::-1]
    assert _list(stack, first, status=QUEUED)["predictions"] == []

    assert _list(stack, second) == {"predictions": [], "next_page_token": None}
    assert _list(stack, second, model="tiny-test", status="succeeded")["predictions"] == []
    theirs = _cancel(stack, ids[0], headers=second)
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    # Final: the owner is told why it cannot be cancelled.
    mine = _cancel(stack, ids[0], headers=first)
    assert mine.status_code == 409 and mine.json()["error"] == {
        "code": "not_cancellable", "message": mine.json()["error"]["message"], "status": "succeeded"}


def test_a_model_service_that_sees_a_prediction_after_its_deadline_fails_it_without_running(stack):
    """The model service's side alone: the document is kept out of the reconciler's sight."""
    import base64
    import uuid
    from datetime import UTC, datetime, timedelta

    from google.cloud import firestore, storage
    from inference_contract import lifecycle
    from inference_contract.messages import PredictionMessage

    prediction_id = uuid.uuid4().hex
    name = f"uploads/{MODEL}/{prediction_id}"
    storage.Client(project=stack.config.project).bucket(stack.config.uploads_bucket).blob(name) \
        .upload_from_string(tabby_bytes(), content_type="image/jpeg")
    created = datetime.now(UTC) - timedelta(seconds=5)
    document = lifecycle.new_prediction(
        prediction_id=prediction_id, model=MODEL, now=created, expire_at=created + timedelta(days=1),
        image_uri=f"gs://{stack.config.uploads_bucket}/{name}", content_type="image/jpeg",
        size_bytes=len(tabby_bytes()), filename="tabby.jpg", callback_url=None, api_key_id=stack.api_key_id,
        redeliver_after=timedelta(seconds=5), deadline=timedelta(seconds=1))
    document["reconcile_at"] = created + timedelta(hours=1)  # only the model service can see it late
    firestore.Client(project=stack.config.project).collection("predictions").document(prediction_id) \
        .create(document)
    log_path = stack.model_processes[MODEL].log_path
    offset = log_path.stat().st_size
    data, attributes = PredictionMessage.for_document(document).encode()
    envelope = {"message": {"data": base64.b64encode(data).decode(), "messageId": f"late-{prediction_id}",
                            "attributes": attributes},
                "subscription": "projects/test-project/subscriptions/direct"}
    assert requests.post(f"{stack.model_urls[MODEL]}/", json=envelope, timeout=60).status_code == 204
    stored = firestore_document(stack, prediction_id)
    assert stored["status"] == FAILED and stored["error"]["code"] == DEADLINE_EXCEEDED, stored
    assert stored["attempts"] == 0 and stored["started_at"] is None
    with open(log_path, "rb") as log:
        log.seek(offset)
        lines = [json.loads(line) for line in log.read().decode().splitlines() if line.startswith("{")]
    assert [line for line in lines if line.get("message") == "batch"] == [], lines
    assert any(line.get("prediction_id") == prediction_id
               and line.get("message") == "prediction not run: its deadline passed" for line in lines), lines
