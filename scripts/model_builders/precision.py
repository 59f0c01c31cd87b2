"""Chooses a model version's serving precision by measuring it on this CPU.

bfloat16 through oneDNN (TensorFlow's grappler option
`auto_mixed_precision_onednn_bfloat16`, AMX on recent Xeons) made ResNet50 1.72x
faster on one machine and EfficientNet-Lite0 slower (0.88x), so it is chosen per
model: only when it is faster by MIN_SPEEDUP and keeps the top-1 class of float32
on at least MIN_AGREEMENT of the check inputs.

The check inputs are the sample photos and their mirror images. Agreement is
bf16's top-1 against float32's top-1 of the same weights: for a model with
random weights (resnet50 here, unless real weights are given) that measures
numerical fidelity, not accuracy, which is what choosing a precision needs.

The option is process-wide: each precision runs in a worker process of its own,
as it is served (in one process, a float32 copy loaded beside a bfloat16 one ran
at the same speed, so the comparison said nothing). The two workers start once
per export run and measure every model of it, so an export of four models
imports TensorFlow twice for the measurement, not eight times.

The speed-up is the median of paired rounds: each round times one batch in each
worker, one after the other, the order alternating (so drift on a shared host
hits both sides alike), and counts the CPU seconds each worker spent (so another
process taking a core does not read as a slower precision). The rounds stop once
MIN_ROUNDS of them all fall on the same side of MIN_SPEEDUP, else after
MAX_ROUNDS: a clear case costs a few batches and a close one is measured longer
(a single 5-round timing per process chose float32 for `cat` and bfloat16 for
`dog`, the same network, in one run).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BATCH = 16
MIN_ROUNDS = 3
MAX_ROUNDS = 9
MIN_SPEEDUP = 1.1
MIN_AGREEMENT = 0.99
BF16_OPTION = "auto_mixed_precision_onednn_bfloat16"
PRECISIONS = ("float32", "bfloat16")


def cpu_supports_bf16() -> bool:
    """AMX or AVX-512 BF16: without them oneDNN emulates bfloat16, which is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def check_inputs(photos: list[bytes]) -> list[bytes]:
    from PIL import Image, ImageOps

    mirrored = []
    for photo in photos:
        with Image.open(io.BytesIO(photo)) as image:
            out = io.BytesIO()
            ImageOps.mirror(image.convert("RGB")).save(out, format="JPEG", quality=95)
            mirrored.append(out.getvalue())
    return [*photos, *mirrored]


def decide(speedups: list[float]) -> bool:
    """Whether the paired rounds so far settle the choice (all on one side of MIN_SPEEDUP)."""
    return len(speedups) >= MAX_ROUNDS or (
        len(speedups) >= MIN_ROUNDS
        and (min(speedups) >= MIN_SPEEDUP or max(speedups) < MIN_SPEEDUP))


