"""Security at the edges on the real emulators and the real entry points (functions-framework, gunicorn):
keys and quotas, refused callback targets, signed callbacks, Idempotency-Key, ProxyFix, reserved ids."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from tests.conftest import ROOT
from tests.images import converted, tabby_bytes
from tests.integration.client import HEADERS, post_images, wait_final
from tests.integration.test_pipeline import _bucket_objects, _prediction_ids

pytestmark = pytest.mark.integration


def tabby() -> tuple[str, bytes, str]:
    return ("tabby.jpg", tabby_bytes(), "image/jpeg")


@pytest.fixture
def probe(stack):
    """A subscription on the tiny-test topic: the prediction ids published since the last call.

    The reconciler publishes too (callbacks still owed by earlier tests' predictions), so
    a check for "nothing published" is: no message names a prediction that is new.
    """
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    name = subscriber.subscription_path(stack.config.project, f"security-probe-{os.getpid()}")
    topic = pubsub_v1.PublisherClient().topic_path(stack.config.project, "predictions-tiny-test")
    subscriber.create_subscription(request={"name": name, "topic": topic})

    def published() -> set[str]:
        pulled = subscriber.pull(request={"subscription": name, "max_messages": 100}, timeout=10)
        if pulled.received_messages:
            subscriber.acknowledge(request={"subscription": name,
                                            "ack_ids": [m.ack_id for m in pulled.received_messages]})
        return {m.message.attributes["prediction_id"] for m in pulled.received_messages}

    yield published
    subscriber.delete_subscription(request={"subscription": name})


def create_key(stack, name: str, rate: int) -> str:
    """A key made with the key script, in the stack's own key file."""
    result = subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "api_keys.py"),
                             "--file", os.fspath(stack.config.api_keys_file), "create", "--name", name,
                             "--rate", str(rate)], capture_output=True, text=True, check=True)
    return result.stdout.strip()


BAD_CALLBACKS = [
    "http://169.254.169.254/computeMetadata/v1/",
    "https://metadata.google.internal/x",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/hook", "http://192.168.1.10/hook", "http://172.16.5.4/hook",
    "http://100.64.0.1/hook", "http://224.0.0.1/hook", "http://0.0.0.0/hook",
    "http://[fd00::1]/hook", "http://[fe80::1]/hook", "http://[::ffff:169.254.169.254]/hook",
    "http://[::ffff:10.0.0.1]/hook", "http://does-not-resolve.invalid/hook",
]


def test_private_and_metadata_callbacks_are_400_and_write_nothing_with_loopback_allowed(stack, probe):
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for url in BAD_CALLBACKS:
        response = post_images(stack, "tiny-test", tabby(), callback_url=url)
        assert response.status_code == 400, f"{url}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "callback_url" in error["message"], (url, error)
    raw = requests.post(f"{stack.api_url}/v1/models/tiny-test/predictions",
                        params={"callback_url": "http://169.254.169.254/computeMetadata/v1/"},
                        data=tabby_bytes(), headers={"Content-Type": "image/jpeg", **HEADERS}, timeout=30)
    assert raw.status_code == 400
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
    assert probe() <= set(predictions)
    # The probe sees what is published: the checks above can fail.
    accepted = post_images(stack, "tiny-test", tabby())
    assert accepted.status_code == 202
    assert accepted.json()["id"] in probe()


