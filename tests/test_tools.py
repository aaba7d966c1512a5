"""tools/: the objectness-statistics plot, the gate diagnosis and the
per-step visualisation."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import DEMO_RESOBJ, REPO, use_tiny_data

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import diagnose_gate  # noqa: E402
import plot_objectness_stats  # noqa: E402
import visualize_steps  # noqa: E402


@pytest.fixture(scope='module')
def trained(tiny_shapes, tmp_path_factory):
    """A demo-sized ResObj RetinaNet trained 3 iterations with the hook."""
    work = str(tmp_path_factory.mktemp('hooked'))
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes, work,
                        max_iters=3)
    cfg.custom_hooks = [dict(type='ObjectnessStatsHook', interval=1)]
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    return work, osp.join(work, 'iter_3.pth'), tiny_shapes


def test_hook_scalars_reach_the_log(trained):
    work, _, _ = trained
    (scalars, ) = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    text = open(scalars).read()
    for key in ('obj_pos_t0', 'obj_neg_t2', 'gate_t1', 'gate_t2'):
        assert f'"{key}"' in text, key


def test_plot_objectness_stats(trained, tmp_path):
    work, _, _ = trained
    out = str(tmp_path / 'stats.png')
    fig = plot_objectness_stats.plot(work, out)
    assert osp.getsize(out) > 1000
    pos_ax, neg_ax = fig.axes
    assert len(pos_ax.get_lines()) == 3 and len(neg_ax.get_lines()) == 3


def test_plot_without_stats_names_the_hook(tmp_path):
    with pytest.raises(FileNotFoundError, match='ObjectnessStatsHook'):
        plot_objectness_stats.plot(str(tmp_path), str(tmp_path / 'x.png'))


@pytest.mark.parametrize('split', ['train', 'val'])
def test_diagnose_gate(trained, tmp_path, split):
    work, ckpt, root = trained
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), root, work,
                        max_iters=3)
    config = str(tmp_path / 'cfg.py')
    cfg.dump(config)
    out = tmp_path / 'gate.json'
    summary = diagnose_gate.main(
        [config, ckpt, '--split', split, '--max-images', '4', '--out',
         str(out)])
    assert osp.getsize(out) > 0 and 0 < summary['images'] <= 4
    for t in range(3):  # the demo's T = 2: o_0, o_1, o_2
        assert 0 < summary[f'obj_pos_t{t}'] < 1
        assert 0 < summary[f'obj_neg_t{t}'] < 1
    for t in (1, 2):
        step = summary[f'step{t}']
        # The gate keeps every anchor scored at least the weakest positive:
        # a higher bar (a quantile, the high-quality positives only) keeps
        # no more anchors; the minimum is at most the positives' mean.
        assert 0 < step['gate_frac'] <= 1
        assert step['gate_frac_high_quality'] <= step['gate_frac']
        assert (step['gate_frac_q0.25'] <= step['gate_frac_q0.1'] <=
                step['gate_frac'])
        assert 0 < step['minp'] <= summary[f'obj_pos_t{t - 1}']
        assert 0.0 <= step['minp_low_quality'] <= 1.0


def test_visualize_steps(trained, tmp_path):
    work, ckpt, root = trained
    image = osp.join(root, 'val', '000001.png')
    out = str(tmp_path / 'steps.png')
    canvas = visualize_steps.visualize(
        DEMO_RESOBJ, ckpt, image, out,
        score_thr=0.0)
    assert osp.getsize(out) > 1000
    # T + 1 = 3 panels of 256 px separated by two 6 px gaps.
    assert canvas.shape[1] == 3 * 256 + 2 * 6


def test_prepare_data(tmp_path, capsys):
    sys.path.insert(0, osp.join(REPO, 'tools', 'data'))
    import prepare_data
    root = str(tmp_path / 'shapes')
    assert prepare_data.main(['shapes', '--data-root', root]) == 0
    out = capsys.readouterr().out
    assert 'shapes train: 600 images' in out and 'shapes val: 120 images' in out
    assert osp.isfile(osp.join(root, 'annotations', 'val.json'))
    # a second call reuses the prepared copy
    assert prepare_data.main(['shapes', '--data-root', root]) == 0
    with pytest.raises(SystemExit):
        prepare_data.main(['shapes', '--weights'])
    assert '--weights goes with the trees dataset' in capsys.readouterr().err
