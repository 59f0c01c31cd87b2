"""Recall and false positives of each detector on the sample photos, old rule and new.

    python scripts/measure_detectors.py                    # cat and dog in .local/model_repository
    python scripts/measure_detectors.py cat --repository /tmp/models

For every photo it prints the top-1 class, the detector's summed score and the
answer of each rule: "sum" (the summed probability of the detector's classes
reaches the threshold, the rule before issue 12) and "top1 or sum" (the served
rule: also yes when the top-1 class is one of the detector's). Then, per
detector: recall (yes on its photos) and false positives (yes on the others).
A photo's truth is its ImageNet wnid (tests/photos, or $SAMPLE_IMAGES_DIR).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model_service.model import ImageModel
from model_service.repository import ModelRepository

from scripts.sample_photos import CATS, DOGS, all_samples

ROOT = Path(__file__).resolve().parent.parent
# Before TensorFlow is imported (ImageModel.load() imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRUTH = {"cat": CATS, "dog": DOGS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("detectors", nargs="*", default=["cat", "dog"])
    parser.add_argument("--repository", default=os.fspath(ROOT / ".local" / "model_repository"))
    args = parser.parse_args(argv)
    photos = all_samples()
    images = [p.read_bytes() for p in photos]
    for name in args.detectors:
        model = ImageModel(ModelRepository(args.repository), name)
        info = model.load()
        if not info.detector_class_ids:
            print(f"{name} v{info.version} was exported before the top-1 rule; export it again")
            return 2
        expected = TRUTH[name]
        results = model.predict(images)
        print(f"\n{name} v{info.version} (threshold {info.threshold}, "
              f"{len(info.detector_class_ids)} classes)")
        print(f"{'photo':<38} {'top-1 class':<22} {'sum':>6}  {'sum rule':<8} {'top1 or sum':<12}")
        counts = {"sum": [0, 0], "top1 or sum": [0, 0]}  # [yes on positives, yes on negatives]
        for photo, result in zip(photos, results, strict=True):
            positive = photo.name.split("_")[0] in expected
            old = result["score"] >= info.threshold
            new = result["match"]
            for rule, said_yes in (("sum", old), ("top1 or sum", new)):
                if said_yes:
                    counts[rule][0 if positive else 1] += 1
            marker = "*" if positive else " "
            print(f"{marker}{photo.name:<37} {result['top_class']['label']:<22} {result['score']:>6.3f}  "
                  f"{'yes' if old else 'no':<8} {('yes (' + result['rule'] + ')') if new else 'no':<12}")
        positives = sum(p.name.split("_")[0] in expected for p in photos)
        negatives = len(photos) - positives
        for rule, (hits, false_positives) in counts.items():
            print(f"  {rule:<12} recall {hits}/{positives}, false positives {false_positives}/{negatives}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
