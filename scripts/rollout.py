#!/usr/bin/env python3
"""Canary, promote and roll back a model's Cloud Run revisions, one command each.

    rollout.py canary resnet50 10                 # newest exported version, current image, 10%
    rollout.py canary resnet50 10 --version 3 --image IMAGE
    rollout.py set resnet50 50
    rollout.py promote resnet50
    rollout.py rollback resnet50

The deployment's configuration lives in the Terraform state bucket, beside the
state: gs://STATE/config/terraform.tfvars.json (project, region, settings) and
gs://STATE/config/models.auto.tfvars.json (the `models` variable: each model's
revisions and traffic split). Each traffic command fetches both into
terraform/, edits the models file, checks that every model version it names is
in the model repository, runs `terraform init` and a `terraform apply` targeted
at that model's Cloud Run service (so the functions are never redeployed by a
traffic change), and saves the models file back, guarded by its generation. It
runs the same way on a laptop and in ci/rollout.cloudbuild.yaml.

    --plan   stop after `terraform plan`; nothing is saved
    --local  only edit terraform/models.auto.tfvars.json (no Cloud Storage, no Terraform)

Also used by cloudbuild.yaml: `fetch`, `pin`, `check-models`, `save`.
Errors are one line, exit 2. Standard library only; needs `gcloud` and
`terraform` on PATH except with --local.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TERRAFORM_DIR = REPO_ROOT / "terraform"
MODELS_FILE = "models.auto.tfvars.json"
SETTINGS_FILE = "terraform.tfvars.json"
GENERATIONS_FILE = ".rollout-generations.json"
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
    "max_batch_size": 16,
    "max_batch_delay_ms": 0,
    "run_lease_seconds": 10,
    "model_ready_wait_seconds": 30,
    "canary_tag": None,
}
# (attribute, minimum, maximum) of the whole-number attributes.
WHOLE_RANGES = (
    ("concurrency", 1, 1000),
    ("ack_deadline_seconds", 10, 600),
    ("max_batch_size", 1, 256),
    ("max_batch_delay_ms", 0, 1000),
    ("run_lease_seconds", 1, 600),
    ("model_ready_wait_seconds", 0, 600),
)
ACCELERATORS = ("cpu", "gpu")
CPUS = ("1", "2", "4", "6", "8")
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
REVISION_KEY_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$")
MEMORY_RE = re.compile(r"^[0-9]+Gi$")


class RolloutError(Exception):
    """A rollout request that cannot be carried out; the message is one line."""


# --- model file -------------------------------------------------------------


def load_tfvars(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RolloutError(f"{path}: no such file (copy terraform/models.auto.tfvars.json.example)") from None
    except json.JSONDecodeError as exc:
        raise RolloutError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise RolloutError(f"{path}: expected a JSON object with a \"models\" object")
    return data


def save_tfvars(path: Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- rules shared with Terraform ----------------------------------------------


def _is_whole(value, minimum: int, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def with_defaults(model: dict) -> dict:
    """The model as Terraform sees it once optional attributes take their defaults."""
    # As with optional(type, default), an explicit null also takes the default.
    return {**MODEL_DEFAULTS, **{k: v for k, v in model.items() if v is not None}}


def newest_revision(revisions: dict) -> str:
    """Key of the revision the service template deploys.

    Same rule as modules/model_service: highest model_version, ties broken by
    the greater key (Terraform sorts "%012d/<key>" strings).
    """
    if not revisions:
        raise RolloutError("no revisions")
    return max(revisions, key=lambda key: (revisions[key]["model_version"], key))


def revision_prefix(model_name: str, key: str) -> str:
    """Start of the Cloud Run revision name of a revision entry; Terraform appends a hash of its template."""
    return f"model-{model_name}-{key}-"


def validate_model(name: str, model: dict) -> None:
    """Raise RolloutError (one line, prefixed with the model name) unless Terraform would accept it."""

    def fail(message: str) -> None:
        raise RolloutError(f"{name}: {message}")

    if not NAME_RE.match(name):
        fail("model names must be 1-20 lowercase letters, digits or hyphens, starting with a letter")
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


# --- traffic operations (pure: they return a new models dict) ----------------


def _model(models: dict, name: str) -> dict:
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise RolloutError(f"unknown model {name!r} (known: {known})")
    return models[name]


def _stable_revision(model: dict, newest: str) -> str | None:
    """The revision that keeps the traffic the newest one does not get."""
    others = [key for key in model["revisions"] if key != newest]
    if not others:
        return None
    traffic = model.get("traffic", {})
    return max(others, key=lambda key: (traffic.get(key, 0), model["revisions"][key]["model_version"], key))


def _check_percent(percent) -> None:
    if not _is_whole(percent, 0, 100):
        raise RolloutError(f"percent must be a whole number between 0 and 100, not {percent!r}")


def next_revision_key(revisions: dict, version: int) -> str:
    """v<version>, or v<version>-2, -3, ... when a revision of that version exists (a new image)."""
    key, n = f"v{version}", 1
    while key in revisions:
        n += 1
        key = f"v{version}-{n}"
    return key


def canary(
    models: dict,
    name: str,
    version: int,
    image: str,
    percent: int = 10,
    revision: str | None = None,
    tag: str | None = DEFAULT_CANARY_TAG,
) -> dict:
    """Add one new revision (the newest) and send it `percent` of the traffic."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    if not _is_whole(version, 1, 10**12):
        raise RolloutError(f"{name}: version must be a positive whole number, not {version!r}")
    _check_percent(percent)
    if not isinstance(image, str) or "/" not in image:
        raise RolloutError(
            f"{name}: image must be a full image reference such as REGION-docker.pkg.dev/P/R/I@sha256:..."
        )
    revisions = model.setdefault("revisions", {})
    traffic = model.setdefault("traffic", {})
    key = revision or next_revision_key(revisions, version)
    if not REVISION_KEY_RE.match(key):
        raise RolloutError(f"{name}: revision key {key!r} must be 1-20 lowercase letters, digits or hyphens")
    if key in revisions:
        raise RolloutError(f"{name}: revision {key} already exists; pass --revision NAME for a new one")
    serving = sorted(k for k, p in traffic.items() if p > 0)
    if len(serving) > 1:
        split = ", ".join(f"{k} {traffic[k]}%" for k in serving)
        raise RolloutError(f"{name}: a rollout is in progress ({split}); promote or roll back first")
    if revisions:
        current = newest_revision(revisions)
        if (version, key) <= (revisions[current]["model_version"], current):
            raise RolloutError(
                f"{name}: new revision {key} (version {version}) must be newer than "
                f"{current} (version {revisions[current]['model_version']})"
            )
        if (
            revision is None
            and serving
            and revisions[serving[0]] == {"model_version": version, "image": image}
        ):
            raise RolloutError(
                f"{name}: {serving[0]} already serves version {version} with that image; nothing to canary"
            )
    if not serving and percent != 100:
        raise RolloutError(
            f"{name}: no serving revision to keep {100 - percent}% of the traffic; use percent 100"
        )

    stable = serving[0] if serving else None
    # Revisions without traffic are dropped: they are older than the new one,
    # so the template no longer refers to them.
    model["revisions"] = {k: v for k, v in revisions.items() if k == stable}
    model["revisions"][key] = {"model_version": version, "image": image}
    model["traffic"] = {key: percent}
    if stable is not None and percent < 100:
        model["traffic"][stable] = 100 - percent
    if tag is None:
        model.pop("canary_tag", None)
    else:
        model["canary_tag"] = tag
    validate_model(name, model)
    return models


