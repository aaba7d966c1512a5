"""Plot ObjectnessStatsHook's statistics like the paper's Fig. 2/4.

Reads ``vis_data/scalars.json`` of an mmengine work_dir (the newest run in
it, or a given scalars.json) and draws, against the training iteration, the
mean objectness score of positive anchors (top) and of negative anchors
(bottom, log scale) for every refinement step ``t = 0..T``.

Usage::

    python tools/analysis_tools/plot_objectness_stats.py WORK_DIR_OR_SCALARS_JSON \\
        [--out objectness_stats.png]
"""
import argparse
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Tuple


def find_scalars(path: str) -> str:
    """``path`` itself if it is a file, else the newest scalars.json."""
    if osp.isfile(path):
        return path
    found = sorted(
        glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'),
                  recursive=True),
        key=osp.getmtime)
    if not found:
        raise FileNotFoundError(
            f'no vis_data/scalars.json under {path!r}: train with '
            "custom_hooks = [dict(type='ObjectnessStatsHook')]")
    return found[-1]


def load_series(scalars_json: str
                ) -> Dict[str, Dict[int, List[Tuple[int, float]]]]:
    """Per kind ('pos', 'neg') and step, the (iteration, value) pairs."""
    series = {'pos': {}, 'neg': {}}
    pattern = re.compile(r'^obj_(pos|neg)_t(\d+)$')
    with open(scalars_json) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            it = record.get('iter', record.get('step'))
            if it is None or 'loss' not in record:  # skip validation lines
                continue
            for key, value in record.items():
                match = pattern.match(key)
                if match:
                    kind, t = match.group(1), int(match.group(2))
                    series[kind].setdefault(t, []).append((it, value))
    if not series['pos'] and not series['neg']:
        raise ValueError(
            f'{scalars_json!r} holds no obj_pos_t*/obj_neg_t* scalars: '
            "train with custom_hooks = [dict(type='ObjectnessStatsHook')]")
    return series


def plot(path: str, out: str, title: str = None):
    """Draw the figure and save it to ``out``; return the figure."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    series = load_series(find_scalars(path))
    fig, axes = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for ax, kind, label in ((axes[0], 'pos', 'positive anchors'),
                            (axes[1], 'neg', 'negative anchors')):
        for t in sorted(series[kind]):
            its, values = zip(*sorted(series[kind][t]))
            ax.plot(its, values, label=f'step t={t}', linewidth=1.5)
        ax.set_ylabel(f'mean objectness\n({label})')
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_yscale('log')
    axes[1].set_xlabel('iteration')
    fig.suptitle(title or 'Residual objectness: mean score per refinement step')
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path', help='work_dir or scalars.json')
    parser.add_argument('--out', default='objectness_stats.png')
    parser.add_argument('--title', default=None)
    args = parser.parse_args()
    plot(args.path, args.out, args.title)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
