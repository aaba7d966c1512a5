#!/usr/bin/env bash
# Set up the environment (idempotent), train the RetinaNet-ResObj demo on the
# embedded synthetic dataset with `mim train`, evaluate the final checkpoint
# with `mim test` and print its COCO bbox mAP (AR@100 for RPN configs).
#
#   bash tools/demo.sh [CONFIG]   (default: the RetinaNet-ResObj demo)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
VENV="${VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
CFG="${1:-configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py}"
WORK="work_dirs/$(basename "$CFG" .py)"
start=$(date +%s)
mim train mmdet "$CFG" --work-dir "$WORK"
CKPT="$(cat "$WORK/last_checkpoint")"
mim test mmdet "$CFG" --checkpoint "$CKPT" --work-dir "$WORK/test" \
    2>&1 | tee "$WORK/test.log"
METRIC="bbox mAP"
VALUE="$(grep -o 'coco/bbox_mAP: [0-9.]*' "$WORK/test.log" | tail -1 | cut -d' ' -f2 || true)"
if [ -z "$VALUE" ]; then  # proposal configs (RPN) report recall
    METRIC="AR@100"
    VALUE="$(grep -o 'coco/AR@100: [0-9.]*' "$WORK/test.log" | tail -1 | cut -d' ' -f2 || true)"
fi
echo
echo "=== $(basename "$CFG" .py): $METRIC = ${VALUE:-?} on the embedded val split" \
     "($(( $(date +%s) - start )) s, work dir $WORK)"
[ -n "$VALUE" ]
