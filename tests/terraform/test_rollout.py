"""scripts/rollout.py: the traffic operations, and each command end to end against
a fake state bucket and model repository (tests/terraform/fake_cloud.py)."""

from __future__ import annotations

import json

import pytest

from scripts import rollouts as rollout

from . import fake_cloud
from .conftest import GPU_IMAGE, TERRAFORM_DIR, sample_models

NEW_IMAGE = "us-central1-docker.pkg.dev/p/inference/model-service@sha256:" + "4" * 64


def _split(models: dict, name: str) -> dict:
    return models[name]["traffic"]


# --- the operations ---------------------------------------------------------------


def test_full_rollout_canary_10_50_100():
    models = rollout.promote(sample_models(), "resnet50")  # start from a settled v3
    assert _split(models, "resnet50") == {"v3": 100}
    assert set(models["resnet50"]["revisions"]) == {"v3"}
    assert "canary_tag" not in models["resnet50"]

    models = rollout.canary(models, "resnet50", 4, NEW_IMAGE, percent=10)
    assert _split(models, "resnet50") == {"v3": 90, "v4-r1": 10}
    assert models["resnet50"]["revisions"]["v4-r1"] == {"model_version": 4, "image": NEW_IMAGE}
    assert models["resnet50"]["canary_tag"] == "canary"
    assert models["resnet50"]["last_revision_serial"] == 1
    assert rollout.newest_revision(models["resnet50"]["revisions"]) == "v4-r1"

    models = rollout.set_split(models, "resnet50", 50)
    assert _split(models, "resnet50") == {"v3": 50, "v4-r1": 50}

    models = rollout.promote(models, "resnet50")
    assert _split(models, "resnet50") == {"v4-r1": 100}
    assert set(models["resnet50"]["revisions"]) == {"v4-r1"}


def test_rollback_drops_the_canary_and_restores_the_previous_revision():
    models = rollout.rollback(sample_models(), "resnet50")
    assert _split(models, "resnet50") == {"v2": 100}
    assert models["resnet50"]["revisions"] == {"v2": sample_models()["resnet50"]["revisions"]["v2"]}
    assert "canary_tag" not in models["resnet50"]
    models = rollout.canary(models, "resnet50", 4, NEW_IMAGE)
    assert _split(models, "resnet50") == {"v2": 90, "v4-r1": 10}


def test_canary_at_100_keeps_the_previous_revision_for_a_rollback_but_routes_nothing_to_it():
    models = rollout.canary(sample_models(), "cat", 2, NEW_IMAGE, percent=100)
    assert _split(models, "cat") == {"v2-r1": 100}
    assert set(models["cat"]["revisions"]) == {"v1", "v2-r1"}
    assert _split(rollout.rollback(models, "cat"), "cat") == {"v1": 100}


def test_a_new_image_of_the_same_version_gets_the_next_key():
    settled = rollout.promote(sample_models(), "resnet50")
    models = rollout.canary(settled, "resnet50", 3, NEW_IMAGE)
    assert set(models["resnet50"]["revisions"]) == {"v3", "v3-r1"}
    assert rollout.newest_revision(models["resnet50"]["revisions"]) == "v3-r1"
    with pytest.raises(rollout.RolloutError, match="nothing to canary"):
        rollout.canary(settled, "resnet50", 3, settled["resnet50"]["revisions"]["v3"]["image"])
    # An explicit key redeploys the same version and image as a new revision.
    retried = rollout.canary(
        settled, "resnet50", 3, settled["resnet50"]["revisions"]["v3"]["image"], 100, revision="v3-retry"
    )
    assert _split(retried, "resnet50") == {"v3-retry": 100}


ANOTHER_IMAGE = NEW_IMAGE.replace("4444", "5555")


def _serving(models: dict, name: str) -> str:
    [key] = [key for key, percent in _split(models, name).items() if percent == 100]
    assert key == rollout.newest_revision(models[name]["revisions"])
    return key


