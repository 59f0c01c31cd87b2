"""The micro-batcher groups concurrent requests and hands each its own result."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from model_service.batcher import BatchFailed, MicroBatcher
from model_service.errors import TransientError


def test_concurrent_requests_share_batches_and_keep_their_results():
    batches: list[list[bytes]] = []
    release = threading.Event()

    def predict_batch(images):
        release.wait(5)  # hold the first batch so the others queue up behind it
        batches.append(images)
        return [image.upper() for image in images]

    batcher = MicroBatcher(predict_batch, max_batch_size=4, max_delay_seconds=0.05, timeout_seconds=10)
    inputs = [f"img{i}".encode() for i in range(9)]
    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(batcher.predict, image) for image in inputs]
        threading.Timer(0.3, release.set).start()
        results = [future.result().result for future in futures]
    assert results == [image.upper() for image in inputs]
    assert max(len(batch) for batch in batches) == 4
    assert len(batches) < len(inputs)


@pytest.mark.parametrize("concurrent_batches", [1, 2])
def test_concurrent_batches_run_that_many_model_calls_at_once(concurrent_batches):
    inside, most, lock = [0], [0], threading.Lock()
    both_in = threading.Event()

    def predict_batch(images):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            if inside[0] == 2:
                both_in.set()
        both_in.wait(0.5)  # a second call can start only while this one runs
        with lock:
            inside[0] -= 1
        return images

    batcher = MicroBatcher(predict_batch, max_batch_size=2, max_delay_seconds=0, timeout_seconds=10,
                           concurrent_batches=concurrent_batches)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: batcher.predict(bytes([i])).result, range(8)))
    assert results == [bytes([i]) for i in range(8)]
    assert most[0] == concurrent_batches


def test_a_failing_batch_fails_each_of_its_requests():
    def predict_batch(images):
        raise RuntimeError("model exploded")

    batcher = MicroBatcher(predict_batch, max_batch_size=8, max_delay_seconds=0.01, timeout_seconds=5)
    with pytest.raises(RuntimeError, match="exploded"):
        batcher.predict(b"x")


def test_a_batch_with_a_result_missing_fails_each_of_its_requests(caplog):
    release = threading.Event()

    def predict_batch(images):
        release.wait(5)
        return images[:-1]  # one row short

    batcher = MicroBatcher(predict_batch, max_batch_size=3, max_delay_seconds=0.05, timeout_seconds=10)
    with caplog.at_level("INFO", logger="model_service.batcher"), ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.predict, f"i{i}".encode()) for i in range(3)]
        threading.Timer(0.3, release.set).start()
        for future in futures:
            with pytest.raises(BatchFailed, match="results for"):
                future.result()
    assert all(r.failed for r in caplog.records if r.getMessage() == "batch")


def test_a_request_waits_for_its_batch_within_the_timeout():
    release = threading.Event()

    def predict_batch(images):
        release.wait(5)
        return images

    batcher = MicroBatcher(predict_batch, max_batch_size=1, max_delay_seconds=0, timeout_seconds=0.2)
    try:
        with pytest.raises(TransientError, match="no result within 0.2 s"):
            batcher.predict(b"x")
    finally:
        release.set()


def test_with_no_delay_it_takes_what_is_queued_while_a_batch_runs():
    batches: list[int] = []
    first_running = threading.Event()
    release = threading.Event()

    def predict_batch(images):
        batches.append(len(images))
        first_running.set()
        release.wait(5)  # the first batch runs while the others queue
        return images

    batcher = MicroBatcher(predict_batch, max_batch_size=8, max_delay_seconds=0, timeout_seconds=10)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(batcher.predict, b"first")
        assert first_running.wait(5)
        rest = [pool.submit(batcher.predict, f"img{i}".encode()) for i in range(8)]
        while len(batcher._interactive) < 8:
            threading.Event().wait(0.01)
        release.set()
        assert (first.result().result == b"first"
                and [f.result().result for f in rest] == [f"img{i}".encode() for i in range(8)])
    # Nobody waited for the first to fill; the eight queued behind it ran as one batch.
    assert batches == [1, 8]


def test_each_result_carries_its_batch_and_each_batch_logs_one_line(caplog):
    seen: list[tuple[int, float]] = []
    release = threading.Event()

    def predict_batch(images):
        release.wait(5)
        return [image.upper() for image in images]

    batcher = MicroBatcher(predict_batch, max_batch_size=3, max_delay_seconds=0.05, timeout_seconds=10,
                           model_name="m",
                           on_batch=lambda size, seconds: seen.append((size, seconds)))
    with caplog.at_level("INFO", logger="model_service.batcher"), ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.predict, f"i{i}".encode()) for i in range(3)]
        threading.Timer(0.3, release.set).start()
        inferences = [future.result() for future in futures]
    assert [i.result for i in inferences] == [b"I0", b"I1", b"I2"]
    sizes = sorted(i.batch_size for i in inferences)
    assert sum(size for size, _ in seen) == 3 and sizes[-1] == max(size for size, _ in seen)
    assert all(i.model_seconds > 0 for i in inferences)
    lines = [r for r in caplog.records if r.getMessage() == "batch"]
    assert len(lines) == len(seen)
    assert {r.model for r in lines} == {"m"} and sum(r.batch_size for r in lines) == 3
    assert all(r.model_ms > 0 and r.failed is False for r in lines)


def test_images_queued_together_share_a_batch_and_keep_their_order():
    batches: list[list[bytes]] = []

    def predict(images):
        batches.append(list(images))
        return [image.upper() for image in images]

    batcher = MicroBatcher(predict, max_batch_size=2, max_delay_seconds=0.5, timeout_seconds=5)
    results = batcher.predict_all([b"a", b"b", b"c"])
    assert [inference.result for inference in results] == [b"A", b"B", b"C"]
    assert batches == [[b"a", b"b"], [b"c"]]


def test_images_queued_together_without_results_in_time_are_a_transient_error():
    release = threading.Event()

    def slow(images):
        release.wait(5)
        return list(images)

    batcher = MicroBatcher(slow, max_batch_size=1, max_delay_seconds=0, timeout_seconds=0.2)
    try:
        with pytest.raises(TransientError, match="no result within 0.2 s"):
            batcher.predict_all([b"a", b"b", b"c"])
    finally:
        release.set()
