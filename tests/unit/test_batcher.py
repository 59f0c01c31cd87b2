"""The micro-batcher groups concurrent requests and hands each its own result."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from model_service.batcher import MicroBatcher


def test_concurrent_requests_share_batches_and_keep_their_results():
    batches: list[list[bytes]] = []
    release = threading.Event()

    def predict_batch(images):
        release.wait(5)  # hold the first batch so the others queue up behind it
        batches.append(images)
        return [image.upper() for image in images]

    batcher = MicroBatcher(predict_batch, max_batch_size=4, max_delay_seconds=0.05)
    inputs = [f"img{i}".encode() for i in range(9)]
    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(batcher.predict, image, 10) for image in inputs]
        threading.Timer(0.3, release.set).start()
        results = [future.result() for future in futures]
    assert results == [image.upper() for image in inputs]
    assert max(len(batch) for batch in batches) == 4
    assert len(batches) < len(inputs)


def test_a_failing_batch_fails_each_of_its_requests():
    def predict_batch(images):
        raise RuntimeError("model exploded")

    batcher = MicroBatcher(predict_batch, max_batch_size=8, max_delay_seconds=0.01)
    with pytest.raises(RuntimeError, match="exploded"):
        batcher.predict(b"x", timeout=5)
