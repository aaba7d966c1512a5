"""Accuracy of ResObj against its baselines on the embedded shapes dataset.

Every run is a real ``mim train mmdet <demo config>`` (training, then the
loop's final evaluation on the val split) in its own process, with the demo
schedule shortened to ``--epochs`` (the warm-up, cosine decay and evaluation
follow) and ``randomness.seed`` set per seed. The families and variants:

- RetinaNet: focal loss | objectness, T = 0 | ResObj T = 1 | ResObj T = 2 |
  ResObj T = 2 lite (residual subnets without a C->C conv);
- YOLOv3: vanilla | ResObj T = 2;
- RPN: vanilla (random sampler) | ResObj T = 2 (no sampler), AR@100;
- Faster R-CNN: vanilla | ResObj RPN, T = 2.

Printed and written to ``--out``: ``results.jsonl`` (one line per finished
run; an interrupted benchmark resumes from it), ``accuracy.md`` (mean +- std
over the seeds, the per-seed values and the mean training time) and
``accuracy.png`` (a bar chart with std error bars).

Usage::

    python tools/benchmark_accuracy.py            # full: 3 seeds, 8 epochs
    python tools/benchmark_accuracy.py --quick    # 1 seed, 2 epochs
    python tools/benchmark_accuracy.py --families retinanet --seeds 0 1
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'demo')

RETINA_HEAD = 'model.bbox_head.residual_objectness'
# (family, variant, config, extra --cfg-options)
RUNS = [
    ('retinanet', 'focal loss', 'retinanet_r18-w16_fpn_12e_shapes.py', []),
    ('retinanet', 'objectness (T=0)',
     'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
     [f'{RETINA_HEAD}.num_steps=0']),
    ('retinanet', 'ResObj T=1', 'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
     [f'{RETINA_HEAD}.num_steps=1']),
    ('retinanet', 'ResObj T=2', 'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
     []),
    ('retinanet', 'ResObj T=2 lite',
     'resobj-retinanet_r18-w16_fpn_12e_shapes.py',
     [f'{RETINA_HEAD}.res_convs=0']),
    ('yolov3', 'vanilla', 'yolov3_r18-w16_12e_shapes.py', []),
    ('yolov3', 'ResObj T=2', 'resobj-yolov3_r18-w16_12e_shapes.py', []),
    ('rpn', 'vanilla', 'rpn_r18-w16_fpn_12e_shapes.py', []),
    ('rpn', 'ResObj T=2', 'resobj-rpn_r18-w16_fpn_12e_shapes.py', []),
    ('faster-rcnn', 'vanilla', 'faster-rcnn_r18-w16_fpn_12e_shapes.py', []),
    ('faster-rcnn', 'ResObj T=2', 'resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py',
     []),
]
FAMILIES = ['retinanet', 'yolov3', 'rpn', 'faster-rcnn']
METRICS = {'rpn': 'coco/AR@100'}  # every other family: bbox mAP
DEFAULT_METRIC = 'coco/bbox_mAP'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick', action='store_true',
        help='1 seed, 2 epochs: checks the whole pipeline in < 15 min')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='default 0 1 2 (0 with --quick)')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs (default 8, 2 with --quick)')
    parser.add_argument('--families', nargs='+', choices=FAMILIES,
                        default=FAMILIES)
    parser.add_argument('--out', default=None,
                        help='default work_dirs/benchmark_accuracy[_quick]')
    parser.add_argument(
        '--jobs', type=int, default=1,
        help='trainings run in parallel, each with cpus/jobs torch threads '
        '(on 2 small CPU cores, 2 single-thread jobs finish sooner than one '
        'job with 2 threads)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands, run nothing')
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.quick else [0, 1, 2]
    if args.epochs is None:
        args.epochs = 2 if args.quick else 8
    if args.epochs < 1:
        parser.error(f'--epochs must be >= 1, got {args.epochs}')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.out is None:
        args.out = osp.join(
            'work_dirs',
            'benchmark_accuracy_quick' if args.quick else 'benchmark_accuracy')
    return args


def run_key(family, variant, seed, epochs):
    return f'{family}|{variant}|seed{seed}|{epochs}e'


def schedule_options(epochs):
    """``--cfg-options`` that shorten the demos' 12-epoch schedule."""
    return [
        f'train_cfg.max_epochs={epochs}',
        f'train_cfg.val_interval={epochs}',
        f'default_hooks.checkpoint.interval={epochs}',
        # param_scheduler[1] is the demos' cosine decay.
        f'param_scheduler.1.end={epochs}',
        f'param_scheduler.1.T_max={epochs}',
    ]


def train_command(config, work_dir, seed, epochs, extra):
    return [
        sys.executable, '-m', 'mim', 'train', 'mmdet', config, '--work-dir',
        work_dir, '--cfg-options', f'randomness.seed={seed}',
        *schedule_options(epochs), *extra
    ]


