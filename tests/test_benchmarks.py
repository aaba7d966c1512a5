"""tools/benchmarks/benchmark_overhead.py and tools/benchmarks/benchmark_accuracy.py."""
import json
import os
import os.path as osp
import sys

import pytest
import torch

from helpers import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'benchmarks'))
import benchmark_accuracy  # noqa: E402
import benchmark_overhead  # noqa: E402
import count_ops  # noqa: E402


# ------------------------------------------------------------- sync counter
def test_sync_counter_counts_host_reads_only():
    x = torch.randn(16)
    with benchmark_overhead.SyncCounter(cuda=False) as c:
        y = (x * 2).exp().sum(dim=0, keepdim=True)  # device-only work
        torch.where(x > 0, x, y)
    assert c.count == 0
    with benchmark_overhead.SyncCounter(cuda=False) as c:
        x.sum().item()  # scalar read
        x[x > 0]  # boolean index: data-dependent shape
        x.nonzero()
        x.new_tensor(3.0)  # a host value copied to the device
        bool(x.max() > 0)
    assert c.count == 5, c.ops


def test_resobj_loss_has_no_sync():
    from resobj_mmdet.models.losses import ResidualObjectnessLoss
    logits = torch.randn(2, 3, 50)
    labels = (torch.rand(2, 50) > 0.8).float()
    for momentum in (None, 0.9):
        loss = ResidualObjectnessLoss(avg_factor_momentum=momentum)
        for avg_factor in (7.0, torch.tensor(7.0), 9.0):  # EMA: start, update
            with benchmark_overhead.SyncCounter(cuda=False) as c:
                loss(logits, labels, avg_factor=avg_factor)
            assert c.count == 0, (momentum, avg_factor, c.ops)


# --------------------------------------------------------- overhead (tiny)
def test_saved_bytes_counts_and_frees_the_graph():
    """The activation probe counts each saved storage once, and the graph
    it leaves behind is freed with its output (a pack hook returning the
    tensor itself made a C++ cycle: the CUDA benchmark ran out of memory
    after four families)."""
    import gc
    import weakref
    x = torch.randn(1000, requires_grad=True)
    nbytes, out = benchmark_overhead.saved_bytes(lambda: torch.sigmoid(x))
    assert nbytes == 1000 * 4  # sigmoid saves its output
    ref = weakref.ref(out)
    del out
    gc.collect()
    assert ref() is None


def test_overhead_benchmark_runs_and_reports(tmp_path, monkeypatch, capsys):
    # Already "pinned": no re-exec of the test process.
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', str(1 << 20))
    out = str(tmp_path / 'overhead.md')
    code = benchmark_overhead.main([
        '--families', 'retinanet', '--steps', '2', '--scale', '0.1',
        '--repeats', '1', '--warmup', '0', '--batch', '1', '--out', out,
        '--profile', str(tmp_path / 'prof')
    ])
    table = open(out).read()
    rows = [line for line in table.splitlines()
            if line.startswith('| retinanet')]
    assert [r.split('|')[2].strip() for r in rows] == [
        'vanilla', 'T=2', 'T=2 lite', 'T=2 lite folded']
    results = json.load(open(osp.splitext(out)[0] + '.json'))
    vanilla, t2, lite, folded = results
    assert vanilla['flop_ratio'] == 1.0
    # T=2 adds three 256->256 convs per level; lite adds none of them.
    assert 1.10 < t2['flop_ratio'] < 1.25 and lite['flop_ratio'] < 1.07
    assert t2['params_m'] > lite['params_m'] > vanilla['params_m']
    # Folded for inference: the two residual logit convs are gone (what is
    # left over vanilla is the objectness subnet, T = 0's cost).
    assert folded['flop_ratio'] < lite['flop_ratio']
    assert folded['params_m'] < lite['params_m']
    assert folded['train_ratio'] is None and folded['loss_share'] is None
    assert t2['loss_syncs'] == 0 and 0 < t2['loss_share'] < 1
    assert t2['targets'].startswith(('held', 'NOT held'))
    assert code == (0 if all(r.get('targets', 'held') == 'held'
                             for r in results) else 1)
    # --profile: one inference and one training table per variant (none
    # for training the folded model), operator calls counted.
    prof = (tmp_path / 'prof' / 'retinanet.txt').read_text()
    titles = [line for line in prof.splitlines() if line.startswith('## ')]
    assert titles == [
        '## retinanet vanilla: inference',
        '## retinanet vanilla: training step',
        '## retinanet T=2: inference', '## retinanet T=2: training step',
        '## retinanet T=2 lite: inference',
        '## retinanet T=2 lite: training step',
        '## retinanet T=2 lite folded: inference'
    ]
    calls = [int(line.split(': ')[1]) for line in prof.splitlines()
             if line.startswith('operator calls')]
    assert len(calls) == 7 and calls[3] > calls[1]  # T=2 step > vanilla's
    assert 'aten::' in prof


