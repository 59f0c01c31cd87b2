"""Export models into a model repository, each as <repository>/<model>/<n+1>/.

    python scripts/export_model.py efficientnet-lite0 cat dog --repository .local/model_repository
    python scripts/export_model.py resnet50 --allow-random-weights
    python scripts/export_model.py resnet50 --weights resnet50_weights_tf_dim_ordering_tf_kernels.h5
    python scripts/export_model.py cat --base efficientnet-lite0
    python scripts/export_model.py tiny-test --if-missing
    python scripts/export_model.py resnet50 --allow-random-weights --precision float32
    python scripts/export_model.py efficientnet-lite0 cat dog --if-missing --repository gs://PROJECT-models/models
    python scripts/export_model.py my-model --from my_model.keras --labels labels.txt --scale unit

A model of your own (--from: a SavedModel folder or a .keras/.h5 file taking a float
image batch [N, H, W, 3] and returning [N, C] scores, one label a line in --labels)
is checked on made-up images and wrapped in the same serving signature; a model it
cannot serve is refused with one line and nothing is written
(scripts/model_builders/own_model.py). With --if-missing, a name outside the catalog
that already has a version is kept (Cloud Build's export step names every model of
the models file).

A gs:// repository gets the same layout: the version is built in a local
temporary folder and uploaded, saved_model.pb last, so a version whose
saved_model.pb is there is complete (what `rollout.py check-models` looks for).

Each version's serving precision is chosen by measuring float32 against
bfloat16 on this CPU (scripts/model_builders/precision.py) on the sample photos
(tests/photos, or $SAMPLE_IMAGES_DIR) and recorded in its model.json;
--precision sets it instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from inference_contract import model_layout

from scripts.model_builders.catalog import (
    CLASSIFIERS,
    DETECTORS,
    WeightsUnavailable,
    as_detector,
    build_resnet50,
    imagenet_labels,
)
from scripts.model_builders.own_model import SCALES
from scripts.rollouts.models_file import NAME_RE, NAME_RULE
from scripts.sample_photos import PHOTOS_DIR

log = logging.getLogger("export_model")
CATALOG = sorted([*CLASSIFIERS, *DETECTORS])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="model",
                        help=f"one or more of: {', '.join(CATALOG)}; or, with --from, a name of your own")
    own = parser.add_argument_group("a model of your own")
    own.add_argument("--from", dest="source", type=Path,
                     help="a TensorFlow SavedModel folder or a .keras/.h5 file: [N, H, W, 3] -> [N, C]")
    own.add_argument("--labels", type=Path, help="the C labels, one a line")
    own.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                     help="the input's height and width (default: the model's own)")
    own.add_argument("--scale", choices=sorted(SCALES), default="unit",
                     help="how pixels are scaled for the model (default: %(default)s, RGB in [0, 1])")
    own.add_argument("--outputs", choices=("probabilities", "logits"), default="probabilities",
                     help="what the model returns (default: %(default)s)")
    own.add_argument("--detector", type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                     metavar="CLASS,...", help="serve as a yes/no detector of these labels")
    own.add_argument("--threshold", type=float, default=0.5,
                     help="--detector: summed probability that answers yes (default: %(default)s)")
    parser.add_argument("--repository", default=".local/model_repository",
                        help="model repository root: a local folder or gs://bucket/prefix "
                             "(default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="resnet50: Keras ImageNet weights file (.h5)")
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="resnet50: export untrained weights when no pretrained ones can be had")
    parser.add_argument("--base", choices=sorted(CLASSIFIERS), default="efficientnet-lite0",
                        help="detectors: the ImageNet classifier they are derived from")
    parser.add_argument("--if-missing", action="store_true",
                        help="skip a model that already has a version")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="serving precision; auto measures both on this CPU (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.source is not None:
        if len(args.models) != 1 or args.labels is None:
            parser.error("--from takes one model name and --labels")
    else:
        for flag in ("labels", "input_size", "detector"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag.replace('_', '-')} goes with --from")
        unknown = [m for m in args.models if m not in CATALOG and NAME_RE.match(m)]
        if unknown and not args.if_missing:
            parser.error(f"{', '.join(unknown)}: not in the catalog ({', '.join(CATALOG)}); "
                         "export a model of your own with --from PATH --labels FILE")
    return args


def sample_photos() -> list[bytes]:
    return [p.read_bytes() for p in sorted(PHOTOS_DIR.glob("*.JPEG"))]


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


class GcsRepository:
    """A gs://bucket/prefix model repository: versions are read from and uploaded to Cloud Storage."""

    def __init__(self, uri: str) -> None:
        from google.cloud import storage

        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        self.uri = uri.rstrip("/")
        self.prefix = prefix.strip("/")
        self.bucket = storage.Client().bucket(bucket)

    def _model_prefix(self, model: str) -> str:
        return f"{self.prefix}/{model}/" if self.prefix else f"{model}/"

    def _entries(self, model: str) -> list[str]:
        """The model folder's objects, relative to it (model_layout's entries)."""
        start = self._model_prefix(model)
        return [blob.name[len(start):] for blob in self.bucket.client.list_blobs(self.bucket, prefix=start)]

    def versions(self, model: str) -> list[int]:
        return model_layout.complete_versions(self._entries(model))

    def stage(self, staging: Path, model: str) -> None:
        """Empty local folders for the remote version numbers (a half-uploaded one
        included), so the export takes the next free number."""
        for version in model_layout.version_folders(self._entries(model)):
            (staging / model / str(version)).mkdir(parents=True, exist_ok=True)

    def read_text(self, model: str, version: int, name: str) -> str:
        from google.api_core import exceptions as gexc

        try:
            return self.bucket.blob(f"{self._model_prefix(model)}{version}/{name}").download_as_text()
        except gexc.NotFound:
            raise LookupError(f"{self.uri}/{model}/{version}/{name} does not exist") from None

    def upload(self, folder: Path, model: str, version: int) -> str:
        target = f"{self._model_prefix(model)}{version}/"
        files = sorted((p for p in folder.rglob("*") if p.is_file()),
                       key=lambda p: (p.name == model_layout.COMPLETE_MARKER, str(p)))
        for path in files:
            blob = self.bucket.blob(target + path.relative_to(folder).as_posix())
            # if_generation_match=0: never overwrite a version another export wrote.
            blob.upload_from_filename(os.fspath(path), if_generation_match=0)
        return f"gs://{self.bucket.name}/{target}"


