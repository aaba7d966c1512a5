#!/usr/bin/env bash
# The second tested stack, where most MMDetection 3.3 users are: torch 2.1
# (the last torch with OpenMMLab's prebuilt mmcv 2.1.0 wheels) on the lowest
# Python that setup.py claims, in its own virtual environment, then the
# test suite there.
#
#   bash tools/misc/compat_env.sh                 # Python 3.8 + torch 2.1.2,
#                                                 # the whole suite
#   bash tools/misc/compat_env.sh -k "not deploy" # pytest arguments pass on
#
# Environment (as tools/setup_env.sh, with other defaults):
#   VENV=path        default <repo>/.venv-compat
#   PYTHON_BIN=exe   default: python3.8 (pyenv's when there is one)
#   TORCH_SPEC=spec  default torch==2.1.2 (the registry's Linux wheel is the
#                    CUDA 12.1 build, ~2.5 GB with its nvidia-* wheels; it
#                    runs on the CPU)
#   NEWEST=1         instead: the newest torch and Python 3.11 in
#                    <repo>/.venv-newest (TORCH_SPEC=torch, no cap; a
#                    machine whose pip config caps torch needs
#                    PIP_CONSTRAINT=/dev/null too). torch >= 2.15 needs
#                    C++20: setup_env.sh builds mmcv with -std=c++20.
# mmcv 2.1.0 is built from source against that torch (cached by pip
# afterwards, like the main environment's). Not part of .ci/run: a fresh
# run downloads torch (~2.5 GB) and builds mmcv (measured 2645 s on 2 busy
# cores), then the suite takes as long as the main one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ "${NEWEST:-0}" = "1" ]; then
    export VENV="${VENV:-$ROOT/.venv-newest}"
    export TORCH_SPEC="${TORCH_SPEC:-torch}"
    export PYTHON_BIN="${PYTHON_BIN:-python3.11}"
else
    export VENV="${VENV:-$ROOT/.venv-compat}"
    export TORCH_SPEC="${TORCH_SPEC:-torch==2.1.2}"
    if [ -z "${PYTHON_BIN:-}" ]; then
        PYTHON_BIN=python3.8
        for p in "$HOME"/.pyenv/versions/3.8*/bin/python3.8; do
            [ -x "$p" ] && PYTHON_BIN="$p"
        done
    fi
    export PYTHON_BIN
fi
# The deploy extra too, as tools/test.sh: the whole suite runs there.
export WITH_DEPLOY="${WITH_DEPLOY:-1}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
export PATH="$VENV/bin:$PATH"
"$VENV/bin/python" - <<'PYEOF'
import sys, torch, mmcv, mmdet
print(f'[compat] Python {sys.version.split()[0]}, torch {torch.__version__}, '
      f'mmcv {mmcv.__version__}, mmdet {mmdet.__version__}')
PYEOF
exec "$VENV/bin/python" -m pytest tests -p no:cacheprovider "$@"
