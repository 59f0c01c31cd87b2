"""scripts/bootstrap.sh against the fake gcloud of fake_cloud.py."""

from __future__ import annotations

import json
import os
import subprocess

from . import fake_cloud
from .conftest import EXAMPLE_MODELS, REPO_ROOT

BOOTSTRAP = REPO_ROOT / "scripts" / "bootstrap.sh"
EXPECTED_ROLES = {
    "roles/serviceusage.serviceUsageAdmin",
    "roles/artifactregistry.admin",
    "roles/storage.admin",
    "roles/datastore.owner",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/cloudfunctions.admin",
    "roles/pubsub.admin",
    "roles/cloudscheduler.admin",
    "roles/secretmanager.admin",
    "roles/logging.logWriter",
    "roles/logging.configWriter",
    "roles/monitoring.editor",
}


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    fake_cloud.install(tmp_path / "bin")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FAKE_GCS_ROOT": str(tmp_path / "gcs"),
        "FAKE_CLOUD_LOG": str(tmp_path / "calls.jsonl"),
        "IAM_PROPAGATION_SECONDS": "0",
    }
    (tmp_path / "gcs").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(BOOTSTRAP), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_bootstrap_prepares_an_empty_project_and_changes_nothing_the_second_time(tmp_path):
    result = _run(tmp_path, "proj-1", "europe-west4")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "gcs" / "proj-1-tfstate" / "config"
    assert json.loads((config / "terraform.tfvars.json").read_text()) == {
        "project_id": "proj-1", "region": "europe-west4"
    }
    assert (config / "models.auto.tfvars.json").read_text() == EXAMPLE_MODELS.read_text()
    # Nothing but the repository: no photos or other files from beside it are uploaded.
    assert sorted(p.name for p in config.iterdir()) == ["models.auto.tfvars.json", "terraform.tfvars.json"]
    # New grants take time to propagate: it waits before the first build may start.
    assert "waiting 0 s for the new IAM grants to propagate" in result.stdout
    calls = fake_cloud.calls(tmp_path / "calls.jsonl", "gcloud")
    create = next(c for c in calls if c[:3] == ["storage", "buckets", "create"])
    assert "--uniform-bucket-level-access" in create and "--public-access-prevention" in create
    assert ["storage", "buckets", "update", "gs://proj-1-tfstate", "--versioning"] in calls
    deployer = "serviceAccount:inference-deployer@proj-1.iam.gserviceaccount.com"
    granted = {
        c[c.index("--role") + 1]
        for c in calls
        if c[:2] == ["projects", "add-iam-policy-binding"] and deployer in c
    }
    assert granted == EXPECTED_ROLES
    assert "roles/editor" not in granted and "roles/owner" not in granted
    assert (
        "--service-account projects/proj-1/serviceAccounts/inference-deployer@proj-1.iam.gserviceaccount.com"
        in result.stdout
    )

    # The callback signing secret: a Standard Webhooks key, made once, never by Terraform.
    secret = (tmp_path / "gcs" / ".secrets" / "callback-signing-secret").read_text()
    from standardwebhooks import Webhook

    assert secret.startswith("whsec_") and len(Webhook(secret)._whsecret) == 32

    # A second run keeps the configuration (rollout state included) as it is.
    (config / "models.auto.tfvars.json").write_text('{"models": {}}')
    (tmp_path / "calls.jsonl").unlink()
    second = _run(tmp_path, "proj-1", "europe-west4")
    assert second.returncode == 0
    assert (config / "models.auto.tfvars.json").read_text() == '{"models": {}}'
    again = fake_cloud.calls(tmp_path / "calls.jsonl", "gcloud")
    assert not any(c[:2] == ["projects", "add-iam-policy-binding"] for c in again)
    assert "waiting" not in second.stdout, "nothing new was granted, so nothing to wait for"
    assert not any(c[:3] == ["storage", "buckets", "create"] or c[:3] == ["iam", "service-accounts", "create"]
                   or c[:2] == ["secrets", "create"] for c in again)
    assert (tmp_path / "gcs" / ".secrets" / "callback-signing-secret").read_text() == secret


def test_bootstrap_needs_a_project_and_a_region(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr
    # The region has one home, terraform.tfvars.json, and no default to drift from.
    assert _run(tmp_path, "proj-1").returncode == 2
    bad = _run(tmp_path, "proj-1", "Europe")
    assert bad.returncode == 2 and "not a Google Cloud region" in bad.stderr
    assert not (tmp_path / "gcs" / "proj-1-tfstate").exists()
