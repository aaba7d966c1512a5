import math

import pytest
import torch
import torch.nn.functional as F

from resobj_mmdet.models.losses import (ResidualObjectnessLoss,
                                        refine_objectness)


def gates_of(logits, labels, weights=None, **kwargs):
    weights = torch.ones(labels.shape) if weights is None else weights
    return refine_objectness(logits, labels.float(), weights, **kwargs)[1]


def bce(x, y):
    """Hand BCE-with-logits of one scalar."""
    return math.log1p(math.exp(-x)) if y else math.log1p(math.exp(x))


def test_gated_set_hand_computed():
    # One image, 5 anchors, T = 1. Positives: anchors 0 and 2.
    o0 = [2.0, -1.0, 0.5, -3.0, 1.0]
    r1 = [0.3, 5.0, 1.0, 2.0, -2.0]
    labels = [1, 0, 1, 0, 0]
    logits = torch.tensor([[o0, r1]])
    out = ResidualObjectnessLoss()(
        logits, torch.tensor([labels]), avg_factor=2)
    exp_obj = sum(bce(x, y) for x, y in zip(o0, labels)) / 2
    # minp = min(o0[0], o0[2]) = 0.5 -> gate = {0, 2, 4}; anchor 1 (which r1
    # would push up) and anchor 3 are easy negatives, outside the gate.
    gate = [0, 2, 4]
    exp_res = sum(bce(o0[i] + r1[i], labels[i]) for i in gate) / 2
    assert set(out) == {'loss_obj', 'loss_res1'}
    assert out['loss_obj'].item() == pytest.approx(exp_obj, rel=1e-6)
    assert out['loss_res1'].item() == pytest.approx(exp_res, rel=1e-6)
    gates = gates_of(logits, torch.tensor([labels]))
    assert gates[0, 0].tolist() == [True, False, True, False, True]


def test_two_steps_gate_uses_gated_previous_step():
    # T = 2. S_2 is computed from o_1, in which anchors outside S_1 keep o_0.
    o0 = [0.0, 1.0, -1.0]
    r1 = [2.0, 0.0, 5.0]  # anchor 2 is outside S_1: its r1 is not applied
    r2 = [0.5, -0.5, 0.1]
    logits = torch.tensor([[o0, r1, r2]])
    labels = torch.tensor([[1, 0, 0]])
    refined, gates = refine_objectness(logits, labels.float(),
                                       torch.ones(1, 3))
    assert gates[0, 0].tolist() == [True, True, False]  # minp(o0) = 0
    assert refined[0, 1].tolist() == [2.0, 1.0, -1.0]  # not 4.0
    # minp(o1) = 2; with r1 applied everywhere anchor 2 (4.0) would enter.
    assert gates[0, 1].tolist() == [True, False, False]
    assert refined[0, 2].tolist() == [2.5, 1.0, -1.0]
    out = ResidualObjectnessLoss(res_loss_weight=0.5)(
        logits, labels, avg_factor=1)
    assert out['loss_res2'].item() == pytest.approx(0.5 * bce(2.5, 1))
    assert out['loss_res1'].item() == pytest.approx(
        0.5 * (bce(2.0, 1) + bce(1.0, 0)))


@pytest.mark.parametrize('detach_prev', [True, False])
def test_isolation_of_previous_step(detach_prev):
    logits = torch.tensor([[[0.5, -1.0, 1.0], [0.3, 0.2, -0.1],
                            [0.1, 0.4, 0.2]]], requires_grad=True)
    labels = torch.tensor([[1, 0, 0]])
    out = ResidualObjectnessLoss()(logits, labels, avg_factor=1,
                                   detach_prev=detach_prev)
    (out['loss_res1'] + out['loss_res2']).backward()
    grad = logits.grad[0]
    assert grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0
    # o_0 (and r_1 through step 2) get residual gradients only without
    # isolation.
    assert (grad[0].abs().sum() > 0) != detach_prev
    logits.grad = None
    out = ResidualObjectnessLoss()(logits, labels, avg_factor=1,
                                   detach_prev=detach_prev)
    out['loss_res2'].backward()
    assert (logits.grad[0, 1].abs().sum() > 0) != detach_prev


