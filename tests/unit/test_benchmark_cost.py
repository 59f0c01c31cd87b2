"""The benchmark's cost arithmetic: operations at their prices, Cloud Run seconds, one always-on instance."""

from __future__ import annotations

import pytest
from inference_contract import billable_operations as ops

from scripts.benchmarks import cost


def test_operations_are_priced_each_and_pubsub_bytes_twice():
    per_prediction = {ops.FIRESTORE_READ: 2, ops.FIRESTORE_WRITE: 3, ops.STORAGE_CLASS_A: 1,
                      ops.PUBSUB_MESSAGE: 1, ops.PUBSUB_BYTES: 1000}
    expected = 2 * 0.03e-5 + 3 * 0.09e-5 + 0.005e-3 + 2 * 1000 * 40 / 2**40  # published, then pushed
    assert cost.operations_cost(per_prediction) == pytest.approx(expected)


def test_cpu_seconds_are_billed_as_the_instance_busy_for_them():
    # 2 vCPU-seconds on a 2-vCPU, 2-GiB instance: one second of it.
    size = cost.Instance(vcpus=2, memory_gib=2)
    assert cost.compute_cost(2.0, size) == pytest.approx(2 * 0.000024 + 2 * 0.0000025)


def test_a_million_images_per_line():
    lines = cost.serverless_per_million("efficientnet-lite0", {ops.FIRESTORE_WRITE: 1}, requests=3,
                                        service_cpu_ms=20, api_cpu_ms=0)
    assert lines["operations"] == 0.9 and lines["requests"] == 1.2 and lines["api_compute"] == 0
    assert lines["model_service_compute"] == round(cost.compute_cost(0.02, cost.Instance(2, 2)) * 1e6, 2)


def test_one_always_on_instance_and_what_a_burst_needs():
    steady, bursty = cost.LOADS
    figures = cost.always_on("resnet50", steady, images_per_s=20, start_to_ready_s=5)
    assert figures["cloud_run_min_instances_1"] == round(730 * 3600 * (2 * 0.000018 + 4 * 0.000002), 2)
    assert figures["serverless_cold_starts"] == 0 and figures["one_instance_drains_a_burst_in_min"] == "-"
    figures = cost.always_on("resnet50", bursty, images_per_s=20, start_to_ready_s=5)
    # 33,333 images a burst at 20 images/s; 55.6 images/s at the peak needs 3 instances, each
    # started once a burst.
    assert figures["one_instance_drains_a_burst_in_min"] == round(1_000_000 / 30 / 20 / 60, 1)
    assert figures["serverless_cold_starts"] == round(30 * 3 * cost.compute_cost(10, cost.Instance(2, 4)), 2)
