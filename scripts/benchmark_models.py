"""Speed and accuracy of exported models on this machine, as printed figures.

    python scripts/benchmark_models.py                      # every model in .local/model_repository
    python scripts/benchmark_models.py efficientnet-lite0 cat --rounds 5

Times include the in-graph JPEG decoding and resizing, as in serving. Accuracy is
over the ImageNet sample photos (scripts/sample_photos.py; classifiers: top-1/top-5;
detectors: right yes/no answers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from model_service.model import ImageModel
from model_service.repository import ModelRepository

from scripts.sample_photos import CATS, CLASS_IDS, DOGS, all_samples

ROOT = Path(__file__).resolve().parent.parent
# Before TensorFlow is imported (ImageModel.load() imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DETECTED = {"cat": CATS, "dog": DOGS}


def accuracy(model: ImageModel, photos: list[Path], images: list[bytes]) -> str:
    results = model.predict(images)
    wnids = [photo.name.split("_")[0] for photo in photos]
    if model.info.kind == "detector":
        expected = DETECTED.get(model.info.detector_label, set())
        right = sum(r["match"] == (w in expected) for w, r in zip(wnids, results, strict=True))
        return f"{right}/{len(photos)} yes/no right"
    top1 = sum(r["top_k"][0]["class_id"] == CLASS_IDS.get(w) for w, r in zip(wnids, results, strict=True))
    top5 = sum(CLASS_IDS.get(w) in [c["class_id"] for c in r["top_k"]]
               for w, r in zip(wnids, results, strict=True))
    return f"top-1 {top1}/{len(photos)}, top-5 {top5}/{len(photos)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*")
    parser.add_argument("--repository", default=os.fspath(ROOT / ".local" / "model_repository"))
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per measurement")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    repository = ModelRepository(args.repository)
    names = args.models or sorted(p.name for p in Path(args.repository).iterdir() if p.is_dir())
    photos = all_samples()
    images = [p.read_bytes() for p in photos]
    batch = [images[i % len(images)] for i in range(args.batch)]
    print(f"{'model':<20} {'v':>3} {'load s':>7} {'batch 1 ms (median)':>20} "
          f"{f'batch {args.batch} img/s':>15}  accuracy on {len(photos)} sample photos")
    for name in names:
        model = ImageModel(repository, name)
        started = time.monotonic()
        model.load()
        load = time.monotonic() - started
        model.predict(images[:1])
        model.predict(batch)  # warm both shapes before timing
        single = []
        for _ in range(args.rounds):
            for image in images:
                started = time.perf_counter()
                model.predict([image])
                single.append(time.perf_counter() - started)
        batched = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            model.predict(batch)
            batched.append(time.perf_counter() - started)
        print(f"{name:<20} {model.info.version:>3} {load:>7.1f} {statistics.median(single) * 1000:>20.1f} "
              f"{len(batch) / statistics.median(batched):>15.1f}  {accuracy(model, photos, images)}"
              f"  [{model.info.weights}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
