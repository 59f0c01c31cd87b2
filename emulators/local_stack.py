"""The whole system on one machine: emulators, the API function, one model service per model.

A library: `make run` starts it through scripts/local_stack.py (its command line);
the integration tests (tests/conftest.py) and scripts/benchmark_service.py start
it in-process. Every service is started with the entrypoint it has in the cloud:
functions-framework for the API and the dead-letter handler, gunicorn for the
model services.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from inference_contract import model_layout

from scripts.package_units import assemble
from scripts.rollouts.models_file import NAME_RE

from .exports import ModelExport
from .processes import (
    ManagedProcess,
    ProcessGroup,
    StackError,
    Supervisor,
    http_status,
    require_commands,
    require_free_port,
)
from .provision import DeliveryPolicy, Route, create_bucket, create_routes
from .startup_times import StartupTimes
from .suite import EmulatorPorts, start_emulators

ROOT = Path(__file__).resolve().parent.parent
_API = "/api"  # self._ready's key for the API (no model name starts with "/")

# efficientnet-lite0, cat and dog carry ImageNet weights converted offline;
# resnet50 is untrained unless RESNET50_WEIGHTS names Keras's ImageNet weights file.
DEFAULT_MODELS = ("efficientnet-lite0", "cat", "dog", "resnet50")


def served_models(repository: Path, built_in: tuple[str, ...] = DEFAULT_MODELS) -> tuple[str, ...]:
    """What `make run` serves: the built-in models, then every other model of the repository.

    Another model is a folder whose name is a model name and that has a complete
    version: one exported with `export_model.py NAME --from PATH` (or copied there).
    """
    found = []
    if Path(repository).is_dir():
        for folder in sorted(Path(repository).iterdir()):
            if (folder.is_dir() and folder.name not in built_in and NAME_RE.match(folder.name)
                    and model_layout.complete_versions(model_layout.local_entries(folder))):
                found.append(folder.name)
    return (*built_in, *found)


@dataclass
class StackConfig:
    models: tuple[str, ...] = DEFAULT_MODELS
    project: str = "local-inference"
    uploads_bucket: str = "local-uploads"
    model_repository: Path = ROOT / ".local" / "model_repository"
    log_dir: Path = ROOT / ".local" / "logs"
    api_port: int = 8080
    dead_letter_port: int = 8081
    reconcile_port: int = 8082
    # Cloud Scheduler calls the reconciler every minute; the local stack does the same.
    reconcile_interval_seconds: float = 60.0
    web_port: int | None = 8000
    first_model_port: int = 8101
    # Explicit ports per model; models not named here count up from first_model_port.
    model_ports: dict[str, int] = field(default_factory=dict)
    emulator_ports: EmulatorPorts = field(default_factory=EmulatorPorts)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    allowed_origins: tuple[str, ...] = ()
    max_image_bytes: int | None = None
    # Per-model environment overrides, e.g. to make one service fail in a test.
    model_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Environment overrides of the three functions (api, dead_letter, reconcile).
    function_env: dict[str, str] = field(default_factory=dict)
    model_ready_timeout: float = 300.0
    # API keys: on, as in the cloud. The development key is written to api_key_file
    # (and its hash to api_keys_file, the API's key store).
    auth_required: bool = True
    api_keys_file: Path = ROOT / ".local" / "api_keys.json"
    api_key_file: Path = ROOT / ".local" / "api_key"
    dev_key_rate_per_minute: int = 6000
    # The Standard Webhooks secret the model services sign callbacks with.
    callback_secret_file: Path = ROOT / ".local" / "callback_signing_secret"
    # Each unit's build context, assembled as Cloud Build assembles it (scripts/package_units.py):
    # the services run from these copies, contract package included.
    units_dir: Path = ROOT / ".local" / "units"
    # Export the models that have no version in model_repository yet (make run), once the
    # prerequisites are checked, while the emulators start; each model's service starts
    # as soon as its version is in place.
    export_missing: bool = False


class LocalStack:
    def __init__(self, config: StackConfig, report=None) -> None:
        self.config = config
        self.group = ProcessGroup()
        self.emulator_env: dict[str, str] = {}
        self.model_processes: dict[str, ManagedProcess] = {}
        self.function_processes: dict[str, ManagedProcess] = {}
        self.emulator_processes: list[ManagedProcess] = []
        self._report = report or (lambda line: print(line, flush=True))
        self.supervisor = Supervisor(self._report)
        # Set when an emulator dies: they stand in for managed services and hold
        # all state, so the stack stops rather than carry on without them.
        self.fatal: StackError | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.api_url = f"http://127.0.0.1:{config.api_port}"
        self.dead_letter_url = f"http://127.0.0.1:{config.dead_letter_port}"
        self.reconcile_url = f"http://127.0.0.1:{config.reconcile_port}"
        self.web_url = f"http://127.0.0.1:{config.web_port}" if config.web_port else None
        self.model_urls = {
            model: f"http://127.0.0.1:{config.model_ports.get(model, config.first_model_port + i)}"
            for i, model in enumerate(config.models)}
        self.api_key: str | None = None
        self.callback_secret: str | None = None
        self._unit_contexts: dict[str, Path] = {}
        # A model (or _API) -> time.monotonic() when its service first answered ready.
        self._ready: dict[str, float] = {}
        # Where the start-up time went, phase by phase (scripts/local_stack.py prints it).
        self.startup = StartupTimes()

    def unit_context(self, unit: str) -> Path:
        """The build context a unit runs from, assembled on first use."""
        if unit not in self._unit_contexts:
            self._unit_contexts[unit] = assemble(unit, self.config.units_dir / unit)
        return self._unit_contexts[unit]

    def _prepare_secrets(self) -> None:
        """The development API key (reused while it is valid) and the callback signing secret."""
        config = self.config
        if config.auth_required:
            self.api_key = development_key(config.api_keys_file, config.api_key_file,
                                           config.dev_key_rate_per_minute)
        self.callback_secret = _read_private(config.callback_secret_file)
        if not self.callback_secret:
            self.callback_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            _write_private(config.callback_secret_file, self.callback_secret)

    @property
    def api_key_id(self) -> str | None:
        """The id of the development key (what its predictions record as their owner)."""
        return self.api_key.split("_")[1] if self.api_key else None

    def headers(self) -> dict[str, str]:
        """What a client of this stack sends: its API key, when keys are on."""
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def check_prerequisites(self) -> None:
        """Fail in one line, before any work, on what would stop the stack later."""
        require_commands("gcloud", "java")
        ports = self.config.emulator_ports
        require_free_port(ports.pubsub, "Pub/Sub emulator")
        require_free_port(ports.firestore, "Firestore emulator")
        require_free_port(ports.storage, "Storage emulator")
        require_free_port(self.config.api_port, "API")
        require_free_port(self.config.dead_letter_port, "dead-letter handler")
        require_free_port(self.config.reconcile_port, "reconciler")
        if self.config.web_port:
            require_free_port(self.config.web_port, "web page")
        for model, url in self.model_urls.items():
            require_free_port(int(url.rsplit(":", 1)[1]), f"{model} model service")

    def _base_env(self) -> dict[str, str]:
        return {**os.environ, **self.emulator_env, "GOOGLE_CLOUD_PROJECT": self.config.project,
                "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}

    def start(self) -> LocalStack:
        config = self.config
        config.log_dir.mkdir(parents=True, exist_ok=True)
        self.startup = StartupTimes()
        self._ready.clear()
        self.check_prerequisites()
        export = (ModelExport(config.models, config.model_repository, self._report)
                  if config.export_missing else None)
        try:
            self._prepare_secrets()
            began = time.monotonic()
            endpoints = start_emulators(self.group, config.project, config.emulator_ports, config.log_dir)
            self.emulator_processes = list(self.group.processes)
            self.startup.add("emulators", began, time.monotonic(),
                             sum(p.cpu_seconds() for p in self.emulator_processes))
            self.emulator_env = endpoints.environment()
            os.environ.update(self.emulator_env)  # for the provisioning clients below
            began = time.monotonic()
            create_bucket(config.uploads_bucket, config.project)
            create_routes(config.project, [
                Route(model, f"{url}/", f"{self.dead_letter_url}/", jobs_endpoint=f"{url}/jobs")
                for model, url in self.model_urls.items()
            ], config.delivery)
            self.startup.add("bucket, topics, subscriptions", began, time.monotonic())
            self._start_functions()
            self._start_web()
            # Each service as its model lands: it loads while the next model is exported.
            for model in export.landed() if export else config.models:
                self._start_model(model)
            if export:
                self.startup.add("exports", export.started, export.started + export.seconds,
                                 export.cpu_seconds, "precision measured in them")
            for model in config.models:  # any the exporter did not name
                self._start_model(model)
            self._wait_for_api()
        except BaseException:
            if export:
                export.stop()
            self.stop()
            raise
        for process in self.group.processes:
            if process not in self.emulator_processes:
                self.supervisor.watch(process)
        self._watcher = threading.Thread(target=self._watch, name="stack-watcher", daemon=True)
        self._watcher.start()
        threading.Thread(target=self._schedule_reconciler, name="local-scheduler", daemon=True).start()
        return self

    def _watch(self) -> None:
        """Restart what dies, like Cloud Run; an emulator's death is fatal."""
        while not self._stopping.wait(0.5):
            dead = [p for p in self.emulator_processes if p.exit_code is not None]
            if dead:
                self.fatal = StackError(f"{dead[0].name} exited with code {dead[0].exit_code}"
                                        f" (log: {dead[0].log_path})\n{dead[0].log_tail()}")
                return
            self.supervisor.check()

    def _schedule_reconciler(self) -> None:
        """The local Cloud Scheduler: POST to the reconcile function every interval."""
        failing = False
        while not self._stopping.wait(self.config.reconcile_interval_seconds):
            request = urllib.request.Request(f"{self.reconcile_url}/", data=b"", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=120):
                    pass
                failing = False
            except (urllib.error.URLError, OSError) as error:
                if not failing:  # once per outage, not every minute
                    self._report(f"the reconciler could not be called: {error}")
                failing = True

    def _start_model(self, model: str) -> None:
        if model in self.model_urls and model not in self.model_processes:
            process = self.model_processes[model] = self.start_model_service(
                model, int(self.model_urls[model].rsplit(":", 1)[1]), self.config.model_env.get(model, {}))
            self._note_ready(model, f"{model} model service", [process], f"{self.model_urls[model]}/healthz")

    def _note_ready(self, key: str, phase: str, processes: list[ManagedProcess], url: str) -> None:
        """In the background, while the stack goes on starting: record when url first answers
        200 (in self._ready[key]) and the start-up phase of processes until then, with their
        CPU seconds. wait_for_models and _wait_for_api wait on it (and fail on a process that
        exits); a process the supervisor restarts meanwhile is still watched."""
        def watch() -> None:
            while not self._stopping.is_set():
                if http_status(url, timeout=1.0) == 200:
                    self.startup.add(phase, processes[0].started_at, time.monotonic(),
                                     sum(p.cpu_seconds() for p in processes), "process start to ready")
                    self._ready[key] = time.monotonic()
                    return
                time.sleep(0.1)

        threading.Thread(target=watch, name=f"{key}-ready", daemon=True).start()

    def start_model_service(self, model: str, port: int, extra_env: dict[str, str] | None = None,
                            label: str | None = None) -> ManagedProcess:
        """One model service under gunicorn, exactly as its Cloud Run container starts it."""
        label = label or model
        env = {**self._base_env(), "MODEL_NAME": model,
               "MODEL_REPOSITORY": os.fspath(self.config.model_repository),
               "PORT": str(port),
               # The callback receivers of local tools and tests run on this machine.
               "CALLBACK_ALLOW_LOOPBACK": "true",
               "CALLBACK_SIGNING_SECRET": self.callback_secret or "",
               # One core per model call and a call per core (model_service/batcher.py): the
               # cores run batches side by side. Set in the environment, they win.
               "MODEL_THREADS": os.environ.get("MODEL_THREADS", "1"),
               "CONCURRENT_BATCHES": os.environ.get("CONCURRENT_BATCHES", str(os.cpu_count() or 1)),
               **(extra_env or {})}
        return self.group.start(ManagedProcess(
            f"{label} model service",
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "main:app"],
            env=env, cwd=self.unit_context("model-service"),
            log_path=self.config.log_dir / f"model-{label}.log"))

    def _start_functions(self) -> None:
        env = {**self._base_env(), "UPLOADS_BUCKET": self.config.uploads_bucket,
               "MODELS": ",".join(self.config.models), "CALLBACK_ALLOW_HTTP": "true",
               # Loopback receivers only; every other private range stays refused.
               "CALLBACK_ALLOW_LOOPBACK": "true",
               "AUTH_REQUIRED": "true" if self.config.auth_required else "false",
               "API_KEYS_FILE": os.fspath(self.config.api_keys_file),
               # The file is re-read only when it changes: no cache needed, so a
               # revocation with scripts/api_keys.py takes effect at once here.
               "API_KEY_CACHE_SECONDS": "0",
               "ALLOWED_ORIGINS": ",".join(self.allowed_origins()),
               # A long poll holds a thread (and a listener to its document) while it
               # waits; leave room for many.
               "THREADS": "256",
               # GET /metrics on each function (Prometheus text), like the model services'.
               "EXPOSE_METRICS": "true",
               # The dead-letter handler and the reconciler fail a prediction after as
               # many real attempts as the subscription allows deliveries.
               "MAX_DELIVERY_ATTEMPTS": str(self.config.delivery.max_delivery_attempts),
               **self.config.function_env}
        if self.config.max_image_bytes:
            env["MAX_IMAGE_BYTES"] = str(self.config.max_image_bytes)
        for target, port in (("api", self.config.api_port), ("dead_letter", self.config.dead_letter_port),
                             ("reconcile", self.config.reconcile_port)):
            self.function_processes[target] = self.group.start(ManagedProcess(
                f"{target} function",
                [sys.executable, "-m", "functions_framework", "--source", "main.py",
                 "--target", target, "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=self.unit_context("function"),
                log_path=self.config.log_dir / f"function-{target}.log"))
        self._note_ready(_API, "functions (api, dead_letter, reconcile)",
                         list(self.function_processes.values()), f"{self.api_url}/healthz")

    def _wait_for_api(self) -> None:
        api = self.function_processes["api"]
        api.wait_until(lambda: _API in self._ready, 60, f"ready at {self.api_url}/healthz")

    def allowed_origins(self) -> tuple[str, ...]:
        local_page = (self.web_url, self.web_url.replace("127.0.0.1", "localhost")) if self.web_url else ()
        return (*local_page, *self.config.allowed_origins)

    def _start_web(self) -> None:
        if not self.web_url:
            return
        site = self.group.start(ManagedProcess(
            "web page", [sys.executable, os.fspath(ROOT / "scripts" / "static_site.py"),
                         "--port", str(self.config.web_port), "--api-base-url", self.api_url],
            log_path=self.config.log_dir / "web.log"))
        site.wait_http(f"{self.web_url}/config.js", 30)

    def wait_for_models(self) -> dict[str, float]:
        """Seconds until each model service reported ready, in the order they did; each one's
        start to ready, and its CPU seconds then, go to self.startup."""
        started = time.monotonic()
        while pending := [model for model in self.model_processes if model not in self._ready]:
            for model in pending:
                what = f"ready at {self.model_urls[model]}/healthz"
                self.model_processes[model].check_running(what)
                if time.monotonic() - started > self.config.model_ready_timeout:
                    raise self.model_processes[model].not_ready(what, self.config.model_ready_timeout)
            time.sleep(0.1)
        return {model: max(0.0, self._ready[model] - started)
                for model in sorted(self.model_processes, key=self._ready.get)}

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher and self._watcher is not threading.current_thread():
            self._watcher.join(5)  # no restart may race the shutdown
        self.group.stop_all()


def _read_private(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text + "\n")


def development_key(keys_file: Path, key_file: Path, rate_per_minute: int) -> str:
    """The key in key_file if the key store still accepts it, else a new one written there."""
    from prediction_api.auth import Authenticator, FileKeyStore, new_key
    from prediction_api.errors import Unauthorized

    store = FileKeyStore(keys_file)
    existing = _read_private(key_file)
    if existing:
        try:
            Authenticator(store).authenticate(existing)
            return existing
        except Unauthorized:
            pass
    plaintext, record = new_key("local development", rate_per_minute)
    store.put(record)
    _write_private(key_file, plaintext)
    return plaintext

