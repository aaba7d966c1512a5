"""tools/: the objectness-statistics plot, the gate diagnosis, the
proposal recall, the per-loss gradients and the per-step visualisation."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import DEMO_RESOBJ, REPO, use_tiny_data

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import diagnose_gate  # noqa: E402
import loss_gradients  # noqa: E402
import plot_objectness_stats  # noqa: E402
import proposal_recall  # noqa: E402
import visualize_steps  # noqa: E402


@pytest.fixture(scope='module')
def trained(tiny_shapes, tmp_path_factory):
    """A demo-sized ResObj RetinaNet trained 3 iterations with the hook."""
    work = str(tmp_path_factory.mktemp('hooked'))
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes, work,
                        max_iters=3)
    cfg.custom_hooks = [dict(type='ObjectnessStatsHook', interval=1)]
    # Keep the running gate thresholds (for residual_gate='trained').
    cfg.model.bbox_head.loss_objectness.gate_momentum = 0.99
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
        for key in ('gate_neg_below', 'outside_neg_above', 'pos_up'):
            assert step[key] is None or 0.0 <= step[key] <= 1.0, key
    for t in range(3):
        assert 0.0 <= summary[f'auc_t{t}'] <= 1.0


def test_diagnose_gate_map_per_step(trained, tmp_path):
    work, ckpt, root = trained
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), root, work,
                        max_iters=3)
    cfg.model.test_cfg.score_thr = 0.0
    config = str(tmp_path / 'cfg.py')
    cfg.dump(config)
    summary = diagnose_gate.main(
        [config, ckpt, '--split', 'val', '--max-images', '2', '--map'])
    # Trained keeping the running gate thresholds: the residuals are also
    # scored applied only where they were trained.
    assert set(summary['map']) == {'step0', 'step1', 'step2',
                                   'step1_trained', 'step2_trained'}
    for metrics in summary['map'].values():
        assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert len(summary['running_minp']) == 2
    assert all(0 < p < 1 for p in summary['running_minp'])


def test_auc_counts_pairs_and_ties():
    import torch
    assert diagnose_gate.auc(torch.tensor([3., 1.]),
                             torch.tensor([2., 0.])) == 0.75
    assert diagnose_gate.auc(torch.tensor([1.]), torch.tensor([1.])) == 0.5
    assert diagnose_gate.auc(torch.tensor([2., 2.]),
                             torch.tensor([2., 1., 0.])) == pytest.approx(
                                 (0.5 + 1 + 1) * 2 / 6)
    assert diagnose_gate.auc(torch.tensor([1.]), torch.tensor([])) is None


def test_best_ious_is_the_best_of_the_first_k():
    import torch
    proposals = torch.tensor([[0., 0., 10., 10.],    # IoU 1 with gt 0
                              [20., 20., 30., 30.],  # IoU 1 with gt 1
                              [0., 0., 10., 5.]])    # IoU 0.5 with gt 0
    gts = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.],
                        [0., 0., 5., 10.]])
    best = proposal_recall.best_ious(proposals[[2, 0, 1]], gts, [1, 2, 5])
    # k = 1: only the IoU-0.5 box; gt 2 overlaps it by 25 / 75.
    assert torch.allclose(best[0], torch.tensor([0.5, 0.0, 25 / 75]))
    # k = 2 adds the exact box of gt 0, which covers half of gt 2; k = 5 (more
    # than there are) all three.
    assert torch.allclose(best[1], torch.tensor([1.0, 0.0, 0.5]))
    assert torch.allclose(best[2], torch.tensor([1.0, 1.0, 0.5]))
    assert proposal_recall.best_ious(proposals[:0], gts, [1]).eq(0).all()
    summary = proposal_recall.summarise(
        best, torch.tensor([0, 1, 0]), [1, 2, 5], [0.5, 0.7], ['a', 'b'])
    assert summary['a']['boxes'] == 2 and summary['all']['boxes'] == 3
    assert summary['a']['recall@1/0.5'] == 0.5  # gt 0 yes, gt 2 no
    assert summary['a']['recall@2/0.5'] == 1.0
    assert summary['a']['recall@2/0.7'] == 0.5
    assert summary['b']['recall@2/0.5'] == 0.0
    assert summary['all']['recall@5/0.7'] == pytest.approx(2 / 3)
    assert summary['a']['best_iou@5'] == pytest.approx(0.75)


def test_proposal_recall_of_a_two_stage_checkpoint(tiny_shapes, tmp_path):
    import torch
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = use_tiny_data(
        Config.fromfile(osp.join(
            REPO, 'configs/demo/resobj-faster-rcnn_r18-w16_fpn_12e_shapes.py')),
        tiny_shapes, str(tmp_path), max_iters=1)
    config = str(tmp_path / 'cfg.py')
    cfg.dump(config)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'recall.json'
    summary = proposal_recall.main(
        [config, ckpt, '--topk', '1000', '10', '--out', str(out)])
    assert osp.getsize(out) > 0 and summary['images'] == 8  # the val split
    classes = [k for k in summary if k not in ('all', 'images')]
    assert sum(summary[c]['boxes'] for c in classes) == \
        summary['all']['boxes'] > 0
    for row in summary.values():
        if not isinstance(row, dict) or not row['boxes']:
            continue
        for k in (10, 1000):  # sorted, deduplicated
            assert row[f'recall@{k}/0.7'] <= row[f'recall@{k}/0.5'] <= 1
        assert row['recall@10/0.5'] <= row['recall@1000/0.5']
        assert 0 <= row['best_iou@10'] <= row['best_iou@1000'] <= 1
    one_stage = str(tmp_path / 'retinanet.py')
    use_tiny_data(Config.fromfile(DEMO_RESOBJ), tiny_shapes, str(tmp_path),
                  max_iters=1).dump(one_stage)
    with pytest.raises(SystemExit, match='has no RPN'):
        proposal_recall.main([one_stage, ckpt])


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


def test_loss_gradients_per_loss_and_group(trained, tmp_path):
    work, ckpt, root = trained
    cfg = use_tiny_data(Config.fromfile(DEMO_RESOBJ), root, work,
                        max_iters=3)
    config = str(tmp_path / 'cfg.py')
    cfg.dump(config)
    out = tmp_path / 'grads.json'
    report = loss_gradients.main(
        [config, 'init', ckpt, '--batches', '2', '--out', str(out)])
    assert osp.getsize(out) > 0 and set(report) == {'init', ckpt}
    for r in report.values():
        assert r['batches'] == 2
        grads = r['grad_norm']
        assert set(grads) == {'loss_cls', 'loss_bbox', 'loss_obj',
                              'loss_res1', 'loss_res2', 'total'}
        # Gradient isolation (paper Table 2a): the residual losses reach
        # the residual subnets only; the objectness loss never reaches them
        # nor the box tower; the box loss never reaches the class tower.
        for t in (1, 2):
            g = grads[f'loss_res{t}']
            assert g['residual'] > 0
            assert all(g.get(k, 0) == 0 for k in (
                'backbone', 'neck', 'cls tower', 'objectness'))
        assert grads['loss_obj']['objectness'] > 0
        assert grads['loss_obj']['cls tower'] > 0
        assert grads['loss_obj'].get('residual', 0) == 0
        assert 'box tower' not in grads['loss_obj']
        assert 'cls tower' not in grads['loss_bbox']
        assert grads['total']['all'] > 0
        assert abs(sum(r['loss_share'].values()) - 1) < 1e-6
        a = r['assignment']
        assert a['pos_per_image'] > 0
        assert 0 < a['gts_with_positive'] <= 1
        assert a['gts_with_iou_thr_positive'] <= a['gts_with_positive']
        assert 0 <= r['features']['cls tower dead channels'] <= 1
    # The same images for every checkpoint.
    assert report['init']['assignment'] == report[ckpt]['assignment']
    # --cfg-options reaches the model: the class loss at twice its weight
    # has twice its gradient on the same initial weights and batches.
    doubled = loss_gradients.main(
        [config, 'init', '--batches', '2', '--cfg-options',
         'model.bbox_head.loss_cls.loss_weight=2.0'])['init']['grad_norm']
    base = report['init']['grad_norm']
    for group in ('cls tower', 'cls logit'):
        assert doubled['loss_cls'][group] == pytest.approx(
            2 * base['loss_cls'][group], rel=1e-4)
    assert doubled['loss_bbox'] == pytest.approx(base['loss_bbox'], rel=1e-4)
