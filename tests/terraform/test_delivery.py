"""cloudbuild.yaml and the model-service Dockerfile, checked by reading (neither can run here)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from . import fake_cloud
from .conftest import REPO_ROOT

CLOUDBUILD = (REPO_ROOT / "cloudbuild.yaml").read_text()
PIPELINE = yaml.safe_load(CLOUDBUILD)
ROLLOUT_PIPELINE = yaml.safe_load((REPO_ROOT / "ci" / "rollout.cloudbuild.yaml").read_text())
CI_DOCKERFILE = (REPO_ROOT / "ci" / "Dockerfile").read_text()
DOCKERFILE = (REPO_ROOT / "cloudrun_model" / "Dockerfile").read_text()


def _step_ids() -> list[str]:
    return re.findall(r"^  - id: (\S+)$", CLOUDBUILD, flags=re.MULTILINE)


def _step(step_id: str) -> str:
    """Text of one step, up to the next one."""
    match = re.search(
        rf"^  - id: {re.escape(step_id)}\n(.*?)(?=^  - id: |\Z)", CLOUDBUILD, flags=re.MULTILINE | re.DOTALL
    )
    assert match, step_id
    return match.group(1)


def test_pipeline_order():
    ids = _step_ids()
    order = [
        "ci-image", "test", "bootstrap", "export-models", "check-models", "pin-images",
        "terraform-plan", "terraform-apply", "save-rollout-state", "smoke-test", "canary",
    ]
    assert [i for i in ids if i in order] == order
    assert ids.index("bootstrap") < ids.index("build-image") < ids.index("pin-images")


def _waits_for(step_id: str) -> set[str]:
    """Steps that must finish before step_id starts (Cloud Build's waitFor, transitively)."""
    steps = {step["id"]: step for step in PIPELINE["steps"]}
    ids = list(steps)
    direct = steps[step_id].get("waitFor")
    if direct is None:  # no waitFor: every earlier step
        before = set(ids[: ids.index(step_id)])
    else:
        before = set() if direct == ["-"] else set(direct)
    for other in list(before):
        before |= _waits_for(other)
    return before


def test_nothing_touches_the_project_before_the_whole_suite_passed():
    for step in ("bootstrap", "build-image", "export-models", "terraform-apply", "canary"):
        assert "test" in _waits_for(step), step


def test_models_are_exported_and_checked_before_the_full_apply():
    assert {"bootstrap", "test"} <= _waits_for("export-models")
    assert "export-models" in _waits_for("check-models")
    assert {"check-models", "export-models", "build-image", "package-function"} <= _waits_for(
        "terraform-plan"
    )
    assert "terraform-plan" in _waits_for("terraform-apply")
    export = _step("export-models")
    assert "scripts/export_model.py" in export and "--if-missing" in export
    assert '--repository "gs://${PROJECT_ID}-models/models"' in export
    assert "rollout.py, check-models" in _step("check-models")


def test_bootstrap_creates_registry_and_buckets_before_images_and_models_go_there():
    bootstrap = _step("bootstrap")
    assert "-target=module.platform -target=module.storage" in bootstrap
    assert "python3 scripts/rollout.py fetch" in bootstrap
    assert "bootstrap" in _waits_for("build-image") and "bootstrap" in _waits_for("push-ci-image")
    # A missing lock file is produced by `terraform providers lock`, kept for committing,
    # and every init afterwards is held to it (run end to end below).
    assert "terraform -chdir=terraform providers lock" in bootstrap
    assert "init -lockfile=readonly" in bootstrap
    # The build must run as the deployer account bootstrap.sh grants.
    assert '"$$account" != "${_DEPLOYER}"' in bootstrap
    assert (
        PIPELINE["substitutions"]["_DEPLOYER"] == "inference-deployer@${PROJECT_ID}.iam.gserviceaccount.com"
    )


def test_the_test_step_runs_the_whole_suite_in_the_ci_image_and_refuses_skips():
    assert PIPELINE["steps"][0]["args"][:5] == [
        "build", "-f", "ci/Dockerfile", "-t", "inference-ci:${BUILD_ID}"
    ]
    test = next(step for step in PIPELINE["steps"] if step["id"] == "test")
    assert test["name"] == "inference-ci:${BUILD_ID}"
    script = test["args"][-1]
    assert 'PYTEST_ADDOPTS="--junitxml=test-artifacts/junit.xml" make test' in script
    assert "check_no_skips.py test-artifacts/junit.xml" in script
    # The suite runs on the repository alone: its photos ship in tests/photos.
    assert "gcloud" not in script and "SAMPLE_IMAGES_DIR" not in script
    for step in PIPELINE["steps"]:
        if step["id"] not in ("ci-image", "build-image", "push-ci-image", "package-function",
                              "package-model-service"):
            assert step["name"] == "inference-ci:${BUILD_ID}", step["id"]


def test_ci_image_has_what_the_suite_needs():
    assert re.search(r"^FROM python:3\.11-slim-bookworm$", CI_DOCKERFILE, flags=re.MULTILINE)
    for package in ("openjdk-17-jre-headless", "chromium", "google-cloud-cli=",
                    "google-cloud-cli-pubsub-emulator=", "google-cloud-cli-firestore-emulator=", "terraform=",
                    "make"):
        assert package in CI_DOCKERFILE, package
    assert "signed-by=" in CI_DOCKERFILE


def test_pipeline_steps_run_the_expected_commands():
    assert "make test" in _step("test")
    build = _step("build-image")
    # Both units are built from contexts scripts/package_units.py assembles (the contract copied in).
    assert "docker build -f build/model_service/Dockerfile" in build and "docker push" in build
    assert re.search(r"-t \"\$\$repo/\$\$name:\$\{BUILD_ID\}\" build/model_service", build)
    assert "package-model-service" in _waits_for("build-image")
    assert "RepoDigests" in build
    steps = {step["id"]: step for step in PIPELINE["steps"]}
    assert steps["package-model-service"]["args"] == [
        "python3", "scripts/package_units.py", "model-service", "build/model_service"]
    assert steps["package-function"]["args"] == [
        "python3", "scripts/package_units.py", "function", "build/function", "--zip", "build/functions.zip"]
    assert "rollout.py pin" in _step("pin-images")
    plan = _step("terraform-plan")
    assert "-out=deploy.tfplan" in plan and "-var=function_source_archive=" in plan and "validate" in plan
    assert "untaint" in plan and "google_cloud_run_v2_service" in plan
    assert "apply deploy.tfplan" in _step("terraform-apply")
    assert "rollout.py, save" in _step("save-rollout-state")
    smoke = _step("smoke-test")
    assert "/v1/models/${_SMOKE_MODEL}/predictions" in smoke and "?wait=30" in smoke and "succeeded)" in smoke
    # API keys are on by default: the smoke test makes its own key and revokes it afterwards.
    assert "scripts/api_keys.py --firestore" in smoke and '-H "X-API-Key: $$key"' in smoke
    assert "trap " in smoke and " revoke " in smoke
    canary = _step("canary")
    assert 'if [ -z "${_CANARY_MODEL}" ]' in canary
    assert 'python3 scripts/rollout.py canary "${_CANARY_MODEL}" "${_CANARY_PERCENT}"' in canary


def test_rollout_trigger_runs_the_same_command():
    step = only_step = ROLLOUT_PIPELINE["steps"]
    assert len(only_step) == 1
    script = step[0]["args"][-1]
    assert (
        'args=("${_COMMAND}" "${_MODEL}")' in script and 'python3 scripts/rollout.py "$${args[@]}"' in script
    )
    assert step[0]["name"].endswith("/inference-ci:latest")
    assert set(ROLLOUT_PIPELINE["substitutions"]) >= {
        "_COMMAND", "_MODEL", "_PERCENT", "_VERSION", "_IMAGE", "_TF_STATE_BUCKET"
    }


@pytest.mark.parametrize("pipeline", ["cloudbuild.yaml", "ci/rollout.cloudbuild.yaml"])
def test_builds_log_to_cloud_logging_as_a_user_specified_account_requires(pipeline):
    assert yaml.safe_load((REPO_ROOT / pipeline).read_text())["options"]["logging"] == "CLOUD_LOGGING_ONLY"


@pytest.mark.parametrize("pipeline", ["cloudbuild.yaml", "ci/rollout.cloudbuild.yaml"])
def test_shell_variables_are_escaped_from_substitution(pipeline):
    # Cloud Build replaces $NAME and ${NAME}; only its own (built-in or _USER) names may appear unescaped.
    text = (REPO_ROOT / pipeline).read_text()
    body = text.split("\noptions:\n", 1)[1].replace("$$", "")
    names = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", re.sub(r"#.*", "", body)))
    assert names <= {"PROJECT_ID", "BUILD_ID", "LOCATION"} | {n for n in names if n.startswith("_")}
    declared = set(re.findall(r"^  (_[A-Z_]+):", text, flags=re.MULTILINE))
    assert {n for n in names if n.startswith("_")} == declared


def test_dockerfile_is_slim_non_root_and_runs_gunicorn_from_the_app_directory():
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, flags=re.MULTILINE)
    instructions = [
        line.split()[0] for line in DOCKERFILE.splitlines() if line and not line.startswith((" ", "#"))
    ]
    assert instructions.index("USER") < instructions.index("CMD")
    assert re.search(r"^USER app$", DOCKERFILE, flags=re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, flags=re.MULTILINE)
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "main:app"]' in DOCKERFILE
    assert "pip install --no-cache-dir -r requirements.txt" in DOCKERFILE
    assert "tensorflow[and-cuda]" in DOCKERFILE and "ARG ACCELERATOR=cpu" in DOCKERFILE
    # The model comes from MODEL_REPOSITORY at run time, never from the image.
    assert not re.search(
        r"^(COPY|ADD)\b.*\b(models?|saved_model)\b", DOCKERFILE, flags=re.MULTILINE | re.IGNORECASE
    )
    assert "MODEL_REPOSITORY" not in re.sub(r"#.*", "", DOCKERFILE)