def test_canary_promote_then_an_image_only_canary_promote_each_serve_a_new_revision():
    # v1 -> canary of v1 with a new image -> promote -> canary of v1 with another image -> promote:
    # the documented way to give an existing model a new image, twice in a row.
    models = rollout.promote(sample_models(), "cat")
    assert _serving(models, "cat") == "v1"
    keys = ["v1"]
    for image in (NEW_IMAGE, ANOTHER_IMAGE):
        models = rollout.canary(models, "cat", 1, image, percent=10)
        new = rollout.newest_revision(models["cat"]["revisions"])
        assert new not in keys and models["cat"]["revisions"][new] == {"model_version": 1, "image": image}
        models = rollout.promote(models, "cat")
        assert _serving(models, "cat") == new
        keys.append(new)
    assert keys == ["v1", "v1-r1", "v1-r2"]


def test_canary_rollback_canary_deploys_a_new_revision_never_the_retired_one():
    models = rollout.promote(sample_models(), "resnet50")
    first = rollout.canary(models, "resnet50", 4, NEW_IMAGE, percent=10)
    rolled_back = rollout.rollback(first, "resnet50")
    assert _serving(rolled_back, "resnet50") == "v3"
    # The same version and image again: a new key, so a new Cloud Run revision name.
    again = rollout.canary(rolled_back, "resnet50", 4, NEW_IMAGE, percent=100)
    retired = rollout.newest_revision(first["resnet50"]["revisions"])
    new = rollout.newest_revision(again["resnet50"]["revisions"])
    assert (retired, new) == ("v4-r1", "v4-r2")
    assert _serving(rollout.promote(again, "resnet50"), "resnet50") == new


def test_a_key_left_in_an_older_scheme_still_orders_below_the_serial_keys():
    models = sample_models()
    models["cat"]["revisions"] = {"v1-2": {"model_version": 1, "image": NEW_IMAGE}}
    models["cat"]["traffic"] = {"v1-2": 100}
    models = rollout.canary(models, "cat", 1, ANOTHER_IMAGE)
    assert rollout.newest_revision(models["cat"]["revisions"]) == "v1-r1"
    # Serials compare as numbers: r10 is newer than r9.
    revisions = {"v1-r9": {"model_version": 1, "image": NEW_IMAGE},
                 "v1-r10": {"model_version": 1, "image": NEW_IMAGE}}
    assert rollout.newest_revision(revisions) == "v1-r10"


def test_redeploy_gives_the_newest_revision_a_new_key_with_its_traffic():
    models = rollout.redeploy(sample_models(), "resnet50")
    assert _split(models, "resnet50") == {"v2": 90, "v3-r1": 10}
    assert models["resnet50"]["revisions"]["v3-r1"] == sample_models()["resnet50"]["revisions"]["v3"]
    assert "v3" not in models["resnet50"]["revisions"]
    assert _serving(rollout.redeploy(sample_models(), "cat"), "cat") == "v1-r1"


def test_operations_do_not_modify_their_input():
    original = sample_models()
    snapshot = json.dumps(original, sort_keys=True)
    rollout.promote(original, "resnet50")
    rollout.rollback(original, "resnet50")
    rollout.set_split(original, "resnet50", 50)
    rollout.canary(original, "cat", 2, NEW_IMAGE)
    rollout.redeploy(original, "cat")
    assert json.dumps(original, sort_keys=True) == snapshot


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (lambda m: rollout.canary(m, "vgg", 1, NEW_IMAGE), "unknown model 'vgg'"),
        (lambda m: rollout.canary(m, "resnet50", 4, NEW_IMAGE), "a rollout is in progress"),
        (lambda m: rollout.canary(rollout.promote(m, "resnet50"), "resnet50", 2, NEW_IMAGE),
         "must be newer than v3"),
        (lambda m: rollout.canary(m, "cat", 0, NEW_IMAGE), "version must be a positive whole number"),
        (lambda m: rollout.canary(m, "cat", 2, "latest"), "full image reference"),
        (lambda m: rollout.canary(m, "cat", 2, NEW_IMAGE, percent=101), "percent must be"),
        (lambda m: rollout.set_split(m, "cat", 50), "only revision"),
        (lambda m: rollout.set_split(m, "resnet50", -5), "percent must be"),
        (lambda m: rollout.rollback(m, "cat"), "nothing to roll back to"),
        (lambda m: rollout.promote(m, "nope"), "unknown model"),
    ],
)
def test_invalid_requests_are_refused(operation, message):
    with pytest.raises(rollout.RolloutError, match=message):
        operation(sample_models())


