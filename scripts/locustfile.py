"""Locust users that submit an image and wait for its result, as an API client does.

Run through scripts/load_test.py, which ramps the users, bounds the time and
checks every accepted prediction ended; or by hand:

    .venv/bin/locust -f scripts/locustfile.py --host http://127.0.0.1:8080 --headless -u 8 -r 2 -t 1m

Settings (environment): LOAD_MODEL (efficientnet-lite0), LOAD_ACCEPTED_LOG (a
file to which each accepted prediction id is appended), INFERENCE_API_KEY
(sent as X-API-Key when set), SAMPLE_IMAGES_DIR.
"""

from __future__ import annotations

import os
import time

from inference_contract.predictions import FINAL_STATUSES
from locust import HttpUser, between, events, task

from scripts.sample_photos import all_samples

MODEL = os.environ.get("LOAD_MODEL", "efficientnet-lite0")
PHOTOS = [(p.name, p.read_bytes()) for p in all_samples()]
ACCEPTED_LOG = os.environ.get("LOAD_ACCEPTED_LOG")
API_KEY = os.environ.get("INFERENCE_API_KEY")


class ApiClient(HttpUser):
    wait_time = between(0, 0.1)

    def on_start(self) -> None:
        self.sent = 0
        if API_KEY:
            self.client.headers["X-API-Key"] = API_KEY

    @task
    def submit_and_wait(self) -> None:
        name, data = PHOTOS[self.sent % len(PHOTOS)]
        self.sent += 1
        started = time.perf_counter()
        with self.client.post(f"/v1/models/{MODEL}/predictions",
                              files=[("image", (name, data, "image/jpeg"))],
                              name="POST /v1/models/{model}/predictions", catch_response=True) as response:
            if response.status_code in (429, 503):
                # Shed or unavailable: the answer must say when to come back.
                if "Retry-After" not in response.headers:
                    response.failure(f"{response.status_code} without Retry-After")
                    return
                response.success()
                time.sleep(min(float(response.headers["Retry-After"]), 10))
                return
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            accepted = response.json()
        if ACCEPTED_LOG:
            with open(ACCEPTED_LOG, "a") as log:
                log.write(accepted["id"] + "\n")
        status = accepted["status"]
        while status not in FINAL_STATUSES:
            with self.client.get(accepted["status_url"], params={"wait": 25},
                                 name="GET /v1/predictions/{id}?wait=25",
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}: {response.text[:200]}")
                    return
                status = response.json()["status"]
        # The flow a person waits for, upload to result, as one entry in the statistics.
        events.request.fire(request_type="FLOW", name="submit and wait",
                            response_time=(time.perf_counter() - started) * 1000, response_length=0,
                            exception=None if status == "succeeded" else RuntimeError(status),
                            context={})
