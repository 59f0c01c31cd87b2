"""The run command itself: it comes up, and a Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulators.processes import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_every_process(tmp_path):
    ports = [str(free_port()) for _ in range(8)]
    argv = [sys.executable, os.fspath(ROOT / "scripts" / "local_stack.py"), "--models", "tiny-test",
            "--repository", os.fspath(tmp_path / "models"), "--log-dir", os.fspath(tmp_path / "logs"),
            "--api-port", ports[0], "--dead-letter-port", ports[1], "--web-port", ports[2],
            "--first-model-port", ports[3], "--pubsub-port", ports[4], "--firestore-port", ports[5],
            "--storage-port", ports[6], "--reconcile-port", ports[7],
            "--state-dir", os.fspath(tmp_path / "state")]
    # Started as a background job of a script would be: with SIGINT ignored.
    stack = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    output: list[str] = []
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while not output or "Ctrl-C stops everything." not in output[-1]:
            line = stack.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(output)
            output.append(line)
        printed = "".join(output)
        # Each export is announced as it starts and when it is done, before the services start.
        assert printed.index("tiny-test: exporting") < printed.index("tiny-test: exported version 1") \
            < printed.index("API: ")
        assert f"API: http://127.0.0.1:{ports[0]}" in printed
        assert f"model tiny-test ready at http://127.0.0.1:{ports[3]}" in printed
        # Where the start-up time went: a line per phase, with its CPU seconds.
        phases = printed.split("where the start-up time went", 1)[1]
        for phase in ("exports", "emulators", "functions (api, dead_letter, reconcile)",
                      "tiny-test model service"):
            assert re.search(rf"^  {re.escape(phase)} +[0-9.]+ → +[0-9.]+ s \([0-9.]+ s, CPU [0-9.]+ s\)",
                             phases, re.MULTILINE), phases
        # Keys are on, as in the cloud, and the development key is printed and kept in a file.
        key = (tmp_path / "state" / "api_key").read_text().strip()
        assert "authentication: on" in printed and f"X-API-Key: {key}" in printed
        started = descendants(stack.pid)
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in started if alive(pid))
        for expected in ("pubsub-emulator", "cloud-firestore-emulator", "fake-gcs-server",
                         "gunicorn", "functions_framework", "static_site"):
            assert expected in commands
        stack.send_signal(signal.SIGINT)
        assert stack.wait(60) == 0
        deadline = time.monotonic() + 10
        while [pid for pid in started if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in started if alive(pid)] == []
    finally:
        # If the stack failed to stop its children, don't leave them to later tests.
        for pid in [stack.pid, *started]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        stack.wait(10)