class PrecisionProbe:
    """Measures float32 against bfloat16 for each SavedModel it is given, in two worker
    processes that live as long as the probe (use it as a context manager)."""

    def __init__(self, photos: list[bytes]) -> None:
        self._photos = photos
        self._workers: dict[str, subprocess.Popen] | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> PrecisionProbe:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the workers now (they import TensorFlow while the caller builds a model)."""
        if self._workers is not None or not self._photos or not cpu_supports_bf16():
            return
        self._scratch = tempfile.TemporaryDirectory(prefix="precision-")
        for i, data in enumerate(check_inputs(self._photos)):
            (Path(self._scratch.name) / f"{i:03d}.jpg").write_bytes(data)
        self._workers = {precision: subprocess.Popen(
            [sys.executable, "-m", "scripts.model_builders.precision", precision, self._scratch.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            # As the model service runs it (cloudrun_model/main.py): TensorFlow without Keras.
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"})
            for precision in PRECISIONS}

    def measure(self, folder: Path) -> dict:
        """{"precision": "bfloat16" | "float32", and the figures that decided it}."""
        if not cpu_supports_bf16():
            return {"precision": "float32", "reason": "this CPU has neither AMX nor AVX-512 BF16"}
        if not self._photos:
            return {"precision": "float32", "reason": "no sample photos to check agreement on"}
        started = time.monotonic()
        self.start()
        top1 = {p: self._ask(p, {"load": os.fspath(folder)})["top1"] for p in PRECISIONS}
        agreement = sum(a == b for a, b in zip(top1["float32"], top1["bfloat16"], strict=True)) / len(
            top1["float32"])
        rounds: list[dict[str, dict]] = []
        speedups: list[float] = []
        while not decide(speedups):
            order = PRECISIONS if len(rounds) % 2 == 0 else PRECISIONS[::-1]
            timed = {p: self._ask(p, {"time": BATCH}) for p in order}
            rounds.append(timed)
            speedups.append(timed["float32"]["cpu_s"] / timed["bfloat16"]["cpu_s"])
        speedup = statistics.median(speedups)
        chosen = "bfloat16" if speedup >= MIN_SPEEDUP and agreement >= MIN_AGREEMENT else "float32"

        def images_per_s(precision: str) -> float:
            return round(BATCH / statistics.median(r[precision]["wall_s"] for r in rounds), 1)

        return {
            "precision": chosen,
            "float32_images_per_s": images_per_s("float32"),
            "bfloat16_images_per_s": images_per_s("bfloat16"),
            "bfloat16_speedup": round(speedup, 2),
            "bfloat16_speedup_range": [round(min(speedups), 2), round(max(speedups), 2)],
            "rounds": len(speedups),
            "top1_agreement": round(agreement, 3),
            "check_inputs": len(top1["float32"]),
            "batch": BATCH,
            "measured_in_s": round(time.monotonic() - started, 1),
            "rule": (f"bfloat16 if the median of paired rounds' CPU-time speed-up >= {MIN_SPEEDUP} "
                     f"and top-1 agreement >= {MIN_AGREEMENT}"),
        }

    def _ask(self, precision: str, command: dict) -> dict:
        worker = self._workers[precision]
        worker.stdin.write(json.dumps(command) + "\n")
        worker.stdin.flush()
        while line := worker.stdout.readline():
            if line.startswith("{"):  # a library's stray print is not an answer
                return json.loads(line)
        raise RuntimeError(f"the {precision} measuring process exited with code {worker.wait()}")

    def close(self) -> None:
        for worker in (self._workers or {}).values():
            worker.stdin.close()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self._workers = None
        if self._scratch:
            self._scratch.cleanup()
            self._scratch = None


def _serve_measurements(precision: str, inputs: Path) -> None:
    """The worker: one JSON command a line on stdin, one JSON answer a line on stdout.

    {"load": folder}: load that SavedModel (dropping the previous one), answer its top-1
    class for each check input; {"time": n}: time one batch of n check inputs.
    """
    import tensorflow as tf

    if precision == "bfloat16":
        # Binds when a function first runs: set before any model is loaded.
        tf.config.optimizer.set_experimental_options({BF16_OPTION: True})
    images = [p.read_bytes() for p in sorted(inputs.iterdir())]
    serve = None
    for line in sys.stdin:
        command = json.loads(line)
        if "load" in command:
            serve = tf.saved_model.load(command["load"]).signatures["serving_default"]
            top1 = serve(images=tf.constant(images))["scores"].numpy().argmax(1).tolist()
            serve(images=tf.constant(images[:BATCH]))  # warm-up at the timed shape
            answer = {"top1": top1}
        else:
            batch = tf.constant([images[i % len(images)] for i in range(command["time"])])
            wall, cpu = time.perf_counter(), time.process_time()
            serve(images=batch)["scores"].numpy()
            answer = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _serve_measurements(sys.argv[1], Path(sys.argv[2]))
