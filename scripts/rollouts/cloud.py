"""The cloud side of a rollout: the state bucket and model repository through gcloud, and Terraform."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .models_file import CONFIG_PREFIX, GENERATIONS_FILE, LOCK_FILE, MODEL_MARKER, RolloutError


def gcloud(*args: str) -> subprocess.CompletedProcess:
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
        described = gcloud("storage", "objects", "describe", url, "--format=value(generation)")
        if described.returncode != 0:
            raise RolloutError(f"{url} not found ({_last_line(described)}); run scripts/bootstrap.sh first")
        copied = gcloud("storage", "cp", url, str(destination))
        if copied.returncode != 0:
            raise RolloutError(f"cannot fetch {url}: {_last_line(copied)}")
        self.generations[name] = described.stdout.strip()
        self.record.write_text(json.dumps(self.generations))

    def fetch_if_present(self, name: str, destination: Path) -> bool:
        """Fetch `name` if the bucket has it; False when it does not."""
        url = self.url(name)
        if gcloud("storage", "objects", "describe", url, "--format=value(generation)").returncode != 0:
            return False
        self.fetch(name, destination)
        return True

    def save(self, name: str, source: Path) -> None:
        """Upload, refusing if someone changed the object since it was fetched."""
        url = self.url(name)
        precondition = [f"--if-generation-match={self.generations[name]}"] if name in self.generations else []
        copied = gcloud("storage", "cp", str(source), url, *precondition)
        if copied.returncode != 0:
            raise RolloutError(
                f"cannot save {url}: {_last_line(copied)} (changed by someone else? fetch and retry)"
            )
        described = gcloud("storage", "objects", "describe", url, "--format=value(generation)")
        if described.returncode == 0:
            self.generations[name] = described.stdout.strip()
            self.record.write_text(json.dumps(self.generations))
        print(f"saved {url}", flush=True)


def model_versions(repository: str, model: str) -> list[int]:
    """Complete versions of a model in a gs:// model repository."""
    listed = gcloud("storage", "ls", f"{repository.rstrip('/')}/{model}/*/{MODEL_MARKER}")
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
    if (Path(terraform_dir) / LOCK_FILE).is_file():
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

