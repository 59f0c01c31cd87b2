#!/usr/bin/env python3
"""Set a model's Cloud Run traffic split in the Terraform models file, then plan/apply.

The models file is a JSON tfvars file (default terraform/models.auto.tfvars.json)
holding the root module's `models` variable. Each model lists its revisions
(revision key -> model_version, image) and their traffic percentages. Terraform
deploys the newest revision (highest model_version, ties broken by the greater
key) as the service template; older revisions already exist in Cloud Run.

    rollout.py canary resnet50 --version 3 --image IMAGE --percent 10
    rollout.py set resnet50 --percent 50
    rollout.py promote resnet50
    rollout.py rollback resnet50
    rollout.py pin --image IMAGE        # replace BUILD_IMAGE placeholders

Each command validates the result (exit 2 with a one-line error), writes the
file, then runs `terraform plan`; --apply applies that plan, --no-terraform
skips Terraform. Standard library only.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TERRAFORM_DIR = REPO_ROOT / "terraform"
DEFAULT_TFVARS = DEFAULT_TERRAFORM_DIR / "models.auto.tfvars.json"

# Placeholder image that `pin` replaces with the image Cloud Build just pushed.
BUILD_IMAGE = "BUILD_IMAGE"
DEFAULT_CANARY_TAG = "canary"

# Mirrors the optional() defaults and validations of `variable "models"` in
# terraform/variables.tf; tests/terraform checks the two stay in step.
MODEL_DEFAULTS = {
    "accelerator": "cpu",
    "min_instances": 0,
    "max_instances": 3,
    "concurrency": 8,
    "cpu": "2",
    "memory": "4Gi",
    "gpu_zonal_redundancy_disabled": True,
    "ack_deadline_seconds": 60,
    "max_delivery_attempts": 5,
    "canary_tag": None,
}
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


def revision_name(model_name: str, key: str) -> str:
    """Cloud Run revision name Terraform gives a revision entry."""
    return f"model-{model_name}-{key}"


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
    if not (isinstance(m["memory"], str) and MEMORY_RE.match(m["memory"]) and 1 <= int(m["memory"][:-2]) <= 32):
        fail(f"memory must be whole gibibytes between 1Gi and 32Gi, not {m['memory']!r}")
    if not (_is_whole(m["min_instances"], 0, 1000) and _is_whole(m["max_instances"], 1, 1000)):
        fail("min_instances and max_instances must be whole numbers, max_instances at least 1")
    if m["min_instances"] > m["max_instances"]:
        fail("min_instances must not exceed max_instances")
    if not _is_whole(m["concurrency"], 1, 1000):
        fail("concurrency must be a whole number between 1 and 1000")
    if not _is_whole(m["ack_deadline_seconds"], 10, 600):
        fail("ack_deadline_seconds must be a whole number between 10 and 600")
    if not _is_whole(m["max_delivery_attempts"], 5, 100):
        fail("max_delivery_attempts must be a whole number between 5 and 100")

    revisions = m.get("revisions")
    if not isinstance(revisions, dict) or not revisions:
        fail("needs at least one entry in revisions")
    for key, rev in revisions.items():
        if not REVISION_KEY_RE.match(key):
            fail(f"revision key {key!r} must be 1-20 lowercase letters, digits or hyphens")
        if not isinstance(rev, dict) or not _is_whole(rev.get("model_version"), 1, 10**12):
            fail(f"revision {key}: model_version must be a positive whole number")
        image = rev.get("image")
        if not isinstance(image, str) or "/" not in image:
            hint = " (run `rollout.py pin --image IMAGE`)" if image == BUILD_IMAGE else ""
            fail(f"revision {key}: image must be a full image reference, not {image!r}{hint}")

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
        raise RolloutError(f"{name}: image must be a full image reference such as REGION-docker.pkg.dev/P/R/I@sha256:...")
    key = revision or f"v{version}"
    if not REVISION_KEY_RE.match(key):
        raise RolloutError(f"{name}: revision key {key!r} must be 1-20 lowercase letters, digits or hyphens")

    revisions = model.setdefault("revisions", {})
    traffic = model.setdefault("traffic", {})
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
    if not serving and percent != 100:
        raise RolloutError(f"{name}: no serving revision to keep {100 - percent}% of the traffic; use --percent 100")

    stable = serving[0] if serving else None
    # Revisions without traffic (e.g. a rolled-back canary) are dropped: they are
    # older than the new one, so the template no longer refers to them.
    model["revisions"] = {k: v for k, v in revisions.items() if k == stable}
    model["revisions"][key] = {"model_version": version, "image": image}
    model["traffic"] = {key: percent}
    if stable is not None:
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
        raise RolloutError(f"{name}: {newest} is the only revision; nothing can take the other {100 - percent}%")
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
    """Send all traffic back to the previous revision.

    The newest revision stays in the file at 0%: the template keeps deploying
    it, because pointing the template back at an older revision name would
    make Cloud Run reject the update (that revision already exists).
    """
    models = copy.deepcopy(models)
    model = _model(models, name)
    newest = newest_revision(model.get("revisions", {}))
    stable = _stable_revision(model, newest)
    if stable is None:
        raise RolloutError(f"{name}: {newest} is the only revision; nothing to roll back to")
    model["traffic"] = {stable: 100, newest: 0}
    validate_model(name, model)
    return models


def pin_images(models: dict, image: str, gpu_image: str | None = None) -> tuple[dict, list[str]]:
    """Replace BUILD_IMAGE placeholders with `image` (`gpu_image` on gpu models, if given).

    Returns the new models and the model/revision entries that changed.
    """
    for candidate in (image, gpu_image or image):
        if not isinstance(candidate, str) or "/" not in candidate:
            raise RolloutError("images must be full references such as REGION-docker.pkg.dev/P/R/I@sha256:...")
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


# --- terraform ------------------------------------------------------------------


def terraform_commands(terraform_dir: Path, tfvars: Path, apply: bool) -> list[list[str]]:
    """The terraform invocations for a rollout: a saved plan, then (optionally) applying it."""
    plan = ["terraform", f"-chdir={terraform_dir}", "plan", "-input=false", "-out=rollout.tfplan"]
    tfvars = Path(tfvars).resolve()
    auto_loaded = tfvars.parent == Path(terraform_dir).resolve() and tfvars.name.endswith(".auto.tfvars.json")
    if not auto_loaded:
        plan.append(f"-var-file={tfvars}")
    commands = [plan]
    if apply:
        commands.append(["terraform", f"-chdir={terraform_dir}", "apply", "-input=false", "-auto-approve", "rollout.tfplan"])
    return commands


def run_terraform(terraform_dir: Path, tfvars: Path, apply: bool) -> int:
    for command in terraform_commands(terraform_dir, tfvars, apply):
        print("+", " ".join(command), flush=True)
        try:
            result = subprocess.run(command, check=False)
        except FileNotFoundError:
            print("rollout.py: error: terraform is not on PATH (use --no-terraform to only edit the file)", file=sys.stderr)
            return 1
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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tfvars", type=Path, default=DEFAULT_TFVARS, help="models tfvars JSON file (default: %(default)s)")
    common.add_argument("--terraform-dir", type=Path, default=DEFAULT_TERRAFORM_DIR, help="root module (default: %(default)s)")
    mode = common.add_mutually_exclusive_group()
    mode.add_argument("--apply", action="store_true", help="apply the plan without prompting")
    mode.add_argument("--no-terraform", action="store_true", help="only validate and write the file")

    parser = _Parser(prog="rollout.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("canary", parents=[common], help="add a new revision with a small share of traffic")
    p.add_argument("model")
    p.add_argument("--version", type=_positive_int, required=True, help="model version the revision serves")
    p.add_argument("--image", required=True, help="model-service image, preferably by digest")
    p.add_argument("--percent", type=_percent, default=10, help="traffic share of the new revision (default: 10)")
    p.add_argument("--revision", help="revision key (default: v<version>)")
    p.add_argument("--tag", default=DEFAULT_CANARY_TAG, help="tag URL name of the new revision (default: %(default)s)")
    p.add_argument("--no-tag", action="store_true", help="give the new revision no tag URL")

    p = commands.add_parser("set", parents=[common], help="set the newest revision's traffic share")
    p.add_argument("model")
    p.add_argument("--percent", type=_percent, required=True)

    p = commands.add_parser("promote", parents=[common], help="send 100%% to the newest revision, drop the others")
    p.add_argument("model")

    p = commands.add_parser("rollback", parents=[common], help="send 100%% back to the previous revision")
    p.add_argument("model")

    p = commands.add_parser("pin", parents=[common], help=f"replace {BUILD_IMAGE} placeholders with an image")
    p.add_argument("--image", required=True, help="image for cpu models (and gpu models without --gpu-image)")
    p.add_argument("--gpu-image", help="image for gpu models, built with ACCELERATOR=gpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = load_tfvars(args.tfvars)
        models = data["models"]
        if args.command == "canary":
            models = canary(
                models, args.model, args.version, args.image, args.percent, args.revision, None if args.no_tag else args.tag
            )
        elif args.command == "set":
            models = set_split(models, args.model, args.percent)
        elif args.command == "promote":
            models = promote(models, args.model)
        elif args.command == "rollback":
            models = rollback(models, args.model)
        else:
            models, pinned = pin_images(models, args.image, args.gpu_image)
            print(f"pinned {', '.join(pinned)}" if pinned else f"no {BUILD_IMAGE} placeholders")
        validate_models(models)
    except RolloutError as exc:
        print(f"rollout.py: error: {exc}", file=sys.stderr)
        return 2

    data["models"] = models
    save_tfvars(args.tfvars, data)
    if args.command != "pin":
        print(describe(args.model, models[args.model]))
    if args.no_terraform:
        return 0
    return run_terraform(args.terraform_dir, args.tfvars, args.apply)


if __name__ == "__main__":
    sys.exit(main())
