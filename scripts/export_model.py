"""Export a model into a model repository as <repository>/<model>/<n+1>/.

    python scripts/export_model.py resnet50 --repository .local/model_repository
    python scripts/export_model.py resnet50 --weights resnet50_weights_tf_dim_ordering_tf_kernels.h5
    python scripts/export_model.py cat --base efficientnet-lite0
    python scripts/export_model.py tiny-test --if-missing
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.fspath(Path(__file__).resolve().parent.parent))

from scripts.model_builders.catalog import (  # noqa: E402
    CLASSIFIERS, DETECTORS, WeightsUnavailable, as_detector, build_resnet50, imagenet_labels,
)

log = logging.getLogger("export_model")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted([*CLASSIFIERS, *DETECTORS]))
    parser.add_argument("--repository", type=Path, default=Path(".local/model_repository"),
                        help="local model repository root (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="resnet50: Keras ImageNet weights file (.h5)")
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="resnet50: export untrained weights when no pretrained ones can be had")
    parser.add_argument("--base", choices=sorted(CLASSIFIERS), default="efficientnet-lite0",
                        help="detectors: the ImageNet classifier they are derived from")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the model already has a version")
    return parser.parse_args(argv)


def build(args: argparse.Namespace):
    def classifier(name: str):
        if name == "resnet50":
            return build_resnet50(args.weights, args.allow_random_weights)
        return CLASSIFIERS[name]()

    if args.model in DETECTORS:
        return as_detector(classifier(args.base), args.model, DETECTORS[args.model]), args.base
    return classifier(args.model), None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = args.repository / args.model
    if args.if_missing and folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir()):
        log.info("%s: already exported under %s", args.model, folder)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scripts.model_builders.serving import export_version

    started = time.monotonic()
    try:
        built, base = build(args)
    except WeightsUnavailable as exc:
        log.error("%s", exc)
        return 2
    version, path = export_version(
        args.repository, args.model, built.model, built.preprocessing, built.head,
        imagenet_labels(), built.weights, built.pretrained,
        extra={"base_model": base} if base else None)
    log.info("%s: exported version %d to %s in %.1f s (weights: %s)",
             args.model, version, path, time.monotonic() - started, built.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
