"""Shared helpers for the Terraform checks: HCL parsing and running terraform offline.

The google provider cannot be downloaded here, so nothing in these tests needs
it: configuration that only uses variables, locals and outputs is evaluated by
the real terraform binary; everything else is asserted on the parsed HCL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
MODULES_DIR = TERRAFORM_DIR / "modules"
EXAMPLE_MODELS = TERRAFORM_DIR / "models.auto.tfvars.json.example"
EXAMPLE_TFVARS = TERRAFORM_DIR / "terraform.tfvars.json.example"
MODULE_NAMES = ("platform", "storage", "firestore", "model_service", "model_routing", "job_routing",
                "api_function", "website", "monitoring")

# Plain values: string attributes without their quotes, no comment keys.
_HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def load_hcl(path: Path) -> dict:
    with open(path) as handle:
        return hcl2.load(handle, serialization_options=_HCL_OPTIONS)


def load_module(directory: Path) -> dict:
    """All .tf files of a module merged: {"resource": [...], "variable": [...], ...}."""
    merged: dict[str, list] = {}
    for path in sorted(Path(directory).glob("*.tf")):
        for key, blocks in load_hcl(path).items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def blocks_by_name(module: dict, kind: str) -> dict[str, dict]:
    """{name: body} for single-label blocks such as variable, output, module."""
    found: dict[str, dict] = {}
    for block in module.get(kind, []):
        for name, body in block.items():
            assert name not in found, f"duplicate {kind} {name}"
            found[name] = body
    return found


def resources(module: dict, resource_type: str | None = None) -> dict[tuple[str, str], dict]:
    """{(type, name): body} of a module's resources, optionally of one type."""
    found: dict[tuple[str, str], dict] = {}
    for block in module.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                if resource_type in (None, rtype):
                    found[(rtype, name)] = body
    return found


def only(blocks, what: str = "block") -> dict:
    """The single nested block of a list, e.g. only(sub["push_config"])."""
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {what}, got {blocks!r}"
    return blocks[0]


def dynamic_blocks(body: dict) -> dict[str, dict]:
    """{label: body} of the `dynamic "label" {}` blocks directly inside body."""
    found = {}
    for block in body.get("dynamic", []):
        found.update(block)
    return found


def string_leaves(value, path: str = ""):
    """Yield (path, string) for every string anywhere in a parsed structure."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, f"{path}[{index}]")


# A region other than us-central1, as a reader following terraform/README.md may pick.
REGION = "europe-west4"

# What Cloud Build pins the example's BUILD_IMAGE placeholders to.
CPU_IMAGE = "us-central1-docker.pkg.dev/test-project-1/inference/model-service@sha256:" + "1" * 64
GPU_IMAGE = "us-central1-docker.pkg.dev/test-project-1/inference/model-service-gpu@sha256:" + "2" * 64
GPU_IMAGE_V3 = "us-central1-docker.pkg.dev/test-project-1/inference/model-service-gpu@sha256:" + "3" * 64


def example_models() -> dict:
    """The example models file as written (BUILD_IMAGE placeholders)."""
    return json.loads(EXAMPLE_MODELS.read_text())["models"]


def sample_models() -> dict:
    """The example after Cloud Build pinned it, plus a GPU model in the middle of a canary."""
    models = example_models()
    for model in models.values():
        for revision in model["revisions"].values():
            revision["image"] = CPU_IMAGE
    models["resnet50"] = {
        "accelerator": "gpu",
        "cpu": "4",
        "memory": "16Gi",
        "max_instances": 2,
        "concurrency": 32,
        "ack_deadline_seconds": 120,
        "gpu_zonal_redundancy_disabled": True,
        "revisions": {
            "v2": {"model_version": 2, "image": GPU_IMAGE},
            "v3": {"model_version": 3, "image": GPU_IMAGE_V3},
        },
        "traffic": {"v2": 90, "v3": 10},
        "canary_tag": "canary",
    }
    return models


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.fail("terraform is not on PATH; install Terraform >= 1.5 to run these checks")
    return binary


def run_terraform(binary: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"}
    return subprocess.run([binary, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


_EVAL_ROOT = """
module "model_service" {
  source   = "./model_service"
  for_each = var.models