def test_overhead_summary_without_a_vanilla_peak():
    # A small vanilla step (YOLOX-s) can stay inside the RSS it had: its
    # peak above that is 0, and the ratio is left out instead of raising.
    def row(variant, peak, loss):
        return dict(family='yolox', variant=variant, params=1e6, flops=2e9,
                    infer=[0.1, 0.1], train=[0.5, 0.5], saved=100,
                    peak=peak, step_syncs=3, inference_only=False,
                    loss=loss, loss_syncs=0, loss_sync_ops={})

    rows = benchmark_overhead.summarise(
        [row('vanilla', [0, 0], []), row('T=2', [2**20, 2**20], [0.001])])
    assert rows[1]['peak_ratio'] is None and rows[1]['peak_mb'] == 1.0
    assert rows[1]['targets'] == 'held'
    rows = benchmark_overhead.summarise(
        [row('vanilla', [2**20], []), row('T=2', [2**21], [0.001])])
    assert rows[1]['peak_ratio'] == 2.0


# ----------------------------------------------------------------- accuracy
def test_accuracy_schedule_and_commands():
    args = benchmark_accuracy.parse_args(['--quick'])
    assert args.seeds == [0] and args.epochs == 2
    args = benchmark_accuracy.parse_args([])
    assert args.seeds == [0, 1, 2] and args.epochs == 8
    cmd = benchmark_accuracy.train_command('c.py', 'w', 3, 5, ['a=1'])
    assert cmd[1:5] == ['-m', 'mim', 'train', 'mmdet']
    assert 'randomness.seed=3' in cmd and 'param_scheduler.1.T_max=5' in cmd
    assert 'train_cfg.val_interval=5' in cmd  # shapes: evaluate at the end
    assert cmd[-1] == 'a=1'
    # Curves on shapes: evaluate every epoch.
    cmd = benchmark_accuracy.train_command('c.py', 'w', 0, 5, [], 'shapes', 1)
    assert 'train_cfg.val_interval=1' in cmd
    assert 'train_cfg.val_interval=5' not in cmd
    # Every config exists in its suite.
    for suite in benchmark_accuracy.SUITES.values():
        for run in suite['runs']:
            assert osp.isfile(osp.join(suite['config_dir'], run[2])), run
    with pytest.raises(SystemExit):
        benchmark_accuracy.parse_args(['--epochs', '0'])
    with pytest.raises(SystemExit):  # no RPN-only family in the tree suite
        benchmark_accuracy.parse_args(['--suite', 'trees', '--families',
                                       'rpn'])
    with pytest.raises(SystemExit):
        benchmark_accuracy.parse_args(['--variants', 'no such variant'])


def test_accuracy_tree_suite_keeps_the_recipes():
    args = benchmark_accuracy.parse_args(['--suite', 'trees'])
    assert args.epochs is None and args.seeds == [0, 1, 2]
    runs = benchmark_accuracy.selected_runs(args)
    seeds = {(r[0], r[1]): r[4] for r in runs}
    assert seeds[('retinanet', 'ResObj T=2')] == [0, 1, 2]
    assert seeds[('retinanet', 'ResObj T=1')] == [0]  # ablation: 1 seed
    cmd = benchmark_accuracy.train_command(
        'c.py', 'w', 1, None, [], 'trees')
    # The recipe's own schedule: no length or interval overrides.
    assert not [c for c in cmd if c.startswith(('train_cfg',
                                                'param_scheduler'))]
    # A shortened tree run scales mmdet's 1x steps (8 and 11 of 12).
    cmd = benchmark_accuracy.train_command('c.py', 'w', 1, 24, [], 'trees')
    assert 'param_scheduler.1.milestones=[16, 22]' in cmd
    args = benchmark_accuracy.parse_args(
        ['--families', 'retinanet', '--variants', 'focal loss',
         'ResObj T=2'])
    assert [r[1] for r in benchmark_accuracy.selected_runs(args)] == [
        'focal loss', 'ResObj T=2']