class SignedReceiver:
    """A receiver that verifies each callback with standardwebhooks, as the README shows."""

    def __init__(self, secret: str) -> None:
        self.verified: list[dict] = []
        self.rejected: list[str] = []
        self.arrived = threading.Event()
        webhook, receiver = Webhook(secret), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    receiver.verified.append(webhook.verify(body, dict(self.headers)))
                    self.send_response(204)
                except Exception as error:  # noqa: BLE001 - anything unverifiable is refused
                    receiver.rejected.append(str(error))
                    self.send_response(400)
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def test_a_signed_callback_is_verified_by_a_standardwebhooks_receiver(stack):
    receiver = SignedReceiver(stack.callback_secret)
    try:
        response = post_images(stack, "tiny-test", tabby(), callback_url=receiver.url)
        assert response.status_code == 202, response.text
        assert receiver.arrived.wait(60), "no callback arrived"
        assert receiver.rejected == []
        assert receiver.verified[0]["id"] == response.json()["id"]
        assert receiver.verified[0]["status"] == "succeeded"
    finally:
        receiver.server.shutdown()
    # A receiver holding another secret refuses it: the signature is real.
    impostor = SignedReceiver("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
    try:
        assert post_images(stack, "tiny-test", tabby(), callback_url=impostor.url).status_code == 202
        assert impostor.arrived.wait(60)
        assert impostor.verified == [] and impostor.rejected == ["No matching signature found"]
    finally:
        impostor.server.shutdown()


def test_without_a_key_401_and_over_the_quota_429_with_retry_after(stack, probe):
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for headers in ({}, {"X-API-Key": "not-a-key"}, {"X-API-Key": "ik_0123456789ab_" + "x" * 43}):
        response = post_images(stack, "tiny-test", tabby(), headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert requests.get(f"{stack.api_url}/v1/models", headers=headers, timeout=10).status_code == 401
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
    assert probe() <= set(predictions)

    key = create_key(stack, "quota test", rate=2)
    limited = {"X-API-Key": key}
    accepted = [post_images(stack, "tiny-test", tabby(), headers=limited) for _ in range(2)]
    assert [a.status_code for a in accepted] == [202, 202]
    assert {a.json()["id"] for a in accepted} <= probe()
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    over = post_images(stack, "tiny-test", tabby(), headers=limited)
    assert over.status_code == 429, over.text
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 30
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
    assert probe() <= set(predictions)
    # Revoked with the script, the key is refused (the file store is read afresh when it changes).
    key_id = key.split("_")[1]
    subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "api_keys.py"), "--file",
                    os.fspath(stack.config.api_keys_file), "revoke", key_id], check=True, capture_output=True)
    revoked = requests.get(f"{stack.api_url}/v1/models", headers=limited, timeout=10)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "unauthorized"
    listed = subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "api_keys.py"), "--file",
                             os.fspath(stack.config.api_keys_file), "list"], check=True, capture_output=True,
                            text=True).stdout
    assert key_id in listed and key not in listed and key.split("_", 2)[2] not in listed


def test_another_keys_prediction_is_404_and_the_document_records_only_the_key_id(stack):
    from tests.integration.client import firestore_document

    response = post_images(stack, "tiny-test", tabby())
    prediction_id = response.json()["id"]
    other = {"X-API-Key": create_key(stack, "other tenant", rate=100)}
    theirs = requests.get(f"{stack.api_url}/v1/predictions/{prediction_id}", headers=other, timeout=10)
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    assert requests.get(f"{stack.api_url}/v1/predictions/{prediction_id}", headers=HEADERS,
                        timeout=10).status_code == 200
    document = firestore_document(stack, prediction_id)
    assert document["api_key_id"] == stack.api_key_id
    assert stack.api_key not in repr(document)
    wait_final(response.json()["status_url"])


def test_idempotency_key_returns_the_original_and_a_different_body_is_409(stack, probe):
    key = {"Idempotency-Key": f"order-{os.getpid()}-1"}
    before = set(_prediction_ids(stack))
    first = post_images(stack, "tiny-test", tabby(), headers={**HEADERS, **key})
    assert first.status_code == 202 and first.json()["id"] in probe()
    again = post_images(stack, "tiny-test", tabby(), headers={**HEADERS, **key})
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert set(_prediction_ids(stack)) == before | {first.json()["id"]}
    assert probe() <= before | {first.json()["id"]}
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    different = post_images(stack, "tiny-test", ("t.png", converted(tabby_bytes(), "PNG"), "image/png"),
                            headers={**HEADERS, **key})
    assert different.status_code == 409 and different.json()["error"]["code"] == "idempotency_conflict"
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
    assert probe() <= set(predictions)
    wait_final(first.json()["status_url"])


def test_status_url_behind_a_proxy_through_the_functions_framework_entry_point(stack):
    forwarded = {**HEADERS, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "inference.example.com"}
    response = post_images(stack, "tiny-test", tabby(), headers=forwarded)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status_url"] == f"https://inference.example.com/v1/predictions/{body['id']}"
    wait_final(f"{stack.api_url}/v1/predictions/{body['id']}")


@pytest.mark.parametrize("prediction_id", ["__x__", "__name__", "a.b"])
def test_ids_firestore_refuses_are_404_not_503(stack, prediction_id):
    response = requests.get(f"{stack.api_url}/v1/predictions/{prediction_id}", headers=HEADERS, timeout=10)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
