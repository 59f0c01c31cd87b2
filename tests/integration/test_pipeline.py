"""The whole path on the real emulators: API → Storage → Pub/Sub push → model service → Firestore."""

from __future__ import annotations

import json
import time

import pytest
import requests

from scripts.fault_injection import CallbackReceiver
from tests.images import converted, corrupt_png, sample, tabby_bytes, truncated_jpeg
from tests.integration.client import HEADERS, firestore_document, post_images, push_envelope, wait_final

pytestmark = pytest.mark.integration


def tabby() -> tuple[str, bytes, str]:
    return ("tabby.jpg", tabby_bytes(), "image/jpeg")


def test_upload_comes_out_of_firestore_succeeded(stack):
    response = post_images(stack, "tiny-test", tabby())
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["model"] == "tiny-test"
    assert accepted["status_url"] == f"{stack.api_url}/v1/predictions/{accepted['id']}"
    final = wait_final(accepted["status_url"])
    assert final["status"] == "succeeded", final
    assert final["model_version"] == 1 and final["error"] is None
    assert len(final["result"]["top_k"]) == 5
    assert final["result"]["weights"].startswith("random")
    assert final["result"]["precision"] == "float32"  # as its model.json says
    assert final["created_at"] <= final["started_at"] <= final["completed_at"]
    document = firestore_document(stack, accepted["id"])
    assert document["attempts"] == 1 and document["image_uri"].startswith("gs://test-uploads/")
    from google.cloud import storage

    bucket, _, name = document["image_uri"][5:].partition("/")
    stored = storage.Client(project=stack.config.project).bucket(bucket).blob(name).download_as_bytes()
    assert stored == tabby_bytes()


def test_several_images_raw_and_multipart(stack):
    response = post_images(stack, "tiny-test", tabby(),
                           ("tabby.webp", converted(tabby_bytes(), "WEBP"), "image/webp"),
                           ("tabby.gif", converted(tabby_bytes(), "GIF"), "image/gif"))
    assert response.status_code == 202, response.text
    predictions = response.json()["predictions"]
    raw = requests.post(f"{stack.api_url}/v1/models/tiny-test/predictions",
                        data=converted(tabby_bytes(), "PNG"),
                        headers={"Content-Type": "image/png", **HEADERS}, timeout=30)
    assert raw.status_code == 202, raw.text
    finals = [wait_final(p["status_url"]) for p in [*predictions, raw.json()]]
    assert [f["status"] for f in finals] == ["succeeded"] * 4


def test_callback_receives_the_final_document(stack):
    receiver = CallbackReceiver()
    try:
        response = post_images(stack, "tiny-test", tabby(), callback_url=receiver.url)
        assert response.status_code == 202, response.text
        assert receiver.arrived.wait(60), "no callback arrived"
        document = receiver.received[0]["body"]
        assert document["id"] == response.json()["id"]
        assert document["status"] == "succeeded" and len(document["result"]["top_k"]) == 5
    finally:
        receiver.server.shutdown()


@pytest.mark.parametrize("target", ["model service", "dead-letter handler"])
@pytest.mark.parametrize("body", ["not json", json.dumps({"message": {"data": "***"}}),
                                  json.dumps({"message": {"data": "e30="}})])
def test_malformed_push_is_answered_400(stack, target, body):
    url = stack.model_urls["tiny-test"] if target == "model service" else stack.dead_letter_url
    response = requests.post(f"{url}/", data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_envelope"


def test_corrupt_upload_ends_failed(stack):
    response = post_images(stack, "tiny-test", ("cut.jpg", truncated_jpeg(), "image/jpeg"))
    assert response.status_code == 202, response.text
    final = wait_final(response.json()["status_url"])
    assert final["status"] == "failed"
    assert final["error"]["code"] == "invalid_image" and final["result"] is None


def test_redelivered_message_is_not_processed_twice(stack):
    response = post_images(stack, "tiny-test", tabby())
    accepted = response.json()
    wait_final(accepted["status_url"])
    before = firestore_document(stack, accepted["id"])
    payload = {"id": accepted["id"], "model": "tiny-test", "image_uri": before["image_uri"],
               "content_type": "image/jpeg", "callback_url": None}
    # A redelivery straight to the push endpoint, as Pub/Sub would send it.
    direct = requests.post(f"{stack.model_urls['tiny-test']}/", json=push_envelope(payload), timeout=30)
    assert direct.status_code == 204
    # And the same message published again, delivered by the emulator.
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.config.project, "predictions-tiny-test")
    publisher.publish(topic, json.dumps(payload).encode(), prediction_id=accepted["id"],
                      model="tiny-test").result(30)
    log = stack.model_processes["tiny-test"].log_path
    deadline = time.monotonic() + 30
    duplicates = 0
    while duplicates < 2 and time.monotonic() < deadline:
        duplicates = sum(1 for line in log.read_text().splitlines()
                         if accepted["id"] in line and "redelivery of a finished prediction ignored" in line)
        time.sleep(0.2)
    assert duplicates == 2, "the emulator's redelivery was not seen by the model service"
    after = firestore_document(stack, accepted["id"])
    assert after == before and after["attempts"] == 1


