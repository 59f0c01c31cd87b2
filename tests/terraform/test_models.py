"""The `models` variable and the per-model expansion, evaluated by terraform itself.

The scratch root (see ModelsEvaluator in conftest) is the real variables.tf and
the real model_service locals; only resources are left out, so no provider is
needed. Every case also goes through scripts/rollout.py's validator, which must
agree with Terraform.
"""

from __future__ import annotations

import copy
import re

import pytest

from scripts import rollouts as rollout
from scripts.model_builders.catalog import CLASSIFIERS, DETECTORS

from .conftest import (
    CPU_IMAGE,
    GPU_IMAGE,
    TERRAFORM_DIR,
    blocks_by_name,
    example_models,
    load_module,
    sample_models,
)

# (case id, change to the sample models, text of Terraform's error, text of rollout.py's error)
INVALID_CASES = [
    ("traffic-sums-to-90", lambda m: m["resnet50"]["traffic"].update(v3=0),
     "must sum to exactly 100", "sum to 90"),
    ("traffic-sums-to-110", lambda m: m["resnet50"]["traffic"].update(v3=20),
     "must sum to exactly 100", "sum to 110"),
    ("traffic-unknown-revision", lambda m: m["cat"]["traffic"].update(v9=0),
     "must name an entry", "unknown revision"),
    ("traffic-negative", lambda m: m["resnet50"]["traffic"].update(v2=110, v3=-10),
     "between 0 and 100", "between 0 and 100"),
    ("accelerator-tpu", lambda m: m["cat"].update(accelerator="tpu"),
     'must be "cpu" or "gpu"', "accelerator"),
    ("cpu-3", lambda m: m["cat"].update(cpu="3"), "cpu must be one of", "cpu must be one of"),
    ("memory-mi", lambda m: m["cat"].update(memory="512Mi"), "whole gibibytes", "whole gibibytes"),
    ("version-zero", lambda m: m["dog"]["revisions"]["v1"].update(model_version=0),
     "positive whole", "positive whole"),
    ("image-latest", lambda m: m["dog"]["revisions"]["v1"].update(image="latest"),
     "full image", "full image"),
    ("no-revisions", lambda m: m["cat"].update(revisions={}, traffic={}),
     "at least one entry", "at least one entry"),
    ("bad-model-name", lambda m: m.update(ResNet=m.pop("resnet50")),
     "Model names must be", "model names must be"),
    ("min-above-max", lambda m: m["cat"].update(min_instances=4),
     "min_instances <= max_instances", "must not exceed"),
    ("ack-deadline", lambda m: m["cat"].update(ack_deadline_seconds=5),
     "ack_deadline_seconds <= 600", "ack_deadline"),
    ("jobs-ack-deadline", lambda m: m["dog"].update(jobs_ack_deadline_seconds=601),
     "jobs_ack_deadline_seconds <= 600", "jobs_ack_deadline_seconds"),
    ("bad-canary-tag", lambda m: m["resnet50"].update(canary_tag="Canary!"),
     "canary_tag must be", "canary_tag"),
    ("batch-size-0", lambda m: m["cat"].update(max_batch_size=0),
     "1 <= max_batch_size <= 256", "max_batch_size"),
    ("batch-delay-fraction", lambda m: m["cat"].update(max_batch_delay_ms=2.5),
     "max_batch_delay_ms <= 1000", "max_batch_delay_ms"),
    ("threads-below-batch", lambda m: m["cat"].update(concurrency=8, max_batch_size=16),
     "at least its max_batch_size", "at least max_batch_size"),
    ("lease-0", lambda m: m["dog"].update(run_lease_seconds=0),
     "1 <= run_lease_seconds <= 600", "run_lease_seconds"),
    ("ready-wait-601", lambda m: m["dog"].update(model_ready_wait_seconds=601),
     "model_ready_wait_seconds <= 600", "model_ready_wait"),
    ("no-batch-at-once", lambda m: m["cat"].update(concurrent_batches=0),
     "1 <= concurrent_batches <= 64", "concurrent_batches"),
    ("threads-fraction", lambda m: m["dog"].update(model_threads=1.5),
     "0 <= model_threads <= 64", "model_threads"),
]