def _scalars(path, records):
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in records) + '\n')


def test_accuracy_reads_curves_and_instability(tmp_path):
    _scalars(tmp_path / 'run' / '20260101_000000' / 'vis_data', [
        {'lr': 0.01, 'loss': 2.0, 'loss_obj': 1.5, 'step': 10},
        {'data_time': 0.1, 'time': 0.2, 'step': 1},  # eval, no detection
        {'lr': 0.01, 'loss': float('nan'), 'loss_obj': float('nan'),
         'step': 20},
        {'coco/bbox_mAP': 0.25, 'data_time': 0.1, 'step': 2},
    ])
    run = str(tmp_path / 'run')
    assert benchmark_accuracy.read_metric(run, 'coco/bbox_mAP') == 0.25
    assert benchmark_accuracy.read_metric(run, 'coco/AR@100') is None
    info = benchmark_accuracy.read_run(run, 'coco/bbox_mAP')
    assert info == dict(value=0.25, curve=[[1, None], [2, 0.25]],
                        nonfinite_loss=True, first_eval_empty=True,
                        last_eval_empty=False)
    _scalars(tmp_path / 'ok' / '20260101_000000' / 'vis_data', [
        {'lr': 0.01, 'loss': 2.0, 'step': 10},
        {'coco/bbox_mAP': 0.1, 'step': 1},
        {'data_time': 0.1, 'step': 2},  # the LAST evaluation is empty
    ])
    info = benchmark_accuracy.read_run(str(tmp_path / 'ok'), 'coco/bbox_mAP',
                                       ('coco/bbox_mAP_50',))
    # A run that trained to the end and detects nothing scores 0 (the AP of
    # an empty result) and is averaged in, flagged; not dropped as failed.
    assert info['value'] == 0.0 and info['last_eval_empty']
    assert info['extra'] == {'coco/bbox_mAP_50': 0.0}
    assert not info['nonfinite_loss'] and not info['first_eval_empty']
    # Without any evaluation there is nothing to score.
    _scalars(tmp_path / 'none' / '20260101_000000' / 'vis_data', [
        {'lr': 0.01, 'loss': 2.0, 'step': 10}])
    info = benchmark_accuracy.read_run(str(tmp_path / 'none'),
                                       'coco/bbox_mAP')
    assert info['value'] is None and info['curve'] == []


def test_accuracy_low_thr_test_without_detections_scores_zero(tmp_path):
    keys = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
    assert benchmark_accuracy.read_test(str(tmp_path), keys) == dict.fromkeys(
        keys)
    stamp = tmp_path / '20260101_000000'
    stamp.mkdir()
    # What mmengine writes after a test whose CocoMetric found no result.
    (stamp / '20260101_000000.json').write_text(
        json.dumps({'data_time': 0.01, 'time': 0.4}) + '\n')
    assert benchmark_accuracy.read_test(str(tmp_path), keys) == dict.fromkeys(
        keys, 0.0)
    (stamp / '20260101_000000.json').write_text(json.dumps(
        {'coco/bbox_mAP': 0.2, 'coco/bbox_mAP_50': 0.4, 'time': 0.4}) + '\n')
    assert benchmark_accuracy.read_test(str(tmp_path), keys) == dict(
        zip(keys, (0.2, 0.4)))


