"""The HTTP API against in-memory fakes: routing, validation, errors, CORS, dead letters."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import pytest
from prediction_api.app import create_api_app, create_dead_letter_app
from prediction_api.config import ConfigError, Settings
from prediction_api.service import PredictionService

from tests.images import converted, corrupt_png, tabby_bytes, truncated_jpeg
from tests.unit.fakes import FakeApiStore, FakeDns, FakeIdempotencyStore, FakePublisher, FakeUploadStore

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class World:
    def __init__(self, authenticator=None, limiter=None, clock=lambda: NOW, **overrides) -> None:
        overrides.setdefault("auth_required", authenticator is not None)
        settings = Settings(project="p", uploads_bucket="b", models=("resnet50", "cat"),
                            allowed_origins=("http://allowed.example",), **overrides)
        self.uploads, self.store, self.publisher = FakeUploadStore(), FakeApiStore(), FakePublisher()
        self.idempotency = FakeIdempotencyStore()
        self.dns = FakeDns({"cb.example": ["93.184.215.14"], "localhost": ["127.0.0.1", "::1"]})
        ids = iter(f"id{i}" for i in range(100))
        self.service = PredictionService(settings, self.uploads, self.store, self.publisher,
                                         clock=clock, new_id=lambda: next(ids),
                                         idempotency=self.idempotency, resolve=self.dns)
        self.client = create_api_app(self.service, authenticator, limiter).test_client()
        self.dead_letters = create_dead_letter_app(self.service).test_client()

    def nothing_written(self) -> bool:
        return not (self.uploads.objects or self.store.documents or self.publisher.messages
                    or self.idempotency.records)

    def post_images(self, *images: bytes, model: str = "resnet50", **form):
        data = {"image": [(io.BytesIO(img), f"photo{i}.jpg") for i, img in enumerate(images)], **form}
        return self.client.post(f"/v1/models/{model}/predictions", data=data,
                                content_type="multipart/form-data")


@pytest.fixture
def world() -> World:
    return World()


def test_multipart_upload_stores_records_and_publishes(world):
    response = world.post_images(tabby_bytes())
    assert response.status_code == 202
    body = response.get_json()
    assert body == {"id": "id0", "status": "queued", "model": "resnet50",
                    "status_url": "http://localhost/v1/predictions/id0"}
    assert world.uploads.objects["uploads/resnet50/id0"] == (tabby_bytes(), "image/jpeg")
    document = world.store.documents["id0"]
    assert document["status"] == "queued" and document["image_uri"] == "gs://fake-uploads/uploads/resnet50/id0"
    assert (document["expire_at"] - document["created_at"]).days == 30
    model, payload, attributes = world.publisher.messages[0]
    assert model == "resnet50"
    assert payload == {"id": "id0", "model": "resnet50", "image_uri": document["image_uri"],
                       "content_type": "image/jpeg", "callback_url": None}
    assert attributes == {"prediction_id": "id0", "model": "resnet50"}


def test_several_images_answer_a_list(world):
    response = world.post_images(tabby_bytes(), converted(tabby_bytes(), "PNG"))
    assert response.status_code == 202
    assert [p["id"] for p in response.get_json()["predictions"]] == ["id0", "id1"]
    assert [m[1]["content_type"] for m in world.publisher.messages] == ["image/jpeg", "image/png"]


@pytest.mark.parametrize("image_format, content_type", [
    ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif"), ("BMP", "image/bmp")])
def test_raw_body_in_each_supported_format(world, image_format, content_type):
    data = converted(tabby_bytes(), image_format)
    response = world.client.post("/v1/models/cat/predictions?callback_url=http://cb.example/x",
                                 data=data, content_type=content_type)
    # http callbacks are refused unless allowed; https are fine.
    assert response.status_code == 400 and world.nothing_written()
    response = world.client.post("/v1/models/cat/predictions?callback_url=https://cb.example/x",
                                 data=data, content_type=content_type)
    assert response.status_code == 202
    assert world.publisher.messages[0][1]["content_type"] == content_type
    assert world.publisher.messages[0][1]["callback_url"] == "https://cb.example/x"


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize("make_request, status, code", [
    (lambda w: w.post_images(tabby_bytes(), model="nope"), 404, "not_found"),
    (lambda w: w.post_images(b"hello, not an image"), 400, "invalid_image"),
    (lambda w: w.post_images(corrupt_png()), 400, "invalid_image"),
    (lambda w: w.post_images(b""), 400, "invalid_image"),
    (lambda w: w.post_images(*[tabby_bytes()] * 17), 400, "too_many_images"),
    (lambda w: w.post_images(tabby_bytes(), b"not an image"), 400, "invalid_image"),
    (lambda w: w.post_images(tabby_bytes(), callback_url="ftp://x/y"), 400, "invalid_request"),
    (lambda w: w.client.post("/v1/models/resnet50/predictions", data={"other": "x"},
                             content_type="multipart/form-data"), 400, "invalid_request"),
    (lambda w: w.client.post("/v1/models/resnet50/predictions", data=b"{}",
                             content_type="application/json"), 415, "unsupported_media_type"),
    (lambda w: w.client.post("/v1/models/resnet50/predictions", data=tabby_bytes(),
                             content_type="image/tiff"), 415, "unsupported_media_type"),
    (lambda w: w.client.post("/v1/models/resnet50/predictions", data=tabby_bytes()),
     415, "unsupported_media_type"),
])
def test_rejected_requests_write_nothing(world, make_request, status, code):
    assert_error(make_request(world), status, code)
    assert world.nothing_written()


def test_size_limit_per_image_is_413():
    world = World(max_image_bytes=50_000)
    assert len(tabby_bytes()) > 50_000
    assert_error(world.post_images(tabby_bytes()), 413, "payload_too_large")
    assert_error(world.client.post("/v1/models/cat/predictions", data=tabby_bytes(),
                                   content_type="image/jpeg"), 413, "payload_too_large")
    assert world.nothing_written()


def test_whole_request_limit_is_413():
    world = World(max_image_bytes=50_000, max_images_per_request=2)
    response = world.client.post("/v1/models/cat/predictions", data=b"x" * 2_000_000,
                                 content_type="image/jpeg")
    assert_error(response, 413, "payload_too_large")
    assert world.nothing_written()


def test_truncated_jpeg_is_accepted_for_the_model_to_judge(world):
    # Pillow's header check passes; the model's full decode is what fails it later.
    assert world.post_images(truncated_jpeg()).status_code == 202


def test_publish_failure_undoes_that_image_and_names_the_accepted_ones(world):
    world.publisher.fail_after = 1
    response = world.post_images(tabby_bytes(), tabby_bytes())
    assert_error(response, 503, "backend_unavailable")
    assert response.get_json()["error"]["accepted"] == ["id0"]
    assert list(world.store.documents) == ["id0"]
    # The API's account cannot delete objects: the unpublished image is left to the
    # uploads bucket's lifecycle rule, with no prediction pointing at it.
    assert list(world.uploads.objects) == ["uploads/resnet50/id0", "uploads/resnet50/id1"]


def test_storage_failure_is_503_with_nothing_written(world):
    world.uploads.fail = True
    response = world.post_images(tabby_bytes())
    assert_error(response, 503, "backend_unavailable")
    assert response.headers["Retry-After"] == "1"  # the client is told when to come back
    assert world.nothing_written()


def test_get_prediction_and_long_poll(world):
    world.post_images(tabby_bytes())
    body = world.client.get("/v1/predictions/id0").get_json()
    assert body["status"] == "queued" and body["created_at"] == NOW.isoformat()
    assert set(body) == {"id", "model", "model_version", "status", "result", "error",
                         "created_at", "started_at", "completed_at", "timings", "deadline_at"}
    assert world.store.waited == []
    world.store.on_wait = {"status": "succeeded", "result": {"top_k": []}, "model_version": 3}
    body = world.client.get("/v1/predictions/id0?wait=7").get_json()
    assert world.store.waited == [("id0", 7.0)]
    assert body["status"] == "succeeded" and body["model_version"] == 3
    # A final prediction is answered at once, without a listener.
    world.client.get("/v1/predictions/id0?wait=7")
    assert len(world.store.waited) == 1


def test_wait_until_change_returns_on_any_status_change(world):
    world.post_images(tabby_bytes())
    world.store.on_wait = {"status": "running"}
    body = world.client.get("/v1/predictions/id0?wait=5&until=change").get_json()
    assert body["status"] == "running"
    assert world.store.settled == [True]  # queued on arrival, running now
    # The default waits for a final status.
    world.client.get("/v1/predictions/id0?wait=5")
    assert world.store.settled == [True, False]


def test_a_long_poll_on_a_missing_prediction_is_404_at_once(world):
    assert_error(world.client.get("/v1/predictions/nothing?wait=5"), 404, "not_found")
    assert world.store.waited == []  # not held


@pytest.mark.parametrize("query", ["wait=31", "wait=-1", "wait=soon", "wait=1&until=never"])
def test_wait_out_of_range_is_400(world, query):
    world.post_images(tabby_bytes())
    assert_error(world.client.get(f"/v1/predictions/id0?{query}"), 400, "invalid_request")


def test_unknown_prediction_and_route_are_404(world):
    assert_error(world.client.get("/v1/predictions/missing"), 404, "not_found")
    assert_error(world.client.get("/v2/whatever"), 404, "not_found")
    not_allowed = world.client.delete("/v1/predictions/x")
    assert_error(not_allowed, 405, "method_not_allowed")
    assert set(not_allowed.headers["Allow"].split(", ")) >= {"GET"}  # RFC 9110; Schemathesis checks it


def test_models_list_versions_reported_by_services(world):
    world.store.versions = [
        {"model": "resnet50", "version": 2, "kind": "classifier", "weights": "imagenet"},
        {"model": "resnet50", "version": 1, "kind": "classifier", "weights": "random"},
    ]
    models = world.client.get("/v1/models").get_json()["models"]
    assert models[0]["name"] == "resnet50" and models[0]["kind"] == "classifier"
    assert [v["version"] for v in models[0]["versions"]] == [1, 2]
    assert models[1] == {"name": "cat", "kind": "unknown", "versions": []}


def test_health(world):
    assert world.client.get("/healthz").get_json() == {"status": "ok"}
    assert world.client.get("/v1/health").status_code == 200


def test_cors_only_for_allowed_origins(world):
    allowed = world.client.options("/v1/models/cat/predictions",
                                   headers={"Origin": "http://allowed.example",
                                            "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    denied = world.client.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert "Origin" in denied.headers["Vary"]


def test_public_base_url_builds_status_url():
    world = World(public_base_url="https://api.example.com")
    body = world.post_images(tabby_bytes()).get_json()
    assert body["status_url"] == "https://api.example.com/v1/predictions/id0"


def envelope(payload: dict | None, attributes: dict | None = None) -> dict:
    data = base64.b64encode(json.dumps(payload).encode()).decode() if payload is not None else "%%"
    return {"message": {"data": data, "attributes": attributes or {}, "messageId": "1"},
            "subscription": "projects/p/subscriptions/s"}


def test_dead_letter_marks_failed_once(world):
    world.post_images(tabby_bytes())
    world.store.documents["id0"]["attempts"] = 5  # model services really tried it five times
    letter = envelope({"id": "id0", "model": "resnet50"},
                      {"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
    assert world.dead_letters.post("/", json=letter).status_code == 204
    document = world.store.documents["id0"]
    assert document["status"] == "failed"
    assert (document["error"]["code"] == "delivery_failed"
            and "5 delivery attempts" in document["error"]["message"])
    # A second dead letter for the same prediction changes nothing.
    document["status"] = "succeeded"
    assert world.dead_letters.post("/", json=letter).status_code == 204
    assert world.store.documents["id0"]["status"] == "succeeded"


@pytest.mark.parametrize("body", [
    {"no": "message"}, envelope(None), envelope(["a", "list"]), envelope({"model": "x"})])
def test_dead_letter_malformed_envelope_is_400(world, body):
    assert_error(world.dead_letters.post("/", json=body), 400, "invalid_envelope")
    assert_error(world.dead_letters.post("/", data="not json"), 400, "invalid_envelope")


def test_settings_from_env():
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b",
                                  "MODELS": " resnet50, cat ,", "ALLOWED_ORIGINS": "http://a,http://b",
                                  "MAX_IMAGE_BYTES": "1024", "CALLBACK_ALLOW_HTTP": "TRUE"})
    assert settings.models == ("resnet50", "cat")
    assert settings.allowed_origins == ("http://a", "http://b")
    assert settings.max_image_bytes == 1024 and settings.callback_allow_http
    with pytest.raises(ConfigError, match="UPLOADS_BUCKET, MODELS"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p"})
    with pytest.raises(ConfigError, match="MAX_IMAGE_BYTES"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b", "MODELS": "m",
                           "MAX_IMAGE_BYTES": "ten"})


def test_metrics_are_off_unless_expose_metrics(world):
    assert_error(world.client.get("/metrics"), 404, "not_found")
    assert Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b", "MODELS": "m",
                              "EXPOSE_METRICS": "true"}).expose_metrics is True


def test_metrics_count_requests_images_dead_letters_and_the_oldest_queued_age():
    from datetime import timedelta

    from prediction_api.app import create_reconcile_app

    world = World(expose_metrics=True)
    world.post_images(tabby_bytes(), tabby_bytes())
    world.client.get("/v1/predictions/nope")
    text = world.client.get("/metrics").get_data(as_text=True)
    assert 'inference_images_accepted_total{model="resnet50"} 2.0' in text
    assert ('inference_api_requests_total{method="POST",route="/v1/models/<model>/predictions",'
            'status="202"} 1.0') in text
    assert ('inference_api_requests_total{method="GET",route="/v1/predictions/<prediction_id>",'
            'status="404"} 1.0') in text

    world.store.documents["id0"]["created_at"] = NOW - timedelta(seconds=90)
    world.store.documents["id1"]["status"] = "running"
    world.store.documents["id1"]["created_at"] = NOW - timedelta(seconds=300)  # running: not queued
    reconciler = create_reconcile_app(world.service).test_client()
    body = reconciler.post("/").get_json()
    assert body["oldest_queued_age_seconds"] == 90.0
    assert "inference_oldest_queued_age_seconds 90.0" in reconciler.get("/metrics").get_data(as_text=True)

    world.store.documents["id0"]["attempts"] = 5
    letter = envelope({"id": "id0", "model": "resnet50"}, {"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
    world.dead_letters.post("/", json=letter)
    assert 'inference_dead_letters_total{action="delivery_failed",model="resnet50"} 1.0' in \
        world.dead_letters.get("/metrics").get_data(as_text=True)


def test_a_bad_query_callback_url_is_refused_beside_a_good_form_field(world):
    response = world.client.post("/v1/models/resnet50/predictions?callback_url=not-a-url",
                                 data={"image": [(io.BytesIO(tabby_bytes()), "p.jpg")],
                                       "callback_url": "https://client.example/done"},
                                 content_type="multipart/form-data")
    assert_error(response, 400, "invalid_request")
    assert world.nothing_written()


def test_a_deployment_can_allow_callbacks_to_listed_hosts_only():
    world = World(callback_allowed_hosts=("127.0.0.1",), callback_allow_http=True,
                  callback_allow_loopback=True)
    refused = world.post_images(tabby_bytes(), callback_url="https://8.8.8.8/hook")
    assert_error(refused, 400, "invalid_request")
    assert "calls back only to 127.0.0.1" in refused.get_json()["error"]["message"]
    assert world.nothing_written()
    assert world.post_images(tabby_bytes(), callback_url="http://127.0.0.1:9/hook").status_code == 202
