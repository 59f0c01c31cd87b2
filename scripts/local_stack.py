"""The whole system on one machine: `make run`. The stack itself is emulators/local_stack.py.

    python scripts/local_stack.py                # what `make run` runs: every model of the repository
    python scripts/local_stack.py --models resnet50,cat --api-port 9080

Every service is started with the entrypoint it has in the cloud: functions-framework
for the API and the dead-letter handler, gunicorn for the model services.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from emulators.local_stack import DEFAULT_MODELS, ROOT, LocalStack, StackConfig, served_models
from emulators.processes import StackError
from emulators.suite import EmulatorPorts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models",
                        help=f"comma-separated models to serve (default: {','.join(DEFAULT_MODELS)}, "
                             "then every other model with a version in --repository)")
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--dead-letter-port", type=int, default=8081)
    parser.add_argument("--reconcile-port", type=int, default=StackConfig.reconcile_port)
    parser.add_argument("--reconcile-interval", type=float, default=StackConfig.reconcile_interval_seconds,
                        help="seconds between reconciler passes (default: %(default)s, as Cloud Scheduler)")
    parser.add_argument("--first-model-port", type=int, default=8101)
    parser.add_argument("--web-port", type=int, default=8000)
    defaults = EmulatorPorts()
    parser.add_argument("--pubsub-port", type=int, default=defaults.pubsub)
    parser.add_argument("--firestore-port", type=int, default=defaults.firestore)
    parser.add_argument("--storage-port", type=int, default=defaults.storage)
    parser.add_argument("--repository", type=Path, default=StackConfig.model_repository)
    parser.add_argument("--log-dir", type=Path, default=StackConfig.log_dir)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local",
                        help="where the API keys, the development key, the callback secret and the units' "
                             "build contexts are kept (default: %(default)s)")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve without API keys (they are required by default, as in the cloud)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = (tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models
              else served_models(args.repository))
    started = time.monotonic()
    stack = LocalStack(StackConfig(models=models, api_port=args.api_port,
                                   dead_letter_port=args.dead_letter_port,
                                   reconcile_port=args.reconcile_port,
                                   reconcile_interval_seconds=args.reconcile_interval,
                                   first_model_port=args.first_model_port, web_port=args.web_port,
                                   emulator_ports=EmulatorPorts(args.pubsub_port, args.firestore_port,
                                                                args.storage_port),
                                   model_repository=args.repository, log_dir=args.log_dir,
                                   auth_required=not args.no_auth,
                                   api_keys_file=args.state_dir / "api_keys.json",
                                   api_key_file=args.state_dir / "api_key",
                                   callback_secret_file=args.state_dir / "callback_signing_secret",
                                   units_dir=args.state_dir / "units", export_missing=True))
    def request_stop(_signum, _frame) -> None:
        # kill, a closed terminal and Ctrl-C all stop the stack the same way.
        raise KeyboardInterrupt

    # Set explicitly: a shell that starts us in the background leaves SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        stack.start()
        print(f"API: {stack.api_url}   (logs: {stack.config.log_dir})", flush=True)
        if stack.api_key:
            print(f"authentication: on, as in the cloud (--no-auth turns it off). Development key "
                  f"(also in {stack.config.api_key_file}):\n  X-API-Key: {stack.api_key}", flush=True)
        else:
            print("authentication: off (--no-auth): the API takes requests without a key", flush=True)
        print(f"callbacks: signed with the secret in {stack.config.callback_secret_file}; "
              "loopback receivers allowed, every other private address refused", flush=True)
        if stack.web_url:
            print(f"Web page: {stack.web_url}", flush=True)
        for model in stack.wait_for_models():
            print(f"model {model} ready at {stack.model_urls[model]} "
                  f"({time.monotonic() - started:.1f} s after start)", flush=True)
        print("where the start-up time went (s after the stack's start; CPU seconds of each phase's "
              "processes; phases overlap):\n" + "\n".join(stack.startup.lines()), flush=True)
        key_header = f"-H \"X-API-Key: $(cat {stack.config.api_key_file})\" " if stack.api_key else ""
        print(f"try: curl {key_header}-F image=@tests/photos/n02123045_tabby.JPEG "
              f"{stack.api_url}/v1/models/{models[0]}/predictions", flush=True)
        print("then GET the status_url it returns, with ?wait=10 to wait for the result", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while stack.fatal is None:
            time.sleep(0.5)
        raise stack.fatal
    except KeyboardInterrupt:
        print("stopping…", flush=True)
        return 0
    except StackError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
