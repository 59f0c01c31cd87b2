"""The page's "Your jobs" panel in Debian's Chromium, against a bulk job on the local stack."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.cloud import storage
from inference_contract.jobs import FINAL_JOB_STATUSES
from playwright.sync_api import expect

from tests.images import sample
from tests.web.test_page import RESULT_TIMEOUT_MS, Session, browser, screenshot  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

MODEL = "tiny-test"
PHOTOS = ("tabby", "golden_retriever", "Persian_cat", "banana")


def _submit(stack, headers: dict, model: str = MODEL) -> dict:
    """A job of the sample photos, uploaded to the stack's bucket under a fresh prefix."""
    bucket_name = stack.config.uploads_bucket
    prefix = f"web-jobs/{uuid.uuid4().hex}/"
    bucket = storage.Client(project=stack.config.project).bucket(bucket_name)
    for name in PHOTOS:
        bucket.blob(prefix + sample(name).name).upload_from_filename(str(sample(name)),
                                                                     content_type="image/jpeg")
    response = requests.post(f"{stack.api_url}/v1/models/{model}/jobs", headers=headers, timeout=60,
                             json={"input": f"gs://{bucket_name}/{prefix}",
                                   "output": f"gs://{bucket_name}/web-jobs-results/"})
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture
def session(browser, stack):  # noqa: F811 (the browser fixture above)
    opened = Session(browser, stack)
    yield opened
    opened.close()
    assert not opened.console_errors, f"the page logged errors: {opened.console_errors}"


def test_the_page_follows_a_job_to_its_end_with_its_counts(session):
    stack = session.stack
    with session.page.expect_response(lambda response: urlsplit(response.url).path == "/v1/jobs") as first:
        page = session.open()
    assert first.value.ok, first.value.status
    first_listing = len(_listings(session))
    # Submitted after the page opened: the page finds it by polling, whatever the job's speed.
    job = _submit(stack, stack.headers())
    row = page.locator(f'.job[data-id="{job["id"]}"]')
    expect(row).to_be_visible(timeout=30_000)  # the idle poll is every 15 s
    expect(row.locator(".job-model")).to_have_text(MODEL)
    expect(row).to_have_attribute("data-status", re.compile("^(" + "|".join(FINAL_JOB_STATUSES) + ")$"),
                                  timeout=RESULT_TIMEOUT_MS)
    final = requests.get(f"{stack.api_url}/v1/jobs/{job['id']}", headers=stack.headers(), timeout=10).json()
    assert final["status"] == "succeeded", final
    total = len(PHOTOS)
    # What the page shows is the API's own counts.
    expect(row.locator(".job-counts")).to_have_text(
        f"{total} / {total} done: {final['counts']['succeeded']} succeeded, "
        f"{final['counts']['failed']} failed, 0 pending")
    bar = row.locator(".job-progress")
    assert bar.get_attribute("max") == str(total) and bar.get_attribute("value") == str(total)
    expect(row.locator(".job-status")).to_have_text("succeeded")
    expect(row.locator(".job-cancel")).to_have_count(0)  # nothing left to cancel
    expect(row.locator(".job-output")).to_contain_text(final["output"])
    expect(page.locator("#jobs-empty")).to_be_hidden()
    screenshot(page, "web-jobs.png")

    # Polled: the listing that found the job came after the page's first one; newest first.
    listings = _listings(session)
    assert first_listing >= 1 and len(listings) > first_listing, listings
    assert all(parse_qs(urlsplit(url).query).get("page_size") == ["20"] for url in listings), listings
    newest = page.locator(".job").first.get_attribute("data-id")
    listed = requests.get(f"{stack.api_url}/v1/jobs", params={"page_size": 1}, headers=stack.headers(),
                          timeout=10).json()["jobs"]
    assert newest == listed[0]["id"]


def test_without_a_key_the_panel_says_why_it_lists_nothing(browser, stack):  # noqa: F811
    assert stack.api_key, "the test stack serves with API keys, as in the cloud"
    opened = Session(browser, stack, with_key=False)
    try:
        page = opened.open()
        expect(page.locator("#jobs-error")).to_be_visible(timeout=15_000)
        expect(page.locator("#jobs-error")).not_to_have_text("")
        expect(page.locator(".job")).to_have_count(0)
    finally:
        opened.close()


def test_a_job_is_cancelled_from_its_row(session):
    from tests.integration.test_control import MODEL as IDLE_MODEL
    from tests.integration.test_control import model_service_down

    stack = session.stack
    with model_service_down(stack, IDLE_MODEL):  # no shard can start meanwhile
        job = _submit(stack, stack.headers(), model=IDLE_MODEL)
        page = session.open()
        row = page.locator(f'.job[data-id="{job["id"]}"]')
        expect(row).to_have_attribute("data-status", "queued", timeout=15_000)
        row.locator(".job-cancel").click()
        # The click asked the API; the job ends only once its shards' deliveries skip them.
        deadline = time.monotonic() + 15
        while not _job(stack, job["id"])["cancel_requested_at"]:
            assert time.monotonic() < deadline, "the Cancel button did not cancel the job"
            time.sleep(0.2)
    expect(row).to_have_attribute("data-status", "cancelled", timeout=RESULT_TIMEOUT_MS)
    expect(row.locator(".job-cancel")).to_have_count(0)
    expect(row.locator(".job-counts")).to_have_text(f"0 / {len(PHOTOS)} done: 0 succeeded, 0 failed, "
                                                    f"{len(PHOTOS)} pending")


def _listings(session) -> list[str]:
    """The page's requests for its list of jobs so far."""
    return [url for url in session.requests if urlsplit(url).path == "/v1/jobs"]


def _job(stack, job_id: str) -> dict:
    return requests.get(f"{stack.api_url}/v1/jobs/{job_id}", headers=stack.headers(), timeout=10).json()
