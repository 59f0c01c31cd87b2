"""The API through functions-framework's real entry point (functions/main.py), not only Flask's test client.

Flask's test client runs app.wsgi_app, so middleware such as ProxyFix works there
even when the Cloud Functions entry point skips it: these tests go through
functions_framework.create_app(target="api"), as Cloud Functions does.
"""

from __future__ import annotations

import io
import sys

import functions_framework
import pytest
from prediction_api.app import create_api_app
from prediction_api.auth import Authenticator, RateLimiter, new_key

from tests.conftest import ROOT
from tests.images import tabby_bytes
from tests.unit.fakes import FakeKeyStore
from tests.unit.test_api import World


@pytest.fixture
def entry_point(monkeypatch):
    """functions-framework's app for target `api`, with the API built on fakes."""
    monkeypatch.setitem(sys.modules, "main", sys.modules.get("main"))  # restored afterwards
    keys = FakeKeyStore()
    key, record = new_key("dev", 2)
    keys.put(record)
    world = World(authenticator=Authenticator(keys), limiter=RateLimiter())
    framework_app = functions_framework.create_app(target="api", source=str(ROOT / "functions" / "main.py"))
    main = sys.modules["main"]
    app = create_api_app(world.service, Authenticator(keys), RateLimiter())
    monkeypatch.setattr(main, "_api_app", lambda: app)
    return framework_app.test_client(), world, key


def post(client, key, **headers):
    return client.post("/v1/models/cat/predictions", data={"image": (io.BytesIO(tabby_bytes()), "t.jpg")},
                       content_type="multipart/form-data", headers={"X-API-Key": key, **headers})


def test_status_url_uses_the_forwarded_scheme_and_host(entry_point):
    client, _, key = entry_point
    response = post(client, key, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"})
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status_url"] == f"https://api.example.com/v1/predictions/{body['id']}"


def test_errors_and_headers_survive_the_entry_point(entry_point):
    client, _, key = entry_point
    missing = client.get("/v1/models")
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/predictions/__x__", headers={"X-API-Key": key}).status_code == 404
    assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200
    limited = client.get("/v1/models", headers={"X-API-Key": key})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["error"]["code"] == "rate_limited"
