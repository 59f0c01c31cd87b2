"""The peer benchmark's own arithmetic: a process tree's CPU from /proc, and the targets it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from scripts.benchmark_peers import format_peer_table, process_tree, tree_cpu_seconds


def test_a_process_trees_cpu_counts_a_child_that_already_ended():
    # The shell runs a child that burns CPU, reaps it, then waits: the child's CPU is still the tree's.
    burn = (f"{sys.executable} -c 'import time; end = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass'")
    shell = subprocess.Popen(["sh", "-c", f"{burn}; echo done; sleep 30"], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert shell.stdout.readline() == "done\n"
        assert process_tree(shell.pid)[0] == shell.pid
        assert tree_cpu_seconds(shell.pid) >= 0.3
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its sleep
        shell.wait()


def test_a_running_child_is_part_of_the_tree():
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(process_tree(shell.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(process_tree(shell.pid)) == 2
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its sleep
        shell.wait()


def _row(server: str, in_flight: int, images_per_s: float) -> dict:
    return {"server": server, "in_flight": in_flight, "rounds": 1, "images_per_s": images_per_s,
            "images_per_s_spread": [images_per_s, images_per_s], "p50_ms": 10.0, "p95_ms": 20.0,
            "cpu_ms_per_image": 30.0,
            "cpu_ms_per_image_by_process": {"python gunicorn": 30.0}, "mean_batch": 1.0, "errors": 0,
            "first_error": None,
            "start_to_ready_s": 5.0,
            "rss_mib": 900.0, "differing_answers": 0}


def test_the_table_says_whether_ours_meets_the_targets_against_the_best_peer():
    rows = [_row("ours", 1, 19.0), _row("bentoml", 1, 20.0), _row("ray", 1, 30.0),
            _row("ours", 32, 50.0), _row("bentoml", 32, 40.0), _row("ray", 32, 49.0),
            {"server": "other", "missing": "other is not installed"}]
    table = format_peer_table(rows)
    assert "at 32 in flight: ours 50.0 images/s, best peer ray 49.0: 1.02x (target >= 1.00: met)" in table
    assert "at  1 in flight: ours 19.0 images/s, best peer ray 30.0: 0.63x (target >= 0.90: NOT met)" in table
    assert "other    other is not installed" in table
