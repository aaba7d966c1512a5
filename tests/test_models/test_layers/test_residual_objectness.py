import pytest
import torch

from resobj_mmdet.models.layers import (ResidualObjectness,
                                        cumulative_objectness,
                                        flatten_objectness,
                                        levels_in_anchor_order)


@pytest.mark.parametrize('residual_input', ['objectness', 'class', 'chain'])
@pytest.mark.parametrize('num_steps', [0, 1, 3])
def test_output_blocks(residual_input, num_steps):
    torch.manual_seed(0)
    m = ResidualObjectness(
        in_channels=8, num_anchors=3, num_steps=num_steps, feat_channels=6,
        residual_input=residual_input, hidden_init='normal')
    m.init_weights()
    out = m(torch.randn(2, 8, 5, 7))
    assert out.shape == (2, (num_steps + 1) * 3, 5, 7)
    blocks = out.split(3, dim=1)
    # o_0 starts near the prior logit; residual biases start at 0 and
    # weights are tiny: r_t ~= 0, so o_t ~= o_0.
    assert torch.allclose(blocks[0], torch.full_like(blocks[0], -4.595),
                          atol=5e-2)
    for r in blocks[1:]:
        assert r.abs().max() < 5e-2
    for t in range(num_steps + 1):
        torch.testing.assert_close(cumulative_objectness(out, 3, t),
                                   sum(blocks[:t + 1]))


def test_kaiming_hidden_init_is_default():
    torch.manual_seed(0)
    m = ResidualObjectness(in_channels=64, num_anchors=2, num_steps=2,
                           feat_channels=64)
    m.init_weights()
    fan_in = 64 * 9
    hidden = [m.obj_tower[0].conv, m.res_tower[0].conv]
    for conv in hidden:
        # He init: std sqrt(2 / fan_in) = 0.059, not RetinaNet's 0.01.
        assert abs(conv.weight.std().item() - (2 / fan_in)**0.5) < 0.01
        assert torch.count_nonzero(conv.bias) == 0
    for conv in [m.obj_logit, m.res_logit]:
        assert abs(conv.weight.std().item() - 0.01) < 0.002
    # The outputs still start near the priors (o_0 ~ logit(0.01), r_t ~ 0),
    # within a fraction of the prior logit -4.6.
    out = m(torch.randn(2, 64, 6, 6))
    o0, *res = out.split(2, dim=1)
    assert (o0 + 4.595).abs().max() < 0.5
    assert all(r.abs().max() < 1.0 for r in res)


def test_hidden_init_is_checked():
    with pytest.raises(ValueError, match='hidden_init'):
        ResidualObjectness(in_channels=4, num_anchors=1, hidden_init='xavier')


def test_init_priors():
    m = ResidualObjectness(in_channels=4, num_anchors=2, num_steps=2,
                           feat_channels=4, obj_prior_prob=0.01)
    m.init_weights()
    assert torch.allclose(m.obj_logit.bias,
                          torch.full((2, ), -4.59512), atol=1e-4)
    assert torch.count_nonzero(m.res_logit.bias) == 0


def test_lite_residual_has_no_hidden_conv():
    m = ResidualObjectness(in_channels=8, num_anchors=1, num_steps=2,
                           feat_channels=8, res_convs=0)
    assert len(m.res_tower) == 0
    assert m.res_logit.weight.shape == (2, 8, 3, 3)  # T * A dense outputs
    assert m(torch.randn(1, 8, 4, 4)).shape == (1, 3, 4, 4)


def test_external_objectness():
    m = ResidualObjectness(in_channels=8, num_anchors=2, num_steps=1,
                           feat_channels=8, with_objectness_subnet=False)
    o0 = torch.randn(1, 2, 4, 4)
    out = m(torch.randn(1, 8, 4, 4), obj_logit=o0)
    assert torch.equal(out[:, :2], o0)
    with pytest.raises(ValueError, match='obj_logit'):
        m(torch.randn(1, 8, 4, 4))


def test_flatten_matches_anchor_order():
    # mmdet orders anchors per level as (y, x, anchor).
    t, a = 1, 2
    lvl = torch.arange(2 * (t + 1) * a * 3 * 4).float().reshape(
        2, (t + 1) * a, 3, 4)
    flat = flatten_objectness([lvl, lvl[:, :, :1, :1]], t)
    assert flat.shape == (2, t + 1, 3 * 4 * a + a)
    step1 = lvl[:, a:2 * a].permute(0, 2, 3, 1).reshape(2, -1)
    assert torch.equal(flat[:, 1, :24], step1)


def _per_level_reference(maps, groups, channels):
    """The per-level permute that the gather replaces."""
    out = []
    for m in maps:
        n, c, h, w = m.shape
        a = c // (groups * channels)
        out.append(m.reshape(n, groups, a, channels, h, w).permute(
            0, 1, 4, 5, 2, 3).reshape(n, groups, h * w * a, channels))
    return torch.cat(out, dim=2)


@pytest.mark.parametrize('groups, channels', [(1, 4), (3, 1), (2, 3)])
def test_levels_in_anchor_order_with_different_anchor_counts(
        groups, channels):
    # SSD-like: 4, 6 and 4 anchors per position on three levels.
    torch.manual_seed(0)
    maps = [
        torch.randn(2, groups * a * channels, h, w, requires_grad=True)
        for a, h, w in ((4, 5, 5), (6, 3, 3), (4, 1, 2))
    ]
    flat = levels_in_anchor_order(maps, groups, channels)
    ref = _per_level_reference(maps, groups, channels)
    assert flat.shape == (2, groups, 25 * 4 + 9 * 6 + 2 * 4, channels)
    assert torch.equal(flat, ref)
    # Gradients reach every level's map, each value once.
    weight = torch.randn_like(flat)
    grads = torch.autograd.grad((flat * weight).sum(), maps)
    ref_grads = torch.autograd.grad((ref * weight).sum(), maps)
    for g, r in zip(grads, ref_grads):
        assert torch.equal(g, r)
    # The same layout again reuses the cached index (no new entry).
    info = levels_in_anchor_order.__globals__['_anchor_order_index']
    hits = info.cache_info().hits
    levels_in_anchor_order(maps, groups, channels)
    assert info.cache_info().hits == hits + 1


