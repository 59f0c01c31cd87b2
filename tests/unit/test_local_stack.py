"""The run command's one-line answers to what would stop the stack, and its process handling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulators.processes import (
    ManagedProcess,
    ProcessGroup,
    StackError,
    Supervisor,
    free_port,
    require_commands,
)

ROOT = Path(__file__).resolve().parents[2]


def run_stack(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # Free ports everywhere, so a stack already running here doesn't change the answer.
    ports = {flag: str(free_port()) for flag in (
        "--api-port", "--dead-letter-port", "--web-port", "--first-model-port",
        "--pubsub-port", "--firestore-port", "--storage-port")}
    ports.update(zip(args[::2], args[1::2], strict=True))
    argv = [item for pair in ports.items() for item in pair]
    return subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "local_stack.py"),
                           "--models", "tiny-test", *argv],
                          capture_output=True, text=True, timeout=60, env=env)


def test_busy_port_is_one_line_naming_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_stack("--api-port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: port {port} (API) is already in use on 127.0.0.1; " \
                                    "stop what holds it or choose another port"
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_gcloud_is_one_line(tmp_path):
    # A PATH with python and nothing else: no gcloud, no java.
    (tmp_path / "python3").symlink_to(sys.executable)
    result = run_stack(env={**os.environ, "PATH": os.fspath(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: gcloud not found on PATH: install the Google Cloud CLI "
                     "with the Pub/Sub and Firestore emulators"]


def test_missing_java_is_named(monkeypatch, tmp_path):
    gcloud = tmp_path / "gcloud"
    gcloud.write_text("#!/bin/sh\n")
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", os.fspath(tmp_path))
    with pytest.raises(StackError, match="^java not found on PATH: the Pub/Sub and Firestore emulators"):
        require_commands("gcloud", "java")


def test_stopping_a_group_kills_grandchildren(tmp_path):
    marker = tmp_path / "child.pid"
    # A shell that starts a long-lived child, like gcloud starting Java.
    script = f"sleep 300 & echo $! > {marker}; wait"
    group = ProcessGroup()
    process = group.start(ManagedProcess("sleeper", ["bash", "-c", script], log_path=tmp_path / "log"))
    process.wait_until(marker.exists, 10, "started")
    time.sleep(0.1)
    child = int(marker.read_text())
    group.stop_all()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild outlived the group")


def test_a_process_that_dies_is_reported_with_its_log(tmp_path):
    process = ManagedProcess("doomed", ["bash", "-c", "echo cannot start; exit 3"],
                             log_path=tmp_path / "doomed.log").start()
    with pytest.raises(StackError, match="doomed exited with code 3") as raised:
        process.wait_http(f"http://127.0.0.1:{free_port()}/", 10)
    assert "cannot start" in str(raised.value)


def test_supervisor_restarts_a_dead_process_with_backoff_and_says_so(tmp_path):
    starts = tmp_path / "starts"
    # Dies at once, leaving one line per start.
    process = ManagedProcess("flaky model service", ["bash", "-c", f"echo x >> {starts}; exit 3"],
                             log_path=tmp_path / "flaky.log").start()
    now = [0.0]
    said: list[str] = []
    supervisor = Supervisor(said.append, first_delay=1, max_delay=4, stable_after=60, clock=lambda: now[0])
    supervisor.watch(process)

    def step(seconds: float) -> None:
        now[0] += seconds
        process.process.wait(5)  # let it die before the supervisor looks
        supervisor.check()

    step(0)
    assert said == ["flaky model service exited with code 3; restarting in 1 s "
                    f"(restart 1 in a row; log: {tmp_path / 'flaky.log'})"]
    def started() -> int:
        process.process.wait(5)
        return len(starts.read_text().splitlines())

    step(0.5)
    assert started() == 1  # not yet: the delay has not passed
    step(0.5)
    assert started() == 2  # restarted
    step(0)
    assert "restarting in 2 s (restart 2 in a row" in said[-1]
    step(2)
    step(0)
    assert "restarting in 4 s (restart 3 in a row" in said[-1]
    step(4)
    step(0)
    assert "restarting in 4 s (restart 4 in a row" in said[-1]  # capped
    # Up for longer than stable_after: the next death starts the backoff afresh.
    step(4)
    now[0] += 61
    step(0)
    assert "restarting in 1 s (restart 1 in a row" in said[-1]
    assert len(said) == 5


def test_the_development_key_is_made_once_kept_private_and_replaced_when_revoked(tmp_path):
    from prediction_api.auth import Authenticator, FileKeyStore, revoke

    from emulators.local_stack import development_key

    keys, key_file = tmp_path / "state" / "api_keys.json", tmp_path / "state" / "api_key"
    first = development_key(keys, key_file, 6000)
    assert key_file.read_text().strip() == first and key_file.stat().st_mode & 0o777 == 0o600
    assert first not in keys.read_text()
    assert Authenticator(FileKeyStore(keys)).authenticate(first).rate_per_minute == 6000
    assert development_key(keys, key_file, 6000) == first  # a second `make run` keeps it
    revoke(FileKeyStore(keys), first.split("_")[1])
    second = development_key(keys, key_file, 6000)
    assert second != first and key_file.read_text().strip() == second


def test_make_run_serves_every_model_of_the_repository(tmp_path):
    from emulators.local_stack import DEFAULT_MODELS, served_models

    for folder, files in {"mine/1": ["saved_model.pb", "model.json"], "cat/1": ["saved_model.pb"],
                          "half-done/1": ["model.json"], "Not_A_Name/1": ["saved_model.pb"],
                          "another/2": ["saved_model.pb"]}.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in files:
            (tmp_path / folder / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a model")
    assert served_models(tmp_path) == (*DEFAULT_MODELS, "another", "mine")
    assert served_models(tmp_path / "absent") == DEFAULT_MODELS


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    # An ephemeral port can be taken as the source port of any outgoing connection
    # before the stack binds it; ports below the range can't.
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < floor for port in ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", ports[0]))
