"""The fused residual subnets against checkpoints and outputs saved by the
per-step layout (``tests/data/legacy_layout``, commit bc998ce): the same
losses, gradients and predictions on all six heads, T = 0..3, lite or
not, plus BN, 'class', 'chain' and non-isolated variants."""
import os.path as osp
import sys

import pytest
import torch

from helpers import REPO

LEGACY = osp.join(REPO, 'tests', 'data', 'legacy_layout')
sys.path.insert(0, LEGACY)
import cases  # noqa: E402


@pytest.fixture(scope='module')
def fixture():
    return torch.load(osp.join(LEGACY, 'heads.pth'), weights_only=False)


def _tree(flat, section):
    """The part of an unpacked case under ``section/``."""
    head = section + '/'
    return {k[len(head):]: v for k, v in flat.items() if k.startswith(head)}


def test_fixture_is_from_the_per_step_layout(fixture):
    assert fixture['commit'].startswith('bc998ce')
    assert set(fixture['cases']) == set(cases.CASES)
    state = _tree(cases.unpack(fixture['cases']['retinanet-T2']),
                  'state_dict')
    assert 'res_obj.res_towers.1.0.conv.weight' in state


@pytest.mark.parametrize('name', list(cases.CASES))
def test_legacy_checkpoint_gives_the_same_results(fixture, name):
    old = cases.unpack(fixture['cases'][name])
    head = cases.build(name)
    missing, unexpected = head.load_state_dict(_tree(old, 'state_dict'),
                                               strict=True)
    assert not missing and not unexpected
    family, num_steps, lite, res = cases.CASES[name]
    if num_steps and res.get('residual_input') != 'chain':
        assert not any('res_towers' in k for k in head.state_dict())
    new = cases.run(head, name)

    for key, value in _tree(old, 'losses').items():
        torch.testing.assert_close(new['losses'][key], value, rtol=1e-5,
                                   atol=1e-6, msg=f'{name}: {key}')
    assert set(new['losses']) == set(_tree(old, 'losses'))
    # Old gradients in the new layout: loaded like the old parameters.
    grads = cases.build(name)
    grads.load_state_dict(_tree(old, 'grads'), strict=False)
    ref = dict(grads.named_parameters())
    assert set(new['grads']) <= set(ref)
    for key, value in new['grads'].items():
        torch.testing.assert_close(value, ref[key], rtol=1e-4, atol=1e-6,
                                   msg=f'{name}: grad of {key}')
    obj = _tree(old, 'obj_outs')
    for i, out in enumerate(new['obj_outs']):
        torch.testing.assert_close(out, obj[str(i)], rtol=1e-5, atol=1e-5)
    preds = _tree(old, 'preds')
    for step, per_image in new['preds'].items():
        for i, pred in enumerate(per_image):
            ref = {key: preds[f'{step}/{i}/{key}']
                   for key in ('bboxes', 'scores', 'labels')}
            _assert_same_detections(pred, ref,
                                    f'{name}: step {step} image {i}')


def _assert_same_detections(got, ref, msg, tie=1e-6):
    """The same top-k detections, up to the order of tied scores.

    Scores are compared in order (sorted, so ties cannot swap them). Boxes
    with scores within ``tie`` of each other (a barely initialised head has
    many) come out of the sort in an order that rests on the last bits of
    float arithmetic, which differ between CPUs: each detection must match
    a reference one of the same label, box and tied score. Detections tied
    with the k-th score are exempt: the top-k cut may keep another one of
    the tie.
    """
    assert got['scores'].shape == ref['scores'].shape, msg
    torch.testing.assert_close(got['scores'].to(ref['scores'].dtype),
                               ref['scores'], rtol=1e-4, atol=1e-4, msg=msg)
    tied = (got['scores'][:, None] - ref['scores'][None]).abs() <= tie
    same = ((got['bboxes'][:, None].to(ref['bboxes'].dtype) -
             ref['bboxes'][None]).abs() <= 1e-4 +
            1e-4 * ref['bboxes'][None].abs()).all(-1) & (
                got['labels'][:, None] == ref['labels'][None])
    matched = (tied & same).any(1)
    if len(ref['scores']):
        matched |= (got['scores'] - ref['scores'][-1]).abs() <= tie
    assert matched.all(), (
        f'{msg}: detections {(~matched).nonzero().flatten().tolist()} '
        'have no reference detection of the same label and box')


