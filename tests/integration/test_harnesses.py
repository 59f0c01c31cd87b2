"""The benchmark and load-test scripts run against the stack \
(on a small N: their figures are not asserted)."""

from __future__ import annotations

import pytest

from scripts import benchmark_service, load_test
from tests.integration.client import HEADERS

pytestmark = pytest.mark.integration


def test_benchmark_service_runs_and_reports_every_figure(stack):
    units = {"api": stack.api_url, "model service": stack.model_urls["tiny-test"],
             "reconciler": stack.reconcile_url}
    reports = benchmark_service.run(["tiny-test"], stack.api_url, stack.config.model_repository,
                                    stack.config.project, stack.config.uploads_bucket, images=16,
                                    one_at_a_time=3, emulator_env=stack.emulator_env, headers=HEADERS,
                                    long_polls=20, long_poll_seconds=5, rounds=2, units=units)
    report = reports[0]
    assert set(report["bare"]) == {1, 8, 16, 32} and set(report["service"]) == {1, 8, 32, 64}
    assert report["service_start_to_ready_s"] > 0
    for level in report["service"].values():
        assert level["statuses"] == {204: sum(level["statuses"].values())}  # every push acknowledged
        assert level["images_per_s"] > 0 and level["cpu_ms_per_image"] > 0
        assert sum(level["batch_sizes"].values()) >= 1
    assert max(report["service"][64]["batch_sizes"]) > 1  # batches formed under load
    assert set(report["service_max_batch_1_at_32"]["batch_sizes"]) == {1}
    assert report["api"]["failed"] == 0 and report["api"]["total_ms"]["p50"] > 0
    polls = report["api"]["with_long_polls"]
    assert polls["long_polls_open"] == 20 and polls["long_polls_answered_200"] == 20 and polls["post_ms"] > 0
    assert set(report["ratios"]) == {"service_32_vs_bare_best_throughput",
                                     "service_cpu_per_image_vs_bare_best",
                                     "batching_vs_max_batch_1_at_32", "api_p50_minus_bare_batch_1_ms",
                                     "api_our_part_ms", "api_our_part_paired_ms",
                                     "api_our_part_paired_back_to_back_ms"}
    # Our part: the p50 less the bare model at batch 1 and the emulator's push delay, with its steps;
    # and paired: each prediction less its own delivery (timings.delivery_ms), then the p50.
    part = report["our_part_ms"]
    assert part["ours"] == round(
        part["total_p50"] - part["bare_batch_1"] - part["emulator_push_delay_p50"], 1)
    assert part["ours_paired"] == round(part["total_less_delivery_p50"] - part["bare_batch_1"], 1)
    # The bare model at batch 1, one image at a time (each thread setting in a process of its own):
    # the faster p50; back to back is the in-process batch 1.
    assert part["bare_batch_1"] == min(part["bare_batch_1_by_threads"].values()) > 0
    assert set(part["bare_batch_1_by_threads"]) == {0, 1}
    assert part["bare_batch_1_back_to_back"] == report["bare"][1]["ms_per_batch"]
    assert part["ours_paired_back_to_back"] == round(
        part["total_less_delivery_p50"] - part["bare_batch_1_back_to_back"], 1)
    assert 0 < part["delivery_p50"] < part["total_p50"] and report["api"]["delivery_ms"]["samples"] == 3
    steps = set(report["api"]["steps_mean_ms"])
    assert {"upload", "record", "publish", "claim", "image_read", "finish"} <= steps
    # --rounds: each ratio's median over the rounds, with its spread.
    ratios = report["rounds"]["ratios"]["service_cpu_per_image_vs_bare_best"]
    assert report["rounds"]["rounds"] == 2 and len(ratios["each"]) == 2
    assert ratios["min"] <= ratios["median"] <= ratios["max"]
    # Our part too: the first round's figure, then one from the API path measured again.
    paired = report["rounds"]["ratios"]["api_our_part_paired_ms"]
    assert paired["each"][0] == part["ours_paired"] and len(paired["each"]) == 2
    assert len(report["rounds"]["ratios"]["api_our_part_ms"]["each"]) == 2
    assert report["rounds"]["api_failed"] == 0
    # The operations one prediction asked for, counted at /metrics: the push's are the same with or
    # without a callback but for the callback's record (one more write).
    long_poll, callback = report["operations"]["with a long poll"], report["operations"]["with a callback"]
    assert long_poll["model service"]["firestore_write"] == 2
    assert callback["model service"]["firestore_write"] == 3
    # A first publish carries its document as created: the claim is a conditional write, no read.
    assert long_poll["model service"]["firestore_read"] == callback["model service"]["firestore_read"] == 0
    assert long_poll["api"]["storage_class_a"] == 1 and callback["api"]["firestore_read"] == 0
    assert report["operations"]["reconciler_pass"]["total"]["firestore_read"] >= 2  # its two queries
    serverless = report["cost"]["serverless"]
    assert all(value >= 0 for lines in serverless.values() for value in lines.values())
    assert serverless["with a long poll"]["operations"] > 0
    assert serverless["with a callback"]["operations"] > 0
    assert set(report["cost"]["always_on"]) == {load.name for load in benchmark_service.cost.LOADS}
    benchmark_service.print_report(report)


def test_load_test_runs_checks_and_plots(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("INFERENCE_API_KEY", HEADERS["X-API-Key"])
    plot = tmp_path / "load.png"
    assert load_test.main(["--host", stack.api_url, "--model", "tiny-test", "--steps", "2",
                           "--step-users", "2", "--step-seconds", "4", "--settle", "60",
                           "--out", str(tmp_path / "out"), "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 10_000
    assert (tmp_path / "out" / "users-002.html").exists() \
        and (tmp_path / "out" / "users-004_stats.csv").exists()
    assert (tmp_path / "out" / "accepted.txt").read_text().split()  # it did submit
