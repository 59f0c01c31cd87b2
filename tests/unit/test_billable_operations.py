from inference_contract import billable_operations as ops
from model_service.metrics import ServiceMetrics
from prediction_api.metrics import ApiMetrics
from prometheus_client.parser import text_string_to_metric_families


def _totals(rendered: bytes) -> dict[str, float]:
    for family in text_string_to_metric_families(rendered.decode()):
        if family.name == ops.METRIC:
            return {sample.labels["operation"]: sample.value for sample in family.samples
                    if sample.name == ops.METRIC + "_total"}
    raise AssertionError("no billable operations in /metrics")


def test_counts_add_up_per_operation():
    counts = ops.OperationCounts()
    counts.count(ops.FIRESTORE_WRITE, 3)
    counts.count(ops.FIRESTORE_WRITE)
    counts.count(ops.STORAGE_CLASS_B)
    snapshot = counts.snapshot()
    assert snapshot[ops.FIRESTORE_WRITE] == 4
    assert snapshot[ops.STORAGE_CLASS_B] == 1
    assert snapshot[ops.FIRESTORE_READ] == 0
    assert set(snapshot) == set(ops.OPERATIONS)


def test_an_unknown_operation_is_refused():
    counts = ops.OperationCounts()
    try:
        counts.count("firestore_writes")
    except ValueError as exc:
        assert "firestore_writes" in str(exc)
    else:
        raise AssertionError("an unknown operation name was counted")


def test_a_small_message_is_billed_at_the_minimum_and_a_large_one_at_its_size():
    before = ops.COUNTS.snapshot()
    ops.count_publish(b"{}", {"model": "cat"})
    ops.count_publish(b"x" * 1500, {"k": "v"})
    after = ops.COUNTS.snapshot()
    assert after[ops.PUBSUB_MESSAGE] - before[ops.PUBSUB_MESSAGE] == 2
    assert after[ops.PUBSUB_BYTES] - before[ops.PUBSUB_BYTES] == ops.PUBSUB_MINIMUM_BILLED_BYTES + 1502


def test_both_units_show_the_process_totals_at_metrics():
    ops.count(ops.FIRESTORE_READ, 2)
    expected = ops.COUNTS.snapshot()[ops.FIRESTORE_READ]
    assert _totals(ApiMetrics().render())[ops.FIRESTORE_READ] == expected
    assert _totals(ServiceMetrics().render())[ops.FIRESTORE_READ] == expected