def test_grouped_norm_keeps_each_step_apart():
    """GroupNorm of the fused tower normalises each step's channels alone:
    scaling one step's hidden conv leaves the other steps' residuals."""
    from resobj_mmdet.models.layers import ResidualObjectness
    torch.manual_seed(0)
    m = ResidualObjectness(in_channels=8, num_anchors=2, num_steps=3,
                           feat_channels=8, res_convs=2,
                           norm_cfg=dict(type='GN', num_groups=4))
    m.init_weights()
    assert m.res_tower[0].gn.num_groups == 12
    x = torch.randn(2, 8, 5, 5)
    before = m(x)
    with torch.no_grad():  # step 1's block of the first hidden conv
        m.res_tower[0].conv.weight[8:16] += torch.randn(8, 8, 3, 3)
    after = m(x)
    torch.testing.assert_close(after[:, :2], before[:, :2])  # o_0
    torch.testing.assert_close(after[:, 2:4], before[:, 2:4])  # r_1
    assert not torch.allclose(after[:, 4:6], before[:, 4:6])  # r_2
    torch.testing.assert_close(after[:, 6:], before[:, 6:])  # r_3


def test_fused_init_matches_one_subnet_per_step():
    """Kaiming with one subnet's fan: the fused hidden conv's std does not
    shrink with T."""
    from resobj_mmdet.models.layers import ResidualObjectness
    torch.manual_seed(0)
    stds = []
    for steps in (1, 4):
        m = ResidualObjectness(in_channels=64, num_anchors=2,
                               num_steps=steps, feat_channels=64,
                               res_convs=2)
        m.init_weights()
        stds.append([float(c.conv.weight.detach().std())
                     for c in m.res_tower])
    expected = (2.0 / (64 * 9)) ** 0.5
    for per_layer in stds:
        for std in per_layer:
            assert std == pytest.approx(expected, rel=0.05)


def test_step_count_mismatch_is_an_error_naming_the_keys():
    from resobj_mmdet.models.layers import ResidualObjectness
    old = ResidualObjectness(in_channels=4, num_anchors=1, num_steps=3,
                             feat_channels=4, residual_input='chain')
    state = old.state_dict()
    new = ResidualObjectness(in_channels=4, num_anchors=1, num_steps=2,
                             feat_channels=4)
    with pytest.raises(RuntimeError, match=r'res_towers\.\*\.0\.conv\.'
                       r'weight: the checkpoint has steps \[0, 1, 2\]'):
        new.load_state_dict(state)


def test_fused_init_draws_what_the_per_step_subnets_drew():
    """From the same seed, the fused subnets start from the very weights
    the per-step layout gave (its draws, in its order), so trainings of the
    default layout start where they started before the fusion. 'chain'
    keeps the per-step layout with the same shapes (every step reads a
    feat_channels-wide input); numels are multiples of 16, the block size
    of PyTorch's CPU normal_."""
    from resobj_mmdet.models.layers import ResidualObjectness

    def build(residual_input):
        torch.manual_seed(0)
        m = ResidualObjectness(in_channels=16, num_anchors=2, num_steps=3,
                               feat_channels=16,
                               residual_input=residual_input)
        m.init_weights()
        return m

    per_step, fused = build('chain'), build('objectness')
    for old, new in ((per_step.obj_tower[0].conv, fused.obj_tower[0].conv),
                     (per_step.obj_logit, fused.obj_logit)):
        assert torch.equal(old.weight, new.weight)
    assert torch.equal(
        torch.cat([t[0].conv.weight for t in per_step.res_towers]),
        fused.res_tower[0].conv.weight)
    assert torch.equal(torch.cat([c.weight for c in per_step.res_logits]),
                       fused.res_logit.weight)
