"""The bare SavedModel: images/s and CPU ms per image per batch size, in this process; and its
latency one image at a time with a pause between calls, as the API path calls it, in a process of
its own per thread setting (`python -m scripts.benchmarks.bare REPOSITORY MODEL THREADS`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BARE_BATCHES = (1, 8, 16, 32)
# One image every ~100 ms: what the API path, one at a time, leaves between two model calls.
PAUSE_SECONDS = 0.1
# TensorFlow's default threads (every core) and one, as `make run` sets MODEL_THREADS.
THREAD_SETTINGS = (0, 1)
ROOT = Path(__file__).resolve().parents[2]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _signature(repository: Path, model: str):
    import tensorflow as tf

    versions = sorted((int(p.name) for p in (repository / model).iterdir() if p.name.isdigit()), reverse=True)
    if not versions:
        raise SystemExit(f"no exported version of {model} under {repository}: run `make run` first")
    # The newest version, as the services load it by default.
    return tf.saved_model.load(os.fspath(repository / model / str(versions[0]))).signatures["serving_default"]


def bare_model(repository: Path, model: str, photos: list[bytes], images: int) -> dict[int, dict]:
    """images/s and CPU ms per image of the SavedModel's own signature, per batch size."""
    import tensorflow as tf

    serve = _signature(repository, model)
    figures = {}
    for batch in BARE_BATCHES:
        # The photos in turn, as the services are sent them: at batch 1 each round is the next
        # photo, not the first one again (the photos decode in 22.0-24.4 ms each at one thread).
        inputs = [tf.constant([photos[(r * batch + i) % len(photos)] for i in range(batch)])
                  for r in range(len(photos))]
        serve(images=inputs[0])  # warm-up: graph optimisation for this shape
        rounds = max(2, images // batch)
        cpu, wall = time.process_time(), time.perf_counter()
        for r in range(rounds):
            serve(images=inputs[r % len(inputs)])["scores"].numpy()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        figures[batch] = {"images_per_s": round(rounds * batch / wall, 1),
                          "ms_per_batch": round(wall / rounds * 1000, 1),
                          "cpu_ms_per_image": round(cpu / (rounds * batch) * 1000, 1)}
    return figures


def best_batch(bare: dict[int, dict]) -> int:
    return max(bare, key=lambda b: bare[b]["images_per_s"])


def _one_at_a_time_here(repository: Path, model: str, photos: list[bytes], calls: int,
                        pause_seconds: float) -> float:
    """p50 ms of single-photo calls, the photos in turn, each after a pause (this process's threads)."""
    import tensorflow as tf

    serve = _signature(repository, model)
    inputs = [tf.constant([photo]) for photo in photos]
    for batch in inputs:  # warm-up: every photo once
        serve(images=batch)["scores"].numpy()
    times = []
    for call in range(calls):
        time.sleep(pause_seconds)
        started = time.perf_counter()
        serve(images=inputs[call % len(inputs)])["scores"].numpy()
        times.append((time.perf_counter() - started) * 1000)
    return round(percentile(times, 50), 1)


def bare_one_at_a_time(repository: Path, model: str, calls: int = 60,
                       pause_seconds: float = PAUSE_SECONDS) -> dict:
    """The bare model's batch-1 latency one image at a time, as the API path calls it.

    Back to back, TensorFlow's threads stay awake between calls; after a pause they sleep, and
    with its default threads the next call is slower by 3-4 ms (EfficientNet-Lite0: 19.8 ms back
    to back, 24.3 after 100 ms; with one thread 23.4 and 24.1). Each thread setting runs in a process
    of its own (TensorFlow fixes its threads once per process); the faster p50 is the figure.
    """
    by_threads = {}
    for threads in THREAD_SETTINGS:
        done = subprocess.run(
            [sys.executable, "-m", "scripts.benchmarks.bare", os.fspath(repository), model, str(threads),
             str(calls), str(pause_seconds)],
            cwd=ROOT, capture_output=True, text=True, check=True)
        by_threads[threads] = json.loads(done.stdout.strip().splitlines()[-1])["p50_ms"]
    return {"p50_ms": min(by_threads.values()), "by_threads": by_threads, "pause_s": pause_seconds}


if __name__ == "__main__":
    # python -m scripts.benchmarks.bare REPOSITORY MODEL THREADS CALLS PAUSE_SECONDS
    _repository, _model, _threads, _calls, _pause = sys.argv[1:6]
    if int(_threads):
        import tensorflow as _tf

        _tf.config.threading.set_intra_op_parallelism_threads(int(_threads))
    from scripts.sample_photos import all_samples

    _photos = [path.read_bytes() for path in all_samples()]
    print(json.dumps({"p50_ms": _one_at_a_time_here(Path(_repository), _model, _photos, int(_calls),
                                                      float(_pause))}))
