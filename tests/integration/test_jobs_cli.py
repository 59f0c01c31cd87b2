"""`inference jobs` against the local stack: a local folder uploaded to the Storage emulator, one job."""

from __future__ import annotations

import json
import shutil

import pytest
from google.cloud import storage
from inference_cli.main import main as cli
from inference_contract import jobs

from tests.images import sample

pytestmark = pytest.mark.integration

MODEL = "tiny-test"
PHOTOS = ("tabby", "golden_retriever", "Persian_cat")


def _cli(stack, *arguments: str) -> list[str]:
    return ["--url", stack.api_url, "--api-key", stack.api_key, *arguments]


def _results(stack, output: str, job_id: str) -> list[dict]:
    """Every result line the job wrote, from its results objects on the Storage emulator."""
    bucket_name, _, prefix = jobs.job_prefix(output, job_id).removeprefix("gs://").partition("/")
    client = storage.Client(project=stack.config.project)
    lines = []
    for blob in client.list_blobs(bucket_name, prefix=prefix):
        if blob.name.rsplit("/", 1)[-1] != jobs.SUMMARY_NAME:
            lines += [json.loads(line) for line in blob.download_as_bytes().decode().splitlines() if line]
    return lines


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for index, name in enumerate(PHOTOS):
        shutil.copy(sample(name), (folder / "more" if index else folder) / sample(name).name)
    (folder / "README.txt").write_text("not an image: not uploaded")
    return folder


def test_submit_a_local_folder_and_wait_for_every_result(stack, photos, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    bucket = stack.config.uploads_bucket
    output = f"gs://{bucket}/cli-results/"
    code = cli(_cli(stack, "jobs", "submit", "--model", MODEL, "--bucket", bucket, "--poll-seconds", "0.5",
                    "--wait", "--json", str(photos), output))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    job = json.loads(out)
    assert job["status"] == "succeeded" and job["counts"] == {"total": 3, "succeeded": 3, "failed": 0,
                                                              "pending": 0}, job
    assert job["input"].startswith(f"gs://{bucket}/jobs-input/")
    assert "uploaded" in err and "3/3" in err  # the upload's progress bar, then the job's
    lines = _results(stack, output, job["id"])
    inputs = sorted(line["input"] for line in lines)
    assert inputs == sorted(job["input"] + path for path in (
        sample(PHOTOS[0]).name, *(f"more/{sample(name).name}" for name in PHOTOS[1:])))
    assert {line["status"] for line in lines} == {jobs.LINE_SUCCEEDED}

    # The same job, followed again, listed, and refused a cancel now that it is final.
    assert cli(_cli(stack, "jobs", "wait", "--json", job["id"])) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert cli(_cli(stack, "jobs", "list", "--json", "--limit", "50")) == 0
    assert job["id"] in {listed["id"] for listed in json.loads(capsys.readouterr().out)["jobs"]}
    assert cli(_cli(stack, "jobs", "list", "--status", "succeeded")) == 0
    assert job["id"] in capsys.readouterr().out
    assert cli(_cli(stack, "jobs", "cancel", job["id"])) == 1
    assert "409 not_cancellable" in capsys.readouterr().err


def test_submit_without_wait_prints_the_id_and_wait_follows_it(stack, photos, capsys):
    bucket = stack.config.uploads_bucket
    assert cli(_cli(stack, "jobs", "submit", "--model", MODEL, "--bucket", bucket, "--json", str(photos),
                    f"gs://{bucket}/cli-results-2/")) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["status"] in jobs.JOB_STATUSES
    assert cli(_cli(stack, "jobs", "wait", "--poll-seconds", "0.5", accepted["id"])) == 0
    assert f"{accepted['id']}: succeeded, 3 succeeded, 0 failed, 0 pending of 3" in capsys.readouterr().out


def test_clear_errors_for_what_the_api_refuses(stack, photos, capsys):
    bucket = stack.config.uploads_bucket
    # An input prefix that matches no image: refused, nothing started.
    assert cli(_cli(stack, "jobs", "submit", "--model", MODEL, f"gs://{bucket}/no-such-prefix/",
                    f"gs://{bucket}/out/")) == 1
    assert "422 no_images" in capsys.readouterr().err
    assert cli(_cli(stack, "jobs", "submit", "--model", "no-such-model", "--bucket", bucket, str(photos),
                    f"gs://{bucket}/out/")) == 1
    assert "404 not_found" in capsys.readouterr().err
    assert cli(_cli(stack, "jobs", "wait", "0123456789abcdef0123456789abcdef")) == 1
    assert "404" in capsys.readouterr().err


def test_cancel_a_running_job_from_the_command_line(stack, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    bucket = stack.config.uploads_bucket
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(20):  # several shards (the test stack's JOB_SHARD_SIZE is 5)
        shutil.copy(sample(PHOTOS[index % len(PHOTOS)]), folder / f"{index:02d}.JPEG")
    assert cli(_cli(stack, "jobs", "submit", "--model", MODEL, "--bucket", bucket, "--json", str(folder),
                    f"gs://{bucket}/cli-cancelled/")) == 0
    job_id = json.loads(capsys.readouterr().out)["id"]
    assert cli(_cli(stack, "jobs", "cancel", "--json", job_id)) == 0
    cancelled = json.loads(capsys.readouterr().out)
    assert cancelled["id"] == job_id and cancelled["cancel_requested_at"]
    # It ends cancelled, or succeeded if every shard had started before the cancel came; the
    # exit status says which (0 only for a job that succeeded with every image).
    code = cli(_cli(stack, "jobs", "wait", "--poll-seconds", "0.5", "--json", job_id))
    final = json.loads(capsys.readouterr().out)
    assert final["status"] in {jobs.CANCELLED, jobs.SUCCEEDED}, final
    assert code == (0 if final["status"] == jobs.SUCCEEDED else 1)
    assert cli(_cli(stack, "jobs", "list", "--json", "--status", final["status"])) == 0
    assert job_id in {listed["id"] for listed in json.loads(capsys.readouterr().out)["jobs"]}
