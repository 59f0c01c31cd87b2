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

from scripts import rollout

from .conftest import TERRAFORM_DIR, blocks_by_name, example_models, load_module

# (case id, change to the example models, text of Terraform's error, text of rollout.py's error)
INVALID_CASES = [
    ("traffic-sums-to-90", lambda m: m["resnet50"]["traffic"].update(v3=0), "must sum to exactly 100", "sum to 90"),
    ("traffic-sums-to-110", lambda m: m["resnet50"]["traffic"].update(v3=20), "must sum to exactly 100", "sum to 110"),
    ("traffic-unknown-revision", lambda m: m["mobilenet"]["traffic"].update(v9=0), "must name an entry", "unknown revision"),
    ("traffic-negative", lambda m: m["resnet50"]["traffic"].update(v2=110, v3=-10), "between 0 and 100", "between 0 and 100"),
    ("accelerator-tpu", lambda m: m["mobilenet"].update(accelerator="tpu"), 'must be "cpu" or "gpu"', "accelerator"),
    ("cpu-3", lambda m: m["mobilenet"].update(cpu="3"), "cpu must be one of", "cpu must be one of"),
    ("memory-mi", lambda m: m["mobilenet"].update(memory="512Mi"), "whole gibibytes", "whole gibibytes"),
    ("version-zero", lambda m: m["efficientnet"]["revisions"]["v1"].update(model_version=0), "positive whole", "positive whole"),
    ("placeholder-image", lambda m: m["efficientnet"]["revisions"]["v1"].update(image="BUILD_IMAGE"), "full image", "rollout.py pin"),
    ("no-revisions", lambda m: m["mobilenet"].update(revisions={}, traffic={}), "at least one entry", "at least one entry"),
    ("bad-model-name", lambda m: m.update(ResNet=m.pop("resnet50")), "Model names must be", "model names must be"),
    ("min-above-max", lambda m: m["mobilenet"].update(min_instances=4), "min_instances <= max_instances", "must not exceed"),
    ("ack-deadline", lambda m: m["mobilenet"].update(ack_deadline_seconds=5), "ack_deadline_seconds <= 600", "ack_deadline"),
    ("bad-canary-tag", lambda m: m["resnet50"].update(canary_tag="Canary!"), "canary_tag must be", "canary_tag"),
]


def _mutated(change) -> dict:
    models = copy.deepcopy(example_models())
    change(models)
    return models


@pytest.fixture(scope="module")
def evaluated(models_evaluator) -> dict:
    return models_evaluator.evaluate(example_models())


def test_example_has_three_models_one_on_gpu():
    models = example_models()
    assert len(models) == 3
    assert [name for name, m in models.items() if m.get("accelerator") == "gpu"] == ["resnet50"]


def test_terraform_and_rollout_accept_the_example(evaluated):
    rollout.validate_models(example_models())
    assert set(evaluated) == set(example_models())


@pytest.mark.parametrize(("change", "terraform_error", "rollout_error"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_terraform_and_rollout_reject(models_evaluator, change, terraform_error, rollout_error):
    models = _mutated(change)
    assert terraform_error in models_evaluator.rejection(models)
    with pytest.raises(rollout.RolloutError, match=re.escape(rollout_error)):
        rollout.validate_models(models)


def test_gpu_settings_only_on_the_gpu_model(evaluated):
    for name, service in evaluated.items():
        if example_models()[name]["accelerator"] == "gpu":
            assert service["accelerator"] == "nvidia-l4"
            assert service["gpu_zonal_redundancy_disabled"] is True
            assert service["limits"]["nvidia.com/gpu"] == "1"
        else:
            assert service["accelerator"] is None
            assert service["gpu_zonal_redundancy_disabled"] is None
            assert set(service["limits"]) == {"cpu", "memory"}


def test_gpu_model_is_raised_to_the_gpu_minimums(models_evaluator):
    models = example_models()
    models["resnet50"].update(cpu="2", memory="8Gi", gpu_zonal_redundancy_disabled=False)
    models["mobilenet"].update(cpu="2", memory="8Gi")
    services = models_evaluator.evaluate(models)
    assert services["resnet50"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert services["resnet50"]["gpu_zonal_redundancy_disabled"] is False
    assert services["mobilenet"]["limits"] == {"cpu": "2", "memory": "8Gi"}


def test_model_service_environment(evaluated):
    for name, service in evaluated.items():
        newest = rollout.newest_revision(example_models()[name]["revisions"])
        assert service["env"] == {
            "MODEL_NAME": name,
            "MODEL_VERSION": str(example_models()[name]["revisions"][newest]["model_version"]),
            "MODEL_REPOSITORY": "gs://test-project-1-models/models",
            "GOOGLE_CLOUD_PROJECT": "test-project-1",
            "GUNICORN_THREADS": str(example_models()[name]["concurrency"]),
        }


def test_traffic_blocks_match_the_models_map(evaluated):
    for name, service in evaluated.items():
        model = example_models()[name]
        targets = {t["revision"]: t["percent"] for t in service["traffic"]}
        assert targets == {rollout.revision_name(name, key): percent for key, percent in model["traffic"].items()}
        assert sum(targets.values()) == 100
    canary = {t["revision"]: t["tag"] for t in evaluated["resnet50"]["traffic"]}
    assert canary == {"model-resnet50-v2": None, "model-resnet50-v3": "canary"}


def test_template_deploys_the_newest_revision_as_rollout_computes_it(models_evaluator, evaluated):
    for name, service in evaluated.items():
        revisions = example_models()[name]["revisions"]
        newest = rollout.newest_revision(revisions)
        assert service["template_revision"] == rollout.revision_name(name, newest)
        assert service["image"] == revisions[newest]["image"]
    # Numeric order, not string order, and ties broken by the greater key.
    image = example_models()["mobilenet"]["revisions"]["v1"]["image"]
    models = example_models()
    models["mobilenet"]["revisions"] = {
        "v2": {"model_version": 2, "image": image},
        "v10": {"model_version": 10, "image": image},
        "v10-fix": {"model_version": 10, "image": image.replace("1111", "3333")},
    }
    models["mobilenet"]["traffic"] = {"v2": 50, "v10": 50}
    services = models_evaluator.evaluate(models)
    assert rollout.newest_revision(models["mobilenet"]["revisions"]) == "v10-fix"
    assert services["mobilenet"]["template_revision"] == "model-mobilenet-v10-fix"


def test_canary_tag_follows_the_newest_revision_even_at_zero_percent(models_evaluator):
    models = rollout.rollback(example_models(), "resnet50")
    services = models_evaluator.evaluate(models)
    assert services["resnet50"]["traffic"] == [
        {"revision": "model-resnet50-v2", "percent": 100, "tag": None},
        {"revision": "model-resnet50-v3", "percent": 0, "tag": "canary"},
    ]
    assert services["resnet50"]["template_revision"] == "model-resnet50-v3"


def test_rollout_defaults_match_the_terraform_optional_defaults():
    models_type = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]["type"]
    defaults = dict(re.findall(r"(\w+) = optional\(\w+, ([^)]+)\)", models_type))
    parsed = {key: value.strip('"') for key, value in defaults.items()}
    expected = {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in rollout.MODEL_DEFAULTS.items()}
    expected.pop("canary_tag")  # optional(string) without a default
    assert parsed == expected
    assert re.search(r"canary_tag = optional\(string\)", models_type)
