"""`export_model.py NAME --from PATH --labels FILE`: a model of the user's own, exported or refused."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from scripts import export_model
from tests.own_models import MEAN_COLOUR_LABELS, mean_colour_model, save, write_labels


def _export(tmp_path, model_path, labels_path, *extra, name="mean-colour"):
    repository = tmp_path / "repository"
    code = export_model.main([name, "--from", str(model_path), "--labels", str(labels_path),
                              "--repository", str(repository), *extra])
    return code, repository


def _png(rgb, size=24):
    import tensorflow as tf

    return tf.io.encode_png(np.full((size, size, 3), rgb, np.uint8)).numpy()


def test_an_own_keras_model_is_exported_with_its_labels_and_answers(tmp_path):
    import tensorflow as tf

    code, repository = _export(tmp_path, save(mean_colour_model(), tmp_path), write_labels(tmp_path))
    assert code == 0
    version = repository / "mean-colour" / "1"
    assert (version / "labels.txt").read_text().split() == list(MEAN_COLOUR_LABELS)
    card = json.loads((version / "model.json").read_text())
    assert card["weights"].startswith("own: model.keras (sha256 ")
    assert card["kind"] == "classifier" and card["outputs"] == "probabilities"
    # Measured as for the catalog's models (or said why not, on a CPU without bfloat16).
    assert card["precision"] in ("float32", "bfloat16") and card["precision_measurement"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    scores = serve(images=tf.constant([_png((200, 10, 10)), _png((10, 10, 200)), _png((10, 180, 20))]))
    assert scores["scores"].numpy().argmax(1).tolist() == [0, 2, 1]
    # The next export is the next version.
    code, _ = _export(tmp_path, tmp_path / "model.keras", tmp_path / "labels.txt", "--precision", "float32")
    assert code == 0 and (repository / "mean-colour" / "2" / "saved_model.pb").is_file()


def test_logits_get_a_softmax_and_a_detector_names_its_classes(tmp_path):
    import tensorflow as tf

    code, repository = _export(tmp_path, save(mean_colour_model(outputs="logits"), tmp_path),
                               write_labels(tmp_path), "--outputs", "logits", "--detector", "red",
                               "--threshold", "0.6", "--precision", "float32", name="red")
    assert code == 0
    card = json.loads((repository / "red" / "1" / "model.json").read_text())
    assert card["detector"]["class_ids"] == [0] and card["detector"]["threshold"] == 0.6
    serve = tf.saved_model.load(str(repository / "red" / "1")).signatures["serving_default"]
    scores = serve(images=tf.constant([_png((250, 0, 0))]))["scores"].numpy()
    assert scores.sum() == pytest.approx(1.0, abs=1e-5) and scores.argmax() == 0


def test_a_savedmodel_folder_is_accepted(tmp_path):
    import tensorflow as tf

    folder = tmp_path / "saved"
    mean_colour_model().export(str(folder), verbose=False)
    # Its signature declares [None, 16, 16, 3]: no --input-size needed.
    code, repository = _export(tmp_path, folder, write_labels(tmp_path), "--precision", "float32")
    assert code == 0
    serve = tf.saved_model.load(str(repository / "mean-colour" / "1")).signatures["serving_default"]
    assert serve(images=tf.constant([_png((0, 0, 255))]))["scores"].numpy().argmax() == 2
    card = json.loads((repository / "mean-colour" / "1" / "model.json").read_text())
    assert card["preprocessing"]["image_size"] == 16 and card["weights"].startswith("own: saved (sha256 ")


def test_a_savedmodel_of_no_image_batch_is_refused(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="export_model")
    folder = tmp_path / "saved"
    _dense_model((10,)).export(str(folder), verbose=False)
    code, repository = _export(tmp_path, folder, write_labels(tmp_path), "--precision", "float32")
    assert code == 2 and not repository.exists()
    assert "the model's input is not an image batch [N, H, W, 3]: it takes [None, 10]" in caplog.text


def _dense_model(inputs_shape, units=3, weights=None):
    import keras

    inputs = keras.Input(inputs_shape)
    x = keras.layers.GlobalAveragePooling2D()(inputs) if len(inputs_shape) == 3 else inputs
    dense = keras.layers.Dense(units, activation="softmax")
    model = keras.Model(inputs, dense(x))
    if weights is not None:
        dense.set_weights(weights)
    return model


@pytest.mark.parametrize(("model", "labels", "outputs", "said"), [
    (lambda: _dense_model((10,)), MEAN_COLOUR_LABELS, "probabilities",
     "the model's input is not an image batch [N, H, W, 3]: it takes [None, 10]"),
    (lambda: _dense_model((16, 16, 1)), MEAN_COLOUR_LABELS, "probabilities",
     "the model's input is not an image batch [N, H, W, 3]: it takes [None, 16, 16, 1]"),
    (lambda: mean_colour_model(), (*MEAN_COLOUR_LABELS, "black"), "probabilities",
     "the model returns 3 scores per image but the labels file has 4 lines"),
    (lambda: _dense_model((16, 16, 3), weights=[np.full((3, 3), np.nan, "float32"), np.zeros(3, "float32")]),
     MEAN_COLOUR_LABELS, "logits", "the model's outputs hold NaN or infinity on made-up images"),
    (lambda: mean_colour_model(outputs="logits"), MEAN_COLOUR_LABELS, "probabilities",
     "--outputs probabilities: the outputs are not a distribution on made-up images"),
])
def test_a_model_that_cannot_serve_is_refused_with_one_line_and_nothing_written(
        tmp_path, caplog, model, labels, outputs, said):
    caplog.set_level(logging.ERROR, logger="export_model")
    code, repository = _export(tmp_path, save(model(), tmp_path), write_labels(tmp_path, labels),
                               "--outputs", outputs, "--precision", "float32")
    assert code == 2
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.startswith(f"error: mean-colour: {said}") and "\n" not in line
    assert not repository.exists()


@pytest.mark.parametrize("name", ["My_Model", "9lives", "a" * 21, "trailing-"])
def test_a_name_that_is_not_a_model_name_is_refused_before_anything_is_read(tmp_path, caplog, name):
    caplog.set_level(logging.ERROR, logger="export_model")
    model_path = save(mean_colour_model(), tmp_path)
    code, repository = _export(tmp_path, model_path, write_labels(tmp_path), name=name)
    assert code == 2
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line == (f"error: {name!r} is not a valid model name: model names must be 1-20 lowercase "
                    "letters, digits or hyphens, starting with a letter")
    assert not repository.exists()


def test_outside_the_catalog_a_name_needs_from_unless_its_version_is_there(tmp_path, caplog):
    with pytest.raises(SystemExit):
        export_model.parse_args(["my-model"])
    caplog.set_level(logging.INFO, logger="export_model")
    repository = tmp_path / "repository"
    assert export_model.main(["my-model", "--if-missing", "--repository", str(repository)]) == 2
    assert "my-model: not in the catalog and no version under" in caplog.text
    (repository / "my-model" / "1").mkdir(parents=True)
    (repository / "my-model" / "1" / "saved_model.pb").write_bytes(b"")
    assert export_model.main(["my-model", "--if-missing", "--repository", str(repository)]) == 0
    assert "my-model: already exported" in caplog.text
