"""A model the user brings (`export_model.py NAME --from PATH --labels FILE`), loaded and checked.

PATH is a TensorFlow SavedModel folder or a Keras `.keras`/`.h5` file taking a float
image batch [N, H, W, 3] and returning [N, C] scores. Before anything is written it
is run, through the same decoding and scaling the served signature uses, on made-up
images; each refusal is an OwnModelError whose message is one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .catalog import BuiltModel, file_sha256
from .spec import Head, Preprocessing

# --scale: how pixels are scaled before the model sees them (Preprocessing.normalisation).
SCALES = {
    "unit": "unit",            # RGB / 255, in [0, 1]
    "symmetric": "symmetric",  # RGB / 127.5 - 1, in [-1, 1]
    "raw": "raw",              # RGB as 0..255 floats
    "imagenet": "mean_std",    # [0, 1] minus ImageNet mean, over its std
    "caffe": "caffe",          # BGR minus the ImageNet mean (keras ResNet50, VGG)
}
CHECK_IMAGES = 6
# How far a row of "probabilities" may sum from 1 (float32 softmax rounding).
SUM_TOLERANCE = 1e-3


class OwnModelError(ValueError):
    """The model cannot be served as said; the message is one line."""


def read_labels(path: Path) -> list[str]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise OwnModelError(f"labels {path}: cannot be read ({exc.strerror})") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise OwnModelError(f"labels {path}: no labels (one a line)")
    return labels


def load(path: Path):
    """The Keras model (or layer) at path: a .keras/.h5 file or a SavedModel folder."""
    import keras

    path = Path(path)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise OwnModelError(f"{path}: not a SavedModel folder (no saved_model.pb)")
        try:
            return keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
        except Exception as exc:  # TensorFlow raises whatever its loader hit
            raise OwnModelError(f"{path}: cannot be loaded as a SavedModel ({type(exc).__name__})") from None
    if path.suffix not in (".keras", ".h5"):
        raise OwnModelError(f"{path}: expected a SavedModel folder or a .keras/.h5 file")
    if not path.is_file():
        raise OwnModelError(f"{path}: no such file")
    try:
        return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises whatever its loader hit
        raise OwnModelError(f"{path}: cannot be loaded as a Keras model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _input_shape(model) -> tuple | None:
    """The declared input shape, or None when the model does not declare one (a SavedModel layer)."""
    if hasattr(model, "inputs") and getattr(model, "inputs", None):
        if len(model.inputs) != 1:
            return ("several inputs",)
        return tuple(model.inputs[0].shape)
    return None


def _signature_input_shape(path: Path) -> tuple | None:
    """The input shape a SavedModel's serving_default signature declares, or None without one."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures.get("serving_default")
    if signature is None:
        return None
    specs = signature.structured_input_signature[1]
    if len(specs) != 1:
        return ("several inputs",)
    [spec] = specs.values()
    return tuple(spec.shape.as_list()) if spec.shape.rank is not None else None


def image_size(shape: tuple | None, said: Sequence[int] | None) -> tuple[int, int]:
    """(H, W) the model takes: its declared input shape, or --input-size where it declares none."""
    if shape is not None and (len(shape) != 4 or shape[-1] != 3):
        raise OwnModelError(f"the model's input is not an image batch [N, H, W, 3]: it takes {list(shape)}")
    declared = tuple(shape[1:3]) if shape is not None else (None, None)
    if said is not None:
        if any(d is not None and d != s for d, s in zip(declared, said, strict=True)):
            raise OwnModelError(f"--input-size {said[0]} {said[1]} differs from the model's input "
                                f"{declared[0]}x{declared[1]}")
        return said[0], said[1]
    if None in declared:
        raise OwnModelError("the model's input size is not fixed: pass --input-size H W")
    return int(declared[0]), int(declared[1])