def test_service_that_always_fails_ends_failed_through_dead_letter(stack):
    started = time.monotonic()
    response = post_images(stack, "broken", tabby())
    assert response.status_code == 202, response.text
    final = wait_final(response.json()["status_url"], timeout=120)
    assert final["status"] == "failed", final
    assert final["error"]["code"] == "delivery_failed"
    assert "broken" in final["error"]["message"]
    # It was tried (and failed transiently) before it was dead-lettered.
    document = firestore_document(stack, response.json()["id"])
    assert document["attempts"] >= 2
    assert time.monotonic() - started < 120


def _bucket_objects(stack) -> list[str]:
    from google.cloud import storage

    client = storage.Client(project=stack.config.project)
    return sorted(blob.name for blob in client.list_blobs(stack.config.uploads_bucket))


def _prediction_ids(stack) -> list[str]:
    from google.cloud import firestore

    client = firestore.Client(project=stack.config.project)
    return sorted(snapshot.id for snapshot in client.collection("predictions").stream())


REJECTED = [
    ("unknown model", 404, "not_found",
     lambda s: post_images(s, "no-such-model", tabby())),
    ("not an image", 400, "invalid_image",
     lambda s: post_images(s, "tiny-test", ("notes.jpg", b"just some text", "image/jpeg"))),
    ("corrupt image", 400, "invalid_image",
     lambda s: post_images(s, "tiny-test", ("broken.png", corrupt_png(), "image/png"))),
    ("too many parts", 400, "too_many_images",
     lambda s: post_images(s, "tiny-test", *[tabby()] * 17)),
    ("over the size limit", 413, "payload_too_large",
     lambda s: post_images(s, "tiny-test", ("big.jpg", tabby_bytes() + b"\0" * (10 << 20), "image/jpeg"))),
    ("raw body over the size limit", 413, "payload_too_large",
     lambda s: requests.post(f"{s.api_url}/v1/models/tiny-test/predictions",
                             data=b"\xff\xd8" + b"\0" * (10 << 20),
                             headers={"Content-Type": "image/jpeg", **HEADERS})),
    ("wrong content type", 415, "unsupported_media_type",
     lambda s: requests.post(f"{s.api_url}/v1/models/tiny-test/predictions",
                             json={"image": "base64?"}, headers=HEADERS, timeout=30)),
    ("unsupported image type", 415, "unsupported_media_type",
     lambda s: requests.post(f"{s.api_url}/v1/models/tiny-test/predictions",
                             data=b"II*\0", headers={"Content-Type": "image/tiff", **HEADERS}, timeout=30)),
]


def test_rejected_requests_leave_no_trace(stack):
    from google.cloud import pubsub_v1

    project = stack.config.project
    subscriber = pubsub_v1.SubscriberClient()
    probe = subscriber.subscription_path(project, "rejected-requests-probe")
    topic = pubsub_v1.PublisherClient().topic_path(project, "predictions-tiny-test")
    subscriber.create_subscription(request={"name": probe, "topic": topic})
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    try:
        for name, status, code, send in REJECTED:
            response = send(stack)
            assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
            assert response.json()["error"]["code"] == code, name
            assert response.json()["error"]["message"], name
        assert _bucket_objects(stack) == objects
        assert _prediction_ids(stack) == predictions
        pulled = subscriber.pull(request={"subscription": probe, "max_messages": 10}, timeout=10)
        assert list(pulled.received_messages) == []
        # The probe does see a message when one is published: the check above can fail.
        accepted = post_images(stack, "tiny-test", tabby())
        assert accepted.status_code == 202
        pulled = subscriber.pull(request={"subscription": probe, "max_messages": 10}, timeout=10)
        assert len(pulled.received_messages) == 1
        wait_final(accepted.json()["status_url"])
    finally:
        subscriber.delete_subscription(request={"subscription": probe})


def test_unknown_prediction_is_404_and_models_are_listed(stack):
    missing = requests.get(f"{stack.api_url}/v1/predictions/does-not-exist", headers=HEADERS, timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    models = {m["name"]: m for m in requests.get(f"{stack.api_url}/v1/models", headers=HEADERS,
                                                 timeout=10).json()["models"]}
    assert set(models) == set(stack.config.models)
    assert models["efficientnet-lite0"]["kind"] == "classifier"
    assert models["cat"]["kind"] == "detector" and models["dog"]["kind"] == "detector"
    version = models["efficientnet-lite0"]["versions"][0]
    assert version["version"] == 1 and version["pretrained"] is True
    assert models["tiny-test"]["versions"][0]["pretrained"] is False
    assert requests.get(f"{stack.api_url}/healthz", timeout=10).json() == {"status": "ok"}


def test_sample_photo_reaches_detector(stack):
    response = post_images(stack, "cat", ("tabby.jpg", sample("tabby").read_bytes(), "image/jpeg"))
    final = wait_final(response.json()["status_url"])
    assert final["status"] == "succeeded"
    assert final["result"]["label"] == "cat" and final["result"]["match"] is True
