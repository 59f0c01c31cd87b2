"""Every variable described and typed, closed sets validated, outputs described."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import EXAMPLE_TFVARS, MODULE_NAMES, MODULES_DIR, TERRAFORM_DIR, blocks_by_name, load_module

MODULE_DIRS = {"root": TERRAFORM_DIR, **{name: MODULES_DIR / name for name in MODULE_NAMES}}

ALL_VARIABLES = [
    (module, name, body)
    for module, directory in MODULE_DIRS.items()
    for name, body in blocks_by_name(load_module(directory), "variable").items()
]
ALL_OUTPUTS = [
    (module, name, body)
    for module, directory in MODULE_DIRS.items()
    for name, body in blocks_by_name(load_module(directory), "output").items()
]

# Variables whose values form a closed set, and a value each validation must name.
CLOSED_SETS = {
    ("root", "models"): '"gpu"',
    ("root", "model_ingress"): "INGRESS_TRAFFIC_INTERNAL_ONLY",
    ("root", "function_runtime"): "python311",
    ("root", "api_memory"): "512Mi",
    ("model_service", "model"): '"gpu"',
    ("model_service", "ingress"): "INGRESS_TRAFFIC_INTERNAL_ONLY",
}


def test_every_module_has_variables_and_outputs():
    modules_with_variables = {module for module, _, _ in ALL_VARIABLES}
    modules_with_outputs = {module for module, _, _ in ALL_OUTPUTS}
    assert modules_with_variables == set(MODULE_DIRS)
    assert modules_with_outputs == set(MODULE_DIRS)


@pytest.mark.parametrize(
    ("module", "name", "body"), ALL_VARIABLES, ids=[f"{m}.{n}" for m, n, _ in ALL_VARIABLES]
)
def test_variable_is_described_and_typed(module, name, body):
    assert isinstance(body.get("description"), str) and len(body["description"].split()) >= 3, (
        "needs a description"
    )
    assert isinstance(body.get("type"), str) and body["type"], "needs a type"


@pytest.mark.parametrize(("module", "name", "body"), ALL_OUTPUTS, ids=[f"{m}.{n}" for m, n, _ in ALL_OUTPUTS])
def test_output_is_described(module, name, body):
    assert isinstance(body.get("description"), str) and len(body["description"].split()) >= 3


@pytest.mark.parametrize(("module", "name"), sorted(CLOSED_SETS))
def test_closed_set_variables_are_validated(module, name):
    body = blocks_by_name(load_module(MODULE_DIRS[module]), "variable")[name]
    conditions = [rule["condition"] for rule in body.get("validation", [])]
    assert any("contains([" in c and CLOSED_SETS[(module, name)] in c for c in conditions), conditions


def test_accelerator_validation_admits_exactly_cpu_and_gpu():
    models = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]
    conditions = [rule["condition"] for rule in models["validation"]]
    assert any('contains(["cpu", "gpu"], m.accelerator)' in c for c in conditions)


def test_traffic_sum_validation_exists():
    models = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]
    rules = [rule for rule in models["validation"] if "sum(" in rule["condition"]]
    assert len(rules) == 1
    assert "values(m.traffic)" in rules[0]["condition"] and "== 100" in rules[0]["condition"]


def test_models_type_lists_the_documented_attributes():
    models_type = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]["type"]
    for attribute in (
        "accelerator",
        "min_instances",
        "max_instances",
        "concurrency",
        "cpu",
        "memory",
        "ack_deadline_seconds",
        "jobs_ack_deadline_seconds",
        "max_batch_size",
        "max_batch_delay_ms",
        "run_lease_seconds",
        "model_ready_wait_seconds",
        "revisions",
        "model_version",
        "image",
        "traffic",
        "canary_tag",
    ):
        assert re.search(rf"\b{attribute}\s*=", models_type), attribute


def test_example_tfvars_sets_only_declared_root_variables():
    declared = set(blocks_by_name(load_module(TERRAFORM_DIR), "variable"))
    values = json.loads(EXAMPLE_TFVARS.read_text())
    assert values["project_id"] and values["region"]
    assert set(values) <= declared
    required = {
        name
        for name, body in blocks_by_name(load_module(TERRAFORM_DIR), "variable").items()
        if "default" not in body
    }
    assert required <= set(values) | {"models"}, "the example must set every required variable but models"


def test_readme_tables_list_every_root_input_and_output():
    readme = (TERRAFORM_DIR / "README.md").read_text()
    inputs = readme.split("## Inputs", 1)[1].split("## Outputs", 1)[0]
    outputs = readme.split("## Outputs", 1)[1].split("\n## ", 1)[0]
    root = load_module(TERRAFORM_DIR)
    assert set(re.findall(r"^\| `(\w+)` \|", inputs, flags=re.MULTILINE)) == set(
        blocks_by_name(root, "variable")
    )
    assert set(re.findall(r"^\| `(\w+)` \|", outputs, flags=re.MULTILINE)) == set(
        blocks_by_name(root, "output")
    )


def test_readme_models_table_gives_the_terraform_defaults():
    # The table once said concurrency 8 and max_batch_delay_ms 10 while the code had 32 and 0.
    readme = (TERRAFORM_DIR / "README.md").read_text()
    table = readme.split("### The `models` variable", 1)[1].split("\n\n", 3)[2]
    models_type = blocks_by_name(load_module(TERRAFORM_DIR), "variable")["models"]["type"]
    defaults = {name: value.strip('"') for name, value in
                re.findall(r"(\w+) = optional\(\w+, ([^)]+)\)", models_type)}
    documented = {}
    for names, values in re.findall(r"^\| (`[^|]+) \| (`[^|]+) \|", table, flags=re.MULTILINE):
        for name, value in zip(re.findall(r"`(\w+)`", names), re.findall(r"`([^`]+)`", values), strict=True):
            documented[name] = value.strip('"')
    assert documented == defaults
