"""Starts the Pub/Sub, Firestore and Cloud Storage emulators and says how to reach them."""

from __future__ import annotations

import sys
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


def start_emulators(group: ProcessGroup, project: str, ports: EmulatorPorts, log_dir: Path,
                    timeout: float = 120.0) -> EmulatorEndpoints:
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
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", host,
         "--port", str(ports.storage), "--in-memory", "--quiet"],
        log_path=log_dir / "storage-emulator.log"))
    pubsub.wait_http(f"http://{host}:{ports.pubsub}/", timeout)
    firestore.wait_http(f"http://{host}:{ports.firestore}/", timeout)
    storage.wait_http(f"http://{host}:{ports.storage}/storage/v1/b?project={project}", timeout)
    return EmulatorEndpoints(f"{host}:{ports.pubsub}", f"{host}:{ports.firestore}", f"{host}:{ports.storage}")
