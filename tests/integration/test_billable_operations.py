"""What one prediction asks of Firestore, Cloud Storage and Pub/Sub, counted by the adapters on the
real emulators and read at /metrics of the API function and the model service before and after."""

from __future__ import annotations

import time

import pytest
from inference_contract import billable_operations as billed

from scripts.benchmarks import operations
from scripts.fault_injection import CallbackReceiver
from tests.images import tabby_bytes
from tests.integration.client import post_images, wait_final

pytestmark = pytest.mark.integration


def _units(stack) -> dict[str, str]:
    return {"api": stack.api_url, "model service": stack.model_urls["tiny-test"]}


def _settled(stack, seconds: float = 0.5) -> dict:
    time.sleep(seconds)  # what a unit counts after its answer (a callback's record) is in
    return operations.read_all(_units(stack))


def test_one_prediction_with_a_long_poll(stack):
    before = _settled(stack)
    response = post_images(stack, "tiny-test", ("tabby.jpg", tabby_bytes(), "image/jpeg"))
    assert response.status_code == 202, response.text
    assert wait_final(response.json()["status_url"])["status"] == "succeeded"
    counted = operations.per_prediction(before, _settled(stack), 1)
    api, service = counted["api"], counted["model service"]
    # The POST: the image stored (an insert), its document created, its message published.
    assert api[billed.STORAGE_CLASS_A] == 1 and api[billed.FIRESTORE_WRITE] == 1
    assert api[billed.PUBSUB_MESSAGE] == 1 and api[billed.PUBSUB_BYTES] == billed.PUBSUB_MINIMUM_BILLED_BYTES
    # The long poll: its listener's snapshots (at most: the first, running, succeeded), the first
    # of them its only read of the document (no get before it).
    assert 1 <= api[billed.FIRESTORE_READ] <= 3
    # The push: the claim's write (conditional on the create the message carries: no read), the
    # image read, the finish's write.
    assert service == {**dict.fromkeys(billed.OPERATIONS, 0),
                       billed.FIRESTORE_WRITE: 2, billed.STORAGE_CLASS_B: 1}


def test_one_prediction_with_a_callback(stack):
    receiver = CallbackReceiver()
    try:
        before = _settled(stack)
        response = post_images(stack, "tiny-test", ("tabby.jpg", tabby_bytes(), "image/jpeg"),
                               callback_url=receiver.url)
        assert response.status_code == 202, response.text
        assert receiver.arrived.wait(60), "no callback arrived"
        counted = operations.per_prediction(before, _settled(stack, 1.0), 1)
    finally:
        receiver.close()
    api, service = counted["api"], counted["model service"]
    assert api[billed.FIRESTORE_READ] == 0  # nobody polls
    assert api[billed.STORAGE_CLASS_A] == 1 and api[billed.FIRESTORE_WRITE] == 1
    # The callback's outcome is one more write.
    assert service == {**dict.fromkeys(billed.OPERATIONS, 0),
                       billed.FIRESTORE_WRITE: 3, billed.STORAGE_CLASS_B: 1}
