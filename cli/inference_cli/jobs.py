"""`inference jobs submit|wait|list|cancel`: bulk jobs, a whole folder, bucket prefix or manifest per job.

    inference jobs submit --model cat photos/ gs://my-results/cats/ --wait
    inference jobs submit --model cat gs://my-photos/2026/ gs://my-results/cats/
    inference jobs wait ID
    inference jobs list --status running
    inference jobs cancel ID

A local folder (or manifest file) is uploaded first, to --bucket (env
INFERENCE_JOBS_BUCKET: Terraform's output jobs_bucket; locally the stack's
bucket, with STORAGE_EMULATOR_HOST set as `make run` prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from inference_contract.jobs import FINAL_JOB_STATUSES, JOB_STATUSES
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import job_inputs
from .client import Client

# The local stack's bucket (emulators.local_stack.StackConfig.uploads_bucket), when nothing else is said.
DEFAULT_LOCAL_BUCKET = "local-uploads"


def add_commands(commands) -> None:
    jobs = commands.add_parser("jobs", help="bulk jobs: many images through one model, results in a bucket",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    submit = actions.add_parser("submit", help="start a job (uploading a local folder first)")
    submit.add_argument("--model", required=True, help="model to run, e.g. cat or efficientnet-lite0")
    submit.add_argument("input", metavar="INPUT",
                        help="gs://bucket/prefix/ or gs://bucket/manifest.jsonl, or a local folder of "
                             "images (or a local manifest file), uploaded first")
    submit.add_argument("output", metavar="OUTPUT", help="gs://bucket/prefix/ the results are written under")
    submit.add_argument("--callback-url", help="URL the API calls when the job ends")
    submit.add_argument("--bucket", default=os.environ.get("INFERENCE_JOBS_BUCKET") or DEFAULT_LOCAL_BUCKET,
                        help="bucket a local INPUT is uploaded to (env INFERENCE_JOBS_BUCKET; "
                             "default %(default)s, the local stack's)")
    submit.add_argument("--concurrency", type=int, default=8, help="uploads at once (default %(default)s)")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job with a progress bar until it ends")
    submit.add_argument("--json", action="store_true", help="print the API's JSON")
    _add_wait_options(submit)
    wait = actions.add_parser("wait", help="follow a job with a progress bar until it ends")
    wait.add_argument("id", metavar="ID", help="job id")
    wait.add_argument("--json", action="store_true", help="print the final job as JSON")
    _add_wait_options(wait)
    listing = actions.add_parser("list", help="your own jobs, newest first")
    listing.add_argument("--status", choices=JOB_STATUSES, help="only those with this status")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout, no table")
    cancel = actions.add_parser("cancel", help="cancel a job: shards not started never start")
    cancel.add_argument("id", metavar="ID", help="job id")
    cancel.add_argument("--json", action="store_true", help="print the API's JSON")


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll-seconds", type=float, default=2.0,
                        help="seconds between status requests (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=24 * 3600,
                        help="give up waiting after this many seconds; the job goes on (default %(default)s)")


def done(job: dict) -> int:
    counts = job.get("counts") or {}
    return (counts.get("succeeded") or 0) + (counts.get("failed") or 0)


def describe(job: dict) -> str:
    counts = job.get("counts") or {}
    return (f"{job['id']}: {job['status']}, {counts.get('succeeded', 0)} succeeded, "
            f"{counts.get('failed', 0)} failed, {counts.get('pending', 0)} pending "
            f"of {counts.get('total', 0)}")


def follow(client: Client, job: dict, err: Console, poll_seconds: float, timeout: float) -> dict:
    """Polls the job until its status is final (or timeout passes), drawing its counts as a progress bar."""
    deadline = time.monotonic() + timeout
    url = job.get("status_url") or f"/v1/jobs/{job['id']}"
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task(job.get("status", ""), total=(job.get("counts") or {}).get("total"),
                                 failed=0)
        client.on_retry = lambda line: progress.console.print(f"[yellow]{line}[/]")
        try:
            while True:
                job = client.request("GET", url)
                counts = job.get("counts") or {}
                progress.update(task, description=job["status"], total=counts.get("total"),
                                completed=done(job), failed=counts.get("failed", 0))
                if job["status"] in FINAL_JOB_STATUSES or time.monotonic() >= deadline:
                    return job
                time.sleep(max(0.1, poll_seconds))
        except KeyboardInterrupt:
            progress.console.print(f"stopped waiting; job {job['id']} goes on: "
                                   f"`inference jobs wait {job['id']}`")
            raise


def _outcome(job: dict, err: Console, out: Console, as_json: bool) -> int:
    """0 when the job succeeded with every image; 1 otherwise (failed images, a failed or cancelled
    job, one still running)."""
    if as_json:
        out.print_json(json.dumps(job))
    else:
        # soft_wrap: ids and gs:// URIs stay whole on one line, to be copied.
        out.print(describe(job), soft_wrap=True)
        for uri in job.get("outputs") or []:
            out.print(f"  {uri}", soft_wrap=True, markup=False)
    if job["status"] not in FINAL_JOB_STATUSES:
        err.print(f"[yellow]still {job['status']}[/]: `inference jobs wait {job['id']}` to follow it again")
        return 1
    return 0 if job["status"] == "succeeded" and not (job.get("counts") or {}).get("failed") else 1


def run_submit(args: argparse.Namespace, client: Client, err: Console, out: Console) -> int:
    try:
        output = job_inputs.check_output(args.output)
        source = None if job_inputs.is_gcs_uri(args.input) else job_inputs.local_input(args.input)
    except job_inputs.InputError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    input_uri = args.input
    if source is not None:
        try:
            input_uri = _upload(source, args, err)
        except job_inputs.UploadFailed as exc:
            err.print(f"[red]error:[/] {escape(str(exc))} (is --bucket right, and for the local stack "
                      "STORAGE_EMULATOR_HOST set?)")
            return 1
    body = {"input": input_uri, "output": output}
    if args.callback_url:
        body["callback_url"] = args.callback_url
    job = client.request("POST", f"/v1/models/{args.model}/jobs", json=body)
    if not args.wait:
        if args.json:
            out.print_json(json.dumps(job))
        else:
            out.print(f"{job['id']}: {job['status']}, {(job.get('counts') or {}).get('total', '?')} images; "
                      f"`inference jobs wait {job['id']}` follows it", soft_wrap=True)
        return 0
    err.print(f"job {job['id']}: {input_uri} -> {output}", markup=False)
    return _outcome(follow(client, job, err, args.poll_seconds, args.timeout), err, out, args.json)


def _upload(source: job_inputs.LocalInput, args: argparse.Namespace, err: Console) -> str:
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("uploaded", total=len(source.files))
        return job_inputs.upload(source, args.bucket, concurrency=args.concurrency,
                                 on_uploaded=lambda _: progress.advance(task))


def run_wait(args: argparse.Namespace, client: Client, err: Console, out: Console) -> int:
    job = follow(client, {"id": args.id}, err, args.poll_seconds, args.timeout)
    return _outcome(job, err, out, args.json)


def list_jobs(client: Client, status: str | None, limit: int) -> list[dict]:
    """Up to limit jobs, newest first, following the API's page tokens."""
    return client.list_all("/v1/jobs", "jobs", {"status": status}, limit)


