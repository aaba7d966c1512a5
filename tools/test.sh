#!/usr/bin/env bash
# Set up the environment (idempotent) and run the test suite. The tests
# request the optional deploy extra (mmdeploy/ONNX Runtime), so that the
# export tests run; WITH_DEPLOY=0 skips it and those tests skip themselves.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_DEPLOY="${WITH_DEPLOY:-1}" bash "$ROOT/tools/setup_env.sh"
VENV="${VENV:-$ROOT/.venv}"
cd "$ROOT"
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest tests -p no:cacheprovider "$@"
