"""A long poll's Firestore listener is closed when it answers: none is left open."""

from __future__ import annotations

import threading
import time

from tests.integration.client import queued_document


def _listener_threads() -> int:
    # google-api-core's BackgroundConsumer runs each listener's stream on a thread of this name.
    return sum(t.name == "Thread-ConsumeBidirectionalStream" for t in threading.enumerate())


def test_a_long_poll_leaves_no_listener_open(stack):
    from google.cloud import firestore
    from prediction_api.adapters import FirestorePredictionStore

    store = FirestorePredictionStore(firestore.Client(project=stack.config.project))
    baseline = _listener_threads()
    ids = []
    for _ in range(3):
        document = queued_document("listener")
        store.create(document)
        ids.append(document["id"])
    for prediction_id in ids:
        # Settled on its first snapshot: the document as it is, read by the listener.
        seen = store.watch(prediction_id, 10, lambda document: document is not None)
        assert seen["id"] == prediction_id and seen["status"] == "queued"
    # A closed listener's thread ends on its own, a moment after the close.
    deadline = time.monotonic() + 10
    while _listener_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _listener_threads() == baseline
