"""The bare SavedModel in this process: images/s and CPU ms per image per batch size."""

from __future__ import annotations

import os
import time
from pathlib import Path

BARE_BATCHES = (1, 8, 16, 32)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bare_model(repository: Path, model: str, photos: list[bytes], images: int) -> dict[int, dict]:
    """images/s and CPU ms per image of the SavedModel's own signature, per batch size."""
    import tensorflow as tf

    versions = sorted((int(p.name) for p in (repository / model).iterdir() if p.name.isdigit()), reverse=True)
    if not versions:
        raise SystemExit(f"no exported version of {model} under {repository}: run `make run` first")
    # The newest version, as the services load it by default.
    serve = tf.saved_model.load(
        os.fspath(repository / model / str(versions[0]))).signatures["serving_default"]
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
