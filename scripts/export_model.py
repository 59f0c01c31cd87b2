"""Export models into a model repository, each as <repository>/<model>/<n+1>/.

    python scripts/export_model.py efficientnet-lite0 cat dog --repository .local/model_repository
    python scripts/export_model.py resnet50 --allow-random-weights
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
    parser.add_argument("models", nargs="+", metavar="model", choices=sorted([*CLASSIFIERS, *DETECTORS]),
                        help="one or more of: %(choices)s")
    parser.add_argument("--repository", type=Path, default=Path(".local/model_repository"),
                        help="local model repository root (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="resnet50: Keras ImageNet weights file (.h5)")
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="resnet50: export untrained weights when no pretrained ones can be had")
    parser.add_argument("--base", choices=sorted(CLASSIFIERS), default="efficientnet-lite0",
                        help="detectors: the ImageNet classifier they are derived from")
    parser.add_argument("--if-missing", action="store_true",
                        help="skip a model that already has a version")
    return parser.parse_args(argv)


class Builder:
    """Builds each classifier once, so detectors derived from it reuse the weights."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._classifiers: dict = {}

    def classifier(self, name: str):
        if name not in self._classifiers:
            if name == "resnet50":
                self._classifiers[name] = build_resnet50(self._args.weights, self._args.allow_random_weights)
            else:
                self._classifiers[name] = CLASSIFIERS[name]()
        return self._classifiers[name]

    def build(self, model: str):
        if model in DETECTORS:
            base = self._args.base
            return as_detector(self.classifier(base), model, DETECTORS[model]), base
        return self.classifier(model), None


def has_version(repository: Path, model: str) -> bool:
    folder = repository / model
    return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    todo = [m for m in dict.fromkeys(args.models) if not (args.if_missing and has_version(args.repository, m))]
    for model in sorted(set(args.models) - set(todo)):
        log.info("%s: already exported under %s", model, args.repository / model)
    if not todo:
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scripts.model_builders.serving import export_version

    builder = Builder(args)
    labels = imagenet_labels()
    for model in todo:
        started = time.monotonic()
        try:
            built, base = builder.build(model)
        except WeightsUnavailable as exc:
            log.error("%s", exc)
            return 2
        version, path = export_version(
            args.repository, model, built.model, built.preprocessing, built.head, labels,
            built.weights, built.pretrained, extra={"base_model": base} if base else None)
        log.info("%s: exported version %d to %s in %.1f s (weights: %s)",
                 model, version, path, time.monotonic() - started, built.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
