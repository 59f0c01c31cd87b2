"""One bulk job through the running stack, measured against the issue's targets.

    make run                                                    # in one terminal
    .venv/bin/python scripts/benchmark_jobs.py --images 2000 --kill-workers 3

It uploads --images photos to a bucket on the Storage emulator under distinct
object names (the photos of --photos, default tests/photos and ../shared/images,
repeated when there are fewer than --images), then prints:

- the model service's own push-endpoint throughput for --model, 32 requests in
  flight, measured with scripts/benchmark_service.py's own function (a service
  it starts with the stack's command, beside the stack's);
- one-at-a-time interactive predictions through the API while idle: p50
  (--interactive-gap seconds apart, idle and during the job), with the p50 of
  their own queue (accepted to claimed) and service (claimed to final) parts;
- one job over the uploaded prefix (the stack's model service, its gunicorn
  worker SIGKILLed --kill-workers times spread over the job): its images/s from
  its own created_at to completed_at, and the ratio to the push endpoint's
  (target >= 0.8);
- interactive predictions one at a time during the job: p50, and the ratio to
  the idle p50 (target <= 2);
- Firestore writes per image of the job, from the billable operations at
  GET /metrics of the API, the reconciler and the model service (sampled, so a
  killed worker's counts are kept up to its last sample; the interactive
  predictions made during the job are subtracted at a single prediction's
  writes), beside a single prediction's writes (target <= 0.2);
- the exactly-once check of the output: lines, distinct inputs, missing,
  repeated, and whether summary.json was written last.

It exits 1 if the job did not succeed or the exactly-once check failed. The
emulators, the services and this script share the cores: rerun on an idle
machine before quoting figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests
from inference_contract import jobs
from inference_contract.predictions import FINAL_STATUSES

from scripts.job_buckets import exactly_once, find_photos, read_output, upload_photos

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO_DIRS = (ROOT / "tests" / "photos", ROOT.parent / "shared" / "images")
METRIC = "inference_billable_operations_total"


# --- the API ------------------------------------------------------------------------------------

def submit(api_url: str, model: str, body: dict, headers: dict) -> requests.Response:
    return requests.post(f"{api_url}/v1/models/{model}/jobs", json=body, headers=headers, timeout=120)


def wait_job(api_url: str, job_id: str, headers: dict, timeout: float, on_poll=None) -> dict:
    deadline = time.monotonic() + timeout
    session = requests.Session()
    while True:
        body = session.get(f"{api_url}/v1/jobs/{job_id}", headers=headers, timeout=30).json()
        if on_poll:
            on_poll(body)
        if body.get("status") in jobs.FINAL_JOB_STATUSES:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not final after {timeout:.0f} s: {body}")
        time.sleep(0.5)


def interactive_ms(session: requests.Session, api_url: str, model: str, photo: bytes, headers: dict,
                   parts: list[dict] | None = None) -> float:
    """One prediction through the API, upload to final answer (long poll), in ms; its own
    queue_ms (accepted to claimed) and service_ms (claimed to final) appended to parts."""
    started = time.perf_counter()
    response = session.post(f"{api_url}/v1/models/{model}/predictions", headers=headers,
                            files=[("image", ("photo.jpg", photo, "image/jpeg"))], timeout=60)
    response.raise_for_status()
    status_url = response.json()["status_url"]
    while (body := session.get(status_url, params={"wait": 10}, headers=headers,
                               timeout=30).json())["status"] not in FINAL_STATUSES:
        pass
    if parts is not None and body.get("started_at"):
        created, claimed, done = (datetime.fromisoformat(body[k])
                                  for k in ("created_at", "started_at", "completed_at"))
        parts.append({"queue_ms": (claimed - created).total_seconds() * 1000,
                      "service_ms": (done - claimed).total_seconds() * 1000})
    return (time.perf_counter() - started) * 1000


def billable(url: str) -> dict[str, float]:
    """The billable operation counts at a unit's GET /metrics (empty if it does not answer)."""
    try:
        text = requests.get(f"{url}/metrics", timeout=5).text
    except requests.RequestException:
        return {}
    counts = {}
    for line in text.splitlines():
        if line.startswith(METRIC + "{"):
            operation = line.split('operation="', 1)[1].split('"', 1)[0]
            counts[operation] = float(line.rsplit(" ", 1)[1])
    return counts


class OperationSampler:
    """Running totals of billable operations over several units, surviving restarts: each unit is
    sampled every interval, and a count that went down (a restarted process) starts a new run."""

    def __init__(self, urls: list[str], interval: float = 0.5) -> None:
        self._urls, self._interval = urls, interval
        self._last: dict[str, dict[str, float]] = {url: billable(url) for url in urls}
        self.totals: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for url in self._urls:
            now = billable(url)
            if not now:
                continue
            before = self._last.get(url, {})
            for operation, value in now.items():
                previous = before.get(operation, 0.0)
                self.totals[operation] += value - previous if value >= previous else value
            self._last[url] = now

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> OperationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --- the benchmark -----------------------------------------------------------------------------

