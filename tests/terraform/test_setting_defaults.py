"""Each default written in both Terraform and Python is checked against its one home.

A setting's home is the unit's config module (read from the environment there);
Terraform's type constraints and variable defaults must be literals, so they
cannot read it: this test holds them to it instead. (rollout.py's mirror of the
`models` variable is held to Terraform by test_models.py.)
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from model_service.config import Settings as ModelServiceSettings
from prediction_api.config import Settings as ApiSettings

from .conftest import MODULES_DIR, TERRAFORM_DIR, blocks_by_name, load_module, only

ROOT = load_module(TERRAFORM_DIR)
ROOT_VARIABLES = blocks_by_name(ROOT, "variable")


def _python_default(settings_class, field_name: str):
    return {field.name: field.default for field in dataclasses.fields(settings_class)}[field_name]


def _api_settings() -> list[tuple[str, object]]:
    """(environment variable, Terraform default) for each setting the functions get from a root variable."""
    environment = only(load_module(MODULES_DIR / "api_function")["locals"])["environment"]
    module_call = blocks_by_name(ROOT, "module")["api_function"]
    module_variables = blocks_by_name(load_module(MODULES_DIR / "api_function"), "variable")
    found = []
    for name, module_variable in re.findall(r"\b([A-Z_]+)\s*=\s*tostring\(var\.(\w+)\)", environment):
        passed = module_call.get(module_variable)
        if passed is None:  # the module's own default
            found.append((name, module_variables[module_variable]["default"]))
            continue
        root_variable = re.fullmatch(r"\$\{var\.(\w+)\}", passed)
        if root_variable and "default" in ROOT_VARIABLES[root_variable.group(1)]:
            found.append((name, ROOT_VARIABLES[root_variable.group(1)]["default"]))
    return found


API_SETTINGS = _api_settings()


def test_the_functions_settings_are_found():
    names = {name for name, _ in API_SETTINGS}
    assert {"MAX_IMAGE_BYTES", "MAX_IMAGES_PER_REQUEST", "PREDICTION_TTL_DAYS", "AUTH_REQUIRED",
            "API_KEY_CACHE_SECONDS", "MAX_DELIVERY_ATTEMPTS", "REDELIVER_AFTER_SECONDS"} <= names


@pytest.mark.parametrize(("name", "terraform_default"), [s for s in API_SETTINGS if s[0] != "THREADS"])
def test_terraform_defaults_of_the_functions_are_the_api_configs(name, terraform_default):
    assert terraform_default == _python_default(ApiSettings, name.lower()), name


MODEL_SERVICE_ENV = {
    "MAX_BATCH_SIZE": "max_batch_size",
    "MAX_BATCH_DELAY_MS": "max_batch_delay_ms",
    "RUN_LEASE_SECONDS": "run_lease_seconds",
    "MODEL_READY_WAIT_SECONDS": "model_ready_wait_seconds",
}


@pytest.mark.parametrize(("name", "attribute"), sorted(MODEL_SERVICE_ENV.items()))
def test_terraform_model_defaults_are_the_model_services(name, attribute):
    shared_env = only(load_module(MODULES_DIR / "model_service")["locals"])["shared_env"]
    assert shared_env[name] == f"${{tostring(var.model.{attribute})}}"
    models_type = ROOT_VARIABLES["models"]["type"]
    terraform_default = re.search(rf"\b{attribute} = optional\(number, ([0-9.]+)\)", models_type).group(1)
    assert float(terraform_default) == _python_default(ModelServiceSettings, attribute), name


def test_terraform_concurrency_is_the_model_services_request_threads():
    """Cloud Run's concurrency is gunicorn's thread count (GUNICORN_THREADS), whose default lives in
    model_service.config: twice the default batch size."""
    shared_env = only(load_module(MODULES_DIR / "model_service")["locals"])["shared_env"]
    assert shared_env["GUNICORN_THREADS"] == "${tostring(var.model.concurrency)}"
    models_type = ROOT_VARIABLES["models"]["type"]
    terraform_default = re.search(r"\bconcurrency\s*= optional\(number, ([0-9]+)\)", models_type).group(1)
    assert int(terraform_default) == _python_default(ModelServiceSettings, "request_threads")
