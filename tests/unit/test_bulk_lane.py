"""The batcher's low-priority lane for bulk jobs: small batches, and never ahead of an interactive request."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from model_service.batcher import MicroBatcher


def test_an_interactive_request_runs_in_the_next_batch_ahead_of_a_jobs_backlog():
    batches: list[list[bytes]] = []
    first_running, release = threading.Event(), threading.Event()

    def predict(images):
        batches.append(list(images))
        first_running.set()
        release.wait(5)
        return [image.upper() for image in images]

    batcher = MicroBatcher(predict, max_batch_size=16, max_delay_seconds=0, timeout_seconds=10,
                           bulk_batch_size=4)
    bulk = [batcher.submit(f"b{i}".encode(), bulk=True) for i in range(20)]
    assert first_running.wait(5)
    with ThreadPoolExecutor(1) as pool:
        interactive = pool.submit(batcher.predict, b"now")
        while not batcher._interactive:
            time.sleep(0.01)
        release.set()
        assert interactive.result().result == b"NOW"
    results = batcher.wait_each(bulk)
    assert [r.result for r in results] == [f"B{i}".encode() for i in range(20)]
    # The first bulk batch was running; the interactive request went next, before the other 16.
    assert batches[0] == [b"b0", b"b1", b"b2", b"b3"] and batches[1] == [b"now"]
    assert all(len(batch) <= 4 for batch in batches if batch != [b"now"])


def test_a_failing_bulk_batch_is_each_images_exception_not_a_hang():
    def predict(images):
        raise RuntimeError("model exploded")

    batcher = MicroBatcher(predict, max_batch_size=8, max_delay_seconds=0, timeout_seconds=5,
                           bulk_batch_size=2)
    outcomes = batcher.wait_each([batcher.submit(b"x", bulk=True), batcher.submit(b"y", bulk=True)])
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
