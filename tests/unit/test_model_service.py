"""The model service's push handling against in-memory fakes."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from model_service.app import create_app
from model_service.batcher import MicroBatcher
from model_service.config import ConfigError, Settings
from model_service.errors import TransientError
from model_service.handler import LeaseKeeper, PredictionHandler

from tests.unit.fakes import FakeImageReader, FakeModel, FakeNotifier, FakeServiceStore

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
URI = "gs://uploads/uploads/resnet50/p1"


class World:
    def __init__(self, model_ready: bool = True) -> None:
        self.model = FakeModel(model_ready)
        self.reader, self.store, self.notifier = FakeImageReader(), FakeServiceStore(), FakeNotifier()
        self.clock = [NOW]
        batcher = MicroBatcher(self.model.predict, 16, 0, timeout_seconds=10)
        handler = PredictionHandler("resnet50", self.model, batcher.predict, self.store,
                                    self.reader, self.notifier, lease_seconds=60,
                                    clock=lambda: self.clock[0])
        self.client = create_app(handler, self.model).test_client()
        self.reader.images[URI] = b"jpeg bytes"
        self.store.documents["p1"] = {"id": "p1", "model": "resnet50", "status": "queued",
                                      "callback_url": None, "created_at": NOW, "attempts": 0}

    def push(self, payload=None, publish_time=None, **changes):
        payload = payload or {"id": "p1", "model": "resnet50", "image_uri": URI,
                              "content_type": "image/jpeg", "callback_url": None}
        payload = {**payload, **changes}
        data = base64.b64encode(json.dumps(payload).encode()).decode()
        message = {"data": data, "messageId": "m1", **({"publishTime": publish_time} if publish_time else {})}
        return self.client.post("/", json={"message": message, "subscription": "s"})


@pytest.fixture
def world() -> World:
    return World()


def test_success_writes_result_and_version(world):
    assert world.push().status_code == 204
    document = world.store.documents["p1"]
    assert document["status"] == "succeeded" and document["model_version"] == 4
    assert document["result"]["top_k"][0]["label"] == "tabby"
    assert document["started_at"] == NOW and document["completed_at"] == NOW
    assert world.notifier.sent == []


def test_callback_gets_the_final_document(world):
    world.store.documents["p1"]["callback_url"] = "http://client.example/done"
    assert world.push(callback_url="http://client.example/done").status_code == 204
    url, sent = world.notifier.sent[0]
    assert url == "http://client.example/done"
    assert sent["status"] == "succeeded" and sent["id"] == "p1" and sent["created_at"] == NOW.isoformat()


def test_redelivery_of_a_finished_prediction_is_a_noop(world):
    world.push()
    before = dict(world.store.documents["p1"])
    world.clock[0] = NOW + timedelta(minutes=5)
    assert world.push(callback_url="http://client.example/done").status_code == 204
    assert world.store.documents["p1"] == before
    assert len(world.model.batches) == 1 and len(world.reader.reads) == 1
    assert world.notifier.sent == []


def test_concurrent_delivery_is_refused_until_the_lease_expires(world):
    world.store.documents["p1"].update(status="running", started_at=NOW - timedelta(seconds=10),
                                       lease_expires_at=NOW + timedelta(seconds=50))
    response = world.push()
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "in_progress"
    assert world.model.batches == []
    world.clock[0] = NOW + timedelta(seconds=50)
    assert world.push().status_code == 204
    assert world.store.documents["p1"]["status"] == "succeeded"
    assert world.store.documents["p1"]["attempts"] == 1


def test_a_running_document_without_a_lease_is_taken_over(world):
    """The one lease rule of both units: no lease_expires_at, no fresh lease."""
    world.store.documents["p1"].update(status="running", started_at=NOW - timedelta(seconds=10))
    assert world.push().status_code == 204
    assert world.store.documents["p1"]["status"] == "succeeded"


def test_undecodable_image_is_a_final_failure(world):
    world.reader.images[URI] = b"bad bytes"
    assert world.push().status_code == 204
    document = world.store.documents["p1"]
    assert document["status"] == "failed" and document["error"]["code"] == "invalid_image"


def test_missing_image_is_a_final_failure(world):
    del world.reader.images[URI]
    assert world.push().status_code == 204
    assert world.store.documents["p1"]["error"]["code"] == "image_missing"


def test_unknown_prediction_is_acknowledged(world):
    # Its image may be read while it is claimed (the read overlaps the claim); nothing uses it.
    assert world.push(id="gone").status_code == 204
    assert world.model.batches == [] and "gone" not in world.store.documents


@pytest.mark.parametrize("fault", ["storage", "firestore"])
def test_transient_faults_answer_503_for_redelivery(world, fault):
    error = TransientError(f"{fault} is unavailable")
    if fault == "storage":
        world.reader.error = error
    else:
        world.store.error = error
    response = world.push()
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "unavailable"
    # The claim is given back, so the redelivery runs at once instead of waiting out the lease.
    assert world.store.documents["p1"]["status"] == "queued"
    world.reader.error = world.store.error = None
    assert world.push().status_code == 204
    assert world.store.documents["p1"]["status"] == "succeeded"
    assert world.store.documents["p1"]["attempts"] == (2 if fault == "storage" else 1)


def test_model_not_ready_answers_503():
    world = World(model_ready=False)
    assert world.push().status_code == 503
    assert world.store.documents["p1"]["status"] == "queued"


@pytest.mark.parametrize("body", [
    None, {"message": "text"}, {"message": {"data": "%%%"}},
    {"message": {"data": base64.b64encode(b"[1]").decode()}},
    {"message": {"data": base64.b64encode(b'{"id": "p1"}').decode()}},
])
def test_malformed_envelope_is_400(world, body):
    response = world.client.post("/", json=body) if body is not None else world.client.post("/", data="x")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_envelope"
    assert world.store.documents["p1"]["status"] == "queued"


def test_message_for_another_model_is_400(world):
    assert world.push(model="cat").status_code == 400


def test_health_reports_ready_only_when_loaded():
    assert World(model_ready=False).client.get("/healthz").status_code == 503
    body = World().client.get("/healthz").get_json()
    assert body["status"] == "ready" and body["version"] == 4


def test_settings_from_env():
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "MODEL_NAME": "cat",
                                  "MODEL_REPOSITORY": "gs://m/models/", "MODEL_VERSION": "3",
                                  "K_REVISION": "cat-v3"})
    assert settings.model_repository == "gs://m/models" and settings.model_version == "3"
    assert settings.revision == "cat-v3"
    with pytest.raises(ConfigError, match="MODEL_NAME, MODEL_REPOSITORY"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    with pytest.raises(ConfigError, match="MODEL_VERSION"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "MODEL_NAME": "cat",
                           "MODEL_REPOSITORY": "/m", "MODEL_VERSION": "0"})
    assert (settings.model_threads, settings.concurrent_batches) == (0, 1)  # TensorFlow's own threads
    required = {"GOOGLE_CLOUD_PROJECT": "p", "MODEL_NAME": "cat", "MODEL_REPOSITORY": "/m"}
    tuned = Settings.from_env({**required, "MODEL_THREADS": "1", "CONCURRENT_BATCHES": "4"})
    assert (tuned.model_threads, tuned.concurrent_batches) == (1, 4)
    with pytest.raises(ConfigError, match="CONCURRENT_BATCHES must be >= 1"):
        Settings.from_env({**required, "CONCURRENT_BATCHES": "0"})


def test_request_threads_are_read_once_for_gunicorn_and_the_reader_pool(monkeypatch):
    """gunicorn.conf.py and Settings (which sizes the image reader's pool) read the same setting."""
    import runpy
    from pathlib import Path

    required = {"GOOGLE_CLOUD_PROJECT": "p", "MODEL_NAME": "cat", "MODEL_REPOSITORY": "/m"}
    conf = Path(__file__).resolve().parents[2] / "cloudrun_model" / "gunicorn.conf.py"
    for env, threads in (({}, 32), ({"MAX_BATCH_SIZE": "4"}, 8), ({"GUNICORN_THREADS": "5"}, 5)):
        assert Settings.from_env({**required, **env}).request_threads == threads
        for name in ("MAX_BATCH_SIZE", "GUNICORN_THREADS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert runpy.run_path(str(conf))["threads"] == threads
    assert Settings.from_env(required).predict_timeout_seconds == 30.0
    assert Settings.from_env({**required, "USE_PRIVATE_CLIENT_API": "false"}).use_private_client_api is False
    with pytest.raises(ConfigError, match="GUNICORN_THREADS"):
        Settings.from_env({**required, "GUNICORN_THREADS": "0"})


def test_a_dead_workers_prediction_is_retaken_once_its_short_lease_expires():
    world = World()
    world.store.documents["p1"].update(status="running", attempts=1, lease_token="dead-worker",
                                       started_at=NOW, lease_expires_at=NOW + timedelta(seconds=10))
    assert world.push().status_code == 409
    world.clock[0] = NOW + timedelta(seconds=10)
    assert world.push().status_code == 204
    document = world.store.documents["p1"]
    assert document["status"] == "succeeded" and document["attempts"] == 2
    assert document["lease_token"] is None and document["reconcile_at"] is None


def test_a_live_worker_renews_its_lease_and_only_its_own(world):
    claim = world.store.claim("p1", 4, 60, NOW, "mine")
    assert claim.run and world.store.documents["p1"]["lease_expires_at"] == NOW + timedelta(seconds=60)
    later = NOW + timedelta(seconds=30)
    assert world.store.renew("p1", "mine", 60, later) is True
    assert world.store.documents["p1"]["lease_expires_at"] == later + timedelta(seconds=60)
    assert world.store.renew("p1", "someone-else", 60, later) is False
    keeper = LeaseKeeper(world.store, lease_seconds=0.03, clock=lambda: later)
    with keeper.hold("p1", "mine"):
        assert keeper.renew_due() == 0  # held for less than a third of a lease
        time.sleep(0.02)
        assert keeper.renew_due() == 1
    assert keeper.renew_due() == 0


def test_a_failed_callback_stays_owed_and_a_redelivery_sends_it_once(world):
    world.store.documents["p1"]["callback_url"] = "http://client.example/done"
    world.notifier.receiver_down = True
    assert world.push().status_code == 204
    document = world.store.documents["p1"]
    assert document["status"] == "succeeded" and len(world.notifier.sent) == 1
    assert document["callback"]["state"] == "pending" and document["callback"]["attempts"] == 1
    assert document["reconcile_at"] == NOW + timedelta(seconds=10)
    # A redelivery before the retry is due sends nothing; one after it sends the callback once.
    world.notifier.receiver_down = False
    assert world.push().status_code == 204 and len(world.notifier.sent) == 1
    world.clock[0] = NOW + timedelta(seconds=10)
    assert world.push().status_code == 204 and len(world.notifier.sent) == 2
    assert world.store.documents["p1"]["callback"]["state"] == "delivered"
    assert world.push().status_code == 204 and len(world.notifier.sent) == 2
    assert len(world.model.batches) == 1  # the model ran once through all of it


def test_a_callback_being_sent_is_not_sent_again_by_a_concurrent_redelivery(world):
    world.store.documents["p1"]["callback_url"] = "http://client.example/done"
    world.store.finish("p1", {"status": "succeeded", "result": {}, "error": None}, 60, NOW)
    # Finished a moment ago by another delivery, which is calling back now.
    assert world.push().status_code == 204
    assert world.notifier.sent == []


def test_result_records_queue_and_model_times_and_batch_size(world):
    world.store.documents["p1"]["created_at"] = NOW - timedelta(seconds=3)
    world.clock[0] = NOW
    assert world.push().status_code == 204
    timings = world.store.documents["p1"]["timings"]
    assert timings["queue_ms"] == 3000.0 and timings["total_ms"] == 3000.0
    assert timings["batch_size"] == 1 and timings["model_ms"] >= 0
    assert timings["delivery_ms"] is None  # the envelope said no publish time


def test_result_records_pub_subs_part_of_the_queue_from_the_publish_time(world):
    world.store.documents["p1"]["created_at"] = NOW - timedelta(seconds=3)
    published = (NOW - timedelta(milliseconds=1250)).isoformat().replace("+00:00", "Z")
    assert world.push(publish_time=published).status_code == 204
    assert world.store.documents["p1"]["timings"]["delivery_ms"] == 1250.0


def test_metrics_endpoint_counts_predictions_and_batches():
    from model_service.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    model, reader, store = FakeModel(), FakeImageReader(), FakeServiceStore()
    batcher = MicroBatcher(model.predict, 4, 0.01, 10, "resnet50",
                           on_batch=lambda size, seconds: metrics.observe_batch("resnet50", size, seconds))
    handler = PredictionHandler("resnet50", model, batcher.predict, store, reader, FakeNotifier(),
                                lease_seconds=60, clock=lambda: NOW, metrics=metrics)
    client = create_app(handler, model, metrics).test_client()
    reader.images[URI] = b"jpeg bytes"
    store.documents["p1"] = {"id": "p1", "model": "resnet50", "status": "queued", "callback_url": None,
                             "created_at": NOW - timedelta(seconds=2), "attempts": 0}
    payload = {"id": "p1", "model": "resnet50", "image_uri": URI, "content_type": "image/jpeg",
               "callback_url": None}
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    assert client.post("/", json={"message": {"data": data, "messageId": "m1"}}).status_code == 204
    assert store.documents["p1"]["timings"]["batch_size"] == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inference_predictions_total{model="resnet50",status="succeeded"} 1.0' in text
    assert 'inference_batch_size_count{model="resnet50"} 1.0' in text
    assert 'inference_queue_seconds_sum{model="resnet50"} 2.0' in text
    assert 'inference_model_seconds_count{model="resnet50"} 1.0' in text


def test_a_callback_lost_in_a_crash_is_sent_when_the_reconciler_publishes_it_again(world):
    """Finished, then the worker died before calling back; the reconciler's pass and the
    redelivery it causes must send the callback, once."""
    from inference_contract.lifecycle import CALLBACK, RecoveryPolicy, reconcile

    world.store.documents["p1"]["callback_url"] = "http://client.example/done"
    world.store.finish("p1", {"status": "succeeded", "result": {}, "error": None}, 60, NOW)
    assert world.notifier.sent == []  # the process died here
    later = NOW + timedelta(seconds=61)
    document = world.store.documents["p1"]
    update, action = reconcile(document, later, RecoveryPolicy())
    assert action == CALLBACK
    document.update(update)  # what the reconciler writes as it publishes the message again
    world.clock[0] = later + timedelta(seconds=1)
    assert world.push().status_code == 204
    assert len(world.notifier.sent) == 1
    assert world.store.documents["p1"]["callback"]["state"] == "delivered"
    assert world.push().status_code == 204 and len(world.notifier.sent) == 1


def test_a_cancelled_prediction_never_reaches_the_model_and_its_callback_is_sent(world):
    from inference_contract import lifecycle

    document = {**world.store.documents["p1"], "callback_url": "http://client.example/done"}
    update, _ = lifecycle.cancel(document, NOW)
    world.store.documents["p1"] = {**document, **update}
    assert world.push(callback_url="http://client.example/done").status_code == 204  # final: acked
    assert world.model.batches == []
    assert [(url, sent["status"]) for url, sent in world.notifier.sent] == [
        ("http://client.example/done", "cancelled")]
    assert world.store.documents["p1"]["callback"]["state"] == "delivered"


def test_a_prediction_seen_after_its_deadline_fails_without_running(world, caplog):
    caplog.set_level("INFO", logger="model_service.handler")
    world.store.documents["p1"].update(deadline_at=NOW + timedelta(seconds=1),
                                       callback_url="http://client.example/done")
    world.clock[0] = NOW + timedelta(seconds=2)
    assert world.push(callback_url="http://client.example/done").status_code == 204
    document = world.store.documents["p1"]
    assert document["status"] == "failed" and document["error"]["code"] == "deadline_exceeded"
    assert document["attempts"] == 0 and world.model.batches == []
    assert [sent["error"]["code"] for _, sent in world.notifier.sent] == ["deadline_exceeded"]
    assert "prediction not run: its deadline passed" in caplog.messages


def test_a_prediction_seen_before_its_deadline_runs(world):
    world.store.documents["p1"]["deadline_at"] = NOW + timedelta(seconds=1)
    assert world.push().status_code == 204
    assert world.store.documents["p1"]["status"] == "succeeded" and len(world.model.batches) == 1