def test_pin_replaces_only_placeholders_with_the_image_for_the_accelerator():
    models = sample_models()
    models["cat"]["revisions"]["v1"]["image"] = rollout.BUILD_IMAGE
    models["resnet50"]["revisions"]["v3"]["image"] = rollout.BUILD_IMAGE
    pinned, changed = rollout.pin_images(models, NEW_IMAGE, GPU_IMAGE)
    assert changed == ["cat/v1", "resnet50/v3"]
    assert pinned["cat"]["revisions"]["v1"]["image"] == NEW_IMAGE
    assert pinned["resnet50"]["revisions"]["v3"]["image"] == GPU_IMAGE
    assert pinned["dog"] == sample_models()["dog"]
    assert pinned["resnet50"]["revisions"]["v2"] == sample_models()["resnet50"]["revisions"]["v2"]


def test_describe_is_one_line():
    assert (
        rollout.describe("resnet50", sample_models()["resnet50"])
        == "resnet50: v2 90%, v3 10% (tag canary -> v3)"
    )


# --- the commands, end to end against a fake cloud -----------------------------------

STATE = "proj-1-tfstate"
REPOSITORY = "gs://proj-1-models/models"


class Cloud:
    """A fake state bucket and model repository, and what was run against them."""

    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path / "gcs"
        self.root.mkdir()
        self.log = tmp_path / "calls.jsonl"
        self.terraform_dir = tmp_path / "terraform"
        self.terraform_dir.mkdir()
        fake_cloud.install(tmp_path / "bin")
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{__import__('os').environ['PATH']}")
        monkeypatch.setenv("FAKE_GCS_ROOT", str(self.root))
        monkeypatch.setenv("FAKE_CLOUD_LOG", str(self.log))
        monkeypatch.delenv("TF_STATE_BUCKET", raising=False)
        monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
        self.monkeypatch = monkeypatch

    def seed(self, models: dict) -> None:
        fake_cloud.put(
            f"gs://{STATE}/config/terraform.tfvars.json",
            json.dumps({"project_id": "proj-1", "region": "us-central1"}).encode(),
        )
        fake_cloud.put(
            f"gs://{STATE}/config/models.auto.tfvars.json", json.dumps({"models": models}).encode()
        )

    def export(self, model: str, version: int) -> None:
        fake_cloud.put(f"{REPOSITORY}/{model}/{version}/variables/variables.index", b"x")
        fake_cloud.put(f"{REPOSITORY}/{model}/{version}/{rollout.MODEL_MARKER}", b"x")

    def state(self) -> dict:
        return json.loads((self.root / STATE / "config" / "models.auto.tfvars.json").read_text())["models"]

    def run(self, *argv: str) -> int:
        try:
            return rollout.main([*argv, "--terraform-dir", str(self.terraform_dir), "--state-bucket", STATE])
        except SystemExit as exc:
            return exc.code

    def terraform_calls(self) -> list[list[str]]:
        return fake_cloud.calls(self.log, "terraform")

    def fail_terraform(self, subcommand: str) -> None:
        self.monkeypatch.setenv(f"FAKE_TERRAFORM_EXIT_{subcommand.upper()}", "1")


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    cloud = Cloud(tmp_path, monkeypatch)
    cloud.seed(sample_models())
    for model, model_def in sample_models().items():
        for revision in model_def["revisions"].values():
            cloud.export(model, revision["model_version"])
    return cloud


def _targets(calls: list[list[str]]) -> list[str]:
    return [arg for call in calls for arg in call if arg.startswith("-target=")]


