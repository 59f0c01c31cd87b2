#!/usr/bin/env bash
# Installs the peers the model service is compared with (scripts/benchmark_peers.py), each in a
# virtualenv of its own under .local/peers/ (gitignored), from PyPI at pinned versions, with
# TensorFlow at the project's pin: BentoML (adaptive batching) and Ray Serve (@serve.batch).
# They get their own virtualenvs because their dependency trees (pydantic, starlette, grpcio,
# protobuf ...) are theirs, not the project's: the project's .venv stays as CI builds it.
#
#   bash scripts/peers/install.sh            # both
#   bash scripts/peers/install.sh bentoml    # one
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/.local/peers"
PYTHON="${PYTHON:-python3}"
# The model service's own pin (pyproject.toml, cloudrun_model/requirements.txt).
TENSORFLOW="$(grep -o 'tensorflow-cpu==[0-9.]*' "$ROOT/cloudrun_model/requirements.txt")"
declare -A PACKAGES=(
  [bentoml]="bentoml==1.4.40 fastapi==0.165.0"
  [ray]="ray[serve]==2.60.0"
)

install_peer() {
  local name="$1" venv="$PEERS/$1" started=$SECONDS specs
  read -ra specs <<< "${PACKAGES[$name]}"  # an array: "ray[serve]" must not glob
  test -x "$venv/bin/python" || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${specs[@]}" "$TENSORFLOW"
  echo "$name: ${PACKAGES[$name]} $TENSORFLOW in $venv ($((SECONDS - started)) s, $(du -sh "$venv" | cut -f1))"
}

for name in "${@:-bentoml ray}"; do
  for one in $name; do
    [[ -n "${PACKAGES[$one]:-}" ]] || { echo "unknown peer $one; choose from ${!PACKAGES[*]}" >&2; exit 2; }
    install_peer "$one"
  done
done
