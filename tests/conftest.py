"""One local stack per test session, on the real emulators, shared by integration and browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS = ("tiny-test", "efficientnet-lite0", "cat", "dog")
# A copy of tiny-test served by a service whose Cloud Storage is unreachable: every
# delivery fails, so its messages must end in the dead-letter handler.
BROKEN_MODEL = "broken"
# A model of a user's own (tests/own_models.py), exported with `export_model.py NAME --from`
# and served because it is in the repository, as `make run` serves one.
OWN_MODEL = "mean-colour"


def _missing_tools() -> list[str]:
    return [tool for tool in ("gcloud", "java") if shutil.which(tool) is None]


def export_test_models(repository: Path) -> None:
    # float32 without measuring: the choice itself is tested once, in test_models.py.
    subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "export_model.py"), *TEST_MODELS,
                    "--repository", os.fspath(repository), "--precision", "float32"],
                   check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shutil.copytree(repository / "tiny-test" / "1", repository / BROKEN_MODEL / "1")
    from tests.own_models import mean_colour_model, save, write_labels

    own = repository.parent / "own"
    own.mkdir()
    subprocess.run([sys.executable, os.fspath(ROOT / "scripts" / "export_model.py"), OWN_MODEL,
                    "--from", os.fspath(save(mean_colour_model(), own)), "--labels",
                    os.fspath(write_labels(own)), "--scale", "unit",
                    "--repository", os.fspath(repository), "--precision", "float32"],
                   check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# requests (the callback notifier) honours these; the emulators are on 127.0.0.1.


# What the stack's supervisor and scheduler said, one line each, as `make run` prints them.
stack_reports: list[str] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    missing = _missing_tools()
    if missing:
        pytest.skip(f"the emulators need {' and '.join(missing)}, which is not installed")
    from emulators.local_stack import LocalStack, StackConfig, served_models
    from emulators.processes import free_port
    from emulators.provision import DeliveryPolicy
    from emulators.suite import EmulatorPorts

    base = tmp_path_factory.mktemp("stack")
    # Logs of this session only: tests read them, and a previous run's lines would mislead.
    shutil.rmtree(ROOT / "test-artifacts" / "logs", ignore_errors=True)
    repository = base / "model_repository"
    export_test_models(repository)
    # As `make run` finds them: the named models, then every other model of the repository.
    models = served_models(repository, TEST_MODELS)
    assert models == (*TEST_MODELS, BROKEN_MODEL, OWN_MODEL), models
    ports = [free_port() for _ in range(7 + len(models))]
    config = StackConfig(
        models=models,
        project="test-project",
        uploads_bucket="test-uploads",
        model_repository=repository,
        log_dir=ROOT / "test-artifacts" / "logs",
        api_port=ports[0], dead_letter_port=ports[1], web_port=ports[2],
        emulator_ports=EmulatorPorts(pubsub=ports[3], firestore=ports[4], storage=ports[5]),
        reconcile_port=ports[6],
        model_ports=dict(zip(models, ports[7:], strict=True)),
        # The reconciler on a short schedule, so that the tests of what it rescues run in seconds.
        reconcile_interval_seconds=2,
        # The fuzzing makes up callback hosts: the API accepts callbacks to this machine
        # only, so no test ever calls out.
        # Image URLs likewise (the address rules apply first: refusals still name them).
        function_env={"REDELIVER_AFTER_SECONDS": "5", "CALLBACK_ALLOWED_HOSTS": "127.0.0.1,localhost",
                      "IMAGE_URL_ALLOWED_HOSTS": "127.0.0.1,localhost",
                      # Bulk jobs of tens of images in several shards (tests/integration/test_jobs.py).
                      "JOB_SHARD_SIZE": "5"},
        delivery=DeliveryPolicy(ack_deadline_seconds=20, max_delivery_attempts=5,
                                minimum_backoff_seconds=1, maximum_backoff_seconds=2),
        model_env={BROKEN_MODEL: {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",
                                  "STORAGE_TIMEOUT_SECONDS": "1"}},
        model_ready_timeout=240,
        # API keys on, as in the cloud and in `make run`; the state files stay in the test's folder.
        api_keys_file=base / "api_keys.json", api_key_file=base / "api_key",
        callback_secret_file=base / "callback_signing_secret",
        units_dir=base / "units",
    )
    local = LocalStack(config, report=stack_reports.append).start()
    from tests.integration import client

    client.HEADERS.clear()
    client.HEADERS.update(local.headers())
    try:
        local.wait_for_models()
        yield local
    finally:
        local.stop()


def pytest_collection_modifyitems(items):
    """Tests marked runs_last go after every other test of the session (a stable sort).

    The Schemathesis run leaves predictions whose made-up callback URLs the
    reconciler keeps retrying by republishing, which tests that watch a topic
    for stray messages would see.
    """
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)
