"""What the units say at GET /metrics, read before and after a run: the billable operations they
asked for (inference_billable_operations_total) and the time of each step around the model call."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from inference_contract import billable_operations as ops
from prometheus_client.parser import text_string_to_metric_families

# Histograms of the steps, by the label that names the step: the API's submit, the service's push.
STEP_HISTOGRAMS = ("inference_api_submit_step_seconds", "inference_service_step_seconds")


@dataclass
class Reading:
    """One unit's counters at one moment."""

    operations: dict[str, float] = field(default_factory=dict)
    # step -> (seconds summed, observations)
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)


def read_metrics(base_url: str) -> Reading:
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    reading = Reading(operations=dict.fromkeys(ops.OPERATIONS, 0.0))
    for family in text_string_to_metric_families(text):
        if family.name == ops.METRIC:
            for sample in family.samples:
                if sample.name == ops.METRIC + "_total":
                    reading.operations[sample.labels["operation"]] = sample.value
        elif family.name in STEP_HISTOGRAMS:
            for sample in family.samples:
                step = sample.labels.get("step")
                total, count = reading.steps.get(step, (0.0, 0.0))
                if sample.name.endswith("_sum"):
                    reading.steps[step] = (total + sample.value, count)
                elif sample.name.endswith("_count"):
                    reading.steps[step] = (total, count + sample.value)
    return reading


def read_all(units: dict[str, str]) -> dict[str, Reading]:
    """A reading of each unit, by name (e.g. {"api": url, "model service": url})."""
    return {name: read_metrics(url) for name, url in units.items()}


def per_prediction(before: dict[str, Reading], after: dict[str, Reading], predictions: int) -> dict:
    """Each unit's operations per prediction between two readings, and their sum ("total")."""
    figures: dict[str, dict[str, float]] = {}
    for unit in before:
        figures[unit] = {name: round((after[unit].operations[name] - before[unit].operations[name])
                                     / predictions, 3) for name in ops.OPERATIONS}
    figures["total"] = {name: round(sum(figures[unit][name] for unit in before), 3)
                        for name in ops.OPERATIONS}
    return figures


def step_means_ms(before: dict[str, Reading], after: dict[str, Reading]) -> dict[str, float]:
    """The mean ms of each step observed between two readings, over every unit."""
    means = {}
    for unit in before:
        for step, (total, count) in after[unit].steps.items():
            earlier_total, earlier_count = before[unit].steps.get(step, (0.0, 0.0))
            if count > earlier_count:
                means[step] = round((total - earlier_total) / (count - earlier_count) * 1000, 1)
    return means