def read_metric(work_dir, key):
    """The last value of ``key`` in the run's ``vis_data/scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    value = None
    for path in files:
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if key in record:
                    value = record[key]
    return value


def load_results(path):
    results = {}
    if osp.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    results[r['key']] = r
    return results


def summarise(results, runs, seeds, epochs):
    """Rows of (family, variant, metric, values, mean, std, mean time)."""
    rows = []
    for family, variant, _, _ in runs:
        done = [
            results[k] for k in
            (run_key(family, variant, s, epochs) for s in seeds)
            if k in results
        ]
        values = [r['value'] for r in done if r['value'] is not None]
        mean = statistics.mean(values) if values else float('nan')
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        secs = statistics.mean([r['seconds'] for r in done]) if done else 0.0
        rows.append(
            dict(family=family, variant=variant,
                 metric=METRICS.get(family, DEFAULT_METRIC), values=values,
                 mean=mean, std=std, seconds=secs, n=len(values)))
    return rows


def markdown_table(rows, epochs):
    lines = [
        f'| family | variant | metric | mean ± std | per seed | '
        f'train + eval s ({epochs} ep) |', '|---|---|---|---|---|---|'
    ]
    for r in rows:
        metric = 'AR@100' if r['metric'].endswith('AR@100') else 'bbox mAP'
        per_seed = ', '.join(f'{v:.3f}' for v in r['values']) or '—'
        cell = (f'{r["mean"]:.3f} ± {r["std"]:.3f}' if r['n'] else '—')
        lines.append(f'| {r["family"]} | {r["variant"]} | {metric} | {cell} '
                     f'| {per_seed} | {r["seconds"]:.0f} |')
    return '\n'.join(lines)


def bar_chart(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    families = [f for f in FAMILIES if any(r['family'] == f for r in rows)]
    fig, axes = plt.subplots(
        1, len(families), figsize=(3.2 * len(families) + 1, 4),
        squeeze=False)
    for ax, family in zip(axes[0], families):
        fam = [r for r in rows if r['family'] == family]
        xs = range(len(fam))
        colors = ['#999999' if i == 0 else '#1f77b4' for i in xs]
        ax.bar(xs, [r['mean'] for r in fam], yerr=[r['std'] for r in fam],
               capsize=4, color=colors)
        for i, r in enumerate(fam):  # the seeds themselves, not only the mean
            ax.scatter([i] * len(r['values']), r['values'], s=8, c='k',
                       zorder=3)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r['variant'] for r in fam], rotation=35,
                           ha='right', fontsize=8)
        ax.set_title(family)
        ax.set_ylabel('AR@100' if family == 'rpn' else 'bbox mAP')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    runs = [r for r in RUNS if r[0] in args.families]
    os.makedirs(args.out, exist_ok=True)
    results_path = osp.join(args.out, 'results.jsonl')
    results = load_results(results_path)
    todo = [(run, seed) for seed in args.seeds for run in runs
            if run_key(run[0], run[1], seed, args.epochs) not in results]
    print(f'{len(todo)} of {len(runs) * len(args.seeds)} runs to do '
          f'({args.epochs} epochs; results in {results_path})', flush=True)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    if args.jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    lock = threading.Lock()

    def run_one(i, family, variant, config, extra, seed):
        key = run_key(family, variant, seed, args.epochs)
        work_dir = osp.join(
            args.out, f'{family}_{variant}'.replace(' ', '_').replace(
                '=', '').replace('(', '').replace(')', ''), f'seed{seed}')
        cmd = train_command(
            osp.join(DEMO, config), work_dir, seed, args.epochs, extra)
        print(f'[{i + 1}/{len(todo)}] {key}: {" ".join(cmd[1:])}', flush=True)
        if args.dry_run:
            return
        start = time.perf_counter()
        log_path = osp.join(args.out, 'logs', key.replace('|', '_') + '.log')
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        with open(log_path, 'w') as log:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        metric = METRICS.get(family, DEFAULT_METRIC)
        value = read_metric(work_dir, metric)
        if proc.returncode != 0 or value is None:
            # A failed run is reported, not averaged in; its log says why.
            print(f'    {key}: FAILED (exit {proc.returncode}, '
                  f'{metric}={value}); see {log_path}', flush=True)
            return
        record = dict(key=key, family=family, variant=variant, seed=seed,
                      epochs=args.epochs, metric=metric, value=value,
                      seconds=seconds, jobs=args.jobs)
        with lock:
            with open(results_path, 'a') as f:
                f.write(json.dumps(record) + '\n')
            results[key] = record
        print(f'    {key}: {metric} = {value:.3f} ({seconds:.0f} s)',
              flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, i, *run, seed)
            for i, (run, seed) in enumerate(todo)
        ]
        for future in futures:
            future.result()
    if args.dry_run:
        return 0
    rows = summarise(results, runs, args.seeds, args.epochs)
    table = markdown_table(rows, args.epochs)
    seeds = ' '.join(map(str, args.seeds))
    header = (f'Embedded shapes val split, {args.epochs} epochs, seeds '
              f'{seeds}; mean ± sample std over the seeds.')
    with open(osp.join(args.out, 'accuracy.md'), 'w') as f:
        f.write(header + '\n\n' + table + '\n')
    bar_chart(rows, osp.join(args.out, 'accuracy.png'), header)
    print('\n' + header + '\n\n' + table)
    print(f'\nwritten: {args.out}/accuracy.md, {args.out}/accuracy.png')
    missing = [r for r in rows if r['n'] < len(args.seeds)]
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
