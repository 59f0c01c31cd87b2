"""Groups concurrent requests into one model call.

gunicorn runs several threads; each push request hands its image here and waits.
One thread runs the model on what is queued, up to MAX_BATCH_SIZE images, which
is what keeps a GPU (or the CPU's vector units) busy. MAX_BATCH_DELAY_MS (default
0) would wait that long for more; as Triton and TF Serving advise for CPUs, the
default takes what is queued and does not wait: while one batch runs, the next
one forms by itself.

CONCURRENT_BATCHES (default 1) runs that many model calls at once, each taking
its own batch from the queue, as Triton runs several instances of a model on a
CPU. With MODEL_THREADS=1 (model.py) each call keeps to one core, and the cores
run batches side by side instead of splitting every operation between them: on
2 cores, EfficientNet-Lite0 gave the same batch-1 latency at two thirds of the
CPU, and 58-62 images/s at batch 16 against 52-56 (README, "Threads per call").

Every batch logs one structured line ("batch": model, batch_size, model_ms,
wait_ms, failed) which Cloud Logging turns into the batch-size and model-latency
metrics; `on_batch` feeds the same figures to the local /metrics.

Bulk jobs' images (job_handler.py) go in a second, low-priority lane: a batch
is taken from it only when no interactive request is queued, and holds at most
`bulk_batch_size` images (JOB_BATCH_SIZE), so an interactive request waits at
most for one small bulk batch to finish, never behind a job's backlog.

A batch fails loudly: a model call that raises, or that returns a different
number of results than it was given images, fails every request of the batch;
and a request waits for its batch at most PREDICT_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from .errors import TransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inference:
    """One image's result, with the batch it ran in."""

    result: object
    batch_size: int
    model_seconds: float
    # Time spent in this process waiting for the batch to fill or for the previous one.
    wait_seconds: float


class BatchFailed(TransientError):
    """The model call of a batch did not give one result per image."""


class MicroBatcher:
    def __init__(self, predict_batch: Callable[[list[bytes]], list], max_batch_size: int,
                 max_delay_seconds: float, timeout_seconds: float, model_name: str = "",
                 on_batch: Callable[[int, float], None] | None = None, bulk_batch_size: int = 4,
                 concurrent_batches: int = 1) -> None:
        self._predict_batch = predict_batch
        self._max_batch_size = max_batch_size
        self._bulk_batch_size = max(1, min(bulk_batch_size, max_batch_size))
        self._max_delay = max_delay_seconds
        self._timeout = timeout_seconds
        self._model_name = model_name
        self._on_batch = on_batch
        # (image, future, queued at): interactive requests first, bulk images when none is queued.
        self._interactive: deque[tuple[bytes, Future, float]] = deque()
        self._bulk: deque[tuple[bytes, Future, float]] = deque()
        self._queued = threading.Condition()
        self._runners = [threading.Thread(target=self._run, name=f"micro-batcher-{n}", daemon=True)
                         for n in range(max(1, concurrent_batches))]
        for runner in self._runners:
            runner.start()

    def predict(self, image: bytes) -> Inference:
        """The image's result, run in the next batch; TransientError if that takes too long."""
        return self.predict_all([image])[0]

    def submit(self, image: bytes, bulk: bool = False) -> Future:
        """Queue one image (bulk: in the low-priority lane); its Future gives its Inference."""
        future: Future = Future()
        with self._queued:
            (self._bulk if bulk else self._interactive).append((image, future, time.monotonic()))
            self._queued.notify()
        return future

    def predict_all(self, images: list[bytes]) -> list[Inference]:
        """Each image's result, in order. Queued at once, so they share a batch where it has
        room; all within one PREDICT_TIMEOUT_SECONDS, else TransientError."""
        futures = [self.submit(image) for image in images]
        deadline = time.monotonic() + self._timeout
        try:
            return [future.result(max(0.0, deadline - time.monotonic())) for future in futures]
        except FutureTimeout:
            raise TransientError(f"the model gave no result within {self._timeout:g} s") from None

    def wait_each(self, futures: list[Future]) -> list[Inference | Exception]:
        """Each bulk image's result (or the exception its batch raised), in order. Bounded by
        progress: TransientError when no result came for PREDICT_TIMEOUT_SECONDS."""
        results: list[Inference | Exception] = []
        for future in futures:
            try:
                results.append(future.result(self._timeout))
            except FutureTimeout:
                raise TransientError(f"the model gave no result within {self._timeout:g} s") from None
            except Exception as exc:  # the batch's failure, the caller's to judge
                results.append(exc)
        return results

    def _next_batch(self) -> list[tuple[bytes, Future, float]]:
        with self._queued:
            while not self._interactive and not self._bulk:
                self._queued.wait()
            if not self._interactive:
                return [self._bulk.popleft() for _ in range(min(self._bulk_batch_size, len(self._bulk)))]
            deadline = time.monotonic() + self._max_delay
            while len(self._interactive) < self._max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._queued.wait(remaining)
            return [self._interactive.popleft()
                    for _ in range(min(self._max_batch_size, len(self._interactive)))]

    def _run(self) -> None:
        while True:
            self._run_batch(self._next_batch())

    def _run_batch(self, batch: list[tuple[bytes, Future, float]]) -> None:
        started = time.monotonic()
        try:
            results = list(self._predict_batch([image for image, _, _ in batch]))
            if len(results) != len(batch):
                raise BatchFailed(f"the model returned {len(results)} results for {len(batch)} images")
        except Exception as exc:  # handed to every waiting request, which decides
            self._report(len(batch), time.monotonic() - started, started - batch[0][2], failed=True)
            for _, future, _ in batch:
                future.set_exception(exc)
            return
        seconds = time.monotonic() - started
        self._report(len(batch), seconds, started - batch[0][2], failed=False)
        for (_, future, queued), result in zip(batch, results, strict=True):
            future.set_result(Inference(result, len(batch), seconds, started - queued))

    def _report(self, size: int, seconds: float, wait: float, failed: bool) -> None:
        log.info("batch", extra={"model": self._model_name, "batch_size": size,
                                 "model_ms": round(seconds * 1000, 2), "wait_ms": round(wait * 1000, 2),
                                 "failed": failed})
        if self._on_batch:
            try:
                self._on_batch(size, seconds)
            except Exception:  # metrics never fail a prediction
                log.exception("could not record batch metrics")
