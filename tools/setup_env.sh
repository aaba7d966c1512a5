#!/usr/bin/env bash
# Idempotent environment setup for resobj-mmdet.
#
# Creates (or reuses) a virtual environment and installs the tested stack:
# torch (only if none is importable there), numpy<2, mmengine 0.10.7,
# mmcv 2.1.0 with compiled ops (OpenMMLab's prebuilt wheel where one exists
# for this torch, as `mim install` takes it; otherwise built from source),
# mmdet 3.3.0, pycocotools, openmim and this project in editable mode.
# A second run with everything installed only checks versions (seconds).
#
# Environment:
#   VENV=path      virtual environment to create/reuse (default: <repo>/.venv).
#                  Point it at an existing env that holds your CUDA torch to
#                  keep that torch: it is never replaced.
#   TORCH_SPEC=..  what to install when no torch is importable
#                  (default: torch==2.13.0, the CPU build on these machines).
#   WITH_DEPLOY=1  also install the optional `deploy` extra (mmdeploy 1.3.1,
#                  onnx 1.14.1, onnxruntime 1.15.1) for tools/deployment/.
#   MMCV_BASE_URL=https://...  OpenMMLab's download server or a mirror of it
#                  (mim's variable; default https://download.openmmlab.com).
#   MMCV_INDEX_TIMEOUT=15  seconds a connection step of the wheel index may
#                  take before the source build is chosen instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
# Absolute: the checks below run from / (a relative VENV would fail them all
# and reinstall, or rebuild mmcv, on every run).
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
PYTHON_BIN="${PYTHON_BIN:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

have() {  # have <python code that raises when unmet>; run from / so that the
           # current directory cannot satisfy an import.
    (cd / && "$PY" - <<PYEOF >/dev/null 2>&1
$1
PYEOF
    )
}

# 1. torch: keep whatever torch is already importable (a user's CUDA build).
if have "import torch"; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') already present: kept"
else
    log "installing $TORCH_SPEC"
    "${PIP[@]}" "$TORCH_SPEC"
fi

# 2. Build prerequisites. torch>=2.6 wants setuptools>=77.0.3 (which needs
#    Python>=3.9); mmcv 2.1.0's setup.py imports pkg_resources, which
#    setuptools>=81 no longer ships. An older torch takes any setuptools<81.
ST_MIN=0
if "$PY" -c "import sys, torch; sys.exit(tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2]) < (2, 6))"; then
    ST_MIN=77.0.3
fi
SETUPTOOLS_SPEC="setuptools>=$ST_MIN,<81"
if ! have "
import numpy, setuptools, wheel, ninja
from packaging.version import Version as V
assert V(numpy.__version__) < V('2')
assert V('$ST_MIN') <= V(setuptools.__version__) < V('81')
"; then
    log "installing build prerequisites (numpy<2, $SETUPTOOLS_SPEC, wheel, ninja)"
    "${PIP[@]}" "numpy<2" "$SETUPTOOLS_SPEC" wheel ninja packaging
fi

# 3. mmengine (before mmcv: mmcv's build imports nothing from it, but its
#    runtime does).
if ! have "import mmengine; assert mmengine.__version__ == '0.10.7'"; then
    log "installing mmengine 0.10.7 and opencv-python<4.12 (>=4.12 needs numpy 2)"
    "${PIP[@]}" "mmengine==0.10.7" "opencv-python<4.12" "numpy<2"
fi

