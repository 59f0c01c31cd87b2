"""scripts/rollout.py: the traffic operations and its command line."""

from __future__ import annotations

import json

import pytest

from scripts import rollout

from .conftest import EXAMPLE_MODELS, TERRAFORM_DIR, example_models

NEW_IMAGE = "us-central1-docker.pkg.dev/p/inference/model-service@sha256:" + "4" * 64


def _split(models: dict, name: str) -> dict:
    return models[name]["traffic"]


def test_full_rollout_canary_10_50_100():
    models = rollout.promote(example_models(), "resnet50")  # start from a settled v3
    assert _split(models, "resnet50") == {"v3": 100}
    assert set(models["resnet50"]["revisions"]) == {"v3"}
    assert "canary_tag" not in models["resnet50"]

    models = rollout.canary(models, "resnet50", 4, NEW_IMAGE, percent=10)
    assert _split(models, "resnet50") == {"v3": 90, "v4": 10}
    assert models["resnet50"]["revisions"]["v4"] == {"model_version": 4, "image": NEW_IMAGE}
    assert models["resnet50"]["canary_tag"] == "canary"
    assert rollout.newest_revision(models["resnet50"]["revisions"]) == "v4"

    models = rollout.set_split(models, "resnet50", 50)
    assert _split(models, "resnet50") == {"v3": 50, "v4": 50}

    models = rollout.promote(models, "resnet50")
    assert _split(models, "resnet50") == {"v4": 100}
    assert set(models["resnet50"]["revisions"]) == {"v4"}


def test_rollback_keeps_the_canary_revision_at_zero():
    models = rollout.rollback(example_models(), "resnet50")
    assert _split(models, "resnet50") == {"v2": 100, "v3": 0}
    assert set(models["resnet50"]["revisions"]) == {"v2", "v3"}
    # The next canary replaces the rolled-back revision.
    models = rollout.canary(models, "resnet50", 4, NEW_IMAGE)
    assert set(models["resnet50"]["revisions"]) == {"v2", "v4"}
    assert _split(models, "resnet50") == {"v2": 90, "v4": 10}


def test_same_version_with_a_new_image_needs_a_new_revision_key():
    settled = rollout.promote(example_models(), "resnet50")
    with pytest.raises(rollout.RolloutError, match="already exists"):
        rollout.canary(settled, "resnet50", 3, NEW_IMAGE)
    models = rollout.canary(settled, "resnet50", 3, NEW_IMAGE, revision="v3-fix")
    assert rollout.newest_revision(models["resnet50"]["revisions"]) == "v3-fix"


def test_operations_do_not_modify_their_input():
    original = example_models()
    snapshot = json.dumps(original, sort_keys=True)
    rollout.promote(original, "resnet50")
    rollout.rollback(original, "resnet50")
    rollout.set_split(original, "resnet50", 50)
    assert json.dumps(original, sort_keys=True) == snapshot


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (lambda m: rollout.canary(m, "vgg", 1, NEW_IMAGE), "unknown model 'vgg'"),
        (lambda m: rollout.canary(m, "resnet50", 4, NEW_IMAGE), "a rollout is in progress"),
        (lambda m: rollout.canary(rollout.promote(m, "resnet50"), "resnet50", 2, NEW_IMAGE), "must be newer than v3"),
        (lambda m: rollout.canary(m, "mobilenet", 0, NEW_IMAGE), "version must be a positive whole number"),
        (lambda m: rollout.canary(m, "mobilenet", 2, "latest"), "full image reference"),
        (lambda m: rollout.canary(m, "mobilenet", 2, NEW_IMAGE, percent=101), "percent must be"),
        (lambda m: rollout.set_split(m, "mobilenet", 50), "only revision"),
        (lambda m: rollout.set_split(m, "resnet50", -5), "percent must be"),
        (lambda m: rollout.rollback(m, "mobilenet"), "nothing to roll back to"),
        (lambda m: rollout.promote(m, "nope"), "unknown model"),
    ],
)
def test_invalid_requests_are_refused(operation, message):
    with pytest.raises(rollout.RolloutError, match=message):
        operation(example_models())


