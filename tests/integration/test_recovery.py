"""Nothing stuck, nothing lost: crashes, lost messages and old predictions, on the real emulators."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from emulators.processes import http_status
from scripts import fault_injection
from tests.conftest import stack_reports
from tests.images import tabby_bytes
from tests.integration.client import firestore_document, queued_document, wait_final

pytestmark = pytest.mark.integration


def test_worker_killed_twice_mid_run_loses_nothing_and_calls_back_once_each(stack):
    model = "efficientnet-lite0"
    port = int(stack.model_urls[model].rsplit(":", 1)[1])
    report = fault_injection.run(stack.api_url, model, port, images=100, kills=2, interval=3.0, timeout=180,
                                 headers=stack.headers())
    assert report["kills"] == 2
    assert report["statuses"] == {"succeeded": 100}, report
    assert report["callbacks_missing"] == 0 and report["callbacks_distinct"] == 100, report
    assert report["callbacks_header_matches_body"], report
    # webhook-id is stable per prediction, so a receiver drops any repeat; the
    # transitions make repeats rare: say how many there were.
    retaken = sum(firestore_document(stack, i)["attempts"] > 1 for i in report["ids"])
    print(f"fault injection: {retaken} predictions retaken after a kill, "
          f"{report['callbacks_repeated']} repeated callbacks, "
          f"all final after {report['all_final_seconds']} s, "
          f"first success {report['seconds_from_kill_to_next_success']} s after each kill")


def _service_without_publishing(stack, clock=None):
    """The API's own code and adapters, on the emulators, with a publisher that loses every message."""
    from google.cloud import firestore, storage
    from prediction_api.adapters import FirestorePredictionStore, GcsUploadStore
    from prediction_api.config import Settings
    from prediction_api.service import PredictionService

    class LostPublisher:
        def publish(self, message):
            return "lost"

    settings = Settings(project=stack.config.project, uploads_bucket=stack.config.uploads_bucket,
                        models=stack.config.models, redeliver_after_seconds=5)
    project = stack.config.project
    return PredictionService(
        settings, GcsUploadStore(storage.Client(project=project), settings.uploads_bucket),
        FirestorePredictionStore(firestore.Client(project=project)), LostPublisher(),
        **({"clock": clock} if clock else {}))


def _upload():
    from prediction_api.images import validate_image

    return validate_image(tabby_bytes(), 10 << 20, "tabby.jpg")


def test_a_message_never_published_is_finished_by_the_reconciler(stack):
    document = _service_without_publishing(stack).submit("cat", [_upload()], None, stack.api_key_id)[0]
    final = wait_final(f"{stack.api_url}/v1/predictions/{document['id']}", timeout=60)
    assert final["status"] == "succeeded" and final["result"]["match"] is True, final
    # Nothing but the reconciler published it. (Its redeliveries counter may stay 0: the
    # model service can claim the prediction before the reconciler records the republish.)
    stored = firestore_document(stack, document["id"])
    assert stored["attempts"] == 1
    assert stored["reconcile_at"] is None  # nothing left to watch


def test_a_prediction_older_than_the_maximum_age_ends_timed_out(stack):
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    document = _service_without_publishing(stack, clock=lambda: two_hours_ago).submit(
        "cat", [_upload()], None, stack.api_key_id)[0]
    final = wait_final(f"{stack.api_url}/v1/predictions/{document['id']}", timeout=30)
    assert final["status"] == "failed" and final["error"]["code"] == "timed_out", final
    assert final["result"] is None
    assert firestore_document(stack, document["id"])["attempts"] == 0  # failed without a model run


def test_a_killed_model_service_is_restarted_and_serves_again(stack):
    model = "cat"
    service = stack.model_processes[model]
    before = len(stack_reports)
    old_pid = service.process.pid
    os.kill(old_pid, signal.SIGKILL)  # the gunicorn master itself: the whole service is gone
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if service.process.pid != old_pid and service.exit_code is None and http_status(
                f"{stack.model_urls[model]}/healthz") == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the {model} model service was not restarted: {stack_reports[before:]}")
    said = [line for line in stack_reports[before:] if line.startswith(f"{model} model service exited")]
    assert len(said) == 1 and "code -9; restarting in" in said[0], stack_reports[before:]
    response = requests.post(f"{stack.api_url}/v1/models/{model}/predictions",
                             files=[("image", ("tabby.jpg", tabby_bytes(), "image/jpeg"))],
                             headers=stack.headers(), timeout=60)
    assert response.status_code == 202, response.text
    final = wait_final(response.json()["status_url"], timeout=60)
    assert final["status"] == "succeeded" and final["result"]["match"] is True


@pytest.mark.parametrize("use_private_api", [True, False], ids=["private_api", "public_api"])
def test_transitions_made_together_lose_no_update(stack, use_private_api):
    """The model service groups concurrent transitions into one read and one conditional batch write,
    through the client's private API or its public fallback (client_internals)."""
    import threading

    from google.cloud import firestore
    from model_service.firestore_runs import FirestoreRunStore

    client = firestore.Client(project=stack.config.project)
    store = FirestoreRunStore(client, use_private_api=use_private_api)
    references = [client.collection("predictions").document(f"grouped-{use_private_api}-{i}")
                  for i in range(3)]
    for reference in references:
        reference.set({"n": 0})

    def add_one(reference) -> None:
        for _ in range(20):
            store._transact(reference.id, lambda document: ({"n": document["n"] + 1}, None))

    threads = [threading.Thread(target=add_one, args=(references[i % 3],)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # 3 threads x 20 on each document, many of them in the same group: none lost.
    assert [reference.get().to_dict()["n"] for reference in references] == [60, 60, 60]


@pytest.mark.parametrize("use_private_api", [True, False], ids=["private_api", "public_api"])
def test_a_first_delivery_claims_without_a_read_and_a_changed_document_is_read(stack, use_private_api):
    """With the document as created and its create's update time (a first publish carries both), the
    claim is one conditional write; once anything else has written the document, that write fails
    and the claim is decided on what a read finds."""
    from google.cloud import firestore
    from inference_contract import billable_operations as billed
    from model_service.firestore_runs import FirestoreRunStore
    from prediction_api.adapters import FirestorePredictionStore

    client = firestore.Client(project=stack.config.project)
    api_store = FirestorePredictionStore(client)
    store = FirestoreRunStore(client, use_private_api=use_private_api)
    now = datetime.now(UTC)

    def created() -> tuple[dict, str]:
        document = queued_document("created")
        return document, api_store.create(document)

    def reads() -> int:
        return billed.COUNTS.snapshot()[billed.FIRESTORE_READ]

    document, update_time = created()
    store.know_created(document["id"], document, update_time)
    before = reads()
    claim = store.claim(document["id"], 1, 10, now, "token-1")
    assert claim.run and reads() == before  # no read
    assert client.collection("predictions").document(document["id"]).get().to_dict()["status"] == "running"

    # Cancelled by its owner after the create: the message's copy is stale.
    document, update_time = created()
    client.collection("predictions").document(document["id"]).update(
        {"status": "cancelled", "completed_at": now, "reconcile_at": None})
    store.know_created(document["id"], document, update_time)
    claim = store.claim(document["id"], 1, 10, now, "token-2")
    assert not claim.run and claim.document["status"] == "cancelled" and reads() > before
    assert client.collection("predictions").document(document["id"]).get().to_dict()["status"] == "cancelled"
