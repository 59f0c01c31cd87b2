"""cloudbuild.yaml and the model-service Dockerfile, checked by reading (neither can run here)."""

from __future__ import annotations

import re

from .conftest import REPO_ROOT

CLOUDBUILD = (REPO_ROOT / "cloudbuild.yaml").read_text()
DOCKERFILE = (REPO_ROOT / "cloudrun_model" / "Dockerfile").read_text()


def _step_ids() -> list[str]:
    return re.findall(r"^  - id: (\S+)$", CLOUDBUILD, flags=re.MULTILINE)


def _step(step_id: str) -> str:
    """Text of one step, up to the next one."""
    match = re.search(rf"^  - id: {re.escape(step_id)}\n(.*?)(?=^  - id: |\Z)", CLOUDBUILD, flags=re.MULTILINE | re.DOTALL)
    assert match, step_id
    return match.group(1)


def test_pipeline_order():
    ids = _step_ids()
    order = ["test", "rollout-state", "terraform-init", "terraform-validate", "terraform-plan", "terraform-apply", "smoke-test", "canary-rollout", "canary-apply"]
    assert [i for i in ids if i in order] == order
    # Terraform's first steps are init/validate/plan: nothing applies before them.
    assert ids.index("terraform-init") < ids.index("terraform-validate") < ids.index("terraform-plan") < ids.index("terraform-apply")


def test_pipeline_steps_run_the_expected_commands():
    assert "make test" in _step("test")
    build = _step("build-image")
    assert "docker build -f cloudrun_model/Dockerfile" in build and "docker push" in build
    assert re.search(r"-t \"\$\$repo/\$\$name:\$\{BUILD_ID\}\" cloudrun_model", build)
    assert "RepoDigests" in build
    assert 'pathlib.Path("functions")' in _step("package-function")
    assert "rollout.py pin" in _step("rollout-state")
    assert "-out=deploy.tfplan" in _step("terraform-plan") and "-var=function_source_archive=" in _step("terraform-plan")
    assert "apply -input=false deploy.tfplan" in _step("terraform-apply")
    smoke = _step("smoke-test")
    assert "/v1/models/${_SMOKE_MODEL}/predictions" in smoke and "?wait=30" in smoke and "succeeded)" in smoke
    canary = _step("canary-rollout")
    assert 'if [ -z "${_CANARY_MODEL}" ]' in canary and "rollout.py canary" in canary and '--percent "${_CANARY_PERCENT}"' in canary


def test_shell_variables_are_escaped_from_substitution():
    # Cloud Build replaces $NAME and ${NAME}; only its own (built-in or _USER) names may appear unescaped.
    body = CLOUDBUILD.split("\nsteps:\n", 1)[1].replace("$$", "")
    names = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", body))
    assert names <= {"PROJECT_ID", "BUILD_ID"} | {n for n in names if n.startswith("_")}
    declared = set(re.findall(r"^  (_[A-Z_]+):", CLOUDBUILD, flags=re.MULTILINE))
    assert {n for n in names if n.startswith("_")} == declared


def test_dockerfile_is_slim_non_root_and_runs_gunicorn_from_the_app_directory():
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE, flags=re.MULTILINE)
    instructions = [line.split()[0] for line in DOCKERFILE.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions.index("USER") < instructions.index("CMD")
    assert re.search(r"^USER app$", DOCKERFILE, flags=re.MULTILINE)
    assert re.search(r"^WORKDIR /app$", DOCKERFILE, flags=re.MULTILINE)
    assert 'CMD ["gunicorn", "--config", "gunicorn.conf.py", "main:app"]' in DOCKERFILE
    assert "pip install --no-cache-dir -r requirements.txt" in DOCKERFILE
    assert "tensorflow[and-cuda]" in DOCKERFILE and "ARG ACCELERATOR=cpu" in DOCKERFILE
    # The model comes from MODEL_REPOSITORY at run time, never from the image.
    assert not re.search(r"^(COPY|ADD)\b.*\b(models?|saved_model)\b", DOCKERFILE, flags=re.MULTILINE | re.IGNORECASE)
    assert "MODEL_REPOSITORY" not in re.sub(r"#.*", "", DOCKERFILE)
