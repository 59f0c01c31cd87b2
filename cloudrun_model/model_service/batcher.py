"""Groups concurrent requests into one model call.

gunicorn runs several threads; each push request hands its image here and waits.
One thread runs the model on what is queued, up to MAX_BATCH_SIZE images, which
is what keeps a GPU (or the CPU's vector units) busy. MAX_BATCH_DELAY_MS (default
0) would wait that long for more; as Triton and TF Serving advise for CPUs, the
default takes what is queued and does not wait: while one batch runs, the next
one forms by itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable

log = logging.getLogger(__name__)


class MicroBatcher:
    def __init__(self, predict_batch: Callable[[list[bytes]], list], max_batch_size: int,
                 max_delay_seconds: float) -> None:
        self._predict_batch = predict_batch
        self._max_batch_size = max_batch_size
        self._max_delay = max_delay_seconds
        self._queue: queue.Queue[tuple[bytes, Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def predict(self, image: bytes, timeout: float | None = None):
        future: Future = Future()
        self._queue.put((image, future))
        return future.result(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self._max_delay
            while len(batch) < self._max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[bytes, Future]]) -> None:
        started = time.monotonic()
        try:
            results = self._predict_batch([image for image, _ in batch])
        except Exception as exc:  # handed to every waiting request, which decides
            for _, future in batch:
                future.set_exception(exc)
            return
        log.info("batch", extra={"batch_size": len(batch),
                                 "model_ms": round((time.monotonic() - started) * 1000, 1)})
        for (_, future), result in zip(batch, results):
            future.set_result(result)