def test_levels_in_anchor_order_backward_copies_nothing():
    # SSD's objectness maps (G = T + 1 > 1): a level's gradient is a view
    # of the concatenation's, not a copy per level.
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):

        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    maps = [
        torch.randn(2, 3 * a, h, h, requires_grad=True)
        for a, h in ((4, 5), (6, 3), (4, 2))
    ]
    flat = levels_in_anchor_order(maps, 3, 1)
    with Ops() as ops:
        flat.backward(torch.ones_like(flat))
    # (A reshape of a non-viewable gradient is a clone and an
    # _unsafe_view; the leaves' own gradient copies are autograd's.)
    assert not [n for n in ops.names if 'clone' in n or 'unsafe_view' in n]
    assert all(torch.equal(m.grad, torch.ones_like(m)) for m in maps)


def test_levels_in_anchor_order_same_anchor_counts():
    maps = [torch.randn(1, 2 * 3 * 2, h, h) for h in (4, 2, 1)]
    assert torch.equal(
        levels_in_anchor_order(maps, 2, 2), _per_level_reference(maps, 2, 2))


def test_flatten_objectness_with_different_anchor_counts():
    t = 2
    maps = [torch.randn(2, (t + 1) * a, h, h) for a, h in ((4, 3), (6, 2))]
    assert torch.equal(
        flatten_objectness(maps, t),
        _per_level_reference(maps, t + 1, 1).squeeze(3))


@pytest.mark.parametrize('value, exc', [(-1, ValueError), (1.5, TypeError),
                                        ('2', TypeError), (True, TypeError)])
def test_bad_num_steps_names_field(value, exc):
    with pytest.raises(exc, match='num_steps'):
        ResidualObjectness(in_channels=8, num_anchors=1, num_steps=value)


def test_unknown_residual_input_names_field():
    with pytest.raises(ValueError, match='residual_input'):
        ResidualObjectness(in_channels=8, num_anchors=1,
                           residual_input='box')


@pytest.mark.parametrize('residual_input', ['objectness', 'class'])
def test_lite_fused_logits_equal_per_step_convs(residual_input):
    """Block t of the lite subnets' fused logit conv computes exactly
    r_t = conv_t(f)."""
    import torch.nn.functional as F
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    m = MODELS.build(dict(type='ResidualObjectness', in_channels=8,
                          num_anchors=3, num_steps=3, feat_channels=8,
                          res_convs=0, residual_input=residual_input))
    m.init_weights()
    torch.nn.init.normal_(m.res_logit.weight)  # non-trivial residuals
    torch.nn.init.normal_(m.res_logit.bias)
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    out = m(x)
    feat = x if residual_input == 'class' else m.obj_tower(x)
    w, b = m.res_logit.weight.split(3), m.res_logit.bias.split(3)
    expected = torch.cat([m.obj_logit(m.obj_tower(x))] + [
        F.conv2d(feat, w[t], b[t], padding=1) for t in range(3)], dim=1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # Still isolated: residuals send no gradient to the input feature.
    out[:, 3:].sum().backward()
    assert x.grad is None or (x.grad == 0).all()


def _spread(m):
    """Non-trivial weights, so that folding errors cannot hide."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for c in m.modules():
            if isinstance(c, torch.nn.Conv2d):
                c.weight.copy_(torch.randn(c.weight.shape, generator=gen) * .1)
                c.bias.copy_(torch.randn(c.bias.shape, generator=gen) * .5)


@pytest.mark.parametrize('kwargs,convs_after', [
    (dict(), 2),  # objectness input: folded into the objectness logit conv
    (dict(residual_input='class'), 3),  # T convs -> 1
    (dict(with_objectness_subnet=False), 1),  # host o_0: T convs -> 1
])
def test_switch_to_deploy_folds_lite_residuals(kwargs, convs_after):
    m = ResidualObjectness(in_channels=8, num_anchors=3, num_steps=3,
                           feat_channels=8, res_convs=0, **kwargs)
    _spread(m)
    m.eval()
    x = torch.randn(2, 8, 5, 7)
    args = (x, ) if m.with_objectness_subnet else (x, torch.randn(2, 3, 5, 7))
    expected = cumulative_objectness(m(*args), 3, 3)
    assert m.fusable and m.switch_to_deploy()
    assert m.switch_to_deploy()  # idempotent
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == convs_after
    assert m.num_steps == 0 and m.folded_steps == 3
    torch.testing.assert_close(m(*args), expected, rtol=1e-5, atol=1e-5)
    m.train()
    with pytest.raises(RuntimeError, match='switch_to_deploy'):
        m(*args)


def test_switch_to_deploy_leaves_full_subnets_alone():
    for kwargs in (dict(res_convs=1), dict(res_convs=0,
                                           residual_input='chain')):
        m = ResidualObjectness(in_channels=8, num_anchors=3, num_steps=2,
                               feat_channels=8, **kwargs)
        assert not m.fusable and not m.switch_to_deploy()
        assert m.num_steps == 2 and not m.deploy
