"""The peer benchmark's harness runs on a small N against the model service (the peers' virtualenvs
are not installed here: scripts/peers/install.sh is a developer's step, and each says so in a row)."""

from __future__ import annotations

import pytest

from scripts.benchmark_peers import distinct_photos, format_peer_table, run_peer_benchmark

pytestmark = pytest.mark.integration


def test_the_peer_benchmark_drives_the_model_service_with_tritonclient(stack, tmp_path):
    photos = distinct_photos()
    rows = run_peer_benchmark("tiny-test", stack.config.model_repository, servers=("ours", "bentoml"),
                              levels=(1, 4), requests=8, peers_dir=tmp_path / "no-peers",
                              photos=photos, log_dir=tmp_path / "logs", report=lambda line: None)
    missing, *ours = rows
    assert missing == {"server": "bentoml",
                       "missing": "bentoml is not installed: run bash scripts/peers/install.sh bentoml"}
    assert [(row["server"], row["in_flight"]) for row in ours] == [("ours", 1), ("ours", 4)]
    for row in ours:
        assert row["errors"] == 0, row["first_error"]
        assert row["images_per_s"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["cpu_ms_per_image"] > 0 and row["rss_mib"] > 100  # a process tree holding TensorFlow
        assert row["start_to_ready_s"] > 0 and row["differing_answers"] == 0
        assert 1 <= row["mean_batch"] <= row["in_flight"]  # from the service's batch lines
        # gunicorn's master and its worker, which runs the model
        assert {"python gunicorn"} == set(row["cpu_ms_per_image_by_process"])
    table = format_peer_table(rows)
    assert table.splitlines()[1].startswith("bentoml  bentoml is not installed")
    # the head, the missing peer, ours at 1 and 4 in flight, and where ours spent its CPU at 4
    assert len(table.splitlines()) == 6 and table.splitlines()[-1].startswith("  ours     python gunicorn ")
