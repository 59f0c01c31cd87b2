"""Rollouts of model revisions on Cloud Run, split by concern.

- models_file: the models file's schema (Terraform's `models` variable mirrored) and rules;
- traffic: canary, set, promote, rollback, redeploy, pin (pure functions of the models dict);
- cloud: the state bucket and model repository through gcloud, and targeted Terraform runs;
- cli: the command line, scripts/rollout.py.
"""

from .cli import main
from .cloud import (
    StateBucket,
    check_models,
    missing_model_versions,
    model_versions,
    run_terraform,
    terraform_commands,
)
from .models_file import (
    BUILD_IMAGE,
    MODEL_DEFAULTS,
    MODEL_MARKER,
    RolloutError,
    check_pinned,
    load_tfvars,
    newest_revision,
    revision_prefix,
    save_tfvars,
    validate_model,
    validate_models,
    with_defaults,
)
from .traffic import (
    canary,
    describe,
    next_revision_key,
    pin_images,
    promote,
    redeploy,
    rollback,
    set_split,
)

__all__ = [
    "BUILD_IMAGE", "MODEL_DEFAULTS", "MODEL_MARKER", "RolloutError", "StateBucket", "canary", "check_models",
    "check_pinned", "describe", "load_tfvars", "main", "missing_model_versions", "model_versions",
    "newest_revision", "next_revision_key", "pin_images", "promote", "redeploy", "revision_prefix",
    "rollback",
    "run_terraform", "save_tfvars", "set_split", "terraform_commands", "validate_model", "validate_models",
    "with_defaults",
]
