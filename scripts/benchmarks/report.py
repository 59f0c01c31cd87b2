"""The printed report of scripts/benchmark_service.py, one model at a time."""

from __future__ import annotations

from inference_contract import billable_operations as ops

from scripts.benchmarks import cost
from scripts.benchmarks.bare import PAUSE_SECONDS

# The targets of issue 23, printed beside what was measured.
OUR_PART_TARGET_MS = 20
CPU_RATIO_TARGET = 1.05
THROUGHPUT_RATIO_TARGET = 0.9


def _table(title: str, headings: list[str], columns: dict, rows: dict[str, str], width: int) -> None:
    """One figure per row, one column per batch size or in-flight level."""
    print(f"{title:<38}" + "  ".join(headings))
    for label, key in rows.items():
        print(f"  {label:<36}" + "  ".join(f"{column[key]:>{width}}" for column in columns.values()))


def print_report(report: dict) -> None:
    model, bare, service = report["model"], report.get("bare"), report.get("service")
    print(f"\n== {model}")
    if bare:
        _table("bare SavedModel (this process)", [f"batch {b:>2}" for b in bare], bare,
               {"images/s": "images_per_s", "CPU ms per image": "cpu_ms_per_image"}, 8)
    if service:
        _table("model service at its push endpoint", [f"{n:>3} in flight" for n in service], service,
               {"images/s": "images_per_s", "worker CPU ms per image": "cpu_ms_per_image",
                "mean batch size": "mean_batch"}, 12)
        for n, v in service.items():
            print(f"  batch sizes at {n:>2} in flight: {v['batch_sizes']}  answers: {v['statuses']}")
        print(f"  process start to ready: {report['service_start_to_ready_s']} s")
    one = report.get("service_max_batch_1_at_32")
    if one:
        print(f"MAX_BATCH_SIZE=1 at 32 in flight: {one['images_per_s']} images/s, "
              f"{one['cpu_ms_per_image']} CPU ms per image")
    api = report.get("api") or {}
    if "total_ms" in api:
        print("whole API path, one at a time (ms)    p50      p95")
        for part in ("total_ms", "upload_ms", "queue_ms", "service_ms"):
            print(f"  {part[:-3]:<36}{api[part]['p50']:>6}  {api[part]['p95']:>7}")
        delay = api["emulator_push_delay_ms"]
        print(f"  of queue, the Pub/Sub emulator's push delay (publish acked to push received, "
              f"its own topic): p50 {delay['p50']}, p95 {delay['p95']}")
        print(f"  16 in flight: {api['in_flight_16_images_per_s']} images/s; failed: {api['failed']}")
    polls = api.get("with_long_polls")
    if polls:
        print(f"  with {polls['long_polls_open']} long polls open: POST {polls['post_ms']} ms, "
              f"GET /v1/models {polls['models_ms']} ms")
    if report.get("our_part_ms"):
        print_our_part(report["our_part_ms"], api.get("steps_mean_ms", {}))
    print("ratios")
    for name, value in report["ratios"].items():
        print(f"  {name:<40}{value}")
    if report.get("rounds"):
        print_rounds(report["rounds"])
    if report.get("operations"):
        print_operations(report["operations"])
    if report.get("cost"):
        print_cost(report["cost"])


def print_our_part(part: dict, steps: dict[str, float]) -> None:
    print(f"our part of the API latency, one at a time (ms; target <= {OUR_PART_TARGET_MS} ms)")
    for label, key in (("upload to succeeded, p50", "total_p50"),
                       ("- bare model, batch 1, one at a time", "bare_batch_1"),
                       ("- the emulator's push delay, p50", "emulator_push_delay_p50"),
                       ("= our part", "ours")):
        print(f"  {label:<36}{part[key]:>8}")
    if "ours_paired" in part:
        # The scratch topic's p50 is of 60 pushes spread over the emulator's 0-100 ms loop, while one
        # at a time the pipeline's own pushes fall at another point of it (phase-locked): the line
        # above moves with that phase. Each prediction's own delivery takes it out: read this one.
        print(f"  paired, per prediction: upload to succeeded less its own delivery (published to "
              f"received; p50 {part['delivery_p50']}), p50 {part['total_less_delivery_p50']}; "
              f"less the bare model = our part {part['ours_paired']} (the one read against the target)")
        print(f"  the bare model at batch 1: one image every {PAUSE_SECONDS} s, p50 by TensorFlow threads "
              f"(0: its default) {part['bare_batch_1_by_threads']}, the faster used; back to back "
              f"{part['bare_batch_1_back_to_back']}, against which the paired figure would be "
              f"{part['ours_paired_back_to_back']}")
    names = {"upload": "upload (while recording)", "record": "record (Firestore create)",
             "publish": "publish", "claim": "claim", "image_read": "image read (while claiming)",
             "finish": "finish"}
    print(f"  of it, the POST (client, p50) {part['post_p50']}; means of each step from /metrics: "
          + (", ".join(f"{names.get(step, step)} {ms}" for step, ms in steps.items()) or "none reported"))


def print_rounds(rounds: dict) -> None:
    print(f"steady ratios over {rounds['rounds']} rounds, bare, service and API path alternating "
          f"(median, spread min-max; targets: CPU <= {CPU_RATIO_TARGET}, "
          f"throughput >= {THROUGHPUT_RATIO_TARGET}, our part <= {OUR_PART_TARGET_MS} ms)")
    for name, figures in rounds["ratios"].items():
        print(f"  {name:<40}{figures['median']}  "
              f"({figures['min']}-{figures['max']}; each: {figures['each']})")
    if "api_failed" in rounds:
        print(f"  predictions of rounds 2-{rounds['rounds']} that did not succeed: {rounds['api_failed']}")


def print_operations(operations: dict) -> None:
    print("billable operations per prediction, counted at /metrics of the API and the model service")
    print(f"  {'':<26}" + "".join(f"{name:>24}" for name in ops.OPERATIONS))
    for flow, figures in operations.items():
        if flow == "reconciler_pass":
            continue
        print(f"  {flow:<26}" + "".join(f"{figures['total'][name]:>24}" for name in ops.OPERATIONS))
    if "reconciler_pass" in operations:
        print(f"  one reconciler pass (fixed, a pass a minute): {operations['reconciler_pass']['total']}")


def print_cost(figures: dict) -> None:
    print(f"cost per million images, USD at list prices read {cost.READ_ON} (Tier 1 region, no free tier)")
    for flow, lines in figures["serverless"].items():
        total = round(sum(lines.values()), 2)
        print(f"  serverless, {flow:<24} {total:>8}  ({', '.join(f'{k} {v}' for k, v in lines.items())})")
    for load, lines in figures["always_on"].items():
        print(f"  {load}:")
        for name, value in lines.items():
            print(f"    {name:<40}{value}")
    print("  prices from:")
    for name, source in cost.PRICE_SOURCES.items():
        print(f"    {name}: {source}")