def _junit(tmp_path, cases: str, tests: int, failures: int = 0):
    path = tmp_path / "junit.xml"
    path.write_text(
        f'<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" errors="0">'
        f"{cases}</testsuite></testsuites>"
    )
    return str(path)


def test_check_no_skips_fails_on_a_skip_a_failure_or_no_tests(tmp_path):
    import subprocess
    import sys

    script = str(REPO_ROOT / "ci" / "check_no_skips.py")

    def run(path):
        return subprocess.run([sys.executable, script, path], capture_output=True, text=True).returncode

    ok = '<testcase classname="a" name="t"/>'
    skipped = (
        '<testcase classname="tests.integration" name="t">'
        '<skipped message="the emulators need gcloud"/></testcase>'
    )
    assert run(_junit(tmp_path, ok, 1)) == 0
    assert run(_junit(tmp_path, ok + skipped, 2)) == 1
    assert run(_junit(tmp_path, ok, 1, failures=1)) == 1
    assert run(_junit(tmp_path, "", 0)) == 1


def _bash_steps():
    for path in ("cloudbuild.yaml", "ci/rollout.cloudbuild.yaml"):
        for step in yaml.safe_load((REPO_ROOT / path).read_text())["steps"]:
            if step.get("entrypoint") == "bash":
                yield f"{path}:{step['id']}", step["args"][-1]