def push_endpoint_throughput(model: str, project: str, uploads_bucket: str, repository: Path,
                             photos: list[bytes], headers: dict, requests_count: int,
                             emulator_env: dict[str, str]) -> float:
    """The model service's own push endpoint, 32 in flight: scripts/benchmark_service.py's function."""
    from emulators.local_stack import LocalStack, StackConfig
    from scripts.benchmark_service import Seeder, api_key_id, service_at_push_endpoint

    stack = LocalStack(StackConfig(project=project, uploads_bucket=uploads_bucket,
                                   model_repository=repository,
                                   log_dir=Path(tempfile.mkdtemp(prefix="benchmark-jobs-logs-"))))
    stack.emulator_env = emulator_env
    seeder = Seeder(project, uploads_bucket, photos, model, api_key_id(headers))
    figures = service_at_push_endpoint(stack, model, seeder, requests_count, (32,), {},
                                       f"{model}-jobs-benchmark")
    return figures[32]["images_per_s"]


def run(api_url: str, model: str, model_url: str, reconcile_url: str, images: int, photo_paths: list[Path],
        headers: dict, project: str, bucket: str, kills: int = 0, interactive: int = 20,
        push_requests: int = 192, repository: Path | None = None, uploads_bucket: str = "local-uploads",
        timeout: float = 1800.0, measure_push: bool = True, interactive_gap: float = 0.5) -> dict:
    from emulators.processes import gunicorn_worker_pid
    from scripts.fault_injection import kill_worker

    emulator_env = {name: os.environ[name] for name in
                    ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    report: dict = {"model": model, "images": images, "kills_asked": kills}
    run_id = uuid.uuid4().hex[:8]
    prefix = f"benchmark-jobs/{run_id}/input/"
    started = time.perf_counter()
    inputs = upload_photos(project, bucket, prefix, photo_paths, images)
    report["upload_s"] = round(time.perf_counter() - started, 1)
    photos = [path.read_bytes() for path in photo_paths[:50]]

    if measure_push:
        report["push_endpoint_images_per_s"] = push_endpoint_throughput(
            model, project, uploads_bucket, repository, photos, headers, push_requests, emulator_env)

    session = requests.Session()
    interactive_ms(session, api_url, model, photos[0], headers)  # warm-up
    idle_parts: list[dict] = []
    idle: list[float] = []
    for i in range(interactive):
        idle.append(interactive_ms(session, api_url, model, photos[i % len(photos)], headers, idle_parts))
        time.sleep(interactive_gap)
    report["interactive_idle_p50_ms"] = round(percentile(idle, 50), 1)
    report["interactive_idle_p50_parts_ms"] = _parts_p50(idle_parts)

    units = [api_url, reconcile_url, model_url]
    with OperationSampler(units, interval=0.2) as single:
        interactive_ms(session, api_url, model, photos[0], headers)
        time.sleep(0.3)
    single_writes = single.totals.get("firestore_write", 0.0)
    report["single_prediction_firestore_writes"] = single_writes

    during: list[float] = []
    during_parts: list[dict] = []
    stop = threading.Event()

    def interactive_during_job() -> None:
        own = requests.Session()
        i = 0
        while not stop.wait(interactive_gap):
            try:
                during.append(interactive_ms(own, api_url, model, photos[i % len(photos)], headers,
                                             during_parts))
            except requests.RequestException:
                pass
            i += 1

    model_port = int(model_url.rsplit(":", 1)[1])
    kill_at = [images * (k + 1) / (kills + 1) for k in range(kills)]
    kill_times: list[float] = []

    def on_poll(body: dict) -> None:
        done = body["counts"]["succeeded"] + body["counts"]["failed"]
        # Done counts move a shard at a time; a kill lands while later shards run.
        if kill_at and done >= kill_at[0] * 0.8 and gunicorn_worker_pid(model_port) is not None:
            kill_at.pop(0)
            kill_times.append(kill_worker(model_port))

    with OperationSampler(units, interval=0.5) as operations:
        output = f"gs://{bucket}/benchmark-jobs/{run_id}/output/"
        response = submit(api_url, model, {"input": f"gs://{bucket}/{prefix}", "output": output}, headers)
        if response.status_code != 202:
            raise SystemExit(f"the job was refused: {response.status_code} {response.text}")
        job_id = response.json()["id"]
        watcher = threading.Thread(target=interactive_during_job, daemon=True)
        watcher.start()
        final = wait_job(api_url, job_id, headers, timeout, on_poll)
        stop.set()
        watcher.join(60)
        time.sleep(1)
    report["job_id"] = job_id
    report["status"] = final["status"]
    report["kills"] = len(kill_times)
    report["job_images_per_s"] = final["timings"]["images_per_second"]
    run_ms = final["timings"]["run_ms"]
    report["job_seconds"] = round(run_ms / 1000, 1) if run_ms else None
    report["counts"] = final["counts"]
    if report.get("push_endpoint_images_per_s") and report["job_images_per_s"]:
        report["job_vs_push_endpoint"] = round(
            report["job_images_per_s"] / report["push_endpoint_images_per_s"], 2)
    report["interactive_during_job_p50_ms"] = round(percentile(during, 50), 1) if during else None
    report["interactive_during_job_samples"] = len(during)
    report["interactive_during_job_p50_parts_ms"] = _parts_p50(during_parts)
    if during:
        report["interactive_during_vs_idle_p50"] = round(report["interactive_during_job_p50_ms"]
                                                         / report["interactive_idle_p50_ms"], 2)
    writes = operations.totals.get("firestore_write", 0.0) - single_writes * len(during)
    report["job_firestore_writes"] = writes
    report["job_firestore_writes_per_image"] = round(writes / images, 4)
    report["job_billable_operations"] = dict(operations.totals)
    output = read_output(project, final["output"])
    report["exactly_once"] = {**exactly_once(output["lines"], inputs), "summary_last": output["summary_last"]}
    return report


def _parts_p50(parts: list[dict]) -> dict:
    return {name: round(percentile([p[name] for p in parts], 50) or 0, 1)
            for name in ("queue_ms", "service_ms")}


def print_report(report: dict) -> None:
    during = report["interactive_during_job_p50_parts_ms"]
    rows = [
        ("images", report["images"]),
        ("status", report["status"]),
        ("worker kills", f"{report['kills']} of {report['kills_asked']}"),
        ("job images/s (created -> completed)", report["job_images_per_s"]),
        ("push endpoint images/s, 32 in flight", report.get("push_endpoint_images_per_s")),
        ("job / push endpoint (target >= 0.8)", report.get("job_vs_push_endpoint")),
        ("interactive p50 idle, ms (its queue / service p50)",
         f"{report['interactive_idle_p50_ms']} ({report['interactive_idle_p50_parts_ms']['queue_ms']} / "
         f"{report['interactive_idle_p50_parts_ms']['service_ms']})"),
        ("interactive p50 during the job, ms (queue / service)",
         f"{report['interactive_during_job_p50_ms']} ({during['queue_ms']} / {during['service_ms']}; "
         f"{report['interactive_during_job_samples']} samples)"),
        ("during / idle (target <= 2)", report.get("interactive_during_vs_idle_p50")),
        ("Firestore writes per image, job (target <= 0.2)", report["job_firestore_writes_per_image"]),
        ("Firestore writes, one prediction", report["single_prediction_firestore_writes"]),
        ("exactly once: lines / distinct / missing / repeated",
         "{lines} / {distinct_inputs} / {missing} / {repeated}".format(**report["exactly_once"])),
        ("summary.json written last", report["exactly_once"]["summary_last"]),
    ]
    for name, value in rows:
        print(f"  {name:<55}{value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--photos", type=Path, action="append",
                        help="folder of photos (repeatable); default tests/photos and ../shared/images")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--kill-workers", type=int, default=0)
    parser.add_argument("--interactive", type=int, default=20, help="idle one-at-a-time predictions")
    parser.add_argument("--interactive-gap", type=float, default=0.5,
                        help="seconds between one-at-a-time predictions, idle and during the job")
    parser.add_argument("--push-requests", type=int, default=192, help="pushes to measure the push endpoint")
    parser.add_argument("--no-push-measure", action="store_true")
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--reconcile-url", default="http://127.0.0.1:8082")
    parser.add_argument("--model-url",
                        help="the stack's model service (default: make run's port for --model)")
    parser.add_argument("--project", default="local-inference")
    parser.add_argument("--uploads-bucket", default="local-uploads")
    parser.add_argument("--bucket", default="benchmark-jobs", help="bucket on the Storage emulator")
    parser.add_argument("--repository", type=Path, default=ROOT / ".local" / "model_repository")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from emulators.local_stack import DEFAULT_MODELS, StackConfig
    from scripts.api_keys import client_headers

    for name, default in (("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
                          ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086"),
                          ("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")):
        os.environ.setdefault(name, default)
    model_url = args.model_url or (
        f"http://127.0.0.1:{StackConfig.first_model_port + DEFAULT_MODELS.index(args.model)}")
    report = run(args.api_url, args.model, model_url, args.reconcile_url, args.images,
                 find_photos(args.photos or list(DEFAULT_PHOTO_DIRS)), client_headers(), args.project,
                 args.bucket,
                 kills=args.kill_workers, interactive=args.interactive, push_requests=args.push_requests,
                 repository=args.repository, uploads_bucket=args.uploads_bucket, timeout=args.timeout,
                 measure_push=not args.no_push_measure, interactive_gap=args.interactive_gap)
    print_report(report)
    if args.json:
        print(json.dumps(report, default=str))
    return 0 if report["exactly_once"]["ok"] and report["status"] == jobs.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