def run_list(args: argparse.Namespace, client: Client, out: Console) -> int:
    if args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    jobs = list_jobs(client, args.status, args.limit)
    if args.json:
        out.print_json(json.dumps({"jobs": jobs}))
        return 0
    table = Table(title=f"{len(jobs)} jobs, newest first")
    for column in ("id", "model", "status", "done", "failed", "created", "output"):
        table.add_column(column)
    for job in jobs:
        counts = job.get("counts") or {}
        table.add_row(job["id"], job.get("model", ""), job["status"], f"{done(job)}/{counts.get('total', 0)}",
                      str(counts.get("failed", 0)), job.get("created_at") or "", job.get("output") or "")
    out.print(table)
    return 0


def run_cancel(args: argparse.Namespace, client: Client, out: Console) -> int:
    job = client.request("POST", f"/v1/jobs/{args.id}:cancel")
    if args.json:
        out.print_json(json.dumps(job))
    else:
        out.print(describe(job), soft_wrap=True)
    return 0


def run(args: argparse.Namespace, client: Client, err: Console, out: Console) -> int:
    commands = {"submit": lambda: run_submit(args, client, err, out),
                "wait": lambda: run_wait(args, client, err, out),
                "list": lambda: run_list(args, client, out),
                "cancel": lambda: run_cancel(args, client, out)}
    return commands[args.jobs_command]()