def has_version(repository, model: str) -> bool:
    """Whether the model has a version that `--if-missing` may keep. A detector whose
    latest version was exported before the top-1 rule (its model.json lacks
    detector.scores) does not count, so `make run` and Cloud Build export it again."""
    if isinstance(repository, GcsRepository):
        versions = repository.versions(model)
    else:
        versions = model_layout.complete_versions(model_layout.local_entries(Path(repository) / model))
    if not versions:
        return False
    if model not in DETECTORS:
        return True
    try:
        if isinstance(repository, GcsRepository):
            text = repository.read_text(model, max(versions), model_layout.MODEL_CARD)
        else:
            text = (Path(repository) / model / str(max(versions)) / model_layout.MODEL_CARD).read_text()
        meta = json.loads(text)
    except (OSError, ValueError, LookupError):
        return True  # not ours to judge; the model service reports an unreadable version
    return (meta.get("detector") or {}).get("scores") == "probabilities"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if invalid := [m for m in args.models if not NAME_RE.match(m)]:
        log.error("error: %r is not a valid model name: %s", invalid[0], NAME_RULE)
        return 2
    remote = GcsRepository(args.repository) if args.repository.startswith("gs://") else None
    local_root = Path(tempfile.mkdtemp(prefix="export-")) if remote else Path(args.repository)
    try:
        return _export(args, remote or local_root, remote, local_root)
    finally:
        if remote:
            shutil.rmtree(local_root, ignore_errors=True)


def _export(args, repository, remote, local_root: Path) -> int:
    todo = [m for m in dict.fromkeys(args.models) if not (args.if_missing and has_version(repository, m))]
    for model in sorted(set(args.models) - set(todo)):
        log.info("%s: already exported under %s/%s", model, args.repository.rstrip("/"), model)
    if not todo:
        return 0
    if args.source is None and (outside := [m for m in todo if m not in CATALOG]):
        log.error("error: %s: not in the catalog and no version under %s; export it with "
                  "--from PATH --labels FILE", ", ".join(outside), args.repository)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from scripts.model_builders.precision import PrecisionProbe

    with PrecisionProbe(sample_photos() if args.precision == "auto" else []) as probe:
        if args.source is not None:
            return _export_own(args, remote, local_root, todo[0], probe)
        return _export_catalog(args, remote, local_root, todo, probe)


