"""scripts/export_model.py's gs:// repository, against the Cloud Storage emulator
the local stack uses (no model is built: the upload side only)."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import urllib.request

import pytest
import yaml

from emulators.suite import storage_emulator_command
from scripts import export_model
from tests.conftest import ROOT


@pytest.fixture
def storage(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        storage_emulator_command("127.0.0.1", port),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/storage/v1/b?project=proj-1", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj-1")
        from google.cloud import storage as gcs

        client = gcs.Client()
        yield client.create_bucket("proj-1-models")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _version_folder(tmp_path):
    folder = tmp_path / "built"
    (folder / "variables").mkdir(parents=True, exist_ok=True)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "model.json").write_text("{}")
    return folder


def test_gcs_repository_numbers_and_uploads_versions(storage, tmp_path):
    storage.blob("models/cat/1/saved_model.pb").upload_from_string(b"old")
    storage.blob("models/cat/2/variables/variables.index").upload_from_string(b"half an upload")
    repository = export_model.GcsRepository("gs://proj-1-models/models")
    assert repository.versions("cat") == [1], "only complete versions count"
    assert repository.versions("dog") == []
    assert export_model.has_version(repository, "cat") and not export_model.has_version(repository, "dog")

    staging = tmp_path / "staging"
    repository.stage(staging, "cat")
    # export_version numbers the new version max(local folders) + 1 (serving.next_version).
    assert sorted(p.name for p in (staging / "cat").iterdir()) == ["1", "2"], (
        "a half-uploaded version number is not reused"
    )

    url = repository.upload(_version_folder(tmp_path), "cat", 3)
    assert url == "gs://proj-1-models/models/cat/3/"
    names = sorted(blob.name for blob in storage.client.list_blobs(storage, prefix="models/cat/3/"))
    assert names == [
        "models/cat/3/model.json", "models/cat/3/saved_model.pb", "models/cat/3/variables/variables.index"
    ]
    assert repository.versions("cat") == [1, 3]
    # (The emulator ignores ifGenerationMatch, so "never overwrite" is checked below with a stub.)


def test_the_marker_is_uploaded_last_and_nothing_is_overwritten(tmp_path):
    uploaded = []

    class Blob:
        def __init__(self, name):
            self.name = name

        def upload_from_filename(self, path, if_generation_match):
            assert if_generation_match == 0
            uploaded.append(self.name)

    class Bucket:
        name = "b"

        def blob(self, name):
            return Blob(name)

    repository = export_model.GcsRepository.__new__(export_model.GcsRepository)
    repository.prefix, repository.bucket = "models", Bucket()
    repository.upload(_version_folder(tmp_path), "cat", 1)
    assert uploaded[-1] == "models/cat/1/saved_model.pb" and len(uploaded) == 3


def test_a_detector_exported_before_the_top1_rule_counts_as_missing(storage):
    repository = export_model.GcsRepository("gs://proj-1-models/models")
    storage.blob("models/cat/1/saved_model.pb").upload_from_string(b"graph")
    storage.blob("models/cat/1/model.json").upload_from_string(
        '{"kind": "detector", "detector": {"label": "cat", "class_ids": [281], "threshold": 0.5}}')
    assert not export_model.has_version(repository, "cat"), "a threshold-only detector is exported again"
    storage.blob("models/cat/2/model.json").upload_from_string(
        '{"kind": "detector", "detector": {"label": "cat", "class_ids": [281], "scores": "probabilities"}}')
    storage.blob("models/cat/2/saved_model.pb").upload_from_string(b"graph")
    assert export_model.has_version(repository, "cat")


def test_the_builds_export_step_keeps_models_of_your_own_already_in_the_bucket(storage, caplog):
    # What cloudbuild.yaml's export-models step runs: every model of the models file, --if-missing.
    step = next(s for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]
                if s["id"] == "export-models")
    assert "scripts/export_model.py $$models --if-missing" in step["args"][-1]
    storage.blob("models/cat/1/model.json").upload_from_string(
        '{"kind": "detector", "detector": {"label": "cat", "class_ids": [281], "scores": "probabilities"}}')
    storage.blob("models/cat/1/saved_model.pb").upload_from_string(b"graph")
    storage.blob("models/mine/1/saved_model.pb").upload_from_string(b"graph")
    caplog.set_level(logging.INFO, logger="export_model")
    repository = "gs://proj-1-models/models"
    assert export_model.main(["cat", "mine", "--if-missing", "--repository", repository]) == 0
    assert "mine: already exported" in caplog.text and "cat: already exported" in caplog.text
    # A model of your own that is not in the bucket: one line saying how to export it, nothing uploaded.
    assert export_model.main(["cat", "mine", "yours", "--if-missing", "--repository", repository]) == 2
    said = f"yours: not in the catalog and no version under {repository}; export it with --from"
    assert said in caplog.text
    assert not list(storage.client.list_blobs(storage, prefix="models/yours/"))


def test_a_model_of_your_own_is_uploaded_as_the_next_version(storage, tmp_path):
    from tests.own_models import mean_colour_model, save, write_labels

    storage.blob("models/mine/1/saved_model.pb").upload_from_string(b"graph")
    assert export_model.main(["mine", "--from", str(save(mean_colour_model(), tmp_path)),
                              "--labels", str(write_labels(tmp_path)), "--precision", "float32",
                              "--repository", "gs://proj-1-models/models"]) == 0
    names = {blob.name for blob in storage.client.list_blobs(storage, prefix="models/mine/2/")}
    assert {"models/mine/2/saved_model.pb", "models/mine/2/model.json", "models/mine/2/labels.txt"} <= names
    assert storage.blob("models/mine/2/labels.txt").download_as_text().split() == ["red", "green", "blue"]
