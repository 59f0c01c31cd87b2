"""The real pretrained models, through the whole pipeline, and model versions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests

from emulators.processes import free_port
from tests.conftest import ROOT
from tests.images import CATS, CLASS_IDS, DOGS, all_samples, tabby_bytes
from tests.integration.client import HEADERS, post_images, push_envelope, wait_final

pytestmark = pytest.mark.integration


def predict_all(stack, model: str) -> dict[str, dict]:
    """Send every sample photo in one request; the final result per wnid."""
    photos = all_samples()
    response = post_images(stack, model, *[(p.name, p.read_bytes(), "image/jpeg") for p in photos])
    assert response.status_code == 202, response.text
    finals = [wait_final(p["status_url"], timeout=120) for p in response.json()["predictions"]]
    assert [f["status"] for f in finals] == ["succeeded"] * len(photos), finals
    return {photo.name.split("_")[0]: final for photo, final in zip(photos, finals, strict=True)}


def test_detectors_answer_cat_and_dog_on_sample_photos(stack):
    cat, dog = predict_all(stack, "cat"), predict_all(stack, "dog")
    assert set(cat) == set(CLASS_IDS)
    for wnid in CLASS_IDS:
        assert cat[wnid]["result"]["match"] is (wnid in CATS), (wnid, cat[wnid]["result"])
        assert dog[wnid]["result"]["match"] is (wnid in DOGS), (wnid, dog[wnid]["result"])
        assert cat[wnid]["result"]["label"] == "cat" and dog[wnid]["result"]["label"] == "dog"
        assert cat[wnid]["result"]["weights"].startswith("imagenet")
        # Each answer names its top-1 class and, for a yes, the rule that gave it.
        top = cat[wnid]["result"]["top_class"]["class_id"]
        assert top == dog[wnid]["result"]["top_class"]["class_id"]
        assert cat[wnid]["result"]["rule"] == ("top1" if top in range(281, 286) else
                                               "threshold" if cat[wnid]["result"]["score"] >= 0.5 else None)


def test_classifier_top1_matches_file_names(stack):
    results = predict_all(stack, "efficientnet-lite0")
    top1 = {wnid: r["result"]["top_k"][0]["class_id"] for wnid, r in results.items()}
    top5 = {wnid: [c["class_id"] for c in r["result"]["top_k"]] for wnid, r in results.items()}
    correct = sum(top1[wnid] == class_id for wnid, class_id in CLASS_IDS.items())
    assert correct >= 8, top1
    assert all(CLASS_IDS[wnid] in top5[wnid] for wnid in CLASS_IDS), top5
    golden = results["n02099601"]["result"]["top_k"][0]
    assert golden["label"] == "golden retriever" and golden["score"] > 0.5


def test_a_new_version_is_served_beside_the_old_and_named_in_results(stack):
    repository = stack.config.model_repository
    subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "export_model.py"), "tiny-test",
                    "--repository", os.fspath(repository)], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert sorted(p.name for p in (repository / "tiny-test").iterdir() if p.name.isdigit()) == ["1", "2"]
    port = free_port()
    canary = stack.start_model_service("tiny-test", port, {"MODEL_VERSION": "2"}, label="tiny-test-canary")
    url = f"http://127.0.0.1:{port}"
    try:
        canary.wait_http(f"{url}/healthz", 120)
        assert requests.get(f"{url}/healthz", timeout=5).json()["version"] == 2
        # The baseline service, started before version 2 existed, stays on version 1.
        baseline = requests.get(f"{stack.model_urls['tiny-test']}/healthz", timeout=5).json()
        assert baseline["version"] == 1

        # The service records its version just after it is ready (wiring._load): give it a moment.
        deadline = time.monotonic() + 15
        while True:
            models = {m["name"]: m for m in requests.get(f"{stack.api_url}/v1/models", headers=HEADERS,
                                                         timeout=10).json()["models"]}
            versions = [v["version"] for v in models["tiny-test"]["versions"]]
            if versions == [1, 2] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert versions == [1, 2]

        # A prediction delivered to the canary says which version produced it.
        from google.cloud import firestore, storage

        prediction_id = uuid.uuid4().hex
        name = f"uploads/tiny-test/{prediction_id}"
        storage.Client(project=stack.config.project).bucket(stack.config.uploads_bucket) \
            .blob(name).upload_from_string(tabby_bytes(), content_type="image/jpeg")
        now = datetime.now(UTC)
        firestore.Client(project=stack.config.project).collection("predictions").document(prediction_id).create(
            {"id": prediction_id, "model": "tiny-test", "status": "queued", "created_at": now,
             "attempts": 0, "callback_url": None, "api_key_id": stack.api_key_id})
        payload = {"id": prediction_id, "model": "tiny-test", "content_type": "image/jpeg",
                   "image_uri": f"gs://{stack.config.uploads_bucket}/{name}", "callback_url": None}
        assert requests.post(f"{url}/", json=push_envelope(payload), timeout=30).status_code == 204
        final = requests.get(f"{stack.api_url}/v1/predictions/{prediction_id}", headers=HEADERS,
                             timeout=10).json()
        assert final["status"] == "succeeded" and final["model_version"] == 2
    finally:
        canary.stop()


def test_model_loads_from_a_gcs_repository(stack):
    """Cloud Run reads models from gs://; the same code path against the Storage emulator."""
    from google.cloud import storage

    client = storage.Client(project=stack.config.project)
    bucket = client.create_bucket(f"models-{uuid.uuid4().hex[:8]}")
    source = stack.config.model_repository / "tiny-test" / "1"
    for path in source.rglob("*"):
        if path.is_file():
            bucket.blob(f"models/tiny-test/1/{path.relative_to(source)}").upload_from_filename(path)
    port = free_port()
    service = stack.start_model_service(
        "tiny-test", port, {"MODEL_REPOSITORY": f"gs://{bucket.name}/models"}, label="tiny-test-gcs")
    try:
        service.wait_http(f"http://127.0.0.1:{port}/healthz", 120)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["version"] == 1 and health["kind"] == "classifier"
    finally:
        service.stop()


