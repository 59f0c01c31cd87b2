"""The OpenAPI document of the running stack: valid, true of real answers, and fuzzed with Schemathesis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import schemathesis
from inference_contract.predictions import FINAL_STATUSES
from openapi_spec_validator import validate

from tests.conftest import ROOT
from tests.images import sample
from tests.integration.client import HEADERS, post_images

pytestmark = pytest.mark.integration

# Bounds of the fuzzing run inside `make test`: examples per operation and phase, and a
# wall-clock cap for the whole run (it usually takes well under a minute here).
FUZZ_MAX_EXAMPLES = 25
FUZZ_TIMEOUT_SECONDS = 420


@pytest.fixture(scope="module")
def document(stack) -> dict:
    response = requests.get(f"{stack.api_url}/v1/openapi.json", timeout=10)  # needs no key
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()


def test_served_document_is_valid_openapi(stack, document):
    validate(document)
    assert document["servers"] == [{"url": stack.api_url}]
    models = document["paths"]["/v1/models/{model}/predictions"]["post"]["parameters"][0]["schema"]["enum"]
    assert set(models) == set(stack.config.models)


def test_a_prediction_as_it_moves_matches_the_document(stack, document):
    schema = schemathesis.openapi.from_dict(document)
    upload = post_images(stack, "cat", ("tabby.jpg", sample("tabby").read_bytes(), "image/jpeg"))
    schema["/v1/models/{model}/predictions"]["POST"].validate_response(upload)
    assert upload.status_code == 202
    status_url = upload.json()["status_url"]
    get = schema["/v1/predictions/{id}"]["GET"]
    seen = []
    for _ in range(20):
        # until=change: each answer comes as soon as the status moves on.
        answer = requests.get(status_url, params={"wait": 10, "until": "change"}, headers=HEADERS, timeout=40)
        get.validate_response(answer)
        seen.append(answer.json()["status"])
        if seen[-1] in FINAL_STATUSES:
            break
    assert seen[-1] == "succeeded", seen
    final = answer.json()
    assert final["timings"]["queue_ms"] >= 0 and final["timings"]["model_ms"] > 0
    assert final["timings"]["batch_size"] >= 1
    assert final["result"]["top_class"]["label"] and final["result"]["rule"] in ("top1", "threshold")
    for path, method, url in (("/v1/models", "GET", "/v1/models"),
                              ("/v1/predictions/{id}", "GET", "/v1/predictions/nope")):
        schema[path][method].validate_response(
            requests.get(f"{stack.api_url}{url}", headers=HEADERS, timeout=10))
    # Ids Firestore cannot hold name no prediction: 404, not a backend error (found by fuzzing).
    for bad_id in ("__main__", "..", "x" * 1600):
        answer = requests.get(f"{stack.api_url}/v1/predictions/{bad_id}", headers=HEADERS, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", answer.text


@pytest.mark.runs_last
def test_schemathesis_finds_no_undocumented_answer_and_no_500(stack):
    """Every answer is a documented status with its documented body, never a 500.

    All Schemathesis checks but positive_data_acceptance: a body of random bytes
    matches `format: binary` and is rightly refused as not an image. Callback URLs
    include malformed authorities (fuzz_hooks.py). Made-up callback hosts are
    refused at submit: the test stack's API calls back to this machine only
    (CALLBACK_ALLOWED_HOSTS in tests/conftest.py), so none leaves.
    """
    reports = ROOT / "test-artifacts" / "schemathesis"
    reports.mkdir(parents=True, exist_ok=True)
    command = [os.fspath(Path(sys.executable).parent / "schemathesis"), "run",
               f"{stack.api_url}/v1/openapi.json",
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--max-examples", str(FUZZ_MAX_EXAMPLES),
               # One worker: with two, Hypothesis describing a strategy in both threads at once hits
               # CPython 3.11's ast.parse race ("SystemError: AST constructor recursion depth
               # mismatch"), which failed the coverage phase on the jobs body in 2 of our runs.
               "--workers", "1", "--request-timeout", "40",
               # A long poll may hold the answer up to wait=30 s, as documented.
               "--max-response-time", "35",
               "--seed", "12", "--generation-deterministic",
               "--report", "junit", "--report-dir", os.fspath(reports),
               *[arg for name, value in HEADERS.items() for arg in ("--header", f"{name}: {value}")]]
    # fuzz_hooks.py: callback URLs include malformed authorities (tests/callback_urls.py).
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120",
           "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks",
           "PYTHONPATH": os.pathsep.join([os.fspath(ROOT), os.environ.get("PYTHONPATH", "")])}
    logs = {path: path.stat().st_size for path in stack.config.log_dir.glob("model-*.log")}
    result = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_SECONDS,
                            cwd=reports, env=env)
    (reports / "output.txt").write_text(result.stdout + result.stderr)
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert summary and int(summary.group(1)) > 100 and summary.group(1) == summary.group(2), \
        result.stdout[-3000:]
    # No callback to a made-up host was sent.
    outside = []
    for path, start in logs.items():
        with path.open() as handle:
            handle.seek(start)
            for line in handle:
                if '"message": "callback' in line \
                        and json.loads(line).get("host") not in ("127.0.0.1", "localhost"):
                    outside.append(line)
    assert outside == [], outside[:3]