def test_accuracy_report_only_trains_nothing(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError('--report-only must not train')

    monkeypatch.setattr(benchmark_accuracy.subprocess, 'run', no_training)
    out = tmp_path / 'acc'
    out.mkdir()
    key = benchmark_accuracy.run_key('ssd', 'vanilla', 0, 8)
    (out / 'results.jsonl').write_text(json.dumps(dict(
        key=key, value=0.25, seconds=5.0, curve=[[8, 0.25]],
        nonfinite_loss=False, first_eval_empty=False)) + '\n')
    rc = benchmark_accuracy.main(['--families', 'ssd', '--report-only',
                                  '--out', str(out)])
    assert rc == 1  # rows short of their seeds
    table = (out / 'accuracy.md').read_text()
    assert '| ssd | vanilla | bbox mAP | 0.250 (1 of 3 seeds) |' in table
    assert '| ssd | ResObj T=2 | bbox mAP | — |' in table


def test_accuracy_report_from_results(tmp_path):
    args = benchmark_accuracy.parse_args(['--families', 'yolov3'])
    runs = benchmark_accuracy.selected_runs(args)
    results = {}
    for variant, values in (('vanilla', [0.1, 0.2, 0.3]),
                            ('ResObj T=2', [0.3, 0.3])):
        for seed, v in enumerate(values):
            key = benchmark_accuracy.run_key('yolov3', variant, seed, 8)
            results[key] = dict(value=v, seconds=10.0,
                                curve=[[4, v / 2], [8, v]],
                                nonfinite_loss=seed == 1,
                                first_eval_empty=False)
    rows = benchmark_accuracy.summarise(results, runs, 8)
    assert rows[0]['mean'] == pytest.approx(0.2)
    assert rows[0]['std'] == pytest.approx(0.1)
    assert rows[1]['n'] == 2 < rows[1]['expected']  # not invented
    table = benchmark_accuracy.markdown_table(rows, 8)
    assert '| yolov3 | vanilla | bbox mAP | 0.200 ± 0.100 |' in table
    assert '| 1/3 | 0/3 |' in table  # NaN runs, empty first evaluations
    # Fewer seeds than asked: said in the cell, no std of one value.
    assert '| 0.300 ± 0.000 (2 of 3 seeds) |' in table
    one = dict(rows[1], values=[0.3], n=1, mean=0.3, std=0.0)
    assert '| 0.300 (1 of 3 seeds) |' in benchmark_accuracy.markdown_table(
        [one], 8)
    png = str(tmp_path / 'acc.png')
    benchmark_accuracy.bar_chart(rows, png, 'title')
    assert os.path.getsize(png) > 1000
    png = str(tmp_path / 'curves.png')
    assert benchmark_accuracy.curve_chart(rows, png, 'title')
    assert os.path.getsize(png) > 1000


def test_accuracy_curves_draw_every_variant(tmp_path, monkeypatch):
    # The Aquarium suite has 7 variants, one more than the first palette.
    import matplotlib.axes
    labels = []
    plot = matplotlib.axes.Axes.plot

    def record(self, *args, **kwargs):
        labels.append((kwargs.get('label'), kwargs.get('color')))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, 'plot', record)
    rows = [dict(family='retinanet-short', variant=f'v{i}',
                 curves=[[[4, 0.01 * i], [8, 0.02 * i]]]) for i in range(12)]
    assert benchmark_accuracy.curve_chart(rows, str(tmp_path / 'c.png'), 't')
    assert [lab for lab, _ in labels] == [f'v{i}' for i in range(12)]
    colors = [c for _, c in labels]
    assert len(set(colors[:10])) == 10 and colors[10] == colors[0]


def test_best_eval_column():
    curves = [[[1, None], [2, 0.2], [3, 0.1]], [[1, 0.05], [2, 0.1], [3, 0.3]]]
    assert benchmark_accuracy.best_eval(curves) == '0.250 (2–3)'
    assert benchmark_accuracy.best_eval([[[1, None], [4, 0.4]]]) == '0.400 (4)'
    assert benchmark_accuracy.best_eval([[], [[1, None]]]) == '—'


