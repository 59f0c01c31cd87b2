"""The models file (`models.auto.tfvars.json`): its schema as Terraform declares it, and its rules.

Mirrors the optional() defaults and validations of `variable "models"` in
terraform/variables.tf, and modules/model_service's rule for the newest
revision; tests/terraform checks the two stay in step. Standard library only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TERRAFORM_DIR = REPO_ROOT / "terraform"
MODELS_FILE = "models.auto.tfvars.json"
SETTINGS_FILE = "terraform.tfvars.json"
GENERATIONS_FILE = ".rollout-generations.json"
# Terraform's provider lock file; the first build saves it in the state bucket as STATE_LOCK_FILE.
LOCK_FILE = ".terraform.lock.hcl"
STATE_LOCK_FILE = "terraform.lock.hcl"
CONFIG_PREFIX = "config"

# Placeholder image that `pin` replaces with the image Cloud Build just pushed.
BUILD_IMAGE = "BUILD_IMAGE"
DEFAULT_CANARY_TAG = "canary"
# A version folder is complete once its SavedModel graph is there
# (export_model.py uploads saved_model.pb last).
MODEL_MARKER = "saved_model.pb"

# Mirrors the optional() defaults and validations of `variable "models"` in
# terraform/variables.tf; tests/terraform checks the two stay in step.
MODEL_DEFAULTS = {
    "accelerator": "cpu",
    "min_instances": 0,
    "max_instances": 3,
    "concurrency": 32,
    "cpu": "2",
    "memory": "4Gi",
    "gpu_zonal_redundancy_disabled": True,
    "ack_deadline_seconds": 60,
    "jobs_ack_deadline_seconds": 300,
    "max_batch_size": 16,
    "max_batch_delay_ms": 0,
    "run_lease_seconds": 10,
    "model_ready_wait_seconds": 30,
    "model_threads": 0,
    "concurrent_batches": 1,
    "canary_tag": None,
    "last_revision_serial": 0,
}
# (attribute, minimum, maximum) of the whole-number attributes.
WHOLE_RANGES = (
    ("concurrency", 1, 1000),
    ("ack_deadline_seconds", 10, 600),
    ("jobs_ack_deadline_seconds", 10, 600),
    ("max_batch_size", 1, 256),
    ("max_batch_delay_ms", 0, 1000),
    ("run_lease_seconds", 1, 600),
    ("model_ready_wait_seconds", 0, 600),
    ("model_threads", 0, 64),
    ("concurrent_batches", 1, 64),
)
ACCELERATORS = ("cpu", "gpu")
CPUS = ("1", "2", "4", "6", "8")
# Cloud Run's CPU and memory table for services: cpu -> (least, most) GiB.
MEMORY_GIB_BY_CPU = {"1": (1, 4), "2": (1, 8), "4": (2, 16), "6": (4, 24), "8": (4, 32)}
# One NVIDIA L4 needs at least this many CPUs and GiB; modules/model_service raises a gpu model to them.
GPU_MINIMUM_CPU, GPU_MINIMUM_GIB = 4, 16
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
NAME_RULE = "model names must be 1-20 lowercase letters, digits or hyphens, starting with a letter"
REVISION_KEY_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$")
MEMORY_RE = re.compile(r"^[0-9]+Gi$")
SERIAL_RE = re.compile(r"-r([0-9]+)$")


class RolloutError(Exception):
    """A rollout request that cannot be carried out; the message is one line."""


# --- model file -------------------------------------------------------------


def _read_json_object(path: Path, missing_hint: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RolloutError(f"{path}: no such file ({missing_hint})") from None
    except json.JSONDecodeError as exc:
        raise RolloutError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise RolloutError(f"{path}: expected a JSON object")
    return data


def load_tfvars(path: Path) -> dict:
    data = _read_json_object(path, "copy terraform/models.auto.tfvars.json.example")
    if not isinstance(data.get("models"), dict):
        raise RolloutError(f"{path}: expected a JSON object with a \"models\" object")
    return data


def load_settings(path: Path) -> dict:
    """terraform.tfvars.json: project_id, region and the other root inputs."""
    return _read_json_object(path, "run `rollout.py fetch` first")


def save_tfvars(path: Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- rules shared with Terraform ----------------------------------------------


def _is_whole(value, minimum: int, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def with_defaults(model: dict) -> dict:
    """The model as Terraform sees it once optional attributes take their defaults."""
    # As with optional(type, default), an explicit null also takes the default.
    return {**MODEL_DEFAULTS, **{k: v for k, v in model.items() if v is not None}}


def revision_serial(key: str) -> int:
    """The serial of a v<version>-r<serial> key (what traffic.canary hands out); 0 for any other key."""
    match = SERIAL_RE.search(key)
    return int(match.group(1)) if match else 0


def newest_revision(revisions: dict) -> str:
    """Key of the revision the service template deploys.

    Same rule as modules/model_service: highest model_version, then highest
    serial, then the greater key (Terraform sorts "%012d/%012d/<key>" strings).
    """
    if not revisions:
        raise RolloutError("no revisions")
    return max(revisions, key=lambda key: (revisions[key]["model_version"], revision_serial(key), key))


def deployed_resources(model: dict) -> tuple[int, int]:
    """(CPUs, GiB) a model runs with: a gpu model is raised to the L4's minimums, as in Terraform."""
    cpu, gib = int(model["cpu"]), int(model["memory"][:-2])
    if model["accelerator"] == "gpu":
        return max(GPU_MINIMUM_CPU, cpu), max(GPU_MINIMUM_GIB, gib)
    return cpu, gib


