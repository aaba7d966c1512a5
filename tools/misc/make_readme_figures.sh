#!/usr/bin/env bash
# Regenerate the demo figures (README, docs/visualization.md) from a demo
# run: train the RetinaNet-ResObj demo with ObjectnessStatsHook on, then
# plot the per-step objectness statistics (paper Fig. 2/4) and draw the
# per-step detections of a val image (paper Fig. 5) into docs/figures/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
VENV="${VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
CFG=configs/demo/resobj-retinanet_r18-w16_fpn_12e_shapes.py
WORK=work_dirs/readme-figures
mkdir -p docs/figures "$WORK"
# The one line that turns the hook on, in a config inheriting the demo
# (--cfg-options cannot express a list of dicts).
cat > "$WORK/with_stats.py" <<PYEOF
_base_ = '$ROOT/$CFG'
custom_hooks = [dict(type='ObjectnessStatsHook', interval=5)]
PYEOF
mim train mmdet "$WORK/with_stats.py" --work-dir "$WORK"
python tools/analysis_tools/plot_objectness_stats.py "$WORK" \
    --out docs/figures/objectness_stats.png \
    --title 'RetinaNet-ResObj (T=2) on the embedded demo'
python tools/analysis_tools/visualize_steps.py "$CFG" "$(cat "$WORK/last_checkpoint")" \
    data/resobj_shapes/val/000007.png --score-thr 0.3 \
    --out docs/figures/steps.png
