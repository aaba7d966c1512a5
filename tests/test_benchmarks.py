"""tools/benchmark_overhead.py and tools/benchmark_accuracy.py."""
import json
import os
import os.path as osp
import sys

import pytest
import torch

from helpers import REPO

sys.path.insert(0, osp.join(REPO, 'tools'))
import benchmark_accuracy  # noqa: E402
import benchmark_overhead  # noqa: E402


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
    with benchmark_overhead.SyncCounter(cuda=False) as c:
        ResidualObjectnessLoss()(logits, labels, avg_factor=7.0)
    assert c.count == 0, c.ops


# --------------------------------------------------------- overhead (tiny)
def test_overhead_benchmark_runs_and_reports(tmp_path, monkeypatch, capsys):
    # Already "pinned": no re-exec of the test process.
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', str(1 << 20))
    out = str(tmp_path / 'overhead.md')
    code = benchmark_overhead.main([
        '--families', 'retinanet', '--steps', '2', '--scale', '0.1',
        '--repeats', '1', '--warmup', '0', '--batch', '1', '--out', out
    ])
    table = open(out).read()
    rows = [line for line in table.splitlines()
            if line.startswith('| retinanet')]
    assert [r.split('|')[2].strip() for r in rows] == [
        'vanilla', 'T=2', 'T=2 lite']
    results = json.load(open(osp.splitext(out)[0] + '.json'))
    vanilla, t2, lite = results
    assert vanilla['flop_ratio'] == 1.0
    # T=2 adds three 256->256 convs per level; lite adds none of them.
    assert 1.10 < t2['flop_ratio'] < 1.25 and lite['flop_ratio'] < 1.07
    assert t2['params_m'] > lite['params_m'] > vanilla['params_m']
    assert t2['loss_syncs'] == 0 and 0 < t2['loss_share'] < 1
    assert t2['targets'].startswith(('held', 'NOT held'))
    assert code == (0 if all(r.get('targets', 'held') == 'held'
                             for r in results) else 1)


# ----------------------------------------------------------------- accuracy
def test_accuracy_schedule_and_commands():
    args = benchmark_accuracy.parse_args(['--quick'])
    assert args.seeds == [0] and args.epochs == 2
    args = benchmark_accuracy.parse_args([])
    assert args.seeds == [0, 1, 2] and args.epochs == 8
    cmd = benchmark_accuracy.train_command('c.py', 'w', 3, 5, ['a=1'])
    assert cmd[1:5] == ['-m', 'mim', 'train', 'mmdet']
    assert 'randomness.seed=3' in cmd and 'param_scheduler.1.T_max=5' in cmd
    assert cmd[-1] == 'a=1'
    # Every config exists, every family has a baseline first.
    for family, variant, config, _ in benchmark_accuracy.RUNS:
        assert osp.isfile(osp.join(benchmark_accuracy.DEMO, config)), config
    with pytest.raises(SystemExit):
        benchmark_accuracy.parse_args(['--epochs', '0'])


def test_accuracy_report_from_results(tmp_path):
    # A fake finished run directory and results file.
    work = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    work.mkdir(parents=True)
    (work / 'scalars.json').write_text(
        json.dumps({'loss': 1.0, 'step': 1}) + '\n' +
        json.dumps({'coco/bbox_mAP': 0.25, 'step': 8}) + '\n')
    assert benchmark_accuracy.read_metric(
        str(tmp_path / 'run'), 'coco/bbox_mAP') == 0.25
    assert benchmark_accuracy.read_metric(str(tmp_path / 'run'),
                                          'coco/AR@100') is None
    runs = [r for r in benchmark_accuracy.RUNS if r[0] == 'yolov3']
    results = {}
    for variant, values in (('vanilla', [0.1, 0.2, 0.3]),
                            ('ResObj T=2', [0.3, 0.3])):
        for seed, v in enumerate(values):
            key = benchmark_accuracy.run_key('yolov3', variant, seed, 8)
            results[key] = dict(value=v, seconds=10.0)
    rows = benchmark_accuracy.summarise(results, runs, [0, 1, 2], 8)
    assert rows[0]['mean'] == pytest.approx(0.2)
    assert rows[0]['std'] == pytest.approx(0.1)
    assert rows[1]['n'] == 2  # a missing seed is not invented
    table = benchmark_accuracy.markdown_table(rows, 8)
    assert '| yolov3 | vanilla | bbox mAP | 0.200 ± 0.100 |' in table
    png = str(tmp_path / 'acc.png')
    benchmark_accuracy.bar_chart(rows, png, 'title')
    assert os.path.getsize(png) > 1000