def set_split(models: dict, name: str, percent: int) -> dict:
    """Give the newest revision `percent`, the previous one the rest."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    _check_percent(percent)
    newest = newest_revision(model.get("revisions", {}))
    stable = _stable_revision(model, newest)
    if stable is None and percent != 100:
        raise RolloutError(
            f"{name}: {newest} is the only revision; nothing can take the other {100 - percent}%"
        )
    model["traffic"] = {newest: percent}
    if stable is not None and percent < 100:
        model["traffic"][stable] = 100 - percent
    validate_model(name, model)
    return models


def promote(models: dict, name: str) -> dict:
    """Send all traffic to the newest revision and forget the older ones."""
    models = copy.deepcopy(models)
    model = _model(models, name)
    newest = newest_revision(model.get("revisions", {}))
    model["revisions"] = {newest: model["revisions"][newest]}
    model["traffic"] = {newest: 100}
    model.pop("canary_tag", None)
    validate_model(name, model)
    return models


def rollback(models: dict, name: str) -> dict:
    """Send all traffic back to the previous revision and drop the canary.

    Dropping it points the template back at the previous revision's image and
    version; with unchanged settings that is the previous revision's own
    template and name (the name ends in a hash of the template), so Cloud Run
    keeps serving that revision and nothing new is deployed. It works whether
    or not the canary ever became ready.
    """
    models = copy.deepcopy(models)
    model = _model(models, name)
    newest = newest_revision(model.get("revisions", {}))
    stable = _stable_revision(model, newest)
    if stable is None:
        raise RolloutError(f"{name}: {newest} is the only revision; nothing to roll back to")
    model["revisions"] = {stable: model["revisions"][stable]}
    model["traffic"] = {stable: 100}
    model.pop("canary_tag", None)
    validate_model(name, model)
    return models


def pin_images(models: dict, image: str, gpu_image: str | None = None) -> tuple[dict, list[str]]:
    """Replace BUILD_IMAGE placeholders with `image` (`gpu_image` on gpu models, if given).

    Returns the new models and the model/revision entries that changed.
    """
    for candidate in (image, gpu_image or image):
        if not isinstance(candidate, str) or "/" not in candidate:
            raise RolloutError(
                "images must be full references such as REGION-docker.pkg.dev/P/R/I@sha256:..."
            )
    models = copy.deepcopy(models)
    pinned = []
    for name, model in sorted(models.items()):
        gpu = with_defaults(model)["accelerator"] == "gpu"
        for key, rev in sorted(model.get("revisions", {}).items()):
            if rev.get("image") == BUILD_IMAGE:
                rev["image"] = gpu_image if gpu and gpu_image else image
                pinned.append(f"{name}/{key}")
    validate_models(models)
    return models, pinned


def describe(name: str, model: dict) -> str:
    """One-line summary of a model's split, e.g. `resnet50: v2 90%, v3 10% (tag canary -> v3)`."""
    traffic = model.get("traffic", {})
    split = ", ".join(f"{key} {traffic[key]}%" for key in sorted(traffic, key=lambda k: -traffic[k]))
    summary = f"{name}: {split}"
    tag = model.get("canary_tag")
    if tag:
        summary += f" (tag {tag} -> {newest_revision(model['revisions'])})"
    return summary


