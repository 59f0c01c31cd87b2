"""The served model: a SavedModel that takes encoded image bytes and returns scores.

Decoding, resizing and normalisation are inside the SavedModel's graph, so the
preprocessing is versioned with the weights. This class only turns scores into
results: top-k labels for a classifier, yes/no for a detector, and keeps what the
graph decodes bounded: an image declaring more pixels than the budget never reaches
it, and a batch is cut so that one graph call decodes at most a budget's worth.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from inference_contract.image_size import DEFAULT_MAX_IMAGE_PIXELS, declared_size, over_budget
from inference_contract.model_layout import LABELS, MODEL_CARD

from .errors import InvalidImage, ModelLoadError
from .repository import ModelRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    kind: str  # "classifier" or "detector"
    weights: str
    pretrained: bool
    labels: tuple[str, ...]
    top_k: int = 5
    detector_label: str | None = None
    threshold: float = 0.5
    # A detector exported with full class probabilities ("scores": [batch, 1000]) and the
    # classes it looks for; an older one returns only their summed probability.
    detector_class_ids: tuple[int, ...] = ()
    precision: str = "float32"  # what this process runs, after the check in ImageModel.load

    @classmethod
    def read(cls, folder: Path, name: str, version: int) -> ModelInfo:
        try:
            meta = json.loads((folder / MODEL_CARD).read_text())
            labels = tuple((folder / LABELS).read_text().splitlines())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{folder} lacks a readable {MODEL_CARD} and {LABELS}: {exc}") from exc
        detector = meta.get("detector") or {}
        return cls(
            name=name, version=version, kind=meta["kind"], weights=meta["weights"],
            pretrained=bool(meta.get("pretrained")), labels=labels,
            top_k=int(meta.get("top_k", 5)), detector_label=detector.get("label"),
            threshold=float(detector.get("threshold", 0.5)),
            precision=meta.get("precision", "float32"),
            detector_class_ids=tuple(int(i) for i in detector.get("class_ids", ()))
            if detector.get("scores") == "probabilities" else (),
        )

    def describe(self) -> dict:
        return {"model": self.name, "version": self.version, "kind": self.kind,
                "weights": self.weights, "pretrained": self.pretrained, "precision": self.precision,
                **({"label": self.detector_label} if self.kind == "detector" else {})}


class ImageModel:
    """Loads once per process; `predict` takes a batch of encoded images."""

    def __init__(self, repository: ModelRepository, name: str, version: str = "latest",
                 max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, threads: int = 0) -> None:
        self._repository = repository
        self._threads = threads  # per model call (MODEL_THREADS); 0: TensorFlow's default, every core
        self._max_pixels = max_pixels
        self._name = name
        self._requested_version = version
        self._serve = None
        self._ready = threading.Event()
        self.info: ModelInfo | None = None
        self.load_seconds: float | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def load(self) -> ModelInfo:
        import tensorflow as tf

        started = time.monotonic()
        if self._threads:
            # Before the runtime starts (the first load), as TensorFlow requires.
            tf.config.threading.set_intra_op_parallelism_threads(self._threads)
        version = self._repository.resolve(self._name, self._requested_version)
        folder = self._repository.local_path(self._name, version)
        info = ModelInfo.read(folder, self._name, version)
        info = dataclasses.replace(info, precision=self._serving_precision(info.precision, tf))
        if info.precision == "bfloat16":
            # Binds when the signature first runs; one model per process, so process-wide is right.
            tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
        try:
            loaded = tf.saved_model.load(str(folder))
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise ModelLoadError(f"cannot load the SavedModel at {folder}: {exc}") from exc
        self._loaded = loaded  # keeps the variables alive behind the signature
        self._serve = loaded.signatures["serving_default"]
        self._invalid_argument = tf.errors.InvalidArgumentError
        self._constant = tf.constant
        self.info = info
        self.load_seconds = time.monotonic() - started
        self._ready.set()
        log.info("model loaded", extra={**info.describe(), "load_seconds": round(self.load_seconds, 2)})
        return info

    @staticmethod
    def _serving_precision(recorded: str, tf) -> str:
        """The model.json's choice, unless this machine can't run it fast: then float32."""
        if recorded != "bfloat16":
            return "float32"
        cpu_flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        if (tf.config.list_physical_devices("GPU")
                or not ("amx_bf16" in cpu_flags or "avx512_bf16" in cpu_flags)):
            log.warning("model.json asks for bfloat16, which this machine would not run faster; "
                        "serving float32 (the measurement was made on the exporting CPU)")
            return "float32"
        return "bfloat16"

    def predict(self, images: list[bytes]) -> list[dict | InvalidImage]:
        """One result per image, or an InvalidImage in its place when it can't be decoded
        or declares more pixels than the budget (that image alone fails)."""
        results: list[dict | InvalidImage | None] = [None] * len(images)
        admitted: list[tuple[int, int]] = []  # (index, declared pixels)
        for index, image in enumerate(images):
            size = declared_size(image)
            refusal = ("its size cannot be read from its header" if size is None
                       else over_budget(size, self._max_pixels))
            if refusal:
                results[index] = InvalidImage(f"the image {refusal}")
            else:
                admitted.append((index, size.pixels))
        for group in decode_groups(admitted, self._max_pixels):
            for index, result in zip(group, self._predict_admitted([images[i] for i in group]),
                                     strict=True):
                results[index] = result
        return results

    def _predict_admitted(self, images: list[bytes]) -> list[dict | InvalidImage]:
        if not images:
            return []
        try:
            scores = self._scores(images)
        except self._invalid_argument:
            if len(images) == 1:
                return [InvalidImage("the image could not be decoded")]
            # One bad image fails the whole batch in the graph; find which.
            return [result for image in images for result in self._predict_admitted([image])]
        return [self._result(row) for row in scores]

    def _scores(self, images: list[bytes]) -> np.ndarray:
        outputs = self._serve(images=self._constant(images))
        return outputs["scores"].numpy()

    def _result(self, scores: np.ndarray) -> dict:
        info = self.info
        if info.kind == "detector":
            return {**detect(info, scores), "precision": info.precision}
        top = np.argsort(scores)[::-1][: info.top_k]
        return {
            "top_k": [{"class_id": int(i), "label": info.labels[i], "score": round(float(scores[i]), 6)}
                      for i in top],
            "weights": info.weights,
            "precision": info.precision,
        }


def decode_groups(admitted: list[tuple[int, int]], max_pixels: int) -> list[list[int]]:
    """The images' indexes cut into graph calls whose declared pixels add up to at most
    max_pixels (an image within the budget always fits alone), in order: sixteen
    photos stay one call, sixteen images near the budget become sixteen."""
    groups: list[list[int]] = []
    total = max_pixels + 1
    for index, pixels in admitted:
        if total + pixels > max_pixels:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += pixels
    return groups


def detect(info: ModelInfo, scores: np.ndarray) -> dict:
    """Yes when the top-1 class is one of the detector's classes, or when their summed
    probability reaches the threshold. `rule` says which fired ("top1" first, then
    "threshold"; null for no) and `top_class` is the image's top-1 ImageNet class.

    A detector exported before the top-1 rule returns only the summed score: it
    answers by the threshold alone and has no top class.
    """
    if not info.detector_class_ids:  # an older export: scores is [summed probability]
        score = float(scores[0])
        match = score >= info.threshold
        return {"label": info.detector_label, "match": match, "score": round(score, 6),
                "rule": "threshold" if match else None, "top_class": None, "weights": info.weights}
    score = float(np.sum(scores[list(info.detector_class_ids)]))
    top = int(np.argmax(scores))
    rule = ("top1" if top in info.detector_class_ids
            else "threshold" if score >= info.threshold else None)
    return {"label": info.detector_label, "match": rule is not None, "score": round(score, 6),
            "rule": rule,
            "top_class": {"class_id": top, "label": info.labels[top] if top < len(info.labels) else str(top),
                          "score": round(float(scores[top]), 6)},
            "weights": info.weights}
