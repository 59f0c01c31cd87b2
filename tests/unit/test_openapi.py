"""GET /v1/openapi.json is a valid OpenAPI 3.1 document, and the API's real answers match it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from prediction_api.app import create_api_app
from prediction_api.config import Settings
from prediction_api.service import PredictionService
from schemathesis.openapi.checks import JsonSchemaError

from tests.images import tabby_bytes
from tests.unit.fakes import FakeApiStore, FakePublisher, FakeUploadStore

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def api():
    settings = Settings(project="p", uploads_bucket="b", models=("resnet50", "cat"), max_image_bytes=200_000,
                        max_images_per_request=2, auth_required=False)
    uploads, store, publisher = FakeUploadStore(), FakeApiStore(), FakePublisher()
    ids = iter(f"id{i}" for i in range(100))
    service = PredictionService(settings, uploads, store, publisher, clock=lambda: NOW,
                                new_id=lambda: next(ids))
    client = create_api_app(service).test_client()
    document = client.get("/v1/openapi.json").get_json()
    return client, store, uploads, schemathesis.openapi.from_dict(document), document


def _post(client, model: str, *images: bytes):
    return client.post(f"/v1/models/{model}/predictions",
                       data={"image": [(io.BytesIO(image), f"p{i}.jpg") for i, image in enumerate(images)]},
                       content_type="multipart/form-data")


def test_the_document_is_valid_openapi_3_1(api):
    client, _, _, _, document = api
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost"}]
    # Room for API keys: the scheme and the 401/429 answers are described.
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path in ("/v1/models/{model}/predictions", "/v1/predictions/{id}", "/v1/models"):
        for operation in document["paths"][path].values():
            assert {"401", "429", "503"} <= set(operation["responses"])


def test_an_invalid_document_is_refused():
    # The validator can fail: a response without its description is not OpenAPI.
    broken = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
              "paths": {"/x": {"get": {"responses": {"200": {}}}}}}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def _check(schema, document, path: str, method: str, response) -> None:
    operation = document["paths"][path][method.lower()]
    assert str(response.status_code) in operation["responses"], (path, method, response.status_code)
    schema[path][method].validate_response(response)


def test_real_answers_match_the_document(api):
    client, store, uploads, schema, document = api
    upload = "/v1/models/{model}/predictions"
    _check(schema, document, upload, "POST", _post(client, "resnet50", tabby_bytes()))
    _check(schema, document, upload, "POST", _post(client, "cat", tabby_bytes(), tabby_bytes()))
    _check(schema, document, upload, "POST", _post(client, "cat", b"not an image"))
    _check(schema, document, upload, "POST", _post(client, "cat", *[tabby_bytes()] * 3))
    _check(schema, document, upload, "POST", _post(client, "nope", tabby_bytes()))
    _check(schema, document, upload, "POST", _post(client, "cat", tabby_bytes() + b"\0" * 200_000))
    _check(schema, document, upload, "POST", client.post("/v1/models/cat/predictions", data=tabby_bytes(),
                                                          content_type="image/jpeg"))
    _check(schema, document, upload, "POST", client.post("/v1/models/cat/predictions", data=b"{}",
                                                          content_type="application/json"))
    uploads.fail = True
    _check(schema, document, upload, "POST", _post(client, "cat", tabby_bytes()))

    get = "/v1/predictions/{id}"
    _check(schema, document, get, "GET", client.get("/v1/predictions/id0"))
    store.documents["id1"].update(
        status="succeeded", model_version=2, started_at=NOW + timedelta(seconds=1),
        completed_at=NOW + timedelta(seconds=2),
        result={"label": "cat", "match": True, "score": 0.445, "rule": "top1",
                "top_class": {"class_id": 281, "label": "tabby", "score": 0.3}, "weights": "w"},
        timings={"queue_ms": 1000.0, "model_ms": 20.5, "batch_size": 2, "total_ms": 2000.0})
    answer = client.get("/v1/predictions/id1")
    assert answer.get_json()["timings"]["batch_size"] == 2
    _check(schema, document, get, "GET", answer)
    store.documents["id0"].update(status="failed", error={"code": "invalid_image", "message": "bad"},
                                  completed_at=NOW)
    _check(schema, document, get, "GET", client.get("/v1/predictions/id0"))
    _check(schema, document, get, "GET", client.get("/v1/predictions/id1?wait=99"))
    _check(schema, document, get, "GET", client.get("/v1/predictions/missing"))

    _check(schema, document, "/v1/models", "GET", client.get("/v1/models"))
    _check(schema, document, "/v1/health", "GET", client.get("/v1/health"))
    _check(schema, document, "/healthz", "GET", client.get("/healthz"))


def test_a_response_that_breaks_the_document_is_caught(api):
    client, store, _, schema, document = api
    _post(client, "cat", tabby_bytes())
    store.documents["id0"]["status"] = "lost"  # not one of the documented statuses
    with pytest.raises(JsonSchemaError):
        _check(schema, document, "/v1/predictions/{id}", "GET", client.get("/v1/predictions/id0"))


def test_cancel_list_and_deadline_answers_match_the_document(api):
    client, store, _, schema, document = api
    upload = "/v1/models/{model}/predictions"
    for deadline in ("30", "0"):
        _check(schema, document, upload, "POST", client.post(
            "/v1/models/cat/predictions", content_type="multipart/form-data",
            data={"image": [(io.BytesIO(tabby_bytes()), "a.jpg")], "deadline_seconds": deadline}))
    cancel = "/v1/predictions/{id}:cancel"
    answer = client.post("/v1/predictions/id0:cancel")
    assert answer.get_json()["status"] == "cancelled"
    _check(schema, document, cancel, "POST", answer)
    _check(schema, document, cancel, "POST", client.post("/v1/predictions/missing:cancel"))
    _post(client, "cat", tabby_bytes())
    store.documents["id1"]["status"] = "running"
    conflict = client.post("/v1/predictions/id1:cancel")
    assert conflict.status_code == 409
    _check(schema, document, cancel, "POST", conflict)
    listing = "/v1/predictions"
    page = client.get("/v1/predictions?page_size=1")
    assert page.get_json()["next_page_token"]
    _check(schema, document, listing, "GET", page)
    _check(schema, document, listing, "GET", client.get("/v1/predictions?status=cancelled&model=cat"))
    _check(schema, document, listing, "GET", client.get("/v1/predictions?page_size=0"))