def test_count_ops_counts_every_call_and_attributes_them(tmp_path):
    from mmdet.utils import register_all_modules
    register_all_modules()
    model = benchmark_overhead.build_model('retinanet', dict(num_steps=2),
                                           torch.device('cpu'))
    inputs, samples = benchmark_overhead.make_batch((64, 96), 1, 2,
                                                    torch.device('cpu'))
    first = count_ops.count_step(model, inputs, samples, where=1)
    again = count_ops.count_step(model, inputs, samples)
    # Deterministic, and every forward call is attributed to one caller.
    assert first['forward'] == again['forward'] > 500
    assert first['backward'] == again['backward'] > 100
    assert sum(first['callers'].values()) == first['forward']
    assert any(k.startswith('resobj_mixin.py:') for k in first['callers'])
    # The loss is one (class, box) pair over all levels: the sigmoid
    # CrossEntropyLoss expands its labels once, not once per FPN level.
    assert first['callers']['cross_entropy_loss.py:_expand_onehot_labels'] \
        < 20
    out = tmp_path / 'ops.md'
    assert count_ops.main(['--families', 'retinanet', '--steps', '0', '2',
                           '--scale', '0.05', '--batch', '1', '--out',
                           str(out)]) == 0
    rows = [[c.strip() for c in r.split('|')[1:-1]]
            for r in out.read_text().splitlines()
            if r.startswith('| retinanet')]
    assert [r[1] for r in rows] == ['vanilla', 'T=0', 'T=2', 'T=2 lite']
    assert rows[0][5] == rows[0][6] == '1.000' and rows[0][8] == '—'
    for row in rows[1:]:
        ratio, flop_ratio = float(row[5]), float(row[6])
        assert row[7] == ('yes' if ratio <= flop_ratio + 5e-4 else 'no')
        fwd, bwd = (int(v) for v in row[8].split(' + '))
        assert 0 < fwd < int(row[2]) and 0 < bwd < int(row[3])
    # The residual steps cost the loss a few operators each (T = 2 adds 34
    # forward calls on torch 2.13, 41 on torch 2.1, which dispatches more
    # per op; a per-level loop would repeat them for each of five levels),
    # and the fused residual subnets the step about as many as the loss's.
    t0, t2 = rows[1], rows[2]
    assert int(t2[8].split(' + ')[0]) - int(t0[8].split(' + ')[0]) < 48
    assert int(t2[4]) - int(t0[4]) < 150


