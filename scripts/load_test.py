"""A bounded Locust load test of the running stack, its check, and a plot.

    make run                                    # in one terminal
    .venv/bin/python scripts/load_test.py       # ramp 2, 4, ... 32 users, 20 s a step
    .venv/bin/python scripts/load_test.py --steps 16 --step-seconds 120   # one step: 16 users for 2 minutes

It runs Locust headless (scripts/locustfile.py: submit an image, long-poll its
result) in steps of --step-users users, each held --step-seconds, so the run is
bounded by steps x step-seconds; Locust writes its CSV and HTML reports under
--out. Afterwards it checks that every request got an answer (202, or 429/503
with Retry-After) and that every accepted prediction became final (waiting up
to --settle seconds), and it draws completed flows per second and the flow's
p95 against the number of users into --plot. Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from inference_contract.predictions import FINAL_STATUSES

ROOT = Path(__file__).resolve().parent.parent

def run_locust(host: str, users: int, seconds: int, out: Path, accepted_log: Path, model: str) -> dict:
    """One step: `users` users for `seconds` s; the flow's figures from Locust's CSV."""
    prefix = out / f"users-{users:03d}"
    env = {**os.environ, "LOAD_MODEL": model, "LOAD_ACCEPTED_LOG": os.fspath(accepted_log)}
    subprocess.run([sys.executable, "-m", "locust", "-f", os.fspath(ROOT / "scripts" / "locustfile.py"),
                    "--host", host, "--headless", "-u", str(users), "-r", str(max(1, users)),
                    "-t", f"{seconds}s", "--stop-timeout", "30", "--csv", os.fspath(prefix),
                    "--html", os.fspath(prefix) + ".html", "--only-summary", "--loglevel", "WARNING"],
                   check=False, env=env, stdout=subprocess.DEVNULL,
                   stderr=open(f"{prefix}.log", "w"))  # Locust's own summary tables
    rows = {row["Name"]: row for row in csv.DictReader(open(f"{prefix}_stats.csv"))}
    flow, post = rows.get("submit and wait", {}), rows.get("POST /v1/models/{model}/predictions", {})
    failures = {row["Name"]: int(row["Failure Count"]) for row in rows.values()
                if row["Name"] != "Aggregated"}
    return {
        "users": users,
        "flows_per_s": round(float(flow.get("Request Count", 0)) / seconds, 2),
        "flow_p50_ms": float(flow.get("50%", 0) or 0), "flow_p95_ms": float(flow.get("95%", 0) or 0),
        "post_p95_ms": float(post.get("95%", 0) or 0),
        "requests": sum(int(row["Request Count"]) for n, row in rows.items()
                        if n not in ("Aggregated", "submit and wait")),
        "failures": failures,
    }


def unfinished(api_url: str, ids: list[str], settle: float, headers: dict) -> list[str]:
    deadline = time.monotonic() + settle
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        pending = [i for i in pending
                   if requests.get(f"{api_url}/v1/predictions/{i}", headers=headers,
                                   timeout=30).json()["status"] not in FINAL_STATUSES]
        if pending:
            time.sleep(2)
    return pending


def plot(steps: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = [s["users"] for s in steps]
    figure, throughput = plt.subplots(figsize=(7, 4))
    throughput.plot(users, [s["flows_per_s"] for s in steps], "o-", color="tab:blue")
    throughput.set_xlabel("concurrent users (each submits an image, then waits for its result)")
    throughput.set_ylabel("completed predictions / s", color="tab:blue")
    latency = throughput.twinx()
    latency.plot(users, [s["flow_p95_ms"] / 1000 for s in steps], "s--", color="tab:red")
    latency.set_ylabel("p95 upload-to-result (s)", color="tab:red")
    throughput.set_ylim(bottom=0)
    latency.set_ylim(bottom=0)
    throughput.set_title("Local stack under Locust: throughput and p95 against users")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="http://127.0.0.1:8080")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--step-users", type=int, default=2, help="users added per step")
    parser.add_argument("--steps", type=int, default=16, help="highest user count is steps x step-users")
    parser.add_argument("--step-seconds", type=int, default=20)
    parser.add_argument("--settle", type=float, default=180,
                        help="seconds accepted predictions may take to end")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "load-test")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "load-test.png")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    accepted_log = args.out / "accepted.txt"
    accepted_log.write_text("")
    from scripts.api_keys import client_headers

    # The key from INFERENCE_API_KEY, or else the one `make run` wrote to .local/api_key;
    # the Locust processes get it through INFERENCE_API_KEY.
    headers = client_headers()
    if headers:
        os.environ["INFERENCE_API_KEY"] = headers["X-API-Key"]
    levels = [args.step_users * n for n in range(1, args.steps + 1)]
    steps = []
    for users in levels:
        steps.append(run_locust(args.host, users, args.step_seconds, args.out, accepted_log, args.model))
        print(json.dumps(steps[-1]), flush=True)
    ids = accepted_log.read_text().split()
    left = unfinished(args.host, ids, args.settle, headers)
    failed_requests = sum(sum(s["failures"].values()) for s in steps)
    plot(steps, args.plot)
    summary = {"accepted": len(ids), "not_final": len(left), "failed_requests": failed_requests,
               "peak_flows_per_s": max(s["flows_per_s"] for s in steps), "plot": os.fspath(args.plot),
               "reports": os.fspath(args.out)}
    print(json.dumps(summary), flush=True)
    return 0 if not left and not failed_requests else 1


if __name__ == "__main__":
    sys.exit(main())
