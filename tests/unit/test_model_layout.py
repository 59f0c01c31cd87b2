"""The model repository's layout, one definition for export, serving and rollout."""

from __future__ import annotations

from inference_contract import model_layout

from scripts.rollouts import models_file

ENTRIES = ["1/", "1/saved_model.pb", "1/model.json", "2/", "2/variables/variables.index",
           "10/", "10/saved_model.pb", "notes/", "notes/saved_model.pb", "0/saved_model.pb",
           "3/variables/saved_model.pb"]


def test_complete_versions_are_numbered_folders_with_their_graph():
    assert model_layout.complete_versions(ENTRIES) == [1, 10]
    assert model_layout.version_folders(ENTRIES) == [1, 2, 3, 10]


def test_the_next_export_skips_an_incomplete_folders_number():
    assert model_layout.next_version(ENTRIES) == 11
    assert model_layout.next_version(["4/"]) == 5
    assert model_layout.next_version([]) == 1


def test_local_entries_list_a_folder_as_a_bucket_listing_would(tmp_path):
    (tmp_path / "2" / "variables").mkdir(parents=True)
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "3").mkdir()
    (tmp_path / "README").write_text("not a version")
    assert sorted(model_layout.local_entries(tmp_path)) == ["2/", "2/saved_model.pb", "2/variables", "3/"]
    assert model_layout.complete_versions(model_layout.local_entries(tmp_path)) == [2]
    assert model_layout.local_entries(tmp_path / "missing") == []


def test_rollout_looks_for_the_same_marker():
    # scripts/rollouts runs on the standard library alone, so it names the marker itself.
    assert models_file.MODEL_MARKER == model_layout.COMPLETE_MARKER