def test_image_without_positive():
    # Image 0 has a positive, image 1 has none.
    logits = torch.tensor([[[1.0, -2.0], [0.5, -0.5]],
                           [[0.3, -4.0], [-0.2, 1.0]]])
    labels = torch.tensor([[1, 0], [0, 0]])
    out_all = ResidualObjectnessLoss(no_pos_gate='all')(
        logits, labels, avg_factor=1)
    out_none = ResidualObjectnessLoss(no_pos_gate='none')(
        logits, labels, avg_factor=1)
    img0 = bce(1.5, 1)  # gate of image 0: only the positive
    img1 = bce(0.1, 0) + bce(-3.0, 0)  # 'all': every anchor of image 1
    assert out_all['loss_res1'].item() == pytest.approx(img0 + img1)
    assert out_none['loss_res1'].item() == pytest.approx(img0)
    # Objectness loss is identical either way.
    assert out_all['loss_obj'].item() == pytest.approx(
        out_none['loss_obj'].item())


def test_no_positive_anywhere_is_finite():
    logits = torch.randn(2, 3, 50)
    labels = torch.zeros(2, 50)
    out = ResidualObjectnessLoss()(logits, labels, avg_factor=0)
    # avg_factor 0 is clamped to 1, not divided by eps.
    exp = F.binary_cross_entropy_with_logits(
        logits[:, 0], labels, reduction='sum')
    assert out['loss_obj'].item() == pytest.approx(exp.item(), rel=1e-5)
    assert all(torch.isfinite(v) and v > 0 for v in out.values())


def test_ignored_anchors():
    # Anchor 1 is ignored (weight 0) although it has the highest logit and
    # even a positive label: it enters no loss and does not set minp.
    o0 = [0.5, 9.0, -1.0, 2.0]
    r1 = [0.5, 0.5, 0.5, 0.5]
    labels = torch.tensor([[1, 1, 0, 0]])
    weights = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    logits = torch.tensor([[o0, r1]])
    out = ResidualObjectnessLoss()(logits, labels, weights, avg_factor=1)
    assert out['loss_obj'].item() == pytest.approx(
        bce(0.5, 1) + bce(-1.0, 0) + bce(2.0, 0))
    assert out['loss_res1'].item() == pytest.approx(bce(1.0, 1) +
                                                    bce(2.5, 0))
    gates = gates_of(logits, labels, weights)
    assert gates[0, 0].tolist() == [True, False, False, True]


def test_t0_equals_plain_bce():
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 40)
    labels = (torch.rand(3, 40) > 0.8).float()
    weights = (torch.rand(3, 40) > 0.1).float()
    out = ResidualObjectnessLoss(loss_weight=2.0)(
        logits, labels, weights, avg_factor=7)
    exp = F.binary_cross_entropy_with_logits(
        logits[:, 0], labels, weights, reduction='sum') / 7
    assert set(out) == {'loss_obj'}
    torch.testing.assert_close(out['loss_obj'], 2.0 * exp)


def test_mean_without_avg_factor_and_sum():
    logits = torch.tensor([[[1.0, -1.0]]])
    labels = torch.tensor([[1, 0]])
    mean = ResidualObjectnessLoss()(logits, labels)['loss_obj']
    total = ResidualObjectnessLoss(reduction='sum')(logits, labels)['loss_obj']
    assert mean.item() == pytest.approx(bce(1.0, 1))  # (2 * bce(1,1)) / 2
    assert total.item() == pytest.approx(2 * bce(1.0, 1))


def test_low_precision_inputs():
    logits = torch.randn(2, 3, 30).to(torch.bfloat16)
    labels = (torch.rand(2, 30) > 0.7).float()
    out = ResidualObjectnessLoss()(logits, labels, avg_factor=3)
    assert all(v.dtype == torch.float32 and torch.isfinite(v)
               for v in out.values())