def test_accuracy_bccd_suite_runs_and_extra_metrics(tmp_path):
    args = benchmark_accuracy.parse_args(['--suite', 'bccd'])
    assert args.families == ['retinanet', 'faster-rcnn', 'yolov3', 'atss']
    assert args.out == osp.join('work_dirs', 'benchmark_accuracy_bccd')
    runs = benchmark_accuracy.selected_runs(args)
    seeds = {(r[0], r[1]): r[4] for r in runs}
    for variant in ('focal loss', 'GHM-C', 'ResObj T=2'):
        assert seeds[('retinanet', variant)] == [0, 1, 2]
    for variant in ('objectness (T=0)', 'ResObj T=1', 'ResObj T=2 lite'):
        assert seeds[('retinanet', variant)] == [0]
    assert len(runs) == 12
    # Stability and trial rows only when asked for.
    args = benchmark_accuracy.parse_args(
        ['--suite', 'bccd', '--families', 'retinanet-lr', 'retinanet-trials'])
    assert len(benchmark_accuracy.selected_runs(args)) == 9

    # The second evaluation of a finished run, at score_thr 0.001.
    work = tmp_path / 'run'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'epoch_20.pth'))
    cmd = benchmark_accuracy.low_thr_command('c.py', str(work), 'yolov3',
                                             ['x=1'])
    assert cmd[2:6] == ['mim', 'test', 'mmdet', 'c.py']
    assert cmd[cmd.index('--checkpoint') + 1] == str(work / 'epoch_20.pth')
    assert {'model.test_cfg.score_thr=0.001', 'model.test_cfg.conf_thr=0.001',
            'x=1'} <= set(cmd)
    cmd = benchmark_accuracy.low_thr_command('c.py', str(work),
                                             'faster-rcnn', [])
    assert 'model.test_cfg.rcnn.score_thr=0.001' in cmd
    test_dir = work / 'test_thr0.001' / '20260101_000000'
    test_dir.mkdir(parents=True)
    (test_dir / '20260101_000000.json').write_text(json.dumps(
        {'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.9}))
    assert benchmark_accuracy.read_test(
        str(work / 'test_thr0.001'),
        ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/WBC_precision')) == {
            'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.9,
            'coco/WBC_precision': None}

    # The table: extra metrics, the low-threshold AP, first detections.
    keys = benchmark_accuracy.BCCD_METRICS
    results = {}
    for seed, v in enumerate((0.4, 0.5)):
        key = benchmark_accuracy.run_key('retinanet', 'ResObj T=2', seed,
                                         None)
        results[key] = dict(
            value=v, seconds=1.0, curve=[[9, None], [10, v - 0.1], [20, v]],
            nonfinite_loss=False, first_eval_empty=True,
            extra={k: v / 2 for k in keys},
            low_thr={'coco/bbox_mAP': v + 0.01, 'coco/bbox_mAP_50': 0.8})
    run = [r for r in benchmark_accuracy.selected_runs(
        benchmark_accuracy.parse_args(['--suite', 'bccd', '--families',
                                       'retinanet']))
           if r[1] == 'ResObj T=2']
    rows = benchmark_accuracy.summarise(results, run, None, keys)
    table = benchmark_accuracy.metrics_table(rows, keys)
    assert '| AP50 | AP75 | RBC AP | WBC AP | Platelets AP |' in table
    assert ('| retinanet | ResObj T=2 | 0.450 ± 0.071 | 0.225 ± 0.035 |'
            in table)
    assert '| 0.460 ± 0.071 | 0.800 ± 0.000 | 10, 10 |' in table


def _run_env(monkeypatch, tmp_path, suite, data_root):
    """The environment ``--suite suite --data-root data_root`` gives its
    focal-loss run (the training itself replaced by a failure)."""
    seen = {}

    class Failed:
        returncode = 1

    def fake_run(cmd, env=None, **kwargs):
        seen['env'] = env
        return Failed()

    monkeypatch.setattr(benchmark_accuracy.subprocess, 'run', fake_run)
    benchmark_accuracy.main(['--suite', suite, '--seeds', '0',
                             '--variants', 'focal loss', '--data-root',
                             data_root, '--out', str(tmp_path / 'out')])
    return seen['env']


def test_accuracy_aquarium_suite_is_the_short_recipe_table(monkeypatch,
                                                          tmp_path):
    args = benchmark_accuracy.parse_args(['--suite', 'aquarium'])
    assert args.out == osp.join('work_dirs', 'benchmark_accuracy_aquarium')
    runs = {r[1]: r for r in benchmark_accuracy.selected_runs(args)}
    assert sorted(runs) == ['GHM-C', 'ResObj T=2', 'ResObj T=2 prior 0.001',
                            'ResObj T=2 w0.25', 'ResObj T=2 warmup 500',
                            'focal loss', 'objectness (T=0)']
    assert all(r[4] == [0, 1, 2] for r in runs.values())
    # The trial is the ResObj config with the three loss weights at 0.25.
    assert runs['ResObj T=2 w0.25'][2] == runs['ResObj T=2'][2]
    assert sorted(runs['ResObj T=2 w0.25'][3]) == sorted(
        benchmark_accuracy.WEIGHTS_025)
    assert {o.split('=')[1] for o in benchmark_accuracy.WEIGHTS_025} == \
        {'0.25'}
    assert 'coco/bbox_mAP_s' in benchmark_accuracy.SUITES['aquarium'][
        'extra_metrics']
    # The warm-up trial's option lengthens the recipe's LinearLR warm-up
    # (and only that), as mmdet's --cfg-options merges it.
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        REPO, benchmark_accuracy.SUITES['aquarium']['config_dir'],
        runs['ResObj T=2 warmup 500'][2]))
    before = [dict(s) for s in cfg.param_scheduler]
    key, value = runs['ResObj T=2 warmup 500'][3][0].split('=')
    cfg.merge_from_dict({key: int(value)})
    assert before[0]['type'] == 'LinearLR' and before[0]['end'] == 200
    assert cfg.param_scheduler[0] == dict(before[0], end=500)
    assert cfg.param_scheduler[1] == before[1]
    # --data-root reaches the runs as AQUARIUM_ROOT.
    assert _run_env(monkeypatch, tmp_path, 'aquarium',
                    '/data/aq')['AQUARIUM_ROOT'] == '/data/aq/'


def test_accuracy_deeppcb_suite_is_the_issue_table(monkeypatch, tmp_path):
    args = benchmark_accuracy.parse_args(['--suite', 'deeppcb'])
    assert args.out == osp.join('work_dirs', 'benchmark_accuracy_deeppcb')
    runs = {(r[0], r[1]): r for r in benchmark_accuracy.selected_runs(args)}
    assert sorted(runs) == [
        ('faster-rcnn', 'ResObj T=2'), ('faster-rcnn', 'vanilla'),
        ('retinanet', 'GHM-C'), ('retinanet', 'ResObj T=2'),
        ('retinanet', 'focal loss'), ('retinanet', 'objectness (T=0)')]
    # Three seeds for RetinaNet, one for the Faster R-CNN pair.
    assert {k: r[4] for k, r in runs.items()} == {
        k: [0] if k[0] == 'faster-rcnn' else [0, 1, 2] for k in runs}
    suite = benchmark_accuracy.SUITES['deeppcb']
    for run in runs.values():
        assert osp.isfile(osp.join(suite['config_dir'], run[2])), run
    # T = 0 is the T = 2 config with no residual step.
    assert runs[('retinanet', 'objectness (T=0)')][2] == \
        runs[('retinanet', 'ResObj T=2')][2]
    assert runs[('retinanet', 'objectness (T=0)')][3] == [
        'model.bbox_head.residual_objectness.num_steps=0']
    assert {'coco/bbox_mAP_s', 'coco/pin-hole_precision'} <= set(
        suite['extra_metrics'])
    assert _run_env(monkeypatch, tmp_path, 'deeppcb',
                    '/data/pcb')['DEEPPCB_ROOT'] == '/data/pcb/'


def test_accuracy_global_clip_trial_in_every_suite():
    # The YOLOv3 global-clipping trial runs in every suite, only when asked
    # for, and differs from its suite's ResObj T=2 row by the constructor.
    for suite in ('shapes', 'trees', 'bccd'):
        args = benchmark_accuracy.parse_args(['--suite', suite])
        assert 'yolov3-trials' not in args.families
        assert not [r for r in benchmark_accuracy.selected_runs(args)
                    if r[0] == 'yolov3-trials']
        args = benchmark_accuracy.parse_args(
            ['--suite', suite, '--families', 'yolov3', 'yolov3-trials'])
        runs = {r[1]: r for r in benchmark_accuracy.selected_runs(args)}
        trial = runs['ResObj T=2 global clip']
        assert trial[2] == runs['ResObj T=2'][2]
        assert trial[3] == [
            'optim_wrapper.constructor=DefaultOptimWrapperConstructor']
        assert trial[4] == [0, 1, 2]


def test_bccd_ghmc_only_trial_differs_from_focal_loss_by_the_class_loss():
    # The trial isolates GHM-C: mmdet's GHM recipe with RetinaNet's L1 box
    # loss and without its clipping is the focal-loss recipe with another
    # class loss, nothing else.
    from mmengine.config import Config, DictAction

    args = benchmark_accuracy.parse_args(
        ['--suite', 'bccd', '--families', 'retinanet-trials', '--variants',
         'GHM-C only'])
    (_, _, config, extra, seeds), = benchmark_accuracy.selected_runs(args)
    assert seeds == [0, 1, 2]
    trial = Config.fromfile(osp.join(REPO, 'configs/bccd', config))
    trial.merge_from_dict(
        {k: DictAction._parse_iterable(v)
         for k, v in (o.split('=', 1) for o in extra)})
    focal = Config.fromfile(
        osp.join(REPO, 'configs/bccd/retinanet_mobilenetv2_fpn_20e_bccd.py'))
    assert trial.model.bbox_head.pop('loss_cls').type == 'GHMC'
    assert focal.model.bbox_head.pop('loss_cls').type == 'FocalLoss'
    assert trial.model.bbox_head.loss_bbox == dict(type='L1Loss',
                                                   loss_weight=1.0)
    assert trial.optim_wrapper.pop('clip_grad') is None
    assert trial.to_dict() == focal.to_dict()
    # The trees get only the trials of RetinaNet-ResObj, on their config.
    args = benchmark_accuracy.parse_args(
        ['--suite', 'trees', '--families', 'retinanet-trials'])
    runs = benchmark_accuracy.selected_runs(args)
    assert 'GHM-C only' not in {r[1] for r in runs}
    assert {r[2] for r in runs} == {
        'resobj-retinanet_mobilenetv2_fpn_16e_trees.py'}


@pytest.mark.parametrize('name', [
    'retinanet_mobilenetv2_fpn_{}_bccd.py',
    'retinanet_mobilenetv2_fpn_ghm-{}_bccd.py',
    'resobj-retinanet_mobilenetv2_fpn_{}_bccd.py',
    'faster-rcnn_mobilenetv2_fpn_{}_bccd.py',
    'resobj-faster-rcnn_mobilenetv2_fpn_{}_bccd.py'])
def test_bccd_40e_configs_are_the_benchmarks_40_epoch_runs(name):
    # docs/benchmarks/bccd.md reports `--suite bccd --epochs 40` runs of the 20e
    # configs as the 40e configs' results: the two must be one training.
    from mmengine.config import Config, DictAction

    long = Config.fromfile(osp.join(REPO, 'configs/bccd', name.format('40e')))
    short = Config.fromfile(osp.join(REPO, 'configs/bccd',
                                     name.format('20e')))
    options = benchmark_accuracy.schedule_options(40, 'bccd')
    short.merge_from_dict(
        {k: DictAction._parse_iterable(v)
         for k, v in (o.split('=', 1) for o in options)},
        allow_list_keys=True)
    # The benchmark keeps only the last checkpoint; the config every epoch's.
    assert short.default_hooks.pop('checkpoint').interval == 40
    assert long.default_hooks.pop('checkpoint').interval == 1
    assert long.param_scheduler[1].milestones == [27, 37]
    # The configs' own variable, read only while each file is parsed.
    assert (long.pop('max_epochs'), short.pop('max_epochs')) == (40, 20)
    assert long.to_dict() == short.to_dict()


def test_stats_overlay_adds_the_hook_to_the_config(tmp_path):
    from mmengine.config import Config

    path = benchmark_accuracy.stats_overlay(
        osp.join(REPO, 'configs/bccd/resobj-retinanet_mobilenetv2_fpn_20e_'
                 'bccd.py'), str(tmp_path / 'w'), interval=5)
    cfg = Config.fromfile(path)
    assert cfg.custom_hooks == [
        dict(type='NumClassCheckHook'),
        dict(type='ObjectnessStatsHook', interval=5)]
    assert cfg.model.bbox_head.type == 'ResObjHead'


def test_count_ops_flops_cache_is_reused(tmp_path, monkeypatch):
    cache = tmp_path / 'flops.json'
    argv = ['--families', 'retinanet', '--steps', '0', '--no-lite',
            '--scale', '0.05', '--batch', '1', '--flops-cache', str(cache),
            '--out', str(tmp_path / 'a.md')]
    assert count_ops.main(argv) == 0
    saved = json.loads(cache.read_text())
    assert sorted(k.split('|')[1] for k in saved) == ['T=0', 'vanilla']
    assert all(v > 0 for v in saved.values())

    def no_tracing(*args, **kwargs):
        raise AssertionError('FLOPs traced although cached')

    monkeypatch.setattr(benchmark_overhead, 'count_flops', no_tracing)
    argv[-1] = str(tmp_path / 'b.md')
    assert count_ops.main(argv) == 0
    assert (tmp_path / 'a.md').read_text() == (tmp_path / 'b.md').read_text()
    # --no-flops: operator counts only, no FLOP ratio and no verdict.
    assert count_ops.main(argv[:-4] + ['--no-flops', '--out', argv[-1]]) == 0
    row = [r for r in (tmp_path / 'b.md').read_text().splitlines()
           if '| T=0 |' in r][0].split('|')
    assert row[7].strip() == 'nan' and row[8].strip() == '—'


def test_compile_benchmark_attributes_breaks_to_packages():
    import benchmark_compile
    from types import SimpleNamespace as Frame
    stack = [
        Frame(filename='/x/site-packages/mmengine/model/base.py', lineno=3,
              name='train_step'),
        Frame(filename='/x/site-packages/mmdet/models/a.py', lineno=7,
              name='loss'),
        Frame(filename='/x/lib/python3.11/functools.py', lineno=1,
              name='wrapper'),
    ]
    # The innermost frame of a known package, not the stdlib's.
    assert benchmark_compile.attribute(stack) == 'mmdet/models/a.py:7 (loss)'
    assert benchmark_compile.attribute([]) == 'unknown'
    with pytest.raises(SystemExit):
        benchmark_compile.parse_args(['--iters', '0'])


def test_real_suites_report_every_class_of_their_dataset():
    # The per-class columns are spelled out in the tool (it imports no
    # mmdet); they must name the dataset's classes, all and in order.
    from resobj_mmdet.datasets import AquariumDataset, DeepPCBDataset
    for suite, dataset in (('aquarium', AquariumDataset),
                           ('deeppcb', DeepPCBDataset)):
        columns = [m[len('coco/'):-len('_precision')]
                   for m in benchmark_accuracy.SUITES[suite]['extra_metrics']
                   if m.endswith('_precision')]
        assert tuple(columns) == dataset.METAINFO['classes'], suite