def _mutated(change) -> dict:
    models = copy.deepcopy(sample_models())
    change(models)
    return models


@pytest.fixture(scope="module")
def evaluated(models_evaluator) -> dict:
    return models_evaluator.evaluate(sample_models())


def test_example_deploys_as_written():
    # One revision per model, at 100%, version 1 (what a first export writes),
    # images from the build, CPU only (a new project has no GPU quota), and
    # only models scripts/export_model.py can export.
    models = example_models()
    assert set(models) == {"efficientnet-lite0", "cat", "dog"}
    assert set(models) <= set(CLASSIFIERS) | set(DETECTORS)
    for name, model in models.items():
        assert model["revisions"] == {"v1": {"model_version": 1, "image": rollout.BUILD_IMAGE}}, name
        assert model["traffic"] == {"v1": 100}, name
        assert model.get("accelerator", "cpu") == "cpu", name
        assert "canary_tag" not in model, name
    rollout.validate_models(models)


def test_terraform_takes_the_example_with_placeholders_and_once_pinned(models_evaluator):
    # The bootstrap apply runs before the images exist; the placeholder passes
    # the variable and is refused by the service's precondition (test_structure).
    assert set(models_evaluator.evaluate(example_models())) == set(example_models())
    pinned, changed = rollout.pin_images(example_models(), CPU_IMAGE, GPU_IMAGE)
    assert changed == ["cat/v1", "dog/v1", "efficientnet-lite0/v1"]
    services = models_evaluator.evaluate(pinned)
    assert {service["image"] for service in services.values()} == {CPU_IMAGE}


def test_terraform_and_rollout_accept_the_sample(evaluated):
    rollout.validate_models(sample_models())
    assert set(evaluated) == set(sample_models())


@pytest.mark.parametrize(
    ("change", "terraform_error", "rollout_error"),
    [c[1:] for c in INVALID_CASES],
    ids=[c[0] for c in INVALID_CASES],
)
def test_terraform_and_rollout_reject(models_evaluator, change, terraform_error, rollout_error):
    models = _mutated(change)
    assert terraform_error in models_evaluator.rejection(models)
    with pytest.raises(rollout.RolloutError, match=re.escape(rollout_error)):
        rollout.validate_models(models)


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"max_delivery_attempts": 4}, "max_delivery_attempts must be a whole number between 5 and 100"),
        ({"redeliver_after_seconds": 5}, "redeliver_after_seconds must be"),
        ({"max_prediction_age_seconds": 1.5}, "max_prediction_age_seconds must be"),
        ({"callback_retry_seconds": -1}, "callback_retry_seconds must be"),
        ({"reconcile_schedule": "every minute"}, "five-field cron"),
    ],
)
def test_reconciler_settings_are_validated(models_evaluator, variables, error):
    assert error in models_evaluator.rejection(sample_models(), **variables)


def test_gpu_settings_only_on_the_gpu_model(evaluated):
    for name, service in evaluated.items():
        if sample_models()[name].get("accelerator") == "gpu":
            assert service["accelerator"] == "nvidia-l4"
            assert service["gpu_zonal_redundancy_disabled"] is True
            assert service["limits"]["nvidia.com/gpu"] == "1"
        else:
            assert service["accelerator"] is None
            assert service["gpu_zonal_redundancy_disabled"] is None
            assert set(service["limits"]) == {"cpu", "memory"}