def test_pin_replaces_only_placeholders_with_the_image_for_the_accelerator():
    gpu_image = NEW_IMAGE.replace("model-service@", "model-service-gpu@")
    models = example_models()
    models["mobilenet"]["revisions"]["v1"]["image"] = rollout.BUILD_IMAGE
    models["resnet50"]["revisions"]["v3"]["image"] = rollout.BUILD_IMAGE
    pinned, changed = rollout.pin_images(models, NEW_IMAGE, gpu_image)
    assert changed == ["mobilenet/v1", "resnet50/v3"]
    assert pinned["mobilenet"]["revisions"]["v1"]["image"] == NEW_IMAGE
    assert pinned["resnet50"]["revisions"]["v3"]["image"] == gpu_image
    assert pinned["efficientnet"] == example_models()["efficientnet"]
    assert pinned["resnet50"]["revisions"]["v2"] == example_models()["resnet50"]["revisions"]["v2"]


def test_describe_is_one_line():
    assert rollout.describe("resnet50", example_models()["resnet50"]) == "resnet50: v2 90%, v3 10% (tag canary -> v3)"


# --- command line -----------------------------------------------------------------


@pytest.fixture
def tfvars(tmp_path):
    path = tmp_path / "models.auto.tfvars.json"
    path.write_text(EXAMPLE_MODELS.read_text())
    return path


def test_cli_canary_writes_the_file_without_terraform(tfvars, capsys):
    code = rollout.main(["promote", "resnet50", "--tfvars", str(tfvars), "--no-terraform"])
    assert code == 0
    code = rollout.main(
        ["canary", "resnet50", "--version", "4", "--image", NEW_IMAGE, "--percent", "10", "--tfvars", str(tfvars), "--no-terraform"]
    )
    assert code == 0
    assert json.loads(tfvars.read_text())["models"]["resnet50"]["traffic"] == {"v3": 90, "v4": 10}
    assert capsys.readouterr().out.strip().splitlines()[-1] == "resnet50: v3 90%, v4 10% (tag canary -> v4)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "resnet50", "--percent", "150"], "150 is not between 0 and 100"),
        (["canary", "resnet50", "--version", "-1", "--image", NEW_IMAGE], "-1 must be positive"),
        (["canary", "resnet50", "--version", "three", "--image", NEW_IMAGE], "'three' is not a whole number"),
        (["promote", "vgg"], "unknown model 'vgg'"),
        (["canary", "resnet50", "--version", "4", "--image", NEW_IMAGE], "a rollout is in progress"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(tfvars, capsys, argv, message):
    before = tfvars.read_text()
    assert _exit_code([*argv, "--tfvars", str(tfvars), "--no-terraform"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("rollout.py: error:"), err
    assert tfvars.read_text() == before, "a refused request must not touch the file"


def _exit_code(argv: list[str]) -> int:
    """main()'s status, whether it returns it or argparse exits with it."""
    try:
        return rollout.main(argv)
    except SystemExit as exc:
        return exc.code


def test_cli_reports_a_missing_file(tmp_path, capsys):
    code = rollout.main(["promote", "resnet50", "--tfvars", str(tmp_path / "none.json"), "--no-terraform"])
    assert code == 2
    assert "no such file" in capsys.readouterr().err


def test_terraform_commands_plan_then_apply_the_saved_plan(tmp_path):
    auto = TERRAFORM_DIR / "models.auto.tfvars.json"
    plan, apply = rollout.terraform_commands(TERRAFORM_DIR, auto, apply=True)
    assert plan[:3] == ["terraform", f"-chdir={TERRAFORM_DIR}", "plan"] and "-out=rollout.tfplan" in plan
    assert not any(arg.startswith("-var-file") for arg in plan), "auto.tfvars.json files load by themselves"
    assert apply[2:] == ["apply", "-input=false", "-auto-approve", "rollout.tfplan"]
    elsewhere = tmp_path / "models.json"
    (plan_only,) = rollout.terraform_commands(TERRAFORM_DIR, elsewhere, apply=False)
    assert f"-var-file={elsewhere.resolve()}" in plan_only


def test_cli_runs_terraform_plan_and_apply(tfvars, monkeypatch):
    calls = []

    class Done:
        returncode = 0

    monkeypatch.setattr(rollout.subprocess, "run", lambda command, check: calls.append(command) or Done())
    assert rollout.main(["set", "resnet50", "--percent", "50", "--tfvars", str(tfvars), "--apply"]) == 0
    assert [command[2] for command in calls] == ["plan", "apply"]
    calls.clear()
    assert rollout.main(["set", "resnet50", "--percent", "60", "--tfvars", str(tfvars)]) == 0
    assert [command[2] for command in calls] == ["plan"]
