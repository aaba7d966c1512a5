#!/usr/bin/env bash
# Device side, first command of a session: install the carried wheels into
# $PREFIX, then mmcv 2.1.0 with CUDA ops for THIS device's architecture only.
#
# A built mmcv wheel found in .gpu_carry/mmcv/ (parts *.whl.part-*, as a
# previous session brought them back) is reassembled and installed instead of
# rebuilding. Otherwise the sdist is built (TORCH_CUDA_ARCH_LIST from the
# device, MAX_JOBS=$(nproc)) and the wheel is written to $OUT/mmcv/ in parts
# of at most 15 MiB (the device tool returns files of <= 16 MiB): copy them
# into .gpu_carry/mmcv/ here so that later calls carry them.
#
#   PREFIX=/tmp/resobj-site bash tools/gpu/build_mmcv.sh
#   export PYTHONPATH=$PREFIX:$PWD   (what validate.py's commands use)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${PREFIX:-/tmp/resobj-site}"
OUT="${OUT:-$ROOT/work_dirs/gpu_out}"
PY="${PYTHON:-python3}"
CARRY="$ROOT/.gpu_carry"
mkdir -p "$PREFIX" "$OUT"
log() { printf '[gpu-build] %s\n' "$*" >&2; }
start=$(date +%s)

log "installing carried wheels into $PREFIX"
"$PY" -m pip install -q --no-index --no-deps --target "$PREFIX" \
    "$CARRY"/wheels/*.whl

export PYTHONPATH="$PREFIX${PYTHONPATH:+:$PYTHONPATH}"
if ls "$CARRY"/mmcv/*.whl.part-* >/dev/null 2>&1; then
    name="$(ls "$CARRY"/mmcv/*.whl.part-aa | xargs -n1 basename)"
    name="${name%.part-aa}"
    cat "$CARRY"/mmcv/"$name".part-* > "/tmp/$name"
    log "installing the carried build $name"
    "$PY" -m pip install -q --no-index --no-deps --target "$PREFIX" "/tmp/$name"
else
    ARCH="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"
    log "building mmcv 2.1.0 with CUDA ops for sm_${ARCH/./} (MAX_JOBS=$(nproc))"
    build="$(mktemp -d)"
    tar -xzf "$CARRY"/wheels/mmcv-2.1.0.tar.gz -C "$build"
    # (patches for CUDA 13 / torch 2.11, if a build needs them, go here and
    # are listed in tools/gpu/README.md)
    MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" \
        MAX_JOBS="$(nproc)" "$PY" -m pip wheel -q --no-deps \
        --no-build-isolation -w "$build/dist" "$build/mmcv-2.1.0"
    whl="$(ls "$build"/dist/mmcv-*.whl)"
    "$PY" -m pip install -q --no-index --no-deps --target "$PREFIX" "$whl"
    mkdir -p "$OUT/mmcv"
    split -b 15M -a 2 "$whl" "$OUT/mmcv/$(basename "$whl").part-"
    log "built in $(( $(date +%s) - start )) s; parts in $OUT/mmcv"
fi
"$PY" - <<'PYEOF'
import torch, mmcv, mmdet, mmengine
from mmcv.ops import nms
boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10]], device='cuda')
keep = nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)[1]
print(f'[gpu-build] ready: torch {torch.__version__} on '
      f'{torch.cuda.get_device_name()}, mmcv {mmcv.__version__} (CUDA nms '
      f'ok: {keep.tolist()}), mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}')
PYEOF
log "done in $(( $(date +%s) - start )) s"
