"""Wraps a Keras image model in the serving signature and writes a repository version.

The signature takes a batch of encoded images (tf.string) and returns
{"scores": float32 [batch, n]}. Decoding, resizing and normalisation run in the
graph, so the preprocessing a set of weights expects ships with those weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import keras
import tensorflow as tf
from inference_contract import model_layout

from .precision import measure as measure_precision
from .spec import Head, Preprocessing


def _decode(image_bytes: tf.Tensor, pre: Preprocessing) -> tf.Tensor:
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image = tf.cast(image, tf.float32)
    size = pre.image_size
    if pre.resize == "center_crop":
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.cast(pre.crop_fraction * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
        side = tf.maximum(side, 1)
        image = tf.image.crop_to_bounding_box(
            image, (height - side + 1) // 2, (width - side + 1) // 2, side, side)
    image = tf.image.resize(image, [size, size], method=pre.method)
    if pre.normalisation == "caffe":
        return image[..., ::-1] - tf.constant([103.939, 116.779, 123.68])
    image = image / 255.0
    if pre.normalisation == "mean_std":
        image = (image - tf.constant(pre.mean)) / tf.constant(pre.std)
    return image


def serving_function(model: keras.Model, pre: Preprocessing, head: Head):
    size = pre.image_size

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.map_fn(lambda b: _decode(b, pre), images,
                          fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        outputs = model(batch, training=False)
        probabilities = tf.nn.softmax(outputs, axis=-1) if head.outputs == "logits" else outputs
        # A detector returns every class's probability too: the service answers yes on
        # its classes' top-1 as well as on their summed probability (model.json says which).
        return {"scores": probabilities}

    return serve


def next_version(model_folder: Path) -> int:
    return model_layout.next_version(model_layout.local_entries(model_folder))


def export_version(repository: Path, name: str, model: keras.Model, pre: Preprocessing,
                   head: Head, labels: Sequence[str], weights: str, pretrained: bool,
                   extra: dict | None = None, precision: str = "auto",
                   photos: Sequence[bytes] = ()) -> tuple[int, Path]:
    """Write <repository>/<name>/<n+1>/ and return (n+1, its path).

    The version is written in a temporary folder and renamed into place, so a
    model service never sees half a version.
    """
    model_folder = repository / name
    model_folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=model_folder))
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name="serving_default", fn=serving_function(model, pre, head),
                             input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        archive.write_out(os.fspath(staging / "savedmodel"), verbose=False)
        for item in (staging / "savedmodel").iterdir():
            item.rename(staging / item.name)
        (staging / "savedmodel").rmdir()
        measured = (measure_precision(staging, list(photos)) if precision == "auto"
                    else {"precision": precision, "reason": "set by --precision"})
        (staging / model_layout.LABELS).write_text("\n".join(labels) + "\n")
        metadata = {
            "name": name, "kind": head.kind, "weights": weights, "pretrained": pretrained,
            "preprocessing": asdict(pre), "outputs": head.outputs, "top_k": 5,
            "exported_at": datetime.now(UTC).isoformat(), **(extra or {}),
            "precision": measured["precision"], "precision_measurement": measured,
        }
        if head.kind == "detector":
            # "scores": "probabilities": the signature returns all classes, and the
            # service applies the rule (top-1 in class_ids, or their sum >= threshold).
            metadata["detector"] = {"label": head.detector_label, "threshold": head.threshold,
                                    "class_ids": list(head.detector_class_ids),
                                    "scores": "probabilities", "rule": "top1_or_threshold"}
        (staging / model_layout.MODEL_CARD).write_text(json.dumps(metadata, indent=2) + "\n")
        while True:  # another export may take the same number; retry with the next one
            version = next_version(model_folder)
            try:
                staging.rename(model_folder / str(version))
                return version, model_folder / str(version)
            except OSError:
                if not (model_folder / str(version)).exists():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