def test_gpu_model_is_raised_to_the_gpu_minimums(models_evaluator):
    models = sample_models()
    models["resnet50"].update(cpu="2", memory="8Gi", gpu_zonal_redundancy_disabled=False)
    models["cat"].update(cpu="2", memory="8Gi")
    services = models_evaluator.evaluate(models)
    assert services["resnet50"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert services["resnet50"]["gpu_zonal_redundancy_disabled"] is False
    assert services["cat"]["limits"] == {"cpu": "2", "memory": "8Gi"}


def test_model_service_environment(evaluated):
    for name, service in evaluated.items():
        model = rollout.with_defaults(sample_models()[name])
        newest = rollout.newest_revision(model["revisions"])
        assert service["env"] == {
            "MODEL_NAME": name,
            "MODEL_VERSION": str(model["revisions"][newest]["model_version"]),
            "MODEL_REPOSITORY": "gs://test-project-1-models/models",
            "GOOGLE_CLOUD_PROJECT": "test-project-1",
            "GUNICORN_THREADS": str(model["concurrency"]),
            "MAX_BATCH_SIZE": str(model["max_batch_size"]),
            "MAX_BATCH_DELAY_MS": str(model["max_batch_delay_ms"]),
            "RUN_LEASE_SECONDS": str(model["run_lease_seconds"]),
            "MODEL_READY_WAIT_SECONDS": str(model["model_ready_wait_seconds"]),
            "MODEL_THREADS": str(model["model_threads"]),
            "CONCURRENT_BATCHES": str(model["concurrent_batches"]),
        }
    # The defaults the lead's model service documents: lease 10 s with a heartbeat, ready wait 30 s.
    assert evaluated["cat"]["env"]["RUN_LEASE_SECONDS"] == "10"
    assert evaluated["cat"]["env"]["MODEL_READY_WAIT_SECONDS"] == "30"


def test_batch_and_lease_settings_are_per_model(models_evaluator):
    models = sample_models()
    models["dog"].update(
        max_batch_size=4, max_batch_delay_ms=0, run_lease_seconds=30, model_ready_wait_seconds=0,
        model_threads=1, concurrent_batches=2,
    )
    env = models_evaluator.evaluate(models)["dog"]["env"]
    assert (
        env["MAX_BATCH_SIZE"],
        env["MAX_BATCH_DELAY_MS"],
        env["RUN_LEASE_SECONDS"],
        env["MODEL_READY_WAIT_SECONDS"],
        env["MODEL_THREADS"],
        env["CONCURRENT_BATCHES"],
    ) == ("4", "0", "30", "0", "1", "2")


def test_traffic_blocks_match_the_models_map(evaluated):
    for name, service in evaluated.items():
        model = sample_models()[name]
        targets = {t["revision"]: t["percent"] for t in service["traffic"]}
        assert targets == {
            service["revision_names"][key]: percent for key, percent in model["traffic"].items()
        }
        assert sum(targets.values()) == 100
    canary = {t["revision"]: t["tag"] for t in evaluated["resnet50"]["traffic"]}
    names = evaluated["resnet50"]["revision_names"]
    assert canary == {names["v2"]: None, names["v3"]: "canary"}


def test_revision_names_are_the_key_and_a_hash_of_the_template(evaluated):
    for name, service in evaluated.items():
        for key, revision in service["revision_names"].items():
            assert re.fullmatch(
                re.escape(rollout.revision_prefix(name, key)) + r"[0-9a-f]{8}", revision
            ), revision
            assert len(revision) <= 63, "Cloud Run revision names are at most 63 characters"
    longest = max(evaluated, key=len)
    assert len(evaluated[longest]["template_revision"]) <= 63


def test_template_deploys_the_newest_revision_as_rollout_computes_it(models_evaluator, evaluated):
    for name, service in evaluated.items():
        revisions = sample_models()[name]["revisions"]
        newest = rollout.newest_revision(revisions)
        assert service["template_revision"] == service["revision_names"][newest]
        assert service["image"] == revisions[newest]["image"]
    # Numeric order, not string order, and ties broken by the greater key.
    models = sample_models()
    models["cat"]["revisions"] = {
        "v2": {"model_version": 2, "image": CPU_IMAGE},
        "v10": {"model_version": 10, "image": CPU_IMAGE},
        "v10-fix": {"model_version": 10, "image": CPU_IMAGE.replace("1111", "3333")},
    }
    models["cat"]["traffic"] = {"v2": 50, "v10": 50}
    services = models_evaluator.evaluate(models)
    assert rollout.newest_revision(models["cat"]["revisions"]) == "v10-fix"
    assert services["cat"]["template_revision"].startswith(rollout.revision_prefix("cat", "v10-fix"))


def test_any_template_change_gives_the_newest_revision_a_new_name(models_evaluator, evaluated):
    # Cloud Run answers 409 to a changed template under an existing revision
    # name; the hash makes every change a new name, no change the same name.
    before = evaluated["cat"]["template_revision"]
    assert models_evaluator.evaluate(sample_models())["cat"]["template_revision"] == before
    changes = {
        "module-wide startup timeout": (sample_models(), {"model_startup_timeout_seconds": 120}),
        "model setting": (_mutated(lambda m: m["cat"].update(max_instances=7)), {}),
        "batching": (_mutated(lambda m: m["cat"].update(max_batch_size=8)), {}),
        "image": (_mutated(lambda m: m["cat"]["revisions"]["v1"].update(image=GPU_IMAGE)), {}),
    }
    for what, (models, variables) in changes.items():
        after = models_evaluator.evaluate(models, **variables)["cat"]["template_revision"]
        assert after != before and after.startswith(rollout.revision_prefix("cat", "v1")), what


def test_rollback_returns_the_template_to_the_previous_revisions_own_name(models_evaluator):
    # Before the canary, v2 is the template; after a rollback the template is
    # v2 again under the very same name (and so the same, existing revision),
    # whatever happened to the canary.
    settled = rollout.promote(rollout.rollback(sample_models(), "resnet50"), "resnet50")
    assert settled["resnet50"]["traffic"] == {"v2": 100}
    before = models_evaluator.evaluate(settled)["resnet50"]
    during = models_evaluator.evaluate(
        rollout.canary(settled, "resnet50", 4, GPU_IMAGE.replace("2222", "4444"))
    )["resnet50"]
    assert during["revision_names"]["v2"] == before["template_revision"], (
        "the stable revision keeps its name during a canary"
    )
    assert during["template_revision"] != before["template_revision"]
    after = models_evaluator.evaluate(
        rollout.rollback(
            rollout.canary(settled, "resnet50", 4, GPU_IMAGE.replace("2222", "4444")), "resnet50"
        )
    )
    assert after["resnet50"]["template_revision"] == before["template_revision"]
    assert after["resnet50"]["traffic"] == [
        {"revision": before["template_revision"], "percent": 100, "tag": None}
    ]


def test_canary_tag_follows_the_newest_revision_even_at_zero_percent(models_evaluator):
    models = rollout.set_split(sample_models(), "resnet50", 0)
    services = models_evaluator.evaluate(models)
    names = services["resnet50"]["revision_names"]
    assert services["resnet50"]["traffic"] == [
        {"revision": names["v2"], "percent": 100, "tag": None},
        {"revision": names["v3"], "percent": 0, "tag": "canary"},
    ]
    assert services["resnet50"]["template_revision"] == names["v3"]


def test_rollout_defaults_match_the_terraform_optional_defaults():
    models_type = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]["type"]
    defaults = dict(re.findall(r"(\w+) = optional\(\w+, ([^)]+)\)", models_type))
    parsed = {key: value.strip('"') for key, value in defaults.items()}
    expected = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in rollout.MODEL_DEFAULTS.items()
    }
    expected.pop("canary_tag")  # optional(string) without a default
    assert expected["last_revision_serial"] == "0"
    assert parsed == expected
    assert re.search(r"canary_tag = optional\(string\)", models_type)