def test_canary_promote_rollback_are_one_command_each_and_keep_their_state_in_gcs(cloud, capsys):
    cloud.export("cat", 2)
    assert cloud.run("canary", "cat", "10") == 0  # newest exported version, current image
    assert cloud.state()["cat"]["traffic"] == {"v1": 90, "v2-r1": 10}
    assert (
        cloud.state()["cat"]["revisions"]["v2-r1"]["image"]
        == sample_models()["cat"]["revisions"]["v1"]["image"]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert "cat: v1 90%, v2-r1 10% (tag canary -> v2-r1)" in out
    assert out[-1] == f"saved gs://{STATE}/config/models.auto.tfvars.json"

    assert cloud.run("set", "cat", "50") == 0
    assert cloud.state()["cat"]["traffic"] == {"v1": 50, "v2-r1": 50}
    assert cloud.run("promote", "cat") == 0
    assert cloud.state()["cat"]["traffic"] == {"v2-r1": 100}

    assert cloud.run("rollback", "resnet50") == 0
    assert cloud.state()["resnet50"]["traffic"] == {"v2": 100}
    assert cloud.state()["cat"]["traffic"] == {"v2-r1": 100}, "other models are left alone"

    calls = cloud.terraform_calls()
    assert [call[1] for call in calls] == ["init", "apply"] * 4
    for init in calls[::2]:
        assert f"-backend-config=bucket={STATE}" in init and "-reconfigure" in init
    # Only the model's service is applied: the functions are never redeployed by a traffic change.
    assert _targets(calls) == (
        ['-target=module.model_service["cat"]'] * 3 + ['-target=module.model_service["resnet50"]']
    )
    assert not any("function_source_archive" in arg for call in calls for arg in call)
    # The settings came from the bucket too, so no terraform.tfvars is needed here.
    assert json.loads((cloud.terraform_dir / "terraform.tfvars.json").read_text())["project_id"] == "proj-1"


def test_canary_with_an_explicit_version_and_image(cloud):
    cloud.export("resnet50", 4)
    assert cloud.run("promote", "resnet50") == 0
    assert cloud.run("canary", "resnet50", "5", "--version", "4", "--image", NEW_IMAGE) == 0
    assert cloud.state()["resnet50"]["revisions"]["v4-r1"] == {"model_version": 4, "image": NEW_IMAGE}
    assert cloud.state()["resnet50"]["traffic"] == {"v3": 95, "v4-r1": 5}


def test_a_missing_model_version_stops_before_terraform_and_leaves_the_state_alone(cloud, capsys):
    before = cloud.state()
    assert cloud.run("canary", "cat", "10", "--version", "7", "--image", NEW_IMAGE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found under gs://proj-1-models/models: cat version 7" in err, err
    assert cloud.terraform_calls() == []
    assert cloud.state() == before


def test_rolling_back_a_canary_that_never_became_ready(cloud, capsys):
    cloud.export("dog", 2)
    cloud.fail_terraform("apply")  # Cloud Run: revision ... is not ready and cannot serve traffic
    assert cloud.run("canary", "dog", "10") == 1
    assert "rollout.py rollback dog" in capsys.readouterr().err
    # The failed canary is recorded, so the rollback knows what to undo.
    assert cloud.state()["dog"]["traffic"] == {"v1": 90, "v2-r1": 10}
    cloud.monkeypatch.delenv("FAKE_TERRAFORM_EXIT_APPLY")
    assert cloud.run("rollback", "dog") == 0
    # Back as before, but for the serial: the failed canary's key is never handed out again.
    assert cloud.state()["dog"] == {**sample_models()["dog"], "last_revision_serial": 1}


def test_plan_changes_nothing_in_the_bucket(cloud):
    before = cloud.state()
    assert cloud.run("set", "resnet50", "50", "--plan") == 0
    assert [call[1] for call in cloud.terraform_calls()] == ["init", "plan"]
    assert cloud.state() == before


def test_a_concurrent_change_of_the_state_is_not_overwritten(cloud, capsys, monkeypatch):
    real_run = rollout.run_terraform

    def someone_else_saves_meanwhile(commands):
        fake_cloud.put(
            f"gs://{STATE}/config/models.auto.tfvars.json", json.dumps({"models": sample_models()}).encode()
        )
        return real_run(commands)

    monkeypatch.setattr(rollout.cli, "run_terraform", someone_else_saves_meanwhile)
    assert cloud.run("promote", "resnet50") == 2
    assert "changed by someone else" in capsys.readouterr().err
    assert cloud.state() == sample_models()


def test_fetch_check_and_save_as_cloudbuild_uses_them(cloud, capsys):
    assert cloud.run("fetch") == 0
    assert cloud.run("check-models") == 0
    models_file = cloud.terraform_dir / "models.auto.tfvars.json"
    data = json.loads(models_file.read_text())
    data["models"]["cat"]["revisions"]["v1"]["model_version"] = 9
    models_file.write_text(json.dumps(data))
    assert cloud.run("check-models") == 2
    assert "cat version 9" in capsys.readouterr().err
    data["models"]["cat"]["revisions"]["v1"]["image"] = rollout.BUILD_IMAGE
    models_file.write_text(json.dumps(data))
    assert cloud.run("save") == 2, "a placeholder image is never saved as rollout state"
    assert cloud.run("pin", "--image", NEW_IMAGE) == 0
    assert cloud.run("save") == 0
    assert cloud.state()["cat"]["revisions"]["v1"] == {"model_version": 9, "image": NEW_IMAGE}


def test_a_build_step_saving_later_still_refuses_to_overwrite_a_change_made_since_its_fetch(cloud, capsys):
    # cloudbuild.yaml fetches in one step and saves in another, many minutes later.
    assert cloud.run("fetch") == 0
    cloud.run("pin", "--image", NEW_IMAGE)
    fake_cloud.put(
        f"gs://{STATE}/config/models.auto.tfvars.json", json.dumps({"models": {"cat": {}}}).encode()
    )
    assert cloud.run("save") == 2
    assert "changed by someone else" in capsys.readouterr().err
    assert cloud.state() == {"cat": {}}


def test_a_repository_that_cannot_be_listed_is_not_reported_as_missing_models(cloud, capsys):
    cloud.monkeypatch.setenv(
        "FAKE_GCLOUD_LS_ERROR", "HTTPError 403: caller does not have storage.objects.list access"
    )
    assert cloud.run("fetch") == 0
    assert cloud.run("check-models") == 2
    err = capsys.readouterr().err
    assert "cannot list gs://proj-1-models/models/" in err and "403" in err and "not found under" not in err


def test_a_project_without_bootstrap_gets_one_line(tmp_path, monkeypatch, capsys):
    cloud = Cloud(tmp_path, monkeypatch)
    assert cloud.run("promote", "cat") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run scripts/bootstrap.sh first" in err


def test_local_mode_edits_only_the_file(tmp_path, capsys):
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "models.auto.tfvars.json").write_text(json.dumps({"models": sample_models()}))
    assert rollout.main(["rollback", "resnet50", "--local", "--terraform-dir", str(terraform_dir)]) == 0
    assert (
        json.loads((terraform_dir / "models.auto.tfvars.json").read_text())["models"]["resnet50"]["traffic"]
        == {"v2": 100}
    )
    assert capsys.readouterr().out.strip() == "resnet50: v2 100%"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "resnet50", "150"], "150 is not between 0 and 100"),
        (["canary", "resnet50", "10", "--version", "-1", "--image", NEW_IMAGE], "-1 must be positive"),
        (["canary", "resnet50", "ten"], "'ten' is not a whole number"),
        (["promote", "vgg"], "unknown model 'vgg'"),
        (["canary", "resnet50", "10", "--version", "4", "--image", NEW_IMAGE], "a rollout is in progress"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    models_file = terraform_dir / "models.auto.tfvars.json"
    models_file.write_text(json.dumps({"models": sample_models()}))
    before = models_file.read_text()
    try:
        code = rollout.main([*argv, "--local", "--terraform-dir", str(terraform_dir)])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("rollout.py: error:"), err
    assert models_file.read_text() == before, "a refused request must not touch the file"


def test_terraform_commands_use_the_lock_file_when_there_is_one(tmp_path):
    init, apply = rollout.terraform_commands(tmp_path, STATE, "cat", apply=True)
    assert "-lockfile=readonly" not in init
    (tmp_path / ".terraform.lock.hcl").write_text("")
    init, plan = rollout.terraform_commands(tmp_path, STATE, "cat", apply=False)
    assert init[-1] == "-lockfile=readonly"
    assert plan[2:] == ["plan", "-input=false", '-target=module.model_service["cat"]']


def test_the_repository_models_file_is_never_committed():
    # The live copy comes from the state bucket; a stale one here must not be used by mistake.
    ignored = (TERRAFORM_DIR / ".gitignore").read_text().split()
    assert {"models.auto.tfvars.json", "terraform.tfvars.json", "terraform.tfvars"} <= set(ignored)
    assert ".terraform.lock.hcl" not in ignored, "the lock file is meant to be committed"


_TARGETED_ROOT = {
    "main.tf": (
        'variable "archive" {\n  type = string\n}\n'
        'module "api_function" {\n  source  = "./api_function"\n  archive = abspath(var.archive)\n}\n'
        'module "model_service" {\n  source   = "./model_service"\n  for_each = toset(["cat", "dog"])\n}\n'
    ),
    "api_function/main.tf": (
        'variable "archive" {\n  type = string\n}\n'
        'resource "terraform_data" "source" {\n  input = filemd5(var.archive)\n}\n'
    ),
    "model_service/main.tf": 'resource "terraform_data" "service" {\n  input = "x"\n}\n',
}


def test_a_targeted_apply_never_reads_the_function_archive(terraform_bin, tmp_path):
    # What rollout.py relies on, shown with Terraform's built-in terraform_data
    # (no provider download): an apply targeted at one model's module does not
    # evaluate the function module's filemd5(), so no build/functions.zip is
    # needed and the functions cannot change; a full apply does read it.
    from .conftest import run_terraform

    for name, text in _TARGETED_ROOT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert run_terraform(terraform_bin, ["init", "-input=false", "-no-color"], tmp_path).returncode == 0
    missing = "-var=archive=../build/functions.zip"
    (_, apply) = rollout.terraform_commands(tmp_path, STATE, "cat", apply=True)
    target = next(arg for arg in apply if arg.startswith("-target="))
    targeted = run_terraform(
        terraform_bin, ["apply", "-auto-approve", "-input=false", "-no-color", missing, target], tmp_path
    )
    assert targeted.returncode == 0, targeted.stdout + targeted.stderr
    assert 'module.model_service["cat"].terraform_data.service' in targeted.stdout
    assert "api_function" not in targeted.stdout and 'model_service["dog"]' not in targeted.stdout
    full = run_terraform(
        terraform_bin, ["apply", "-auto-approve", "-input=false", "-no-color", missing], tmp_path
    )
    assert full.returncode != 0 and "functions.zip" in full.stdout + full.stderr


def test_fetch_takes_the_lock_file_the_first_build_saved_unless_one_is_committed(cloud):
    assert cloud.run("fetch") == 0
    lock = cloud.terraform_dir / ".terraform.lock.hcl"
    assert not lock.exists(), "no lock file anywhere yet: the build makes one"
    fake_cloud.put(f"gs://{STATE}/config/terraform.lock.hcl", b"# saved by the first build\n")
    assert cloud.run("fetch") == 0
    assert lock.read_bytes() == b"# saved by the first build\n"
    init = rollout.terraform_commands(cloud.terraform_dir, STATE, "cat", apply=True)[0]
    assert "-lockfile=readonly" in init
    lock.write_bytes(b"# committed\n")
    assert cloud.run("fetch") == 0
    assert lock.read_bytes() == b"# committed\n", "a committed lock file is never overwritten"


def test_check_region_holds_a_build_to_the_deployments_region(cloud, capsys):
    assert cloud.run("fetch") == 0
    assert cloud.run("check-region", "us-central1") == 0
    assert cloud.run("check-region", "europe-west4") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--region=us-central1" in err, err
    assert cloud.run("check-region", "global") == 2


def test_redeploy_from_the_command_line(cloud, capsys):
    assert cloud.run("redeploy", "cat") == 0
    assert cloud.state()["cat"]["traffic"] == {"v1-r1": 100}
    assert cloud.state()["cat"]["last_revision_serial"] == 1
    assert [call[1] for call in cloud.terraform_calls()] == ["init", "apply"]
