"""The local stack's first-run export: the models without a version, exported while the rest starts.

`make run` on a fresh clone has no model to serve: export_model.py --if-missing
writes them into the local repository. It runs beside the emulators' start, and
each model is handed to the stack as soon as its version is in place (the
exporter's "cat: exported version 1 …" or "cat: already exported …" line), so a
model service loads while the next model is still being exported.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .processes import StackError

ROOT = Path(__file__).resolve().parent.parent
# The exporter's lines that say a model's version is in place.
_LANDED = ("exported version", "already exported")


class ModelExport:
    """export_model.py --if-missing for the stack's models, in its own process group."""

    def __init__(self, models: tuple[str, ...], repository: Path,
                 report: Callable[[str], None] = print) -> None:
        self.models = models
        self._report = report
        self._landed: queue.Queue[str | None] = queue.Queue()
        self._output: list[str] = []
        self.started = time.monotonic()
        self.seconds: float | None = None
        self.cpu_seconds: float | None = None
        weights = os.environ.get("RESNET50_WEIGHTS")
        resnet50 = ["--weights", weights] if weights else ["--allow-random-weights"]
        self._process = subprocess.Popen(
            [sys.executable, os.fspath(ROOT / "scripts" / "export_model.py"), *models,
             "--repository", os.fspath(repository), "--if-missing", *resnet50],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            # Its own group: stop() ends the exporter and its measuring processes together.
            start_new_session=True)
        threading.Thread(target=self._read, name="model-export", daemon=True).start()

    def _read(self) -> None:
        """Say each model's lines as they come ("cat: exporting…", "cat: exported version 1 … in
        6.2 s"); TensorFlow's chatter is kept for an error message."""
        for line in self._process.stderr:
            self._output.append(line)
            model, _, said = line.partition(": ")
            if model in self.models or line.startswith("error"):
                self._report(line.rstrip("\n"))
            if model in self.models and said.startswith(_LANDED):
                self._landed.put(model)
        self._landed.put(None)

    def landed(self) -> Iterator[str]:
        """Each model as its version lands, until the exporter is done; then raise if it failed."""
        while (model := self._landed.get()) is not None:
            yield model
        self._finish()

    def _finish(self) -> None:
        # wait4, not Popen.wait: the CPU seconds of the exporter and its measuring processes.
        _, status, usage = os.wait4(self._process.pid, 0)
        self._process.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.monotonic() - self.started
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        if self._process.returncode != 0:
            raise StackError(f"exporting models failed:\n{''.join(self._output).strip()[-2000:]}")

    def stop(self) -> None:
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.wait()