# 4. mmcv with compiled ops, the OpenMMLab way first: where OpenMMLab built
#    an mmcv 2.1.0 wheel for this torch (torch 1.8-2.1, CUDA or CPU, CPython
#    3.8-3.11, Linux x86_64; tools/misc/mmcv_wheels.py), pip takes it from
#    mim's find-links index in seconds. The index is probed first, bounded
#    (MMCV_INDEX_TIMEOUT seconds a connection step, default 15), and the
#    installed wheel must import its ops (and, for a CUDA torch, report
#    CUDA ops); otherwise, or for any other torch (2.13 here), pip builds the
#    sdist against the installed torch (~13 min on 2 cores the first time;
#    then pip's wheel cache makes it seconds).
#    A torch whose headers require C++20 (2.15: ATen.h stops with an #error
#    below it) cannot build mmcv 2.1.0 as released, whose setup.py compiles
#    with -std=c++17. Its sdist is then built with -std=c++20 (the sources
#    compile unchanged) into a wheel kept per torch version under
#    ~/.cache/resobj-mmdet (pip does not cache a wheel built from a
#    directory). Checked on the header, not on a version number.
#    Every build compiles without debug information: on a sample of mmcv's
#    sources that took 29 % less compile time and made the objects 37x
#    smaller, and the ops are the same -O3 code. Python's own CFLAGS
#    (-DNDEBUG -g -fwrapv -O3 ...) are restated before -g0, because recent
#    setuptools replace them with $CFLAGS (older ones append it); a CFLAGS
#    of yours comes last and wins.
MMCV_CFLAGS="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")') -g0 ${CFLAGS:-}"
MMCV_CHECK="
import mmcv; assert mmcv.__version__ == '2.1.0'
from mmcv.ops import nms, RoIAlign  # the compiled extension
"
MMCV_CUDA_CHECK="
import torch
from mmcv.ops import get_compiling_cuda_version
assert torch.version.cuda is None or get_compiling_cuda_version() != 'not available'
"
INDEX_TIMEOUT="${MMCV_INDEX_TIMEOUT:-15}"
if ! have "$MMCV_CHECK"; then
    WHY="$(mktemp)"
    # `timeout`: urllib bounds each connection step, not a name lookup.
    if URL="$(timeout "$(( INDEX_TIMEOUT * 3 ))" "$PY" "$ROOT/tools/misc/mmcv_wheels.py" \
            --probe --timeout "$INDEX_TIMEOUT" 2>"$WHY")"; then
        log "$(tail -n 1 "$WHY"): installing it"
        # --only-binary: never PyPI's sdist from here; --no-deps: mmengine
        # (step 3) brought mmcv's runtime requirements.
        if "${PIP[@]}" --no-deps --only-binary mmcv --timeout "$INDEX_TIMEOUT" \
                -f "$URL" "mmcv==2.1.0" && have "$MMCV_CHECK" && have "$MMCV_CUDA_CHECK"; then
            log "prebuilt mmcv 2.1.0 installed, ops import"
        else
            log "the prebuilt mmcv 2.1.0 did not install or its ops do not import: building from source instead"
            "$PY" -m pip uninstall -y -q mmcv >/dev/null 2>&1 || true
        fi
    else
        REASON="$(tail -n 1 "$WHY")"
        log "no prebuilt mmcv 2.1.0 wheel: ${REASON:-the index probe timed out after $(( INDEX_TIMEOUT * 3 )) s}; building from source"
    fi
    rm -f "$WHY"
fi
# A CUDA torch builds mmcv's CUDA ops only where torch sees a GPU or
# FORCE_CUDA=1 (mmcv's setup.py), and then needs nvcc: say so before a long
# build, not after it (tools/misc/mmcv_wheels.py --build-check).
if ! have "$MMCV_CHECK"; then
    if ! MSG="$("$PY" "$ROOT/tools/misc/mmcv_wheels.py" --build-check 2>&1)"; then
        log "ERROR: $MSG"
        exit 1
    fi
    log "$MSG"
fi
TORCH_ATEN_H="$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include", "ATen", "ATen.h"))')"
if ! have "$MMCV_CHECK" && grep -qs "C++20 or later" "$TORCH_ATEN_H"; then
    TAG="$("$PY" -c 'import sys, torch; print(f"torch-{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}")')"
    WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/resobj-mmdet/mmcv-2.1.0-cxx20/$TAG"
    if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
        log "$TAG needs C++20: building mmcv 2.1.0 with ops from its sdist with -std=c++20 (first time about 10-25 min on 2 cores)"
        SRC="$(mktemp -d)"
        "$PY" -m pip download --disable-pip-version-check -q --no-deps \
            --no-binary :all: "mmcv==2.1.0" -d "$SRC"
        tar xzf "$SRC"/mmcv-2.1.0.tar.gz -C "$SRC"
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/mmcv-2.1.0/setup.py"
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" CFLAGS="$MMCV_CFLAGS" \
            "$PY" -m pip wheel --disable-pip-version-check -q \
            --no-build-isolation --no-deps -w "$WHEELS" "$SRC/mmcv-2.1.0"
        rm -rf "$SRC"
    fi
    log "installing mmcv 2.1.0 built with -std=c++20 from $WHEELS"
    # --no-deps: mmengine (step 3) brought mmcv's runtime requirements.
    "${PIP[@]}" --force-reinstall --no-deps "$WHEELS"/mmcv-2.1.0-*.whl