def test_export_measures_both_precisions_and_the_service_runs_what_model_json_says(stack, tmp_path):
    import json
    import shutil

    from scripts.model_builders.precision import MIN_AGREEMENT, MIN_SPEEDUP, cpu_supports_bf16

    repository = tmp_path / "models"
    subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "export_model.py"), "tiny-test",
                    "--repository", os.fspath(repository), "--precision", "auto"], check=True,
                   capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    meta = json.loads((repository / "tiny-test" / "1" / "model.json").read_text())
    measured = meta["precision_measurement"]
    if cpu_supports_bf16():
        assert measured["float32_images_per_s"] > 0 and measured["bfloat16_images_per_s"] > 0
        assert measured["check_inputs"] == 20  # the 10 sample photos and their mirrors
        pays = measured["bfloat16_speedup"] >= MIN_SPEEDUP and measured["top1_agreement"] >= MIN_AGREEMENT
        assert meta["precision"] == ("bfloat16" if pays else "float32"), measured
    else:
        # Without AMX or AVX-512 BF16 oneDNN only emulates bfloat16: float32, nothing to measure.
        assert meta["precision"] == "float32", measured
        assert "BF16" in measured["reason"] and "float32_images_per_s" not in measured, measured

    # Served as recorded: a copy whose model.json asks for bfloat16.
    shutil.copytree(stack.config.model_repository / "tiny-test" / "1", tmp_path / "bf16" / "tiny-test" / "1")
    path = tmp_path / "bf16" / "tiny-test" / "1" / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "precision": "bfloat16"}))
    port = free_port()
    service = stack.start_model_service("tiny-test", port, {"MODEL_REPOSITORY": os.fspath(tmp_path / "bf16")},
                                        label="tiny-test-bf16")
    try:
        service.wait_http(f"http://127.0.0.1:{port}/healthz", 120)
        # Run as recorded where the CPU has bfloat16 hardware; elsewhere the service falls back to float32.
        served = "bfloat16" if cpu_supports_bf16() else "float32"
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["precision"] == served
        baseline = requests.get(f"{stack.model_urls['tiny-test']}/healthz", timeout=5).json()
        assert baseline["precision"] == "float32"
    finally:
        service.stop()
