"""What the stack measures: timings on results, a log line per batch, /metrics on every service."""

from __future__ import annotations

import io
import json

import pytest
import requests
from PIL import Image

from tests.images import sample
from tests.integration.client import post_images, wait_final

pytestmark = pytest.mark.integration


def metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert values, f"no {line_start} in /metrics"
    return sum(values)


def test_batches_are_logged_and_every_service_serves_metrics(stack):
    photos = [("tabby.jpg", sample("tabby").read_bytes(), "image/jpeg")] * 6
    accepted = post_images(stack, "dog", *photos).json()["predictions"]
    finals = [wait_final(p["status_url"], timeout=120) for p in accepted]
    assert all(f["status"] == "succeeded" and f["timings"]["batch_size"] >= 1 for f in finals)

    model = requests.get(f"{stack.model_urls['dog']}/metrics", timeout=10).text
    assert metric(model, 'inference_batch_size_sum{model="dog"}') >= 6
    assert metric(model, 'inference_predictions_total{model="dog",status="succeeded"}') >= 6
    assert metric(model, 'inference_queue_seconds_count{model="dog"}') >= 6
    assert metric(model, 'inference_model_seconds_count{model="dog"}') >= 1

    api = requests.get(f"{stack.api_url}/metrics", timeout=10).text
    assert metric(api, 'inference_images_accepted_total{model="dog"}') >= 6
    reconcile = requests.get(f"{stack.reconcile_url}/metrics", timeout=10).text
    assert "inference_oldest_queued_age_seconds " in reconcile
    dead_letters = requests.get(f"{stack.dead_letter_url}/metrics", timeout=10).text
    assert "# TYPE inference_dead_letters_total counter" in dead_letters

    lines = [json.loads(line) for line in (stack.config.log_dir / "model-dog.log").read_text().splitlines()
             if line.startswith("{")]
    batches = [line for line in lines if line.get("message") == "batch"]
    assert sum(line["batch_size"] for line in batches) >= 6
    assert all(line["severity"] == "INFO" and line["model"] == "dog" and line["model_ms"] > 0
               for line in batches)


def blended_cat() -> bytes:
    """The tabby photo faded 30 % into the banana one: still a cat at top-1, but the five
    cat classes sum to about 0.2 with this model, under the 0.5 threshold."""
    tabby = Image.open(sample("tabby")).convert("RGB")
    banana = Image.open(sample("banana")).convert("RGB").resize(tabby.size)
    buffer = io.BytesIO()
    Image.blend(tabby, banana, 0.3).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_a_top1_cat_under_the_threshold_is_a_cat(stack):
    response = post_images(stack, "cat", ("faded-tabby.jpg", blended_cat(), "image/jpeg"))
    result = wait_final(response.json()["status_url"], timeout=60)["result"]
    assert result["score"] < 0.5, result
    assert result["top_class"]["class_id"] in range(281, 286), result
    assert result["match"] is True and result["rule"] == "top1", result
