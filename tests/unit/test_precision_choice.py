"""How an export chooses its serving precision: paired rounds until they agree, once per graph."""

from __future__ import annotations

import json

import pytest

from scripts import export_model
from scripts.model_builders import precision
from scripts.model_builders.precision import MAX_ROUNDS, MIN_ROUNDS, MIN_SPEEDUP, decide


def test_rounds_go_on_until_they_fall_on_one_side_of_the_threshold():
    assert not decide([])
    assert not decide([2.0] * (MIN_ROUNDS - 1))  # never fewer than MIN_ROUNDS
    assert decide([1.7, 1.6, 1.8])  # clearly faster
    assert decide([0.8, 0.9, 0.85])  # clearly slower
    straddling = [MIN_SPEEDUP + 0.05, MIN_SPEEDUP - 0.05] * MAX_ROUNDS
    assert not decide(straddling[:MIN_ROUNDS])
    assert not decide(straddling[:MAX_ROUNDS - 1])
    assert decide(straddling[:MAX_ROUNDS])  # a close case is measured longer, not forever


@pytest.fixture(scope="module")
def tiny_and_cat(tmp_path_factory):
    """tiny-test and a cat detector derived from it, exported in one run."""
    repository = tmp_path_factory.mktemp("models")
    assert export_model.main(["tiny-test", "cat", "--base", "tiny-test", "--precision", "float32",
                              "--repository", str(repository)]) == 0
    return repository


def test_a_detector_gets_its_base_s_saved_model_and_precision_measurement(tiny_and_cat):
    base, cat = tiny_and_cat / "tiny-test" / "1", tiny_and_cat / "cat" / "1"
    for name in ("saved_model.pb", "fingerprint.pb", "variables/variables.index"):
        assert (cat / name).read_bytes() == (base / name).read_bytes()
    base_card, cat_card = (json.loads((v / "model.json").read_text()) for v in (base, cat))
    assert cat_card["kind"] == "detector" and cat_card["base_model"] == "tiny-test"
    assert cat_card["precision"] == base_card["precision"] == "float32"
    assert cat_card["precision_measurement"] == {**base_card["precision_measurement"],
                                                 "measured_on": "tiny-test"}


def test_the_probe_times_both_precisions_in_paired_rounds(tiny_and_cat, monkeypatch):
    # This machine may lack AMX/AVX-512 BF16 (then an export records float32 unmeasured);
    # the measurement itself runs anywhere, bfloat16 emulated.
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    with precision.PrecisionProbe(export_model.sample_photos()) as probe:
        measured = probe.measure(tiny_and_cat / "tiny-test" / "1")
    assert MIN_ROUNDS <= measured["rounds"] <= MAX_ROUNDS
    assert measured["check_inputs"] == 20  # the 10 sample photos and their mirrors
    assert measured["float32_images_per_s"] > 0 and measured["bfloat16_images_per_s"] > 0
    low, high = measured["bfloat16_speedup_range"]
    assert low <= measured["bfloat16_speedup"] <= high
    pays = (measured["bfloat16_speedup"] >= MIN_SPEEDUP
            and measured["top1_agreement"] >= precision.MIN_AGREEMENT)
    assert measured["precision"] == ("bfloat16" if pays else "float32")
