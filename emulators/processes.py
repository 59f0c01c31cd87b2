"""Child processes that start in their own process group and stop with all their children.

gcloud's emulator commands start Java as a grandchild; killing the whole group
is what leaves no orphaned Java or Python process behind.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A problem starting the local stack, worded for the person running it."""


def require_commands(*commands: str) -> None:
    hints = {
        "gcloud": "install the Google Cloud CLI with the Pub/Sub and Firestore emulators",
        "java": "the Pub/Sub and Firestore emulators need Java 11 or newer",
    }
    for command in commands:
        if shutil.which(command) is None:
            raise StackError(f"{command} not found on PATH: {hints.get(command, 'install it')}")


def require_free_port(port: int, purpose: str, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise StackError(f"port {port} ({purpose}) is already in use on {host}; "
                             "stop what holds it or choose another port") from None


_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    """The lowest port the kernel gives to outgoing connections (Linux: 32768 unless tuned)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the ephemeral range, not handed out before by this process.

    A port the kernel picked (bind to 0) is an ephemeral one: until a server binds it,
    any outgoing connection on the machine may take it as its source port, which made
    a stack started under load fail with "Address already in use". Ports below the
    range are only taken by someone binding them on purpose.
    """
    ceiling = _ephemeral_floor()
    floor = max(1024, ceiling - 12000)
    for _ in range(200):
        port = random.randrange(floor, ceiling)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StackError(f"no free port found between {floor} and {ceiling}")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def gunicorn_worker_pid(port: int) -> int | None:
    """The worker of the gunicorn master bound to this port (the master's child running the app)."""
    bound = f"127.0.0.1:{port}"
    parents: dict[int, int] = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            if b"gunicorn" not in b" ".join(argv) or bound.encode() not in argv:
                continue
            stat = (cmdline.parent / "stat").read_text()
        except OSError:
            continue
        parents[int(cmdline.parent.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    workers = [pid for pid, parent in parents.items() if parent in parents]
    return workers[0] if workers else None


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(group: int) -> float:
    """CPU time used so far by the processes of a process group, with their waited-for
    children's (gcloud's Java, gunicorn's worker), from /proc."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class ManagedProcess:
    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None, log_path: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.started_at: float | None = None  # time.monotonic() of the last start

    def start(self) -> ManagedProcess:
        self.started_at = time.monotonic()
        output = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise StackError(f"{self.name}: command not found: {self.argv[0]}") from None
        finally:
            if self.log_path:
                output.close()
        return self

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def cpu_seconds(self) -> float:
        """CPU time of the process and every process of its group (it leads a group of its own)."""
        return group_cpu_seconds(self.process.pid) if self.process else 0.0

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ready() until true; fail fast if the process dies. Returns seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.check_running(what)
            if ready():
                return time.monotonic() - started
            time.sleep(0.2)
        raise self.not_ready(what, timeout)

    def check_running(self, what: str) -> None:
        """Raise if the process has exited before what (e.g. "ready at URL")."""
        if self.exit_code is not None:
            raise StackError(f"{self.name} exited with code {self.exit_code} before {what}"
                             f" (log: {self.log_path})\n{self.log_tail()}")

    def not_ready(self, what: str, timeout: float) -> StackError:
        return StackError(f"{self.name} did not become {what} within {timeout:.0f} s (log: {self.log_path})")

    def wait_http(self, url: str, timeout: float, status: int = 200) -> float:
        return self.wait_until(lambda: http_status(url) == status, timeout, f"ready at {url}")

    def stop(self, grace: float = 10.0) -> None:
        if not self.process:
            return
        if self.process.poll() is not None:
            self._kill_leftovers()  # a dead leader can leave children holding its port
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        # The leader may be gone while Java children linger in its group.
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self) -> ManagedProcess:
        self.stop()
        return self.start()


class Supervisor:
    """Restarts processes that die, with backoff, as Cloud Run replaces a crashed instance.

    Each restart is announced in one line. A process that stayed up for
    `stable_after` seconds starts its backoff afresh.
    """

    def __init__(self, report: Callable[[str], None], first_delay: float = 1.0, max_delay: float = 30.0,
                 stable_after: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._stable_after = stable_after
        self._clock = clock
        self._watched: dict[str, _Watch] = {}

    def watch(self, process: ManagedProcess) -> None:
        self._watched[process.name] = _Watch(process, started_at=self._clock())

    def forget(self, process: ManagedProcess) -> None:
        self._watched.pop(process.name, None)

    def check(self) -> None:
        """Notice deaths and run the restarts that are due; called about once a second."""
        now = self._clock()
        for watch in list(self._watched.values()):
            process = watch.process
            if watch.restart_at is None:
                code = process.exit_code
                if code is None:
                    continue
                if now - watch.started_at >= self._stable_after:
                    watch.failures = 0
                delay = min(self._first_delay * 2 ** watch.failures, self._max_delay)
                watch.failures += 1
                watch.restart_at = now + delay
                self._report(f"{process.name} exited with code {code}; restarting in {delay:.0f} s "
                             f"(restart {watch.failures} in a row; log: {process.log_path})")
            elif now >= watch.restart_at:
                watch.restart_at = None
                watch.started_at = now
                try:
                    process.restart()
                except StackError as error:  # counted as another death on the next check
                    self._report(f"{process.name} could not be restarted: {error}")


class _Watch:
    def __init__(self, process: ManagedProcess, started_at: float) -> None:
        self.process = process
        self.started_at = started_at
        self.failures = 0
        self.restart_at: float | None = None


class ProcessGroup:
    """Processes that stop together, last started first."""

    def __init__(self) -> None:
        self.processes: list[ManagedProcess] = []

    def start(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process.start())
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