def _single_output(layer):
    """A SavedModel layer returns a dict of outputs; the signature needs the one score tensor."""
    import keras

    class SingleOutput(keras.layers.Layer):
        def __init__(self, inner) -> None:
            super().__init__(name="single_output")
            self.inner = inner

        def call(self, batch, training=False):
            outputs = self.inner(batch)
            if isinstance(outputs, dict):
                if len(outputs) != 1:
                    raise OwnModelError(f"the SavedModel returns {len(outputs)} outputs "
                                        f"({', '.join(sorted(outputs))}); expected one [N, C] score tensor")
                outputs = next(iter(outputs.values()))
            return outputs

    return SingleOutput(layer)


def made_up_images(height: int, width: int) -> list[bytes]:
    """PNGs of solid colours and noise, seeded: the inputs the model is checked on."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(21)
    images = [np.full((height, width, 3), colour, np.uint8)
              for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    images += [rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
               for _ in range(CHECK_IMAGES - len(images))]
    return [tf.io.encode_png(image).numpy() for image in images]


def check_outputs(scores, labels: Sequence[str], outputs: str) -> None:
    """Refuse scores not [N, len(labels)], holding NaN or infinity, or (probabilities) no distribution."""
    import numpy as np

    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise OwnModelError(f"the model's output is not [N, C] scores: it returns shape {list(scores.shape)}")
    if scores.shape[1] != len(labels):
        raise OwnModelError(f"the model returns {scores.shape[1]} scores per image but the labels "
                            f"file has {len(labels)} lines")
    if not np.all(np.isfinite(scores)):
        raise OwnModelError("the model's outputs hold NaN or infinity on made-up images")
    if outputs == "probabilities":
        sums = scores.sum(axis=1)
        if np.any(scores < 0) or np.any(scores > 1) or np.any(np.abs(sums - 1) > SUM_TOLERANCE):
            raise OwnModelError(
                "--outputs probabilities: the outputs are not a distribution on made-up images "
                f"(row sums {min(sums):.3g}..{max(sums):.3g}); say --outputs logits if they are logits")


def weights_description(path: Path) -> str:
    """What model.json's "weights" says: the file (a SavedModel's graph) and its hash."""
    path = Path(path)
    hashed = path / "saved_model.pb" if path.is_dir() else path
    return f"own: {path.name} (sha256 {file_sha256(hashed)[:16]})"


def detector_head(name: str, labels: Sequence[str], classes: Sequence[str], threshold: float,
                  outputs: str) -> Head:
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise OwnModelError(f"--detector: {', '.join(unknown)} not in the labels file")
    if not 0 < threshold <= 1:
        raise OwnModelError(f"--threshold must be in (0, 1], not {threshold}")
    return Head(outputs=outputs, detector_label=name, threshold=threshold,
                detector_class_ids=tuple(labels.index(c) for c in classes))


def build(name: str, path: Path, labels: Sequence[str], *, input_size: Sequence[int] | None,
          scale: str, outputs: str, detector: Sequence[str] = (), threshold: float = 0.5) -> BuiltModel:
    """Load the model at path and check it; OwnModelError (nothing written) when it cannot serve."""
    import tensorflow as tf

    from .serving import model_outputs

    loaded = load(path)
    declared = _input_shape(loaded)
    keras_model = declared is not None
    if not keras_model:
        declared = _signature_input_shape(path)
    height, width = image_size(declared, input_size)
    model = loaded if keras_model else _single_output(loaded)
    pre = Preprocessing(image_size=height, image_width=width if width != height else None,
                        resize="squash", normalisation=SCALES[scale])
    try:
        scores = model_outputs(model, pre, tf.constant(made_up_images(height, width)))
    except OwnModelError:
        raise
    except Exception as exc:  # whatever the model raises on a [N, H, W, 3] float batch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise OwnModelError(f"the model fails on an image batch [N, {height}, {width}, 3]: "
                            f"{type(exc).__name__}: {first[:200]}") from None
    check_outputs(scores, labels, outputs)
    head = (detector_head(name, labels, detector, threshold, outputs) if detector
            else Head(outputs=outputs))
    return BuiltModel(model, pre, head, weights_description(path), True)