def revision_prefix(model_name: str, key: str) -> str:
    """Start of the Cloud Run revision name of a revision entry; Terraform appends a hash of its template."""
    return f"model-{model_name}-{key}-"


def validate_model(name: str, model: dict) -> None:
    """Raise RolloutError (one line, prefixed with the model name) unless Terraform would accept it."""

    def fail(message: str) -> None:
        raise RolloutError(f"{name}: {message}")

    if not NAME_RE.match(name):
        fail(NAME_RULE)
    if not isinstance(model, dict):
        fail("expected an object")
    m = with_defaults(model)
    if m["accelerator"] not in ACCELERATORS:
        fail(f"accelerator must be one of {', '.join(ACCELERATORS)}, not {m['accelerator']!r}")
    if m["cpu"] not in CPUS:
        fail(f"cpu must be one of {', '.join(CPUS)} (a string), not {m['cpu']!r}")
    if not (
        isinstance(m["memory"], str) and MEMORY_RE.match(m["memory"]) and 1 <= int(m["memory"][:-2]) <= 32
    ):
        fail(f"memory must be whole gibibytes between 1Gi and 32Gi, not {m['memory']!r}")
    cpu, gib = deployed_resources(m)
    least, most = MEMORY_GIB_BY_CPU[str(cpu)]
    if not least <= gib <= most:
        raised = " (a gpu model runs with at least 4 CPUs and 16Gi)" if m["accelerator"] == "gpu" else ""
        fail(
            f"{cpu} CPUs take {least}Gi to {most}Gi of memory on Cloud Run, not {gib}Gi{raised}; "
            "pairs: cpu 1 up to 4Gi, 2 up to 8Gi, 4 2Gi-16Gi, 6 4Gi-24Gi, 8 4Gi-32Gi"
        )
    if not _is_whole(m["last_revision_serial"], 0, 10**12):
        fail("last_revision_serial must be a whole number >= 0")
    if not (_is_whole(m["min_instances"], 0, 1000) and _is_whole(m["max_instances"], 1, 1000)):
        fail("min_instances and max_instances must be whole numbers, max_instances at least 1")
    if m["min_instances"] > m["max_instances"]:
        fail("min_instances must not exceed max_instances")
    for attribute, minimum, maximum in WHOLE_RANGES:
        if not _is_whole(m[attribute], minimum, maximum):
            fail(f"{attribute} must be a whole number between {minimum} and {maximum}, not {m[attribute]!r}")
    if m["concurrency"] < m["max_batch_size"]:
        fail(
            "concurrency (its gunicorn threads) must be at least max_batch_size, "
            "or a full batch can never form"
        )

    revisions = m.get("revisions")
    if not isinstance(revisions, dict) or not revisions:
        fail("needs at least one entry in revisions")
    for key, rev in revisions.items():
        if not REVISION_KEY_RE.match(key):
            fail(f"revision key {key!r} must be 1-20 lowercase letters, digits or hyphens")
        if not isinstance(rev, dict) or not _is_whole(rev.get("model_version"), 1, 10**12):
            fail(f"revision {key}: model_version must be a positive whole number")
        image = rev.get("image")
        if not isinstance(image, str) or ("/" not in image and image != BUILD_IMAGE):
            fail(f"revision {key}: image must be a full image reference or {BUILD_IMAGE}, not {image!r}")

    traffic = m.get("traffic")
    if not isinstance(traffic, dict):
        fail("traffic must map revision keys to percentages")
    for key, percent in traffic.items():
        if key not in revisions:
            fail(f"traffic names unknown revision {key!r}")
        if not _is_whole(percent, 0, 100):
            fail(f"traffic for {key} must be a whole percentage between 0 and 100, not {percent!r}")
    total = sum(traffic.values())
    if total != 100:
        fail(f"traffic percentages sum to {total}, not 100")

    tag = m["canary_tag"]
    if tag is not None and not (isinstance(tag, str) and NAME_RE.match(tag)):
        fail(f"canary_tag {tag!r} must be 1-20 lowercase letters, digits or hyphens, starting with a letter")


def validate_models(models: dict) -> None:
    if not isinstance(models, dict) or not models:
        raise RolloutError("models must contain at least one model")
    for name, model in models.items():
        validate_model(name, model)


def check_pinned(models: dict) -> None:
    """Refuse BUILD_IMAGE placeholders, which modules/model_service refuses to deploy."""
    for name, model in sorted(models.items()):
        for key, rev in sorted(model.get("revisions", {}).items()):
            if rev.get("image") == BUILD_IMAGE:
                raise RolloutError(
                    f"{name}: revision {key} still has image {BUILD_IMAGE} "
                    "(run `rollout.py pin --image IMAGE`)"
                )

