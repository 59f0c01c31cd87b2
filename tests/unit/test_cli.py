"""The `inference` command against the real API app (in-memory fakes behind it), served over HTTP."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from inference_cli import main as cli
from inference_cli.client import Client, retry_after_seconds
from prediction_api.app import create_api_app
from prediction_api.config import Settings
from prediction_api.image_sources import ImageSources
from prediction_api.service import PredictionService
from werkzeug.serving import make_server

from tests.images import sample
from tests.unit.fakes import FakeApiStore, FakeBucketReader, FakePublisher, FakeUploadStore

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DONE = {"status": "succeeded", "model_version": 1,
        "result": {"label": "cat", "match": True, "score": 0.445, "rule": "top1",
                   "top_class": {"class_id": 282, "label": "tiger cat", "score": 0.3}, "weights": "w"},
        "timings": {"queue_ms": 41.0, "model_ms": 23.5, "batch_size": 3, "total_ms": 80.0}}


class Server:
    """The API app on a free port; `refuse` answers that many requests 429 first (Retry-After: 0)."""

    def __init__(self) -> None:
        settings = Settings(project="p", uploads_bucket="b", models=("cat", "dog"), auth_required=False,
                            callback_allow_loopback=True)  # the image server below is on this machine
        self.store = FakeApiStore()
        self.store.on_wait = DONE
        self.service = PredictionService(settings, FakeUploadStore(), self.store, FakePublisher(),
                                         clock=lambda: NOW)
        self.buckets = FakeBucketReader()
        app = create_api_app(self.service, image_sources=ImageSources(settings, self.buckets))
        self.refuse = 0
        self.keys: list[str | None] = []

        def wsgi(environ, start_response):
            self.keys.append(environ.get("HTTP_X_API_KEY"))
            if self.refuse:
                self.refuse -= 1
                start_response("429 Too Many Requests", [("Retry-After", "0"),
                                                         ("Content-Type", "application/json")])
                return [b'{"error": {"code": "rate_limited", "message": "slow down"}}']
            return app(environ, start_response)

        self.http = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.http.shutdown()


def test_predict_prints_a_table_with_answers_and_timings(server, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the table to the terminal
    monkeypatch.delenv("INFERENCE_API_KEY", raising=False)
    photos = [str(sample("tabby")), str(sample("Persian_cat"))]
    code = cli.main(["--url", server.url, "--api-key", "k1", "predict", "--model", "cat", *photos])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "2/2 succeeded" in out and "yes (0.445, by top1); top-1 tiger cat" in out
    assert "41" in out and "24" in out  # queue ms, model ms (rounded)
    assert "uploaded" in err and "finished" in err  # the progress bars
    assert set(server.keys) == {"k1"}


def test_predict_json_and_a_failed_image_exit_non_zero(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INFERENCE_API_KEY", "from-env")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    code = cli.main(["--url", server.url, "predict", "--model", "cat", "--json",
                     str(sample("tabby")), str(junk)])
    out, _ = capsys.readouterr()
    assert code == 1
    body = json.loads(out)
    assert [p["status"] for p in body["predictions"]] == ["succeeded", "refused"]
    assert body["predictions"][0]["timings"]["batch_size"] == 3
    assert body["predictions"][1]["error"]["code"] == "invalid_image"
    assert set(server.keys) == {"from-env"}


def test_429_is_retried_after_retry_after(server):
    server.refuse = 2
    waits: list[float] = []
    client = Client(server.url, sleep=waits.append)
    assert [m["name"] for m in client.models()] == ["cat", "dog"]
    assert waits == [0.0, 0.0]


def test_gives_up_after_max_retries(server):
    server.refuse = 5
    client = Client(server.url, sleep=lambda s: None, max_retries=2)
    with pytest.raises(Exception, match="429 rate_limited"):
        client.models()


def test_models_lists_the_models(server, capsys):
    assert cli.main(["--url", server.url, "models", "--json"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)["models"]] == ["cat", "dog"]


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_seconds("7", 1) == 7
    assert retry_after_seconds(None, 2) == 2
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 3) == 0  # in the past
    assert retry_after_seconds("soon", 4) == 4


def test_urls_and_gs_uris_are_sent_as_image_url_and_paths_uploaded(server, capsys, monkeypatch):
    from tests.image_servers import Server as ImageServer

    images = ImageServer({"/tabby.jpg": (200, {"Content-Type": "image/jpeg"}, sample("tabby").read_bytes())})
    server.buckets.objects[("user-photos", "cat.jpg")] = sample("Persian_cat").read_bytes()
    monkeypatch.delenv("INFERENCE_API_KEY", raising=False)
    try:
        code = cli.main(["--url", server.url, "predict", "--model", "cat", "--json",
                         images.url("/tabby.jpg"), "gs://user-photos/cat.jpg", str(sample("tabby")),
                         "gs://user-photos/missing.jpg"])
    finally:
        images.stop()
    body = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [p["status"] for p in body["predictions"]] == ["succeeded", "succeeded", "succeeded", "refused"]
    assert body["predictions"][3]["error"]["code"] == "image_not_found"
    assert images.hits == ["/tabby.jpg"]  # fetched by the API, not uploaded by the CLI
    filenames = sorted(d["filename"] for d in server.store.documents.values())
    assert filenames == sorted([images.url("/tabby.jpg"), "gs://user-photos/cat.jpg", sample("tabby").name])