def _as_run(script: str) -> str:
    """The script as the step's shell gets it: substitutions made, $$ turned into $."""
    script = re.sub(r"\$\{(_[A-Z_]+|PROJECT_ID|BUILD_ID)\}", "x", script.replace("$$", "\0"))
    return script.replace("\0", "$")


@pytest.mark.parametrize(("step", "script"), list(_bash_steps()), ids=[s for s, _ in _bash_steps()])
def test_step_scripts_parse(step, script):
    import subprocess

    result = subprocess.run(["bash", "-n", "-c", _as_run(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_untaint_finds_tainted_model_services_in_terraform_show_output():
    import subprocess
    import sys

    plan = next(step for step in PIPELINE["steps"] if step["id"] == "terraform-plan")
    script = _as_run(plan["args"][-1])  # as YAML hands it to bash
    program = re.search(r"python3 -c '\n(.*?)\n' \|", script, flags=re.DOTALL).group(1)
    state = {"values": {"root_module": {"child_modules": [{"child_modules": [], "resources": [
        {"address": 'module.model_service["cat"].google_cloud_run_v2_service.model',
         "type": "google_cloud_run_v2_service", "tainted": True},
        {"address": 'module.model_service["dog"].google_cloud_run_v2_service.model',
         "type": "google_cloud_run_v2_service"},
        {"address": "module.storage.google_storage_bucket.models",
         "type": "google_storage_bucket", "tainted": True},
    ]}]}}}
    result = subprocess.run(
        [sys.executable, "-c", program], input=json.dumps(state), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['module.model_service["cat"].google_cloud_run_v2_service.model']
    empty = subprocess.run([sys.executable, "-c", program], input="{}", capture_output=True, text=True)
    assert empty.returncode == 0 and empty.stdout == ""


# --- the bootstrap step run end to end; nothing read from beside the repository (issue 17) ----

DEPLOYER = "inference-deployer@proj-1.iam.gserviceaccount.com"


def _bootstrap_script(location: str) -> str:
    """The bootstrap step as Cloud Build runs it in a project `proj-1` in `location`."""
    step = next(step for step in PIPELINE["steps"] if step["id"] == "bootstrap")
    values = {"LOCATION": location, "_DEPLOYER": DEPLOYER, "_TF_STATE_BUCKET": "proj-1-tfstate",
              "PROJECT_ID": "proj-1"}
    script = step["args"][-1].replace("$$", "\0")
    script = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], script)
    return script.replace("\0", "$")


def _run_bootstrap(tmp_path, location: str):
    import os
    import shutil
    import subprocess

    workspace = tmp_path / "workspace"
    if not workspace.exists():
        shutil.copytree(REPO_ROOT / "scripts", workspace / "scripts",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(REPO_ROOT / "terraform", workspace / "terraform",
                        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfvars.json",
                                                      ".rollout-*", ".terraform.lock.hcl"))
        fake_cloud.install(tmp_path / "bin")
        (tmp_path / "gcs").mkdir()
        fake_cloud_env = {"FAKE_GCS_ROOT": str(tmp_path / "gcs"),
                          "FAKE_CLOUD_LOG": str(tmp_path / "calls.jsonl")}
        os.environ.update(fake_cloud_env)
        try:
            fake_cloud.put("gs://proj-1-tfstate/config/terraform.tfvars.json",
                           json.dumps({"project_id": "proj-1", "region": "europe-west4"}).encode())
            fake_cloud.put("gs://proj-1-tfstate/config/models.auto.tfvars.json",
                           (REPO_ROOT / "terraform" / "models.auto.tfvars.json.example").read_bytes())
        finally:
            for name in fake_cloud_env:
                os.environ.pop(name)
    (tmp_path / "calls.jsonl").unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
           "FAKE_GCS_ROOT": str(tmp_path / "gcs"), "FAKE_CLOUD_LOG": str(tmp_path / "calls.jsonl"),
           "FAKE_GCLOUD_ACCOUNT": DEPLOYER, "TF_STATE_BUCKET": "proj-1-tfstate"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", _bootstrap_script(location)], cwd=workspace,
                            env=env, capture_output=True, text=True, timeout=120)
    calls = fake_cloud.calls(tmp_path / "calls.jsonl", "terraform")
    return result, [[arg for arg in call if not arg.startswith("-")][:2] for call in calls]


def test_the_first_build_locks_the_providers_after_installing_the_modules_and_keeps_the_lock(tmp_path):
    result, terraform = _run_bootstrap(tmp_path, "europe-west4")
    assert result.returncode == 0, result.stderr
    assert terraform[:3] == [["get"], ["providers", "lock"], ["init"]], terraform
    saved = tmp_path / "gcs" / "proj-1-tfstate" / "config" / "terraform.lock.hcl"
    assert saved.is_file()
    # The next build fetches that lock file and is held to it: no second `providers lock`.
    result, terraform = _run_bootstrap(tmp_path, "europe-west4")
    assert result.returncode == 0, result.stderr
    assert ["providers", "lock"] not in terraform and terraform[0] == ["init"]


def test_a_build_in_another_region_than_the_deployments_stops_before_terraform(tmp_path):
    result, terraform = _run_bootstrap(tmp_path, "us-central1")
    assert result.returncode != 0 and "--region=europe-west4" in result.stderr
    assert terraform == []


def test_the_fake_terraform_fails_like_the_real_one_when_modules_are_not_installed(tmp_path, terraform_bin):
    # The real binary, offline: `providers lock` on the real root before `terraform get`
    # stops at the missing modules, before it would try to download anything.
    import shutil
    import subprocess

    shutil.copytree(REPO_ROOT / "terraform", tmp_path / "terraform",
                    ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*.tfvars.json"))
    result = subprocess.run(
        [terraform_bin, "-chdir=terraform", "providers", "lock", "-no-color", "-platform=linux_amd64"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0 and "Module not installed" in result.stderr


PIPELINE_FILES = ("cloudbuild.yaml", "ci/rollout.cloudbuild.yaml", "scripts/bootstrap.sh", "ci/Dockerfile")


@pytest.mark.parametrize("path", PIPELINE_FILES)
def test_nothing_in_the_build_reads_from_beside_the_repository(path):
    text = re.sub(r"(?m)^\s*#.*$", "", (REPO_ROOT / path).read_text())
    assert "../" not in text and "shared/" not in text and "SAMPLE_IMAGES_DIR" not in text, path
    assert "us-central1" not in text, f"{path}: the region comes from terraform.tfvars.json, not a literal"
