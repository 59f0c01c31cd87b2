"""modules/monitoring: log-based metrics on the lines the services really log, the dashboard, the alerts."""

from __future__ import annotations

import re

from .conftest import MODULES_DIR, REPO_ROOT, TERRAFORM_DIR, blocks_by_name, load_module, only, resources

MONITORING = load_module(MODULES_DIR / "monitoring")
LOG_METRICS = resources(MONITORING, "google_logging_metric")

# The structured log lines each metric reads, and the source file that writes each field.
SOURCES = {
    "batch": REPO_ROOT / "cloudrun_model" / "model_service" / "batcher.py",
    "prediction finished": REPO_ROOT / "cloudrun_model" / "model_service" / "handler.py",
    "queue age": REPO_ROOT / "functions" / "prediction_api" / "service.py",
    "dead-lettered prediction": REPO_ROOT / "functions" / "prediction_api" / "service.py",
}


def _message(filter_: str) -> str:
    return re.search(r'jsonPayload\.message=\\?"([^"\\]+)\\?"', filter_).group(1)


def test_every_log_metric_reads_a_line_and_fields_the_services_write():
    assert {body["name"] for body in LOG_METRICS.values()} == {
        "inference/batch_size", "inference/model_latency", "inference/predictions", "inference/queue_time",
        "inference/end_to_end_latency", "inference/oldest_queued_age", "inference/dead_letters"}
    for (_, name), body in LOG_METRICS.items():
        message = _message(body["filter"])
        source = SOURCES[message].read_text()
        assert f'"{message}"' in source, (name, message)
        extracted = [body.get("value_extractor", ""), *body.get("label_extractors", {}).values()]
        for extractor in filter(None, extracted):
            field = re.fullmatch(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor).group(1)
            # The field is logged as an `extra` key (or a key of the timings dict the handler spreads).
            assert f'"{field}"' in source, (name, field)
        descriptor = only(body["metric_descriptor"])
        if descriptor["value_type"] == "DISTRIBUTION":
            assert "bucket_options" in body and body["value_extractor"], name
        assert {label["key"] for label in descriptor.get("labels", [])} == set(
            body.get("label_extractors", {})
        ), name


def test_dashboard_charts_throughput_latency_batch_size_dead_letters_and_queue_age():
    locals_ = only(MONITORING["locals"])
    titles = " | ".join(tile["title"] for tile in locals_["dashboard_tiles"])
    for wanted in ("Throughput", "latency", "Batch size", "Dead letters", "oldest queued"):
        assert wanted in titles, titles
    dashboard = resources(MONITORING)[("google_monitoring_dashboard", "inference")]
    assert "local.dashboard_tiles" in dashboard["dashboard_json"]


def test_alerts_on_dead_letters_and_on_the_oldest_queued_age():
    policies = resources(MONITORING, "google_monitoring_alert_policy")
    dead = only(policies[("google_monitoring_alert_policy", "dead_letters")]["conditions"])
    threshold = only(dead["condition_threshold"])
    assert "subscription/dead_letter_message_count" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.dead_letter_alert_threshold}"
    oldest = policies[("google_monitoring_alert_policy", "oldest_queued")]["conditions"]
    filters = [only(condition["condition_threshold"])["filter"] for condition in oldest]
    assert any("google_logging_metric.oldest_queued_age.name" in f for f in filters)
    assert any("subscription/oldest_unacked_message_age" in f for f in filters)
    for policy in policies.values():
        assert policy["notification_channels"] == "${var.notification_channels}"


def test_an_alert_on_a_log_based_metric_waits_for_the_new_metric():
    # terraform-provider-google#11102: 404 "Cannot find metric(s)" for up to 10 minutes
    # when the alert is created right after its log-based metric.
    wait = resources(MONITORING)[("time_sleep", "oldest_queued_metric_propagates")]
    assert wait["triggers"] == {"metric": "${google_logging_metric.oldest_queued_age.id}"}
    assert wait["create_duration"] == "${var.metric_propagation_seconds}s"
    policies = resources(MONITORING, "google_monitoring_alert_policy")
    for (_, name), policy in policies.items():
        if "google_logging_metric." in str(policy["conditions"]):
            assert policy["depends_on"] == ["${time_sleep.oldest_queued_metric_propagates}"], name


def test_monitoring_variables_are_typed_described_and_validated():
    for name, body in blocks_by_name(MONITORING, "variable").items():
        assert body.get("description") and body.get("type"), name
    for name in (
        "model_names", "dead_letter_alert_threshold", "oldest_queued_alert_seconds", "alert_window_seconds"
    ):
        assert "validation" in blocks_by_name(MONITORING, "variable")[name], name
    root = blocks_by_name(load_module(TERRAFORM_DIR), "module")["monitoring"]
    assert root["model_names"] == "${sort(keys(var.models))}"


def test_the_oldest_queued_query_has_its_composite_index():
    index = resources(load_module(MODULES_DIR / "firestore"))[("google_firestore_index", "oldest_queued")]
    assert [(f["field_path"], f["order"]) for f in index["fields"]] == [("status", "ASCENDING"),
                                                                          ("created_at", "ASCENDING")]
