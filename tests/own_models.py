"""Keras models of a user's own, made in the tests (not from the catalog), with known answers.

mean_colour_model answers by an image's mean colour: a red image is "red", a green
one "green", a blue one "blue" (labels in MEAN_COLOUR_LABELS order).
"""

from __future__ import annotations

from pathlib import Path

MEAN_COLOUR_LABELS = ("red", "green", "blue")


def mean_colour_model(outputs: str = "probabilities", size: int = 16):
    """[N, size, size, 3] RGB in [0, 1] -> its mean colour, sharpened (a softmax for probabilities)."""
    import keras
    import numpy as np

    inputs = keras.Input((size, size, 3))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(3, activation="softmax" if outputs == "probabilities" else None)
    scores = dense(mean)
    dense.set_weights([np.eye(3, dtype="float32") * 10.0, np.zeros(3, "float32")])
    return keras.Model(inputs, scores, name="mean_colour")


def save(model, folder: Path, name: str = "model.keras") -> Path:
    path = Path(folder) / name
    model.save(path)
    return path


def write_labels(folder: Path, labels=MEAN_COLOUR_LABELS, name: str = "labels.txt") -> Path:
    path = Path(folder) / name
    path.write_text("\n".join(labels) + "\n")
    return path