# --- CPU and memory pairs, the startup probe window, revision order (issue 17) -----------------

# Cloud Run's table for services (run/docs/configuring/services/cpu and memory-limits):
# the GiB each CPU count accepts.
CLOUD_RUN_PAIRS = {
    "1": range(1, 5), "2": range(1, 9), "4": range(2, 17), "6": range(4, 25), "8": range(4, 33),
}


@pytest.mark.parametrize(
    ("accelerator", "cpu", "memory", "valid"),
    [
        ("cpu", "1", "4Gi", True), ("cpu", "1", "8Gi", False), ("cpu", "2", "8Gi", True),
        ("cpu", "2", "16Gi", False), ("cpu", "4", "1Gi", False), ("cpu", "4", "16Gi", True),
        ("cpu", "4", "24Gi", False), ("cpu", "6", "24Gi", True), ("cpu", "6", "32Gi", False),
        ("cpu", "8", "32Gi", True),
        # A gpu model runs with at least 4 CPUs and 16Gi: 1 CPU and 8Gi becomes 4 and 16Gi (valid),
        # but 32Gi stays 32Gi with 4 CPUs, which Cloud Run refuses.
        ("gpu", "1", "8Gi", True), ("gpu", "1", "32Gi", False), ("gpu", "6", "24Gi", True),
        ("gpu", "8", "32Gi", True),
    ],
)
def test_cpu_and_memory_pairs_are_those_cloud_run_accepts(models_evaluator, accelerator, cpu, memory, valid):
    deployed_cpu = max(4, int(cpu)) if accelerator == "gpu" else int(cpu)
    deployed_gib = max(16, int(memory[:-2])) if accelerator == "gpu" else int(memory[:-2])
    assert (deployed_gib in CLOUD_RUN_PAIRS[str(deployed_cpu)]) == valid, "the case table is wrong"
    models = _mutated(lambda m: m["cat"].update(accelerator=accelerator, cpu=cpu, memory=memory))
    if valid:
        limits = models_evaluator.evaluate(models)["cat"]["limits"]
        assert (limits["cpu"], limits["memory"]) == (str(deployed_cpu), f"{deployed_gib}Gi")
        rollout.validate_models(models)
    else:
        assert "must be a pair Cloud Run accepts" in models_evaluator.rejection(models)
        with pytest.raises(rollout.RolloutError, match="take .* of memory on Cloud Run"):
            rollout.validate_models(models)