  project_id              = var.project_id
  region                  = var.region
  model_name              = each.key
  model                   = each.value
  model_repository        = "gs://${var.project_id}-models/models"
  uploads_bucket          = "${var.project_id}-uploads"
  models_bucket           = "${var.project_id}-models"
  ingress                 = var.model_ingress
  startup_timeout_seconds = var.model_startup_timeout_seconds
  iam_propagation_seconds = var.iam_propagation_seconds
  deletion_protection     = var.deletion_protection
}

output "model_services" {
  value = { for name, service in module.model_service : name => service.evaluated }
}
"""

_EVAL_OUTPUTS = """
output "evaluated" {
  value = {
    service_name                  = local.service_name
    template_revision             = local.template_revision
    revision_names                = local.revision_names
    image                         = local.newest.image
    accelerator                   = local.accelerator
    gpu_zonal_redundancy_disabled = local.gpu_zonal_redundancy_disabled
    limits                        = local.limits
    env                           = local.env
    traffic                       = local.traffic
    template                      = local.template
  }
}
"""


class ModelsEvaluator:
    """Runs the real root `models` variable (type, defaults, validations) and the
    real model_service locals through terraform, without any provider.

    The scratch root copies terraform/variables.tf and the variables.tf and
    locals.tf of modules/model_service; only the resources are left out.
    """

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        shutil.copy(TERRAFORM_DIR / "variables.tf", workdir / "variables.tf")
        (workdir / "main.tf").write_text(_EVAL_ROOT)
        module = workdir / "model_service"
        module.mkdir()
        for name in ("variables.tf", "locals.tf"):
            shutil.copy(MODULES_DIR / "model_service" / name, module / name)
        (module / "outputs.tf").write_text(_EVAL_OUTPUTS)
        init = run_terraform(binary, ["init", "-backend=false", "-input=false", "-no-color"], workdir)
        assert init.returncode == 0, init.stdout + init.stderr
        self._runs = 0

    def apply(self, models: dict, **variables) -> subprocess.CompletedProcess:
        self._runs += 1
        tfvars = self.workdir / f"run{self._runs}.tfvars.json"
        settings = {"project_id": "test-project-1", "region": REGION, "models": models, **variables}
        tfvars.write_text(json.dumps(settings))
        return run_terraform(
            self.binary,
            ["apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={tfvars.name}"],
            self.workdir,
        )

    def evaluate(self, models: dict, **variables) -> dict:
        """Model services as Terraform computes them; fails the test if Terraform rejects the input."""
        result = self.apply(models, **variables)
        assert result.returncode == 0, result.stdout + result.stderr
        output = run_terraform(self.binary, ["output", "-json", "-no-color", "model_services"], self.workdir)
        assert output.returncode == 0, output.stderr
        return json.loads(output.stdout)

    def rejection(self, models: dict, **variables) -> str:
        """Terraform's error text for input it must reject; fails the test if it accepts it."""
        result = self.apply(models, **variables)
        assert result.returncode != 0, f"terraform accepted invalid models: {json.dumps(models)}"
        return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="session")
def models_evaluator(terraform_bin, tmp_path_factory) -> ModelsEvaluator:
    return ModelsEvaluator(terraform_bin, tmp_path_factory.mktemp("tf-models-eval"))


def evaluate_naming(binary: str, root: Path, module: str, outputs: str, models) -> dict[str, dict]:
    """model name -> the output "names" of a module's naming.tf, evaluated by terraform.

    root becomes a scratch copy laid out like the repository (the module's naming.tf,
    the contract's naming.json), so the relative path naming.tf reads resolves; outputs
    is HCL declaring `variable "model_name"` and `output "names"` over its locals.
    """
    directory = root / "terraform" / "modules" / module
    directory.mkdir(parents=True)
    shutil.copy(MODULES_DIR / module / "naming.tf", directory / "naming.tf")
    (directory / "outputs.tf").write_text(outputs)
    contract = root / "contract" / "inference_contract"
    contract.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "contract" / "inference_contract" / "naming.json", contract / "naming.json")
    init = run_terraform(binary, ["init", "-backend=false", "-no-color"], directory)
    assert init.returncode == 0, init.stdout + init.stderr
    names = {}
    for model in models:
        applied = run_terraform(binary, ["apply", "-auto-approve", "-no-color", f"-var=model_name={model}"],
                                directory)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        output = run_terraform(binary, ["output", "-json", "names"], directory)
        assert output.returncode == 0, output.stderr
        names[model] = json.loads(output.stdout)
    return names
