"""Model repository layout, versioned export, and the served model's results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_service.errors import InvalidImage, ModelLoadError
from model_service.model import ImageModel, ModelInfo, detect
from model_service.repository import ModelRepository

from scripts.model_builders.catalog import (
    WeightsUnavailable,
    as_detector,
    build_resnet50,
    build_tiny_test,
    imagenet_labels,
)
from scripts.model_builders.serving import export_version
from tests.images import converted, tabby_bytes, truncated_jpeg


def test_versions_resolve_numerically(tmp_path):
    for version in ("1", "2", "10", "notes"):
        (tmp_path / "m" / version).mkdir(parents=True)
        (tmp_path / "m" / version / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "m" / "11").mkdir()  # an export cut short: no graph yet, so not a version to serve
    repository = ModelRepository(str(tmp_path))
    assert repository.versions("m") == [1, 2, 10]
    assert repository.resolve("m", "latest") == 10
    assert repository.resolve("m", "2") == 2
    with pytest.raises(ModelLoadError, match="available: 1, 2, 10"):
        repository.resolve("m", "3")
    with pytest.raises(ModelLoadError, match="no versions"):
        repository.resolve("other", "latest")


@pytest.fixture(scope="module")
def tiny_repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    built = build_tiny_test()
    labels = imagenet_labels()
    for _ in range(2):
        export_version(root, "tiny", built.model, built.preprocessing, built.head, labels,
                       built.weights, built.pretrained)
    detector = as_detector(built, "cat", (281, 282, 283, 284, 285))
    export_version(root, "tiny-cat", detector.model, detector.preprocessing, detector.head, labels,
                   detector.weights, detector.pretrained)
    return root


def test_export_writes_the_next_version_with_its_metadata(tiny_repository):
    assert sorted(p.name for p in (tiny_repository / "tiny").iterdir()) == ["1", "2"]
    meta = json.loads((tiny_repository / "tiny" / "2" / "model.json").read_text())
    assert meta["kind"] == "classifier" and meta["pretrained"] is False
    assert meta["weights"].startswith("random")
    labels = (tiny_repository / "tiny" / "2" / "labels.txt").read_text().splitlines()
    assert len(labels) == 1000 and labels[281] == "tabby"
    # No staging folders are left behind.
    assert not [p for p in (tiny_repository / "tiny").iterdir() if p.name.startswith(".")]


def test_a_frozen_export_scores_as_the_model_does_and_holds_no_variables(tiny_repository, tmp_path):
    import tensorflow as tf

    built = build_tiny_test()
    _, frozen = export_version(tmp_path, "tiny", built.model, built.preprocessing, built.head,
                               imagenet_labels(), built.weights, built.pretrained, frozen=True)
    images = tf.constant([tabby_bytes(), converted(tabby_bytes(), "PNG")])
    loaded = {name: tf.saved_model.load(str(path))  # kept: a signature needs its object alive
              for name, path in (("frozen", frozen), ("variables", tiny_repository / "tiny" / "1"))}
    signatures = {name: module.signatures["serving_default"] for name, module in loaded.items()}
    assert signatures["frozen"].variables == () and signatures["variables"].variables != ()
    np.testing.assert_allclose(signatures["frozen"](images=images)["scores"].numpy(),
                               signatures["variables"](images=images)["scores"].numpy(), rtol=1e-5, atol=1e-6)
    # The service loads it as any version, the image budget still in its graph.
    model = ImageModel(ModelRepository(str(tmp_path)), "tiny", "1")
    model.load()
    assert len(model.predict([tabby_bytes()])[0]["top_k"]) == 5


def test_classifier_reads_every_format_and_isolates_a_bad_image(tiny_repository):
    model = ImageModel(ModelRepository(str(tiny_repository)), "tiny", "1")
    assert not model.ready
    info = model.load()
    assert model.ready and info.version == 1
    images = [tabby_bytes(), *(converted(tabby_bytes(), f) for f in ("PNG", "WEBP", "GIF", "BMP")),
              truncated_jpeg()]
    results = model.predict(images)
    assert isinstance(results[-1], InvalidImage)
    for result in results[:-1]:
        assert len(result["top_k"]) == 5
        scores = [c["score"] for c in result["top_k"]]
        assert scores == sorted(scores, reverse=True)
        assert result["top_k"][0]["label"] == info.labels[result["top_k"][0]["class_id"]]


def test_detector_sums_its_classes_and_names_the_top_class(tiny_repository):
    classifier = ImageModel(ModelRepository(str(tiny_repository)), "tiny", "1")
    classifier.load()
    detector = ImageModel(ModelRepository(str(tiny_repository)), "tiny-cat")
    assert detector.load().kind == "detector"
    probabilities = classifier._scores([tabby_bytes()])[0]
    [result] = detector.predict([tabby_bytes()])
    top = int(np.argmax(probabilities))
    assert result["label"] == "cat"
    assert result["score"] == pytest.approx(float(probabilities[281:286].sum()), abs=1e-5)
    assert result["top_class"]["class_id"] == top and result["top_class"]["label"] == imagenet_labels()[top]
    assert result["match"] is (top in range(281, 286) or result["score"] >= 0.5)


def _detector_info(**changes) -> ModelInfo:
    labels = tuple(f"class {i}" for i in range(10))
    return ModelInfo(**{"name": "cat", "version": 1, "kind": "detector", "weights": "w", "pretrained": True,
                        "labels": labels, "detector_label": "cat", "threshold": 0.5,
                        "detector_class_ids": (2, 3, 4), **changes})


def _scores(**by_class: float) -> np.ndarray:
    scores = np.zeros(10, dtype=np.float32)
    for class_id, score in by_class.items():
        scores[int(class_id.removeprefix("c"))] = score
    return scores


def test_top1_in_the_detector_classes_answers_yes_under_the_threshold():
    # The tiger-cat case: top-1 is a cat class, but the cat classes sum to 0.445.
    result = detect(_detector_info(), _scores(c2=0.30, c3=0.145, c7=0.25, c8=0.20))
    assert result["match"] is True and result["rule"] == "top1"
    assert result["score"] == pytest.approx(0.445, abs=1e-6)
    assert result["top_class"] == {"class_id": 2, "label": "class 2", "score": pytest.approx(0.3)}


def test_summed_score_over_the_threshold_answers_yes_when_top1_is_elsewhere():
    result = detect(_detector_info(), _scores(c2=0.2, c3=0.2, c4=0.15, c7=0.45))
    assert result["match"] is True and result["rule"] == "threshold"
    assert result["top_class"]["class_id"] == 7


def test_neither_rule_answers_no():
    result = detect(_detector_info(), _scores(c2=0.2, c7=0.5, c8=0.3))
    assert result["match"] is False and result["rule"] is None and result["top_class"]["class_id"] == 7


def test_a_detector_exported_before_the_top1_rule_answers_by_the_threshold():
    old = _detector_info(detector_class_ids=(), labels=("cat",))
    assert detect(old, np.array([0.445], dtype=np.float32)) == {
        "label": "cat", "match": False, "score": pytest.approx(0.445), "rule": None, "top_class": None,
        "weights": "w"}
    assert detect(old, np.array([0.6], dtype=np.float32))["rule"] == "threshold"


def test_resnet50_refuses_to_call_missing_weights_pretrained(tmp_path):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        build_resnet50(tmp_path / "missing.h5", allow_random=False)
    # A file that is named but absent is an error even when random weights are allowed.
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        build_resnet50(tmp_path / "missing.h5", allow_random=True)


def test_if_missing_exports_a_detector_again_when_it_predates_the_top1_rule(tmp_path):
    from scripts import export_model

    version = tmp_path / "cat" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"graph")
    (version / "model.json").write_text(json.dumps({"kind": "detector", "detector": {"label": "cat"}}))
    assert not export_model.has_version(tmp_path, "cat")
    (version / "model.json").write_text(
        json.dumps({"kind": "detector", "detector": {"scores": "probabilities"}}))
    assert export_model.has_version(tmp_path, "cat")
    (tmp_path / "tiny-test" / "1").mkdir(parents=True)
    assert not export_model.has_version(tmp_path, "tiny-test"), "an incomplete version is not kept"
    (tmp_path / "tiny-test" / "1" / "saved_model.pb").write_bytes(b"graph")
    assert export_model.has_version(tmp_path, "tiny-test") and not export_model.has_version(tmp_path, "dog")


def test_a_bomb_fails_alone_before_the_graph_and_in_it(tiny_repository):
    """Refused before the graph by the budget (every frame counted); with that check
    off, the graph's own header check refuses what declares more than the budget.
    (A GIF's frames are counted before the graph only: the graph sees its screen.)"""
    from scripts import image_bombs

    bombs = [image_bombs.png(9000, 9000), image_bombs.png_header(65535, 65535),
             image_bombs.jpeg_header(65535, 65535)]
    model = ImageModel(ModelRepository(str(tiny_repository)), "tiny", "1")
    model.load()
    results = model.predict([tabby_bytes(), *bombs, image_bombs.gif(6000, 6000, 24),
                             converted(tabby_bytes(), "PNG")])
    assert len(results[0]["top_k"]) == 5 and len(results[-1]["top_k"]) == 5
    for refused in results[1:-1]:
        assert isinstance(refused, InvalidImage) and "the limit is 40,000,000 pixels" in refused.message
    unchecked = ImageModel(ModelRepository(str(tiny_repository)), "tiny", "1", max_pixels=10**12)
    unchecked.load()
    results = unchecked.predict([tabby_bytes(), *bombs, converted(tabby_bytes(), "PNG")])
    assert len(results[0]["top_k"]) == 5 and len(results[-1]["top_k"]) == 5
    for refused in results[1:-1]:
        assert isinstance(refused, InvalidImage) and "could not be decoded" in refused.message


def test_a_jpeg_over_the_full_scale_limit_scores_like_its_photo(tiny_repository):
    import io

    from PIL import Image

    model = ImageModel(ModelRepository(str(tiny_repository)), "tiny", "1")
    model.load()
    photo = Image.open(io.BytesIO(tabby_bytes())).convert("RGB")
    large = io.BytesIO()
    enlarged = photo.resize((photo.width * 10, photo.height * 10), Image.Resampling.BICUBIC)
    enlarged.save(large, "JPEG", quality=90)
    small, big = model._scores([tabby_bytes(), large.getvalue()])  # 16.75 Mpx: decoded at 1/2
    assert np.argmax(small) == np.argmax(big)


def test_decode_groups_keep_a_budget_per_graph_call():
    from model_service.model import decode_groups

    assert decode_groups([(i, 200_000) for i in range(16)], 40_000_000) == [list(range(16))]
    assert decode_groups([(i, 39_000_000) for i in range(3)], 40_000_000) == [[0], [1], [2]]
    assert decode_groups([(0, 30), (1, 60), (2, 40), (3, 50)], 100) == [[0, 1], [2, 3]]
    assert decode_groups([], 100) == []