@pytest.mark.parametrize('kwargs, match', [
    (dict(no_pos_gate='batch'), 'no_pos_gate'),
    (dict(reduction='none'), 'reduction'),
    (dict(gate_quantile=1.0), 'gate_quantile'),
    (dict(gate_quantile=-0.1), 'gate_quantile'),
    (dict(gate_quantile=True), 'gate_quantile'),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResidualObjectnessLoss(**kwargs)


def test_bad_shapes_name_the_argument():
    loss = ResidualObjectnessLoss()
    with pytest.raises(ValueError, match='`logits`'):
        loss(torch.zeros(2, 10), torch.zeros(2, 10))
    with pytest.raises(ValueError, match='`labels`'):
        loss(torch.zeros(2, 3, 10), torch.zeros(2, 9))
    with pytest.raises(ValueError, match='`weights`'):
        loss(torch.zeros(2, 3, 10), torch.zeros(2, 10), torch.ones(10))


def test_gate_quantile_hand_computed():
    """A quantile of the positives' scores opens the gate: the weak positive
    (0.0) no longer lets the negative at 0.2 in, and stays in itself."""
    o0 = [2.0, 0.2, 0.5, -3.0, 1.0, 0.0]
    r1 = [0.1, 0.3, -0.2, 0.4, 0.5, 0.6]
    labels = torch.tensor([[1, 0, 1, 0, 0, 1]])
    logits = torch.tensor([[o0, r1]])
    paper = gates_of(logits, labels)  # minp = 0.0
    assert paper[0, 0].tolist() == [True, True, True, False, True, True]
    # Positives 0.0, 0.5, 2.0: the lower median is 0.5.
    median = gates_of(logits, labels, gate_quantile=0.5)
    assert median[0, 0].tolist() == [True, False, True, False, True, True]
    out = ResidualObjectnessLoss(gate_quantile=0.5)(logits, labels,
                                                    avg_factor=3)
    exp = sum(bce(o0[i] + r1[i], int(labels[0, i])) for i in (0, 2, 4, 5))
    assert out['loss_res1'].item() == pytest.approx(exp / 3, rel=1e-6)
    # No positive: 'all' gates every anchor, 'none' none, as with the min.
    none = torch.zeros(1, 6)
    assert gates_of(logits, none, gate_quantile=0.5).all()
    assert not gates_of(logits, none, gate_quantile=0.5,
                        no_pos_gate='none').any()


def _algorithm1_reference(logits, labels, weights, avg_factor, no_pos_gate,
                          detach_prev):
    """Algorithm 1 written literally: image by image, step by step."""
    losses = [logits.new_zeros(()) for _ in range(logits.size(1))]
    for b in range(logits.size(0)):
        valid = weights[b] > 0
        pos = (labels[b] > 0) & valid
        y = labels[b].float()
        o = logits[b, 0]
        losses[0] = losses[0] + (weights[b] * F.binary_cross_entropy_with_logits(
            o, y, reduction='none')).sum()
        for t in range(1, logits.size(1)):
            if pos.any():
                gate = valid & (o.detach() >= o.detach()[pos].min())
            elif no_pos_gate == 'all':
                gate = valid.clone()
            else:
                gate = torch.zeros_like(valid)
            prev = o.detach() if detach_prev else o
            o_t = prev + logits[b, t]
            losses[t] = losses[t] + (weights[b] * gate *
                                     F.binary_cross_entropy_with_logits(
                                         o_t, y, reduction='none')).sum()
            o = torch.where(gate, o_t, prev)
    return [loss / max(avg_factor, 1.0) for loss in losses]


@pytest.mark.parametrize('steps', [1, 2, 3])
@pytest.mark.parametrize('detach_prev', [True, False])
@pytest.mark.parametrize('no_pos_gate', ['all', 'none'])
def test_batched_loss_equals_literal_algorithm1(steps, detach_prev,
                                                no_pos_gate):
    # The one-mask formulation (logits * [1, S] + sg(o_{t-1})) against the
    # literal per-image, per-step loop: the same losses and gradients,
    # with ignored anchors and an image without positives.
    torch.manual_seed(steps)
    logits = torch.randn(3, steps + 1, 60) * 2
    labels = (torch.rand(3, 60) < 0.15).long()
    labels[2] = 0  # no positive
    weights = (torch.rand(3, 60) > 0.1).float() * 1.5
    x = logits.clone().requires_grad_()
    out = ResidualObjectnessLoss(no_pos_gate=no_pos_gate)(
        x, labels, weights, avg_factor=7, detach_prev=detach_prev)
    ref_x = logits.clone().requires_grad_()
    ref = _algorithm1_reference(ref_x, labels, weights, 7, no_pos_gate,
                                detach_prev)
    names = ['loss_obj'] + [f'loss_res{t}' for t in range(1, steps + 1)]
    assert list(out) == names
    for name, value in zip(names, ref):
        torch.testing.assert_close(out[name], value)
    grad, = torch.autograd.grad(sum(out.values()), x)
    ref_grad, = torch.autograd.grad(sum(ref), ref_x)
    torch.testing.assert_close(grad, ref_grad)
    # The statistics path (ignored anchors taken out of the gates) gives
    # the same losses.
    loss = ResidualObjectnessLoss(no_pos_gate=no_pos_gate)
    loss.record_stats = True
    out_stats = loss(logits, labels, weights, avg_factor=7,
                     detach_prev=detach_prev)
    for name in names:
        torch.testing.assert_close(out_stats[name], out[name])


def test_running_gate_is_an_ema_of_the_weakest_positive():
    # Three images, T = 2. Image 0: positives 0, 2; image 1: positive 1;
    # image 2 has none (its non-finite minp stays out of the mean).
    o0 = [[2.0, -1.0, 0.5], [0.0, -2.0, 1.0], [1.0, 1.0, 1.0]]
    r1 = [[1.0, 0.0, -1.0], [3.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    r2 = [[0.0, 0.0, 0.0]] * 3
    logits = torch.tensor([o0, r1, r2]).transpose(0, 1)  # (3, 3, 3)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    loss = ResidualObjectnessLoss(gate_momentum=0.5)
    gate = torch.full((2, ), float('nan'))
    plain = loss(logits, labels, avg_factor=3)
    out = loss(logits, labels, avg_factor=3, running_gate=gate)
    for key in plain:  # it changes no loss
        assert out[key].item() == plain[key].item(), key
    # minp_1 = o_0 of the weakest positive: image 0 min(2.0, 0.5),
    # image 1 -2.0. minp_2 on o_1 (anchor 2 of image 0 is in S_1: 0.5 - 1;
    # anchor 1 of image 1: -2 + 1).
    torch.testing.assert_close(gate, torch.tensor([(0.5 - 2.0) / 2,
                                                   (-0.5 - 1.0) / 2]))
    first = gate.clone()
    shifted = logits.clone()
    shifted[:, 0] += 1.0  # every o_t one higher, the same gates
    loss(shifted, labels, avg_factor=3, running_gate=gate)
    torch.testing.assert_close(gate, 0.5 * first + 0.5 * (first + 1.0))
    # A batch without positives, evaluation, and the default (None: not
    # kept) leave it as it is.
    before = gate.clone()
    loss(logits, torch.zeros_like(labels), running_gate=gate)
    ResidualObjectnessLoss()(logits + 5.0, labels, running_gate=gate)
    loss.eval()
    loss(logits + 5.0, labels, running_gate=gate)
    torch.testing.assert_close(gate, before)


@pytest.mark.parametrize('momentum', [1.0, -0.1, True, '0.9'])
def test_bad_gate_momentum(momentum):
    with pytest.raises(ValueError, match='gate_momentum'):
        ResidualObjectnessLoss(gate_momentum=momentum)
