"""Bulk jobs on the emulators: submit, read, list and cancel through the API; each input exactly once
in the output, summary.json last, whatever is cancelled or killed; every bad input a 4xx with
nothing started. The stack's JOB_SHARD_SIZE is small (conftest.py), so a job of tens of images has
several shards."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from inference_contract import jobs

from emulators.processes import gunicorn_worker_pid
from scripts import benchmark_jobs, job_buckets
from scripts.fault_injection import kill_worker
from scripts.sample_photos import all_samples
from tests.integration.client import HEADERS
from tests.integration.test_security import create_key

pytestmark = pytest.mark.integration

BUCKET = "test-jobs"


def _upload(stack, count: int, extra: dict[str, bytes] | None = None) -> tuple[str, list[str]]:
    """count sample photos under distinct names in a fresh prefix (and extra objects); (prefix, URIs)."""
    prefix = f"in-{uuid.uuid4().hex[:8]}/"
    uris = job_buckets.upload_photos(stack.config.project, BUCKET, prefix, all_samples(), count, threads=8)
    if extra:
        from google.cloud import storage

        blobs = storage.Client(project=stack.config.project).bucket(BUCKET)
        for name, data in extra.items():
            blobs.blob(prefix + name).upload_from_string(data, content_type="image/jpeg")
            uris.append(f"gs://{BUCKET}/{prefix}{name}")
    return f"gs://{BUCKET}/{prefix}", uris


def _output() -> str:
    return f"gs://{BUCKET}/out-{uuid.uuid4().hex[:8]}/"


def _submit(stack, model: str, body: dict, headers: dict | None = None) -> requests.Response:
    return benchmark_jobs.submit(stack.api_url, model, body, HEADERS if headers is None else headers)


def _get(stack, job_id: str, headers: dict | None = None) -> requests.Response:
    return requests.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=HEADERS if headers is None else headers,
                        timeout=30)


def _list(stack, headers: dict | None = None, **query) -> dict:
    response = requests.get(f"{stack.api_url}/v1/jobs", params=query,
                            headers=HEADERS if headers is None else headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _wait(stack, job_id: str, timeout: float = 180, headers: dict | None = None) -> dict:
    return benchmark_jobs.wait_job(stack.api_url, job_id, HEADERS if headers is None else headers, timeout)


def _output_of(stack, job: dict) -> dict:
    return job_buckets.read_output(stack.config.project, job["output"])


def test_a_job_over_a_prefix_answers_each_image_once_and_writes_the_summary_last(stack):
    source, uris = _upload(stack, 23, extra={"zz-broken.jpg": b"\xff\xd8\xff\xe0 not really a jpeg"})
    output = _output()
    response = _submit(stack, "tiny-test", {"input": source, "output": output})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == jobs.QUEUED and accepted["counts"]["total"] == 24
    assert accepted["status_url"].endswith(f"/v1/jobs/{accepted['id']}")
    job = _wait(stack, accepted["id"])
    assert job["status"] == jobs.SUCCEEDED, job
    assert job["counts"] == {"total": 24, "succeeded": 23, "failed": 1, "pending": 0}
    assert job["model_versions"] == [1] and job["timings"]["images_per_second"] > 0
    written = _output_of(stack, job)
    assert job_buckets.exactly_once(written["lines"], uris)["ok"], written["files"]
    assert written["summary_last"] and written["summary"]["status"] == jobs.SUCCEEDED
    assert written["summary"]["counts"] == job["counts"]
    # Several shards (JOB_SHARD_SIZE is 5 here), each its own results file, then the summary.
    assert len([f for f in written["files"] if f.endswith(".jsonl")]) == 5
    assert sorted(job["outputs"]) == sorted(f"gs://{BUCKET}/{name}" for name in written["files"])
    broken = next(line for line in written["lines"] if line["input"].endswith("zz-broken.jpg"))
    assert broken["status"] == "failed" and broken["error"]["code"] == "invalid_image"
    answered = next(line for line in written["lines"] if line["status"] == "succeeded")
    assert answered["model_version"] == 1 and answered["result"]["top_k"]


def test_a_manifest_job_reads_gs_lines_bare_or_quoted_and_a_missing_object_fails_only_its_line(stack):
    from google.cloud import storage

    _, uris = _upload(stack, 6)
    missing = f"gs://{BUCKET}/gone-{uuid.uuid4().hex}.jpg"
    lines = [uris[0], f'"{uris[1]}"', "", *uris[2:], missing]
    manifest = f"manifests/{uuid.uuid4().hex}.jsonl"
    storage.Client(project=stack.config.project).bucket(BUCKET).blob(manifest).upload_from_string(
        "\n".join(lines) + "\n")
    response = _submit(stack, "efficientnet-lite0",
                       {"input": f"gs://{BUCKET}/{manifest}", "output": _output()})
    assert response.status_code == 202, response.text
    job = _wait(stack, response.json()["id"])
    assert job["status"] == jobs.SUCCEEDED
    assert job["counts"]["failed"] == 1 and job["counts"]["succeeded"] == 6
    written = _output_of(stack, job)
    assert job_buckets.exactly_once(written["lines"], [*uris, missing])["ok"]
    gone = next(line for line in written["lines"] if line["input"] == missing)
    assert gone["error"]["code"] == "image_missing"


def test_only_the_key_that_submitted_a_job_sees_lists_or_cancels_it(stack):
    first = {"X-API-Key": create_key(stack, "jobs-first", 600)}
    second = {"X-API-Key": create_key(stack, "jobs-second", 600)}
    source, _ = _upload(stack, 3)
    ids = []
    for _ in range(2):
        response = _submit(stack, "tiny-test", {"input": source, "output": _output()}, headers=first)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for job_id in ids:
        _wait(stack, job_id, headers=first)
    page = _list(stack, first, page_size=1)
    assert [j["id"] for j in page["jobs"]] == ids[-1:] and page["next_page_token"]
    rest = _list(stack, first, page_size=1, page_token=page["next_page_token"])
    assert [j["id"] for j in rest["jobs"]] == ids[:1] and rest["next_page_token"] is None
    assert [j["id"] for j in _list(stack, first, status="succeeded")["jobs"]] == ids[::-1]
    assert _list(stack, second) == {"jobs": [], "next_page_token": None}
    assert _get(stack, ids[0], headers=second).status_code == 404
    theirs = requests.post(f"{stack.api_url}/v1/jobs/{ids[0]}:cancel", headers=second, timeout=30)
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    mine = requests.post(f"{stack.api_url}/v1/jobs/{ids[0]}:cancel", headers=first, timeout=30)
    assert mine.status_code == 409 and mine.json()["error"]["status"] == "succeeded"


def _bad_manifest(stack) -> str:
    from google.cloud import storage

    name = f"manifests/{uuid.uuid4().hex}.jsonl"
    storage.Client(project=stack.config.project).bucket(BUCKET).blob(name).upload_from_string(
        f"gs://{BUCKET}/a.jpg\nnot a uri\n\"gs://{BUCKET}/b.jpg\"\nftp://x/y.jpg\n")
    return f"gs://{BUCKET}/{name}"


def test_every_bad_input_is_a_clear_4xx_and_starts_nothing(stack):
    source, _ = _upload(stack, 2)
    key = {"X-API-Key": create_key(stack, "jobs-refused", 600)}
    cases = [
        ("tiny-test", {"input": f"gs://{BUCKET}/nothing-{uuid.uuid4().hex}/", "output": _output()}, 422,
         "no_images"),
        ("tiny-test", {"input": "gs://no-such-bucket-x/photos/", "output": _output()}, 422,
         "input_not_readable"),
        ("tiny-test", {"input": f"gs://{BUCKET}/no-such-manifest.jsonl", "output": _output()}, 422,
         "input_not_readable"),
        ("tiny-test", {"input": source, "output": "gs://no-such-bucket-y/out/"}, 422, "output_not_writable"),
        ("tiny-test", {"input": _bad_manifest(stack), "output": _output()}, 400, "invalid_manifest"),
        ("tiny-test", {"input": "https://example.com/x/", "output": _output()}, 400, "invalid_request"),
        ("tiny-test", {"input": source}, 400, "invalid_request"),
        ("tiny-test", {"input": source, "output": _output(), "extra": 1}, 400, "invalid_request"),
        ("no-such-model", {"input": source, "output": _output()}, 404, "not_found"),
    ]
    for model, body, status, code in cases:
        response = _submit(stack, model, body, headers=key)
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (status, code), (body, response.text)
        if code == "invalid_manifest":
            assert error["lines"] == [2, 4] and "line 2, 4" in error["message"]
    not_json = requests.post(f"{stack.api_url}/v1/models/tiny-test/jobs", data="input=x", headers=key,
                             timeout=30)
    assert not_json.status_code == 400
    assert _list(stack, key) == {"jobs": [], "next_page_token": None}


def test_a_job_over_the_keys_quota_in_images_is_refused_with_retry_after(stack):
    source, _ = _upload(stack, 12)
    key = {"X-API-Key": create_key(stack, "jobs-quota", 10)}
    response = _submit(stack, "tiny-test", {"input": source, "output": _output()}, headers=key)
    assert response.status_code == 202  # a job bigger than the bucket takes a full bucket
    again = _submit(stack, "tiny-test", {"input": source, "output": _output()}, headers=key)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1


def test_a_cancel_mid_job_stops_the_shards_not_started_and_no_line_appears_after_it_is_final(stack):
    source, uris = _upload(stack, 80)
    response = _submit(stack, "efficientnet-lite0", {"input": source, "output": _output()})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while (body := _get(stack, job_id).json())["counts"]["succeeded"] == 0:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    cancel = requests.post(f"{stack.api_url}/v1/jobs/{job_id}:cancel", headers=HEADERS, timeout=30)
    assert cancel.status_code == 202 and cancel.json()["cancel_requested_at"], cancel.text
    job = _wait(stack, job_id)
    assert job["status"] == jobs.CANCELLED, job
    first = _output_of(stack, job)
    time.sleep(4)
    second = _output_of(stack, job)
    assert second["files"] == first["files"] and len(second["lines"]) == len(first["lines"])
    report = job_buckets.exactly_once(first["lines"], uris)
    assert report["repeated"] == 0 and report["unexpected"] == 0 and 0 < report["lines"] < 80, report
    assert job["counts"]["succeeded"] + job["counts"]["failed"] == report["lines"]
    assert job["counts"]["pending"] == 80 - report["lines"]
    assert first["summary"]["status"] == jobs.CANCELLED and first["summary_last"]


def test_a_worker_killed_mid_job_still_gives_every_input_exactly_once(stack):
    model = "efficientnet-lite0"
    port = int(stack.model_urls[model].rsplit(":", 1)[1])
    source, uris = _upload(stack, 60)
    response = _submit(stack, model, {"input": source, "output": _output()})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while _get(stack, job_id).json()["counts"]["succeeded"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kill_worker(port)
    job = _wait(stack, job_id, timeout=240)
    assert job["status"] == jobs.SUCCEEDED, job
    assert job["counts"] == {"total": 60, "succeeded": 60, "failed": 0, "pending": 0}
    written = _output_of(stack, job)
    assert job_buckets.exactly_once(written["lines"], uris)["ok"]
    assert written["summary_last"]
    deadline = time.monotonic() + 60
    while gunicorn_worker_pid(port) is None:  # leave a worker for the next test
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_the_jobs_benchmark_runs_on_small_n(stack):
    model = "tiny-test"
    report = benchmark_jobs.run(
        stack.api_url, model, stack.model_urls[model], stack.reconcile_url, 20, all_samples(), HEADERS,
        stack.config.project, BUCKET, kills=0, interactive=3, push_requests=32,
        repository=stack.config.model_repository, uploads_bucket=stack.config.uploads_bucket, timeout=120)
    assert report["status"] == jobs.SUCCEEDED and report["exactly_once"]["ok"], report
    assert report["exactly_once"]["summary_last"]
    assert report["push_endpoint_images_per_s"] > 0 and report["job_images_per_s"] > 0
    # What the prediction path counts (0 where its adapters count nothing yet).
    assert report["single_prediction_firestore_writes"] >= 0
    # 20 images in 4 shards of 5: a few writes per shard (created, claimed, finished, counted into the
    # job, perhaps republished by the reconciler; the job created, started, finalized), never one
    # per image, which would be 20 more.
    assert 0 < report["job_firestore_writes"] <= 3 + 4 * 6, report
    benchmark_jobs.print_report(report)
