"""Cost per million images: the operations one prediction was counted asking for, at list prices.

Prices are US list prices (USD) for a Tier 1 region (us-central1), without free
tiers or committed-use discounts, as read on the pages named in PRICE_SOURCES on
the date given there. A price whose page's table was not in the copy read is
marked "unconfirmed" in its source line and in the printed table.

The serverless figure adds, per image: the billable operations counted on the
emulators (Firestore, Cloud Storage by class, Pub/Sub bytes published and
pushed), the HTTP requests Cloud Run bills (the API's POST and GET, the push to
the model service), and CPU and memory seconds at the CPU per image measured
(the model service at its push endpoint, the API function for its requests):
billing at the CPU actually used, as a busy instance with request-based billing
comes to. The always-on figures are one instance kept running all month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inference_contract import billable_operations as ops

READ_ON = "2026-12-07"
PRICE_SOURCES = {
    "firestore": "https://cloud.google.com/firestore/pricing (Standard edition; the per-location table "
                 "was not in the copy read: us-central1 figures as quoted for US regions by "
                 "https://airbyte.com/data-engineering-resources/google-firestore-pricing)",
    "storage": "https://cloud.google.com/storage/pricing-examples (Standard storage, a region: Class A "
               "$0.005 and Class B $0.0004 per 1,000 operations)",
    "pubsub": "https://cloud.google.com/pubsub/pricing ($40 per TiB of throughput, publish and delivery; "
              "at least 1,000 bytes a request)",
    "cloud_run": "https://cloud.google.com/run/pricing (Tier 1: request-based $0.000024 per vCPU-second, "
                 "$0.0000025 per GiB-second, $0.40 per million requests; instance-based $0.000018 per "
                 "vCPU-second, memory $0.000002 per GiB-second (unconfirmed: cut off in the copy read))",
    "vertex_ai": "https://cloud.google.com/vertex-ai/pricing (prediction nodes for custom-trained models, "
                 "n1-standard-2 in us-central1, $0.1095 per node hour: unconfirmed, the machine table was "
                 "not in the copy read)",
}

# USD per operation.
PRICES = {
    ops.FIRESTORE_READ: 0.03 / 100_000,
    ops.FIRESTORE_WRITE: 0.09 / 100_000,
    ops.FIRESTORE_DELETE: 0.01 / 100_000,
    ops.STORAGE_CLASS_A: 0.005 / 1_000,
    ops.STORAGE_CLASS_B: 0.0004 / 1_000,
    ops.PUBSUB_MESSAGE: 0.0,  # billed by its bytes
    ops.PUBSUB_BYTES: 40 / 2**40,
}
CLOUD_RUN_REQUEST = 0.40 / 1_000_000
REQUEST_BASED_VCPU_SECOND = 0.000024
REQUEST_BASED_GIB_SECOND = 0.0000025
INSTANCE_BASED_VCPU_SECOND = 0.000018
INSTANCE_BASED_GIB_SECOND = 0.000002
VERTEX_N1_STANDARD_2_NODE_HOUR = 0.1095
HOURS_PER_MONTH = 730

MILLION = 1_000_000


@dataclass(frozen=True)
class Instance:
    """The size a unit is deployed with (terraform: the API function, the model's service)."""

    vcpus: float
    memory_gib: float


# terraform/modules/api_function (available_cpu "1", api_memory 512Mi by default); a model service
# as terraform's `models` variable sizes it by default (2 vCPUs, 4Gi), efficientnet-lite0 as the
# example models file does (2 vCPUs, 2Gi).
API_FUNCTION = Instance(vcpus=1, memory_gib=0.5)
MODEL_SERVICES = {"efficientnet-lite0": Instance(vcpus=2, memory_gib=2)}
DEFAULT_MODEL_SERVICE = Instance(vcpus=2, memory_gib=4)


def model_service(model: str) -> Instance:
    return MODEL_SERVICES.get(model, DEFAULT_MODEL_SERVICE)


def compute_cost(cpu_seconds: float, size: Instance, vcpu_second: float = REQUEST_BASED_VCPU_SECOND,
                 gib_second: float = REQUEST_BASED_GIB_SECOND) -> float:
    """Cloud Run's price of cpu_seconds of CPU on an instance of this size, busy while it runs:
    its vCPUs and memory for cpu_seconds / vcpus seconds."""
    seconds = cpu_seconds / size.vcpus
    return seconds * (size.vcpus * vcpu_second + size.memory_gib * gib_second)


def operations_cost(per_prediction: dict[str, float]) -> float:
    """USD of one prediction's billable operations. Pub/Sub bills the bytes of each message twice:
    published, and pushed to its subscription."""
    cost = sum(PRICES[name] * count for name, count in per_prediction.items() if name != ops.PUBSUB_BYTES)
    return cost + 2 * PRICES[ops.PUBSUB_BYTES] * per_prediction.get(ops.PUBSUB_BYTES, 0)


def serverless_per_million(model: str, operations: dict[str, float], requests: float, service_cpu_ms: float,
                           api_cpu_ms: float) -> dict[str, float]:
    """USD per million images, by line: operations, Cloud Run requests, model service and API compute."""
    return {
        "operations": round(operations_cost(operations) * MILLION, 2),
        "requests": round(requests * CLOUD_RUN_REQUEST * MILLION, 2),
        "model_service_compute": round(
            compute_cost(service_cpu_ms / 1000, model_service(model)) * MILLION, 2),
        "api_compute": round(compute_cost(api_cpu_ms / 1000, API_FUNCTION) * MILLION, 2),
    }


@dataclass(frozen=True)
class Load:
    """How a month's images arrive: `bursts` bursts of `burst_minutes` each, or evenly (bursts=0)."""

    name: str
    images: int = MILLION
    bursts: int = 0
    burst_minutes: float = 10

    def peak_images_per_s(self) -> float:
        if not self.bursts:
            return self.images / (HOURS_PER_MONTH * 3600)
        return self.images / self.bursts / (self.burst_minutes * 60)


LOADS = (Load("steady (1 M a month, evenly)"),
         Load("bursty (1 M a month in 10-minute bursts, one a day)", bursts=30))


def always_on(model: str, load: Load, images_per_s: float, start_to_ready_s: float) -> dict[str, float | str]:
    """One instance kept running all month, against the same load: Cloud Run with min_instances=1
    (instance-based billing) and a Vertex AI n1-standard-2 prediction node; whether one instance
    keeps up (its drain time per burst); and the serverless cold starts this load costs instead."""
    size = model_service(model)
    month_seconds = HOURS_PER_MONTH * 3600
    cloud_run = month_seconds * (size.vcpus * INSTANCE_BASED_VCPU_SECOND
                                 + size.memory_gib * INSTANCE_BASED_GIB_SECOND)
    per_burst = load.images / max(1, load.bursts)
    # Serverless instances a burst needs, each paying its start-up once per burst (scaled to zero between).
    instances = math.ceil(load.peak_images_per_s() / images_per_s) if load.bursts else 0
    cold_starts = load.bursts * instances * compute_cost(start_to_ready_s * size.vcpus, size)
    return {
        "cloud_run_min_instances_1": round(cloud_run, 2),
        "vertex_ai_n1_standard_2": round(HOURS_PER_MONTH * VERTEX_N1_STANDARD_2_NODE_HOUR, 2),
        "one_instance_drains_a_burst_in_min": round(per_burst / images_per_s / 60, 1) if load.bursts else "-",
        "serverless_cold_starts": round(cold_starts, 2),
    }
