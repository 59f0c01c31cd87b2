"""The model services and the API measured against the bare SavedModel, side by side.

    make run                                        # in one terminal
    .venv/bin/python scripts/benchmark_service.py   # efficientnet-lite0 and resnet50

For each model it prints:
- the bare SavedModel in this process: images/s and CPU ms per image at batch
  1, 8, 16 and 32, on the sample photos in turn, as the services are sent them
  (decoding included, as served);
- a model service started by this script with the stack's own command
  (gunicorn, the model repository, the emulators), driven at its push endpoint
  with 1, 8, 32 and 64 requests in flight, as Cloud Run receives them from a
  busy subscription. The script seeds Firestore and Storage itself. Its
  worker's CPU time comes from /proc; the batch sizes that formed from its log;
- the same service with MAX_BATCH_SIZE=1 at 32 in flight;
- the whole API path of the running stack: one image at a time (p50/p95 with
  the upload, queue and service parts), 16 in flight, and a POST timed while
  --long-polls long polls are open; and, to read "queue" by, the Pub/Sub
  emulator's own push delay on a scratch topic (its push loop polls every 100 ms);
- the ratios the performance targets are stated in, and our part of the API
  latency: the one-at-a-time p50 less the bare model at batch 1 (called one image
  at a time with a pause, as the API path calls it) and less the emulator's push
  delay, with the steps it is made of (from both units' /metrics);
- with --rounds N, bare, service and the API path one at a time (with the
  emulator's push delay) measured alternately N times: the median of each ratio
  and of our part of the latency, with its spread;
- the billable operations one prediction asked for (read from both units'
  /metrics before and after: with a long poll, and with a callback instead), and
  what a million images cost at list prices, beside one always-on instance
  (scripts/benchmarks/cost.py holds the prices and where they were read).

Run it on an idle machine: the emulators, the service and this script share
the cores. `--json` prints the figures as one JSON object as well; `--parts`
and `--levels` measure only some of them (e.g. `--parts bare,service --levels 32`
for the CPU ratio alone). The parts live in scripts/benchmarks/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import requests

from emulators.local_stack import LocalStack, StackConfig, served_models
from scripts.benchmarks import cost, operations
from scripts.benchmarks.api_path import (
    api_path,
    emulator_push_delay,
    sequential,
    with_callback,
    with_long_polls,
)
from scripts.benchmarks.bare import BARE_BATCHES, bare_model, bare_one_at_a_time, best_batch
from scripts.benchmarks.push import IN_FLIGHT, Seeder, service_at_push_endpoint
from scripts.benchmarks.report import print_report
from scripts.sample_photos import all_samples

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["BARE_BATCHES", "IN_FLIGHT", "main", "print_report", "run"]


def api_key_id(headers: dict) -> str | None:
    """The id part of the X-API-Key the benchmark sends (what the API records as the owner)."""
    from prediction_api.auth import KEY_PATTERN

    match = KEY_PATTERN.match(headers.get("X-API-Key", ""))
    return match.group(1) if match else None


PARTS = ("bare", "service", "unbatched", "api", "long-polls", "cost")


def ratios(bare: dict | None, service: dict | None) -> dict[str, float]:
    """The service at 32 in flight against the bare model at its best batch."""
    at_32 = (service or {}).get(32)
    if not (at_32 and bare):
        return {}
    best = bare[best_batch(bare)]
    return {
        "service_32_vs_bare_best_throughput": round(at_32["images_per_s"] / best["images_per_s"], 2),
        "service_cpu_per_image_vs_bare_best": round(at_32["cpu_ms_per_image"] / best["cpu_ms_per_image"], 2)}


def steady_ratios(first: dict[str, float], more: list[dict[str, float]]) -> dict:
    """The median of each ratio over the rounds, with its spread."""
    rounds = [first, *more]
    return {"rounds": len(rounds), "ratios": {
        name: {"median": round(statistics.median(r[name] for r in rounds), 2),
               "min": min(r[name] for r in rounds), "max": max(r[name] for r in rounds),
               "each": [r[name] for r in rounds]} for name in first}}


def our_part(api: dict, bare: dict, single: dict) -> dict[str, float]:
    """One-at-a-time p50 upload-to-succeeded, less the bare model at batch 1 and the emulator's push
    delay (its p50 on a scratch topic); and, paired, the p50 over the same predictions of each one's
    upload-to-succeeded less its own delivery (timings.delivery_ms), less the bare model.

    The bare model at batch 1 is single's: called one image at a time with a pause, as the API path
    calls it (bare.bare_one_at_a_time). The paired figure against the bare model called back to
    back (bare[1], TensorFlow's threads kept awake) is kept beside it."""
    parts = {"total_p50": api["total_ms"]["p50"], "bare_batch_1": single["p50_ms"],
             "bare_batch_1_by_threads": single["by_threads"],
             "bare_batch_1_back_to_back": bare[1]["ms_per_batch"],
             "emulator_push_delay_p50": api["emulator_push_delay_ms"]["p50"],
             "post_p50": api["upload_ms"]["p50"]}
    parts["ours"] = round(parts["total_p50"] - parts["bare_batch_1"] - parts["emulator_push_delay_p50"], 1)
    if "total_less_delivery_ms" in api:
        parts["delivery_p50"] = api["delivery_ms"]["p50"]
        parts["total_less_delivery_p50"] = api["total_less_delivery_ms"]["p50"]
        parts["ours_paired"] = round(parts["total_less_delivery_p50"] - parts["bare_batch_1"], 1)
        parts["ours_paired_back_to_back"] = round(
            parts["total_less_delivery_p50"] - parts["bare_batch_1_back_to_back"], 1)
    return parts


def round_our_part(part: dict | None) -> dict[str, float]:
    """our_part()'s figures, named as in the ratios (none when the API path was not measured)."""
    if not part:
        return {}
    names = {"ours": "api_our_part_ms", "ours_paired": "api_our_part_paired_ms",
             "ours_paired_back_to_back": "api_our_part_paired_back_to_back_ms"}
    return {name: part[key] for key, name in names.items() if key in part}


def serving_models(stack: LocalStack) -> dict[str, str]:
    """Where the stack's model services answer, by model: each says its model at /healthz, on the
    ports counting up from the first (in the order of the stack's --models)."""
    found = {}
    for url in stack.model_urls.values():
        try:
            found[requests.get(f"{url}/healthz", timeout=5).json()["model"]] = url
        except (requests.RequestException, ValueError, KeyError):
            continue  # no service on that port (a stack of fewer models)
    return found


def reconciler_pass(reconcile_url: str) -> dict:
    """The operations of one reconciler pass, as Cloud Scheduler makes one a minute."""
    before = operations.read_all({"reconciler": reconcile_url})
    requests.post(f"{reconcile_url}/", timeout=60).raise_for_status()
    return operations.per_prediction(before, operations.read_all({"reconciler": reconcile_url}), 1)


def cost_per_million(model: str, api: dict, callback: dict, service: dict, start_to_ready_s: float) -> dict:
    at_32 = service[32]
    serverless = {
        # The POST, one long poll (GET ?wait=) and the push to the model service.
        "with a long poll": cost.serverless_per_million(
            model, api["operations_per_prediction"]["total"], 3, at_32["cpu_ms_per_image"],
            api.get("api_cpu_ms_per_prediction", 0)),
        # The POST and the push; the callback goes to the client's own receiver.
        "with a callback": cost.serverless_per_million(
            model, callback["operations_per_prediction"]["total"], 2, at_32["cpu_ms_per_image"],
            callback.get("api_cpu_ms_per_prediction", api.get("api_cpu_ms_per_prediction", 0))),
    }
    always_on = {load.name: cost.always_on(model, load, at_32["images_per_s"], start_to_ready_s)
                 for load in cost.LOADS}
    return {"serverless": serverless, "always_on": always_on}


def benchmark(model: str, stack: LocalStack, api_url: str, photos: list[bytes], images: int,
              one_at_a_time: int, headers: dict, long_polls: int, long_poll_seconds: int,
              parts: tuple[str, ...] = PARTS, levels: tuple[int, ...] = IN_FLIGHT, rounds: int = 1,
              units: dict[str, str] | None = None) -> dict:
    """The figures of the parts asked for (all by default), and the ratios they allow.

    units: /metrics base URLs of the stack's "api", "model service" (this model's) and "reconciler".
    """
    units = units or {"api": api_url, "model service": serving_models(stack)[model],
                      "reconciler": stack.reconcile_url}
    report: dict = {"model": model}
    repository = stack.config.model_repository
    bare = report["bare"] = bare_model(repository, model, photos, images) if "bare" in parts else None
    report["bare_best_batch"] = best_batch(bare) if bare else None
    seeder = None
    if {"service", "unbatched", "long-polls"} & set(parts):
        seeder = Seeder(stack.config.project, stack.config.uploads_bucket, photos, model, api_key_id(headers))
    service = unbatched = api = None
    if "service" in parts:
        service = service_at_push_endpoint(stack, model, seeder, images, levels, {}, f"{model}-benchmark")
        report["service_start_to_ready_s"] = service.pop("start_to_ready_s")
        report["service"] = service
    if "unbatched" in parts:
        unbatched = report["service_max_batch_1_at_32"] = service_at_push_endpoint(
            stack, model, seeder, images, (32,), {"MAX_BATCH_SIZE": "1"}, f"{model}-benchmark-batch1")[32]
    serving = {"api": units["api"], "model service": units["model service"]}
    if "api" in parts:
        api = report["api"] = api_path(api_url, model, photos, one_at_a_time, 4 * 16, headers, serving)
        api["emulator_push_delay_ms"] = emulator_push_delay(stack.config.project)
    if "long-polls" in parts:
        report.setdefault("api", {})["with_long_polls"] = with_long_polls(
            api_url, seeder, model, photos, long_polls, headers, poll_seconds=long_poll_seconds)
    report["ratios"] = ratios(bare, service)
    if service and unbatched and 32 in service:
        report["ratios"]["batching_vs_max_batch_1_at_32"] = round(
            service[32]["images_per_s"] / unbatched["images_per_s"], 2)
    if api and bare:
        report["ratios"]["api_p50_minus_bare_batch_1_ms"] = round(
            api["total_ms"]["p50"] - bare[1]["ms_per_batch"], 1)
        report["our_part_ms"] = our_part(api, bare, bare_one_at_a_time(repository, model))
        report["ratios"].update(round_our_part(report["our_part_ms"]))
    if rounds > 1 and bare and service and 32 in service:
        # Rounds 2..N: bare, then a fresh service at 32 in flight, then (with "api") the API path one
        # at a time and the emulator's push delay again, so our part has a median and a spread too.
        first = {**ratios(bare, service), **round_our_part(report.get("our_part_ms"))}
        more, failed = [], 0
        for r in range(2, rounds + 1):
            bare_again = bare_model(repository, model, photos, images)
            at_32 = service_at_push_endpoint(stack, model, seeder, images, (32,), {},
                                             f"{model}-benchmark-round-{r}")[32]
            again = api and sequential(api_url, stack.config.project, model, photos, one_at_a_time, headers)
            failed += again["failed"] if again else 0
            part = again and our_part(again, bare_again, bare_one_at_a_time(repository, model))
            more.append({**ratios(bare_again, {32: at_32}), **round_our_part(part)})
        report["rounds"] = steady_ratios(first, more)
        if api:  # predictions of rounds 2..N that did not succeed (the first round's are in api)
            report["rounds"]["api_failed"] = failed
    if "cost" in parts and api and service and 32 in service:
        callback = with_callback(api_url, model, photos, max(3, one_at_a_time // 5), headers, serving)
        report["operations"] = {"with a long poll": api["operations_per_prediction"],
                                "with a callback": callback["operations_per_prediction"],
                                "reconciler_pass": reconciler_pass(units["reconciler"])}
        report["cost"] = cost_per_million(model, api, callback, service, report["service_start_to_ready_s"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="efficientnet-lite0,resnet50")
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--repository", type=Path, default=StackConfig.model_repository)
    parser.add_argument("--first-model-port", type=int, default=StackConfig.first_model_port,
                        help="as given to `make run` (scripts/local_stack.py): where the stack's model "
                             "services answer, in its order of models (for their /metrics)")
    parser.add_argument("--reconcile-port", type=int, default=StackConfig.reconcile_port)
    parser.add_argument("--project", default=StackConfig.project)
    parser.add_argument("--uploads-bucket", default=StackConfig.uploads_bucket)
    parser.add_argument("--images", type=int, default=192, help="images per measured level")
    parser.add_argument("--one-at-a-time", type=int, default=50, help="sequential requests through the API")
    parser.add_argument("--long-polls", type=int, default=200,
                        help="long polls held open while a POST is timed")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="what to measure, comma-separated (default: all): %(default)s")
    parser.add_argument("--levels", default=",".join(map(str, IN_FLIGHT)),
                        help="requests in flight at the push endpoint "
                             "(default: %(default)s; 32 gives the ratios)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate bare and service measurements this many times and print the median "
                             "of each ratio with its spread (the first round is the full measurement)")
    parser.add_argument("--no-peers", action="store_true",
                        help="leave out the peer table (BentoML and Ray Serve beside ours, for the first "
                             "model; peers not installed by scripts/peers/install.sh are listed as missing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    parts = tuple(part for part in args.parts.split(",") if part)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown --parts {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    from scripts.api_keys import client_headers

    reports = []
    for model in args.models.split(","):  # each model's report printed as soon as it is measured
        # The key from INFERENCE_API_KEY, or else the one `make run` wrote to .local/api_key.
        reports += run([model], args.api_url, args.repository, args.project, args.uploads_bucket,
                       args.images, args.one_at_a_time, headers=client_headers(), long_polls=args.long_polls,
                       parts=parts, levels=tuple(int(n) for n in args.levels.split(",")), rounds=args.rounds,
                       first_model_port=args.first_model_port, reconcile_port=args.reconcile_port)
        print_report(reports[-1])
        sys.stdout.flush()
    if not args.no_peers:
        # The peers side by side, after our own figures: the same SavedModel served by BentoML and
        # Ray Serve (installed by scripts/peers/install.sh) and by our model service, one v2 client.
        from scripts.benchmark_peers import format_peer_table, run_peer_benchmark

        model = args.models.split(",")[0]
        print(f"\nThe peers side by side ({model}, {args.rounds} round(s)):", flush=True)
        peers = run_peer_benchmark(model, args.repository, rounds=args.rounds)
        print(format_peer_table(peers))
        reports.append({"model": model, "peers": peers})
    if args.json:
        print(json.dumps(reports))
    return 0


def run(models: list[str], api_url: str, repository: Path, project: str, uploads_bucket: str,
        images: int, one_at_a_time: int, headers: dict | None = None,
        emulator_env: dict[str, str] | None = None, long_polls: int = 200,
        long_poll_seconds: int = 30, parts: tuple[str, ...] = PARTS,
        levels: tuple[int, ...] = IN_FLIGHT, rounds: int = 1, units: dict[str, str] | None = None,
        first_model_port: int = StackConfig.first_model_port,
        reconcile_port: int = StackConfig.reconcile_port) -> list[dict]:
    """Benchmark each model against the running stack; the reports as dicts. units: where the
    stack's API, this model's service and the reconciler answer (by default, where a stack started
    with these ports has them)."""
    # Defaults: the emulators of `make run`.
    emulator_env = emulator_env or {
        "PUBSUB_EMULATOR_HOST": os.environ.get("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
        "FIRESTORE_EMULATOR_HOST": os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086"),
        "STORAGE_EMULATOR_HOST": os.environ.get("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")}
    os.environ.update(emulator_env)
    logs = Path(tempfile.mkdtemp(prefix="benchmark-logs-"))
    stack = LocalStack(StackConfig(project=project, uploads_bucket=uploads_bucket,
                                   model_repository=repository, log_dir=logs,
                                   models=served_models(repository), first_model_port=first_model_port,
                                   reconcile_port=reconcile_port))
    stack.emulator_env = emulator_env
    photos = [photo.read_bytes() for photo in all_samples()]
    return [benchmark(model, stack, api_url, photos, images, one_at_a_time, headers or {}, long_polls,
                      long_poll_seconds, parts, levels, rounds, units) for model in models]


if __name__ == "__main__":
    sys.exit(main())