fi
if ! have "$MMCV_CHECK"; then
    log "building mmcv 2.1.0 with ops (first time about 10-25 min on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" CFLAGS="$MMCV_CFLAGS" \
        "${PIP[@]}" --no-build-isolation "mmcv==2.1.0"
    # pip's wheel cache ignores MMCV_WITH_OPS: a cached ops-less build would
    # be reused silently. Check the ops and rebuild without the cache if not.
    if ! have "from mmcv.ops import nms, RoIAlign"; then
        log "cached mmcv wheel has no ops: rebuilding without pip's cache"
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" CFLAGS="$MMCV_CFLAGS" \
            "${PIP[@]}" --no-build-isolation --no-cache-dir \
            --force-reinstall --no-deps "mmcv==2.1.0"
    fi
fi

# 5. mmdet, pycocotools, test tools.
if ! have "
import mmdet, pycocotools, pytest, matplotlib, hypothesis, vermin
from importlib.metadata import version
assert mmdet.__version__ == '3.3.0'
assert version('pycocotools') != '2.0.10'  # its loadRes needs dataset['info']
"; then
    log "installing mmdet 3.3.0, pycocotools, pytest, hypothesis, vermin"
    "${PIP[@]}" "mmdet==3.3.0" "pycocotools!=2.0.10" "numpy<2" \
        "opencv-python<4.12" "$SETUPTOOLS_SPEC" pytest matplotlib \
        hypothesis vermin
fi

# 5b. What mmdet's own analysis tools import beyond mmdet's requirements:
#     analyze_logs.py -> seaborn; benchmark.py -> psutil (mmdet.utils.benchmark
#     turns a missing psutil into None and fails later with an AttributeError).
#     browse_dataset.py, confusion_matrix.py and get_flops.py need only
#     matplotlib, mmcv and mmengine.
if ! have "import seaborn, psutil"; then
    log "installing seaborn and psutil (mmdet's analysis tools)"
    "${PIP[@]}" seaborn psutil "numpy<2"
fi

# 6. openmim, without its opendatalab -> openxlab chain, which pins
#    setuptools~=60.2 and would break torch's setuptools requirement.
#    `mim train/test` need only the dependencies listed here.
if ! have "import mim, click, modelindex, tabulate, rich, pandas"; then
    log "installing openmim (without opendatalab)"
    "${PIP[@]}" --no-deps "openmim==0.3.9"
    "${PIP[@]}" click colorama model-index pandas requests rich tabulate \
        "numpy<2" "$SETUPTOOLS_SPEC"
fi

# 7. This project, editable.
if ! have "
import resobj_mmdet, os
assert os.path.realpath(os.path.dirname(resobj_mmdet.__file__)).startswith(os.path.realpath('$ROOT'))
"; then
    log "installing resobj_mmdet (editable)"
    "${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
fi

# 8. Optional: the deploy extra (ONNX export with mmdeploy). The versions
#    that work together on Python 3.11; onnxruntime 1.15.1 matches the ORT
#    library bundled in mmdeploy's wheel. --no-deps: mmdeploy's own
#    requirements would pull packages mmdet pins differently.
if [ "${WITH_DEPLOY:-0}" = "1" ] && ! have "
import mmdeploy, onnx, onnxruntime, google.protobuf as pb
assert mmdeploy.__version__ == '1.3.1' and onnx.__version__ == '1.14.1'
assert onnxruntime.__version__ == '1.15.1' and pb.__version__ == '3.20.2'
import aenum, multiprocess, dill, prettytable, grpc, coloredlogs, flatbuffers
"; then
    log "installing the deploy extra (mmdeploy 1.3.1, onnx 1.14.1, onnxruntime 1.15.1)"
    "${PIP[@]}" --no-deps "mmdeploy==1.3.1" "onnx==1.14.1" \
        "onnxruntime==1.15.1" "protobuf==3.20.2" aenum multiprocess dill \
        prettytable wcwidth grpcio coloredlogs humanfriendly flatbuffers \
        sympy mpmath
fi

"$PY" - <<'PYEOF'
import torch, mmcv, mmdet, mmengine, numpy
print(f'[setup] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, '
      f'numpy {numpy.__version__}')
PYEOF
log "done in $(( $(date +%s) - start )) s (venv: $VENV)"