# --- Cloud Storage, through gcloud ------------------------------------------------


def _gcloud(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["gcloud", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RolloutError("gcloud is not on PATH (use --local to only edit the file)") from None


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


class StateBucket:
    """The deployment's configuration files in gs://BUCKET/config/.

    The generation of each file fetched is kept in terraform/GENERATIONS_FILE,
    so a later `save` (another process, another Cloud Build step) refuses to
    overwrite a change someone made in between.
    """

    def __init__(self, bucket: str, terraform_dir: Path):
        self.bucket = bucket.removeprefix("gs://").strip("/")
        self.record = Path(terraform_dir) / GENERATIONS_FILE
        self.generations: dict[str, str] = (
            json.loads(self.record.read_text()) if self.record.is_file() else {}
        )

    def url(self, name: str) -> str:
        return f"gs://{self.bucket}/{CONFIG_PREFIX}/{name}"

    def fetch(self, name: str, destination: Path) -> None:
        url = self.url(name)
        described = _gcloud("storage", "objects", "describe", url, "--format=value(generation)")
        if described.returncode != 0:
            raise RolloutError(f"{url} not found ({_last_line(described)}); run scripts/bootstrap.sh first")
        copied = _gcloud("storage", "cp", url, str(destination))
        if copied.returncode != 0:
            raise RolloutError(f"cannot fetch {url}: {_last_line(copied)}")
        self.generations[name] = described.stdout.strip()
        self.record.write_text(json.dumps(self.generations))

    def save(self, name: str, source: Path) -> None:
        """Upload, refusing if someone changed the object since it was fetched."""
        url = self.url(name)
        precondition = [f"--if-generation-match={self.generations[name]}"] if name in self.generations else []
        copied = _gcloud("storage", "cp", str(source), url, *precondition)
        if copied.returncode != 0:
            raise RolloutError(
                f"cannot save {url}: {_last_line(copied)} (changed by someone else? fetch and retry)"
            )
        described = _gcloud("storage", "objects", "describe", url, "--format=value(generation)")
        if described.returncode == 0:
            self.generations[name] = described.stdout.strip()
            self.record.write_text(json.dumps(self.generations))
        print(f"saved {url}", flush=True)


def model_versions(repository: str, model: str) -> list[int]:
    """Complete versions of a model in a gs:// model repository."""
    listed = _gcloud("storage", "ls", f"{repository.rstrip('/')}/{model}/*/{MODEL_MARKER}")
    if listed.returncode != 0:
        if "matched no objects" in (listed.stderr + listed.stdout):
            return []
        raise RolloutError(f"cannot list {repository}/{model}/: {_last_line(listed)}")
    found = re.findall(
        rf"/{re.escape(model)}/(\d+)/{re.escape(MODEL_MARKER)}$", listed.stdout, flags=re.MULTILINE
    )
    return sorted({int(v) for v in found})


def missing_model_versions(models: dict, repository: str) -> list[str]:
    """`model version N` for every revision whose model version is not in the repository."""
    missing = []
    for name, model in sorted(models.items()):
        available = set(model_versions(repository, name))
        for version in sorted({rev["model_version"] for rev in model.get("revisions", {}).values()}):
            if version not in available:
                missing.append(f"{name} version {version}")
    return missing


def check_models(models: dict, repository: str) -> None:
    missing = missing_model_versions(models, repository)
    if missing:
        raise RolloutError(
            f"not found under {repository}: {', '.join(missing)}; export them first "
            f"(scripts/export_model.py MODEL --repository {repository}) or name an exported version"
        )


# --- terraform ------------------------------------------------------------------


def terraform_commands(terraform_dir: Path, state_bucket: str, model: str, apply: bool) -> list[list[str]]:
    """init, then a plan or an apply targeted at one model's Cloud Run service."""
    chdir = f"-chdir={terraform_dir}"
    init = [
        "terraform", chdir, "init", "-input=false", "-reconfigure", f"-backend-config=bucket={state_bucket}"
    ]
    if (Path(terraform_dir) / ".terraform.lock.hcl").is_file():
        init.append("-lockfile=readonly")
    # Targeting the service keeps the functions (and their source archive) out
    # of a traffic change; Terraform adds what the service depends on.
    target = f'-target=module.model_service["{model}"]'
    if apply:
        return [init, ["terraform", chdir, "apply", "-input=false", "-auto-approve", target]]
    return [init, ["terraform", chdir, "plan", "-input=false", target]]


def run_terraform(commands: list[list[str]]) -> int:
    for command in commands:
        print("+", " ".join(command), flush=True)
        try:
            result = subprocess.run(command, check=False)
        except FileNotFoundError:
            raise RolloutError("terraform is not on PATH (use --local to only edit the file)") from None
        if result.returncode != 0:
            return result.returncode
    return 0


# --- command line -------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error
        self.exit(2, f"rollout.py: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 100")
    return value


TRAFFIC_COMMANDS = ("canary", "set", "promote", "rollback")


def build_parser() -> argparse.ArgumentParser:
    location = argparse.ArgumentParser(add_help=False)
    location.add_argument(
        "--terraform-dir", type=Path, default=DEFAULT_TERRAFORM_DIR, help="root module (default: %(default)s)"
    )
    location.add_argument(
        "--state-bucket",
        default=os.environ.get("TF_STATE_BUCKET"),
        help="Terraform state bucket holding config/ (default: $TF_STATE_BUCKET, else PROJECT-tfstate)",
    )
    location.add_argument(
        "--project",
        default=os.environ.get("GOOGLE_CLOUD_PROJECT"),
        help="project ID (default: $GOOGLE_CLOUD_PROJECT, else gcloud's)",
    )
    location.add_argument("--repository", help="model repository (default: gs://PROJECT-models/models)")

    traffic = argparse.ArgumentParser(add_help=False, parents=[location])
    mode = traffic.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true", help="stop after terraform plan; save nothing")
    mode.add_argument("--local", action="store_true", help="only edit the local models file")

    parser = _Parser(prog="rollout.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser(
        "canary", parents=[traffic], help="add a new revision with a share of the traffic"
    )
    p.add_argument("model")
    p.add_argument("percent", type=_percent, help="traffic share of the new revision")
    p.add_argument(
        "--version", type=_positive_int, help="model version (default: the newest in the model repository)"
    )
    p.add_argument("--image", help="model-service image (default: the current newest revision's)")
    p.add_argument(
        "--revision", help="revision key (default: v<version>, or v<version>-2... for a new image)"
    )
    p.add_argument(
        "--tag", default=DEFAULT_CANARY_TAG, help="tag URL name of the new revision (default: %(default)s)"
    )
    p.add_argument("--no-tag", action="store_true", help="give the new revision no tag URL")

    p = commands.add_parser("set", parents=[traffic], help="set the newest revision's traffic share")
    p.add_argument("model")
    p.add_argument("percent", type=_percent)

    p = commands.add_parser(
        "promote", parents=[traffic], help="send 100%% to the newest revision, drop the others"
    )
    p.add_argument("model")

    p = commands.add_parser(
        "rollback", parents=[traffic], help="send 100%% back to the previous revision, drop the canary"
    )
    p.add_argument("model")

    commands.add_parser(
        "fetch", parents=[location], help="download config/ from the state bucket into terraform/"
    )
    commands.add_parser(
        "save", parents=[location], help="upload terraform/models.auto.tfvars.json to the state bucket"
    )
    commands.add_parser(
        "check-models", parents=[location], help="fail unless every model version named is in the repository"
    )

    p = commands.add_parser(
        "pin", parents=[location], help=f"replace {BUILD_IMAGE} placeholders with an image"
    )
    p.add_argument("--image", required=True, help="image for cpu models (and gpu models without --gpu-image)")
    p.add_argument("--gpu-image", help="image for gpu models, built with ACCELERATOR=gpu")
    return parser


def _project(args) -> str:
    if args.project:
        return args.project
    settings = Path(args.terraform_dir) / SETTINGS_FILE
    if settings.is_file():
        project = json.loads(settings.read_text()).get("project_id")
        if project:
            return project
    found = _gcloud("config", "get-value", "project")
    project = found.stdout.strip() if found.returncode == 0 else ""
    if not project or project == "(unset)":
        raise RolloutError("no project: pass --project or set GOOGLE_CLOUD_PROJECT")
    return project


def _state(args) -> StateBucket:
    return StateBucket(args.state_bucket or f"{_project(args)}-tfstate", args.terraform_dir)


def _repository(args) -> str:
    return args.repository or f"gs://{_project(args)}-models/models"


def _fetch(args) -> StateBucket:
    state = _state(args)
    for name in (SETTINGS_FILE, MODELS_FILE):
        state.fetch(name, Path(args.terraform_dir) / name)
    print(f"fetched {state.url('')}{{{SETTINGS_FILE},{MODELS_FILE}}}", flush=True)
    return state


def _edit(args, models: dict) -> dict:
    if args.command == "canary":
        model = _model(models, args.model)
        newest = model["revisions"][newest_revision(model["revisions"])] if model.get("revisions") else None
        image = args.image or (newest or {}).get("image")
        version = args.version
        if version is None:
            available = model_versions(_repository(args), args.model)
            if not available:
                raise RolloutError(
                    f"{args.model}: no exported versions under {_repository(args)}; pass --version"
                )
            version = available[-1]
        return canary(
            models, args.model, version, image, args.percent, args.revision,
            None if args.no_tag else args.tag,
        )
    if args.command == "set":
        return set_split(models, args.model, args.percent)
    if args.command == "promote":
        return promote(models, args.model)
    return rollback(models, args.model)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    models_path = Path(args.terraform_dir) / MODELS_FILE
    try:
        if args.command == "fetch":
            _fetch(args)
            return 0
        if args.command == "save":
            models = load_tfvars(models_path)["models"]
            validate_models(models)
            check_pinned(models)
            _state(args).save(MODELS_FILE, models_path)
            return 0
        if args.command == "check-models":
            models = load_tfvars(models_path)["models"]
            check_models(models, _repository(args))
            print(f"every model version is under {_repository(args)}")
            return 0
        if args.command == "pin":
            data = load_tfvars(models_path)
            data["models"], pinned = pin_images(data["models"], args.image, args.gpu_image)
            save_tfvars(models_path, data)
            print(f"pinned {', '.join(pinned)}" if pinned else f"no {BUILD_IMAGE} placeholders")
            return 0

        state = None if args.local else _fetch(args)
        data = load_tfvars(models_path)
        data["models"] = _edit(args, data["models"])
        validate_models(data["models"])
        check_pinned({args.model: data["models"][args.model]})
        if not args.local:
            check_models({args.model: data["models"][args.model]}, _repository(args))
    except RolloutError as exc:
        print(f"rollout.py: error: {exc}", file=sys.stderr)
        return 2

    save_tfvars(models_path, data)
    print(describe(args.model, data["models"][args.model]), flush=True)
    if args.local:
        return 0
    try:
        code = run_terraform(
            terraform_commands(args.terraform_dir, state.bucket, args.model, apply=not args.plan)
        )
        if not args.plan:
            # Saved even when the apply failed: Terraform's state may already
            # hold the new revision, and a rollback must start from it.
            state.save(MODELS_FILE, models_path)
    except RolloutError as exc:
        print(f"rollout.py: error: {exc}", file=sys.stderr)
        return 2
    if code != 0:
        print(
            f"rollout.py: error: terraform failed (exit {code}); "
            f"`rollout.py rollback {args.model}` returns to the previous revision",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
