"""Chooses a model version's serving precision by measuring it on this CPU.

bfloat16 through oneDNN (TensorFlow's grappler option
`auto_mixed_precision_onednn_bfloat16`, AMX on recent Xeons) made ResNet50 1.72x
faster here and EfficientNet-Lite0 slower (0.88x), so it is chosen per model:
only when it is faster by MIN_SPEEDUP and keeps the top-1 class of float32 on
at least MIN_AGREEMENT of the check inputs.

The check inputs are the sample photos and their mirror images. Agreement is
bf16's top-1 against float32's top-1 of the same weights: for a model with
random weights (resnet50 here, unless real weights are given) that measures
numerical fidelity, not accuracy, which is what choosing a precision needs.

The option is process-wide: each precision is measured in a process of its own,
as it is served (in one process, a float32 copy loaded beside a bfloat16 one ran
at the same speed, so the comparison said nothing).
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
ROUNDS = 5
MIN_SPEEDUP = 1.1
MIN_AGREEMENT = 0.99
BF16_OPTION = "auto_mixed_precision_onednn_bfloat16"


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


def measure(folder: Path, photos: list[bytes]) -> dict:
    """{"precision": "bfloat16" | "float32", and the figures that decided it}."""
    if not cpu_supports_bf16():
        return {"precision": "float32", "reason": "this CPU has neither AMX nor AVX-512 BF16"}
    if not photos:
        return {"precision": "float32", "reason": "no sample photos to check agreement on"}
    with tempfile.TemporaryDirectory(prefix="precision-") as scratch:
        for i, data in enumerate(check_inputs(photos)):
            (Path(scratch) / f"{i:03d}.jpg").write_bytes(data)
        runs = {precision: _run_in_fresh_process(folder, precision, Path(scratch))
                for precision in ("float32", "bfloat16")}
    fp32, bf16 = runs["float32"], runs["bfloat16"]
    agreement = sum(a == b for a, b in zip(fp32["top1"], bf16["top1"], strict=True)) / len(fp32["top1"])
    speedup = bf16["images_per_s"] / fp32["images_per_s"]
    chosen = "bfloat16" if speedup >= MIN_SPEEDUP and agreement >= MIN_AGREEMENT else "float32"
    return {
        "precision": chosen,
        "float32_images_per_s": fp32["images_per_s"],
        "bfloat16_images_per_s": bf16["images_per_s"],
        "bfloat16_speedup": round(speedup, 2),
        "top1_agreement": round(agreement, 3),
        "check_inputs": len(fp32["top1"]),
        "batch": BATCH,
        "rule": f"bfloat16 if speedup >= {MIN_SPEEDUP} and top-1 agreement >= {MIN_AGREEMENT}",
    }


def _run_in_fresh_process(folder: Path, precision: str, inputs: Path) -> dict:
    # The option is process-wide and binds as functions first run: each precision
    # gets a process of its own, as it will when served.
    result = subprocess.run([sys.executable, "-m", "scripts.model_builders.precision", os.fspath(folder),
                             precision, os.fspath(inputs)],
                            capture_output=True, text=True, check=True, cwd=ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def _measure_one(folder: Path, precision: str, inputs: Path) -> dict:
    import tensorflow as tf

    if precision == "bfloat16":
        tf.config.optimizer.set_experimental_options({BF16_OPTION: True})
    serve = tf.saved_model.load(os.fspath(folder)).signatures["serving_default"]
    images = [p.read_bytes() for p in sorted(inputs.iterdir())]
    top1 = serve(images=tf.constant(images))["scores"].numpy().argmax(1).tolist()
    batch = tf.constant([images[i % len(images)] for i in range(BATCH)])
    serve(images=batch)  # warm-up at the timed shape
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        serve(images=batch)["scores"].numpy()
        times.append(time.perf_counter() - started)
    return {"top1": top1, "images_per_s": round(BATCH / statistics.median(times), 1)}


if __name__ == "__main__":
    print(json.dumps(_measure_one(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))