def _export_catalog(args, remote, local_root: Path, todo: list[str], probe) -> int:
    """Export each catalog model in todo. A detector whose base classifier was written in
    this run gets a copy of that SavedModel and its precision measurement: the same graph
    and weights, measured once, so cat, dog and efficientnet-lite0 never disagree."""
    from scripts.model_builders.serving import export_version, fixed_precision

    probe.start()  # its processes import TensorFlow while the first model is built
    builder = Builder(args)
    labels = imagenet_labels()
    written: dict[str, tuple[Path, dict]] = {}  # graph (base classifier) -> (version, measurement)
    for model in todo:
        started = time.monotonic()
        # Said before the work, so whoever waits (make run) sees which model takes the time.
        log.info("%s: exporting…", model)
        try:
            built, base = builder.build(model)
        except WeightsUnavailable as exc:
            log.error("%s", exc)
            return 2
        if remote:
            remote.stage(local_root, model)
        graph = base or model
        if graph in written:
            same_graph_as, measured = written[graph]
            choose = lambda _folder, measured=measured, graph=graph: {**measured, "measured_on": graph}  # noqa: E731
        else:
            same_graph_as = None
            choose = probe.measure if args.precision == "auto" else fixed_precision(args.precision)
        version, path = export_version(
            local_root, model, built.model, built.preprocessing, built.head, labels,
            built.weights, built.pretrained, extra={"base_model": base} if base else None,
            choose_precision=choose, same_graph_as=same_graph_as, frozen=built.frozen)
        if graph not in written:
            written[graph] = (path, _measurement(path))
        if remote:
            path = remote.upload(path, model, version)
        log.info("%s: exported version %d to %s in %.1f s (weights: %s; precision: %s)",
                 model, version, path, time.monotonic() - started, built.weights,
                 _precision_said(written[graph][1]))
    return 0


def _export_own(args, remote, local_root: Path, model: str, probe) -> int:
    """Export the model at --from as the next version of model, or refuse it with one line."""
    from scripts.model_builders import own_model
    from scripts.model_builders.serving import export_version, fixed_precision

    started = time.monotonic()
    log.info("%s: checking %s…", model, args.source)
    try:
        labels = own_model.read_labels(args.labels)
        built = own_model.build(model, args.source, labels, input_size=args.input_size, scale=args.scale,
                                outputs=args.outputs, detector=args.detector or (), threshold=args.threshold)
    except own_model.OwnModelError as exc:
        log.error("error: %s: %s", model, exc)
        return 2
    if remote:
        remote.stage(local_root, model)
    version, path = export_version(
        local_root, model, built.model, built.preprocessing, built.head, labels, built.weights,
        built.pretrained, extra={"source": args.source.name},
        choose_precision=probe.measure if args.precision == "auto" else fixed_precision(args.precision))
    measured = _measurement(path)
    if remote:
        path = remote.upload(path, model, version)
    log.info("%s: exported version %d to %s in %.1f s (weights: %s; precision: %s)",
             model, version, path, time.monotonic() - started, built.weights, _precision_said(measured))
    return 0


def _measurement(version: Path) -> dict:
    return json.loads((version / model_layout.MODEL_CARD).read_text())["precision_measurement"]


def _precision_said(measured: dict) -> str:
    """The chosen precision and why, e.g. "bfloat16 (bfloat16 1.7x float32's speed (1.6-1.8 over 3
    paired rounds, measured in 9.1 s), top-1 agreement 1.0)"."""
    if "bfloat16_speedup" not in measured:
        return f"{measured.get('precision')} ({measured.get('reason')})"
    low, high = measured["bfloat16_speedup_range"]
    return (f"{measured['precision']} (bfloat16 {measured['bfloat16_speedup']}x float32's speed "
            f"({low}-{high} over {measured['rounds']} paired rounds, measured in "
            f"{measured['measured_in_s']} s), top-1 agreement {measured['top1_agreement']})")


if __name__ == "__main__":
    sys.exit(main())