def test_the_startup_probe_window_stays_within_cloud_runs_240_seconds(models_evaluator):
    root_variables = blocks_by_name(load_module(TERRAFORM_DIR), "variable")
    assert root_variables["model_startup_timeout_seconds"]["default"] <= 240
    for seconds in (root_variables["model_startup_timeout_seconds"]["default"], 240, 235, 10):
        probe = models_evaluator.evaluate(sample_models(), model_startup_timeout_seconds=seconds)["cat"][
            "template"]["startup_probe"]
        window = probe["failure_threshold"] * probe["period_seconds"]
        assert seconds <= window <= 240, (seconds, probe)
    assert "exceeds 240 s" in models_evaluator.rejection(sample_models(), model_startup_timeout_seconds=241)


def test_terraform_and_rollout_agree_on_the_newest_revision_with_serial_keys(models_evaluator):
    models = sample_models()
    models["cat"]["revisions"] = {
        key: {"model_version": 1, "image": CPU_IMAGE} for key in ("v1", "v1-2", "v1-r9", "v1-r10")
    }
    models["cat"]["traffic"] = {"v1-r9": 100}
    services = models_evaluator.evaluate(models)
    assert rollout.newest_revision(models["cat"]["revisions"]) == "v1-r10"
    assert services["cat"]["template_revision"] == services["cat"]["revision_names"]["v1-r10"]


def test_a_canary_after_a_rollback_gets_a_revision_name_never_used_before(models_evaluator):
    settled = rollout.promote(sample_models(), "cat")
    names = set()
    models = settled
    for _ in range(2):
        models = rollout.canary(models, "cat", 1, GPU_IMAGE, percent=10)
        names.add(models_evaluator.evaluate(models)["cat"]["template_revision"])
        models = rollout.rollback(models, "cat")
        back = models_evaluator.evaluate(models)["cat"]["template_revision"]
        assert back == models_evaluator.evaluate(settled)["cat"]["template_revision"]
    assert len(names) == 2, "the second canary must not reuse the retired canary's revision name"
