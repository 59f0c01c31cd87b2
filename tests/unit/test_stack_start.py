"""The local stack's start: the export handed over model by model, and where the time went."""

from __future__ import annotations

import sys

import pytest

from emulators.exports import ModelExport
from emulators.processes import ManagedProcess, StackError
from emulators.startup_times import StartupTimes


def test_each_phase_is_one_line_in_order_of_start_with_its_cpu_seconds():
    times = StartupTimes(origin=100.0)
    times.add("cat model service", 112.0, 116.5, 5.25, "process start to ready")
    times.add("emulators", 100.5, 110.0, 6.0)
    times.add("bucket, topics, subscriptions", 110.0, 111.0)
    lines = times.lines()
    assert [line.split()[0] for line in lines] == ["emulators", "bucket,", "cat"]
    assert "0.5 →  10.0 s (9.5 s, CPU 6.0 s)" in lines[0]
    assert lines[1].endswith("(1.0 s)")  # no CPU figure where none was taken
    assert lines[2].endswith("12.0 →  16.5 s (4.5 s, CPU 5.2 s); process start to ready")


def test_a_process_group_cpu_time_counts_its_children(tmp_path):
    # A shell whose child burns about half a CPU second, as gcloud's Java or gunicorn's worker.
    burn = (f"{sys.executable} -c 'import time; end = time.process_time() + 0.5\n"
            "while time.process_time() < end: pass'")
    process = ManagedProcess("burner", ["bash", "-c", f"{burn} & wait; sleep 30"],
                             log_path=tmp_path / "burner.log").start()
    try:
        process.wait_until(lambda: process.cpu_seconds() >= 0.4, 20, "half a CPU second in")
        assert process.started_at is not None
    finally:
        process.stop()


def test_the_export_hands_over_a_model_already_in_the_repository(tmp_path):
    version = tmp_path / "tiny-test" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")  # complete, as far as --if-missing looks
    said: list[str] = []
    export = ModelExport(("tiny-test",), tmp_path, said.append)
    assert list(export.landed()) == ["tiny-test"]
    assert said == [f"tiny-test: already exported under {tmp_path}/tiny-test"]
    assert export.seconds > 0 and export.cpu_seconds > 0


def test_a_failed_export_stops_the_start_with_the_exporter_s_words(tmp_path):
    export = ModelExport(("not-in-catalog",), tmp_path, lambda _line: None)
    with pytest.raises(StackError, match="exporting models failed:\n.*not-in-catalog: not in the catalog"):
        list(export.landed())
