"""The command line of scripts/rollout.py: parse, then call the models file, traffic and cloud modules."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import cloud
from .cloud import StateBucket, check_models, model_versions, run_terraform, terraform_commands
from .models_file import (
    BUILD_IMAGE,
    DEFAULT_CANARY_TAG,
    DEFAULT_TERRAFORM_DIR,
    LOCK_FILE,
    MODELS_FILE,
    SETTINGS_FILE,
    STATE_LOCK_FILE,
    RolloutError,
    check_pinned,
    load_settings,
    load_tfvars,
    newest_revision,
    save_tfvars,
    validate_models,
)
from .traffic import _model, canary, describe, pin_images, promote, redeploy, rollback, set_split

USAGE = """Canary, promote and roll back a model's Cloud Run revisions, one command each.

    rollout.py canary resnet50 10                 # newest exported version, current image, 10%
    rollout.py canary resnet50 10 --version 3 --image IMAGE
    rollout.py set resnet50 50
    rollout.py promote resnet50
    rollout.py rollback resnet50
    rollout.py redeploy resnet50                  # the newest revision again, under a new name

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

Also used by cloudbuild.yaml: `fetch`, `check-region`, `pin`, `check-models`, `save`.
Errors are one line, exit 2. Standard library only; needs `gcloud` and
`terraform` on PATH except with --local.
"""

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


TRAFFIC_COMMANDS = ("canary", "set", "promote", "rollback", "redeploy")


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

    parser = _Parser(prog="rollout.py", description=USAGE.split("\n\n")[0])
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
        "--revision",
        help="revision key (default: v<version>-r<serial>, the serial never reused within the model)",
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

    p = commands.add_parser(
        "redeploy", parents=[traffic],
        help="the newest revision again under a new key, with its traffic (retry a failed creation)",
    )
    p.add_argument("model")

    commands.add_parser(
        "fetch", parents=[location],
        help="download config/ (and the provider lock file, if none is committed) into terraform/",
    )
    p = commands.add_parser(
        "check-region", parents=[location],
        help="fail unless REGION is the deployment's region (terraform.tfvars.json, fetched first)",
    )
    p.add_argument("region", help="the region this build runs in (Cloud Build's $LOCATION)")
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
    found = cloud.gcloud("config", "get-value", "project")
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
    lock = Path(args.terraform_dir) / LOCK_FILE
    # A committed lock file wins; else the one the first build saved, so every
    # later init is held to the same provider hashes (-lockfile=readonly).
    if not lock.is_file() and state.fetch_if_present(STATE_LOCK_FILE, lock):
        print(f"fetched {state.url(STATE_LOCK_FILE)} as terraform/{LOCK_FILE}", flush=True)
    return state


def _check_region(args) -> None:
    settings = load_settings(Path(args.terraform_dir) / SETTINGS_FILE)
    region = settings.get("region")
    if args.region != region:
        raise RolloutError(
            f"this build runs in {args.region!r} but the deployment's region is {region!r} "
            f"({SETTINGS_FILE} in the state bucket): submit it with --region={region}"
        )


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
    if args.command == "redeploy":
        return redeploy(models, args.model)
    return rollback(models, args.model)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    models_path = Path(args.terraform_dir) / MODELS_FILE
    try:
        if args.command == "fetch":
            _fetch(args)
            return 0
        if args.command == "check-region":
            _check_region(args)
            print(f"region {args.region} is the deployment's")
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


