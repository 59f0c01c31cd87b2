"""Wraps a Keras image model in the serving signature and writes a repository version.

The signature takes a batch of encoded images (tf.string) and returns
{"scores": float32 [batch, n]}. Decoding, resizing and normalisation run in the
graph, so the preprocessing a set of weights expects ships with those weights.

Decoding is bounded per image whatever bytes arrive: the declared size is read
before decoding (a JPEG's frame header, a PNG's IHDR, a GIF's logical screen) and an
image above the pixel budget fails the call (InvalidArgumentError: the service then
fails that image alone); a large JPEG is decoded at 1/2, 1/4 or 1/8 scale; only the
first frame of an animation is kept (a GIF's decoder still decodes the others: the
service's budget counts every frame); and the crop is taken from the uint8 pixels,
so no full-size float32 copy is ever made (resize gives float32 at the model's size).
The model service checks the same budget before calling the graph
(model_service.model), with every frame of an animation counted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import keras
import tensorflow as tf
from inference_contract import model_layout
from inference_contract.image_size import DEFAULT_MAX_IMAGE_PIXELS

from .spec import Head, Preprocessing

# Above this many pixels a JPEG is decoded at the smallest of 1/2, 1/4, 1/8 scale that
# brings it under (libjpeg's DCT scaling: less work, and an average rather than the
# aliasing of a plain resize from thousands of pixels to a few hundred). A 12 Mpx
# photo is still decoded whole.
JPEG_FULL_SCALE_PIXELS = 16_000_000
_JPEG_RATIOS = (1, 2, 4, 8)
# What tf.saved_model.save writes: a version's SavedModel without its model.json and labels.
_SAVED_MODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")


def _big_endian(data: tf.Tensor, offset: int) -> tf.Tensor:
    """The unsigned 32-bit big-endian integer at offset (0 when the bytes are too short)."""
    raw = tf.io.decode_raw(tf.strings.substr(data, offset, 4), tf.uint8)
    raw = tf.pad(tf.cast(raw, tf.int64), [[0, 4 - tf.shape(raw)[0]]])
    return raw[0] * 2**24 + raw[1] * 2**16 + raw[2] * 2**8 + raw[3]


def _little_endian_16(data: tf.Tensor, offset: int) -> tf.Tensor:
    raw = tf.io.decode_raw(tf.strings.substr(data, offset, 2), tf.uint8)
    raw = tf.pad(tf.cast(raw, tf.int64), [[0, 2 - tf.shape(raw)[0]]])
    return raw[0] + raw[1] * 256


def _within_budget(pixels: tf.Tensor) -> tf.Operation:
    return tf.debugging.assert_less_equal(
        pixels, tf.constant(DEFAULT_MAX_IMAGE_PIXELS, tf.int64),
        message=f"the image declares more than {DEFAULT_MAX_IMAGE_PIXELS} pixels")


def _decode_jpeg(image_bytes: tf.Tensor) -> tf.Tensor:
    shape = tf.cast(tf.image.extract_jpeg_shape(image_bytes), tf.int64)  # header only
    pixels = shape[0] * shape[1]
    # 0, 1, 2 or 3: how many times the sides are halved.
    halvings = tf.reduce_sum(tf.cast(
        pixels > JPEG_FULL_SCALE_PIXELS * tf.constant([1, 4, 16], tf.int64), tf.int32))
    decoded_pixels = pixels // tf.bitwise.left_shift(tf.constant(1, tf.int64),
                                                     2 * tf.cast(halvings, tf.int64))
    with tf.control_dependencies([_within_budget(decoded_pixels)]):
        return tf.switch_case(halvings, [
            lambda ratio=ratio: tf.io.decode_jpeg(image_bytes, channels=3, ratio=ratio)
            for ratio in _JPEG_RATIOS])


def _decode_other(image_bytes: tf.Tensor) -> tf.Tensor:
    magic = tf.strings.substr(image_bytes, 0, 4)
    pixels = tf.case([
        (tf.equal(magic, b"\x89PNG"), lambda: _big_endian(image_bytes, 16) * _big_endian(image_bytes, 20)),
        (tf.equal(magic, b"GIF8"),
         lambda: _little_endian_16(image_bytes, 6) * _little_endian_16(image_bytes, 8)),
    ], default=lambda: tf.constant(0, tf.int64))
    with tf.control_dependencies([_within_budget(pixels)]):
        # expand_animations=False: the first frame of an animation only.
        return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)


def _decode(image_bytes: tf.Tensor, pre: Preprocessing) -> tf.Tensor:
    image = tf.cond(tf.equal(tf.strings.substr(image_bytes, 0, 2), b"\xff\xd8"),
                    lambda: _decode_jpeg(image_bytes), lambda: _decode_other(image_bytes))
    if pre.resize == "center_crop":
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.cast(pre.crop_fraction * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
        side = tf.maximum(side, 1)
        image = tf.image.crop_to_bounding_box(
            image, (height - side + 1) // 2, (width - side + 1) // 2, side, side)
    # On the uint8 crop: resize returns float32, at the model's size only.
    image = tf.cast(tf.image.resize(image, list(pre.height_width), method=pre.method), tf.float32)
    if pre.normalisation == "caffe":
        return image[..., ::-1] - tf.constant([103.939, 116.779, 123.68])
    if pre.normalisation == "raw":
        return image
    if pre.normalisation == "symmetric":
        return image / 127.5 - 1.0
    image = image / 255.0
    if pre.normalisation == "mean_std":
        image = (image - tf.constant(pre.mean)) / tf.constant(pre.std)
    return image


def model_outputs(model: keras.Model, pre: Preprocessing, images: tf.Tensor) -> tf.Tensor:
    """The model's own outputs for a batch of encoded images, decoded as the signature decodes them."""
    batch = tf.map_fn(lambda b: _decode(b, pre), images,
                      fn_output_signature=tf.TensorSpec([*pre.height_width, 3], tf.float32))
    return model(batch, training=False)


