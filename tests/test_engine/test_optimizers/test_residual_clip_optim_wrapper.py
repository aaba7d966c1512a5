import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

import resobj_mmdet  # noqa: F401
from resobj_mmdet.engine.optimizers import (ResObjOptimWrapper,
                                            residual_parameters)
from resobj_mmdet.models.layers import ResidualObjectness


class _Net(nn.Module):
    """A shared conv feeding a ResidualObjectness (residual input detached)."""

    def __init__(self, detach=True):
        super().__init__()
        self.shared = nn.Conv2d(3, 8, 3, padding=1)
        self.res_obj = ResidualObjectness(
            in_channels=8, num_anchors=1, num_steps=2, feat_channels=8,
            detach_residual=detach)

    def forward(self, x):
        return self.res_obj(self.shared(x))


def _grads(model, residual_scale=100.0):
    """Loss whose residual part has a far larger gradient than the rest."""
    torch.manual_seed(0)
    out = model(torch.randn(2, 3, 6, 6))
    (out[:, :1].square().mean() +
     residual_scale * out[:, 1:].square().mean()).backward()


def _wrapper(model, type_='ResObjOptimWrapper'):
    wrapper = build_optim_wrapper(
        model,
        dict(type=type_, optimizer=dict(type='SGD', lr=0.1),
             clip_grad=dict(max_norm=0.1)))
    wrapper.initialize_count_status(model, 0, 10)
    return wrapper


def test_residual_parameters_are_the_residual_subnets():
    model = _Net()
    ids = {id(p) for p in residual_parameters(model)}
    names = {n for n, p in model.named_parameters() if id(p) in ids}
    assert names and all(n.startswith('res_obj.res_') for n in names)
    # The objectness subnet (o_0) and the shared conv are never residual.
    assert not any(n.startswith('shared') for n in names)
    assert not list(residual_parameters(_Net(detach=False)))


def test_clipping_apart_keeps_the_shared_update():
    model = _Net()
    # Reference: the non-residual gradients clipped by their own norm.
    _grads(model)
    shared = model.shared.weight.grad.clone()
    res_ids = {id(p) for p in residual_parameters(model)}
    norm = torch.cat([p.grad.flatten() for p in model.parameters()
                      if id(p) not in res_ids]).norm()
    expected = shared * min(1.0, 0.1 / (norm.item() + 1e-6))

    model.zero_grad()
    wrapper = _wrapper(model)
    _grads(model)
    wrapper._clip_grad()
    torch.testing.assert_close(model.shared.weight.grad, expected)
    res = torch.cat([p.grad.flatten() for p in residual_parameters(model)])
    assert res.norm() == pytest.approx(0.1, rel=1e-3)
    assert wrapper.message_hub.get_scalar('train/grad_norm_residual')

    # mmengine's wrapper clips by the global norm: the residual gradient
    # shrinks the shared update far below the reference.
    model.zero_grad()
    plain = _wrapper(model, type_='OptimWrapper')
    _grads(model)
    plain._clip_grad()
    assert model.shared.weight.grad.norm() < 0.1 * expected.norm()


def test_without_runner_model_clips_together_and_without_clip_is_plain():
    model = _Net()
    wrapper = build_optim_wrapper(
        model, dict(type='ResObjOptimWrapper',
                    optimizer=dict(type='SGD', lr=0.1),
                    clip_grad=dict(max_norm=0.1)))
    assert isinstance(wrapper, ResObjOptimWrapper)
    _grads(model)
    wrapper._clip_grad()  # no initialize_count_status: one global norm
    total = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert total.norm() == pytest.approx(0.1, rel=1e-3)

    # No clip_grad: nothing to clip apart (mmengine's wrapper skips it).
    model.zero_grad()
    wrapper = build_optim_wrapper(
        model, dict(type='ResObjOptimWrapper',
                    optimizer=dict(type='SGD', lr=0.1)))
    assert not wrapper.clip_grad_kwargs