def serving_function(model: keras.Model, pre: Preprocessing, head: Head):
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model_outputs(model, pre, images)
        probabilities = tf.nn.softmax(outputs, axis=-1) if head.outputs == "logits" else outputs
        # A detector returns every class's probability too: the service answers yes on
        # its classes' top-1 as well as on their summed probability (model.json says which).
        return {"scores": probabilities}

    return serve


_IMAGES = tf.TensorSpec([None], tf.string, name="images")


def _write_frozen(folder: Path, serve) -> None:
    """The serving signature with the weights folded into its graph as constants.

    Loading it restores no variables and rebuilds one function: measured on 2 cores,
    EfficientNet-Lite0's tf.saved_model.load took 0.4 s against 1.4 s, its first call
    0.7 s against 0.4 s (the constants are optimised once), and batch-1 calls 22.7
    against 26.8 ms of CPU (batch normalisation folded into the convolutions). A
    frozen ResNet50's first call took 2.9 s against 0.7 s (100 MB of constants), so the
    catalog freezes the EfficientNet family only (catalog.BuiltModel.frozen).
    """
    # TensorFlow's own freezing (what tf.compat.v1's graph_util offers for graphs), not
    # exported under tf.*; a version without it is still a valid SavedModel.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    constants = convert_variables_to_constants_v2(tf.function(serve, input_signature=[_IMAGES])
                                                  .get_concrete_function())

    @tf.function(input_signature=[_IMAGES])
    def serving_default(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = constants(images)
        return {"scores": outputs["scores"] if isinstance(outputs, dict) else outputs[0]}

    module = tf.Module()
    module.serving_default = serving_default
    tf.saved_model.save(module, os.fspath(folder), signatures={"serving_default": serving_default})


def next_version(model_folder: Path) -> int:
    return model_layout.next_version(model_layout.local_entries(model_folder))


def fixed_precision(precision: str) -> Callable[[Path], dict]:
    return lambda _folder: {"precision": precision, "reason": "set by --precision"}


def export_version(repository: Path, name: str, model: keras.Model, pre: Preprocessing,
                   head: Head, labels: Sequence[str], weights: str, pretrained: bool,
                   extra: dict | None = None,
                   choose_precision: Callable[[Path], dict] | None = None,
                   same_graph_as: Path | None = None, frozen: bool = False) -> tuple[int, Path]:
    """Write <repository>/<name>/<n+1>/ and return (n+1, its path).

    choose_precision(folder) measures the SavedModel written there (precision.py's
    PrecisionProbe.measure) or says what --precision set; None: float32. same_graph_as: a version
    whose SavedModel is this one's graph and weights (a detector's base classifier:
    the signature returns every class's probability, the detector's rule is in
    model.json), copied instead of traced and written again.

    frozen: the weights written into the graph as constants (_write_frozen), for a model
    service that starts faster.

    The version is written in a temporary folder and renamed into place, so a
    model service never sees half a version.
    """
    model_folder = repository / name
    model_folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=model_folder))
    try:
        if same_graph_as is not None:
            for item in _SAVED_MODEL_FILES:
                source = same_graph_as / item
                if source.is_dir():
                    shutil.copytree(source, staging / item)
                elif source.exists():
                    shutil.copy2(source, staging / item)
        elif frozen:
            _write_frozen(staging, serving_function(model, pre, head))
        else:
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint(name="serving_default", fn=serving_function(model, pre, head),
                                 input_signature=[_IMAGES])
            archive.write_out(os.fspath(staging / "savedmodel"), verbose=False)
            for item in (staging / "savedmodel").iterdir():
                item.rename(staging / item.name)
            (staging / "savedmodel").rmdir()
        measured = (choose_precision or fixed_precision("float32"))(staging)
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
