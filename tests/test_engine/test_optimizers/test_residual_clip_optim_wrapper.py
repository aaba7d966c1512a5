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


def test_constructor_builds_the_resobj_counterpart(monkeypatch):
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp

    import resobj_mmdet.engine.optimizers.residual_clip_optim_wrapper as mod
    logged = []
    monkeypatch.setattr(mod, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from resobj_mmdet.engine.optimizers import ResObjAmpOptimWrapper
    model = _Net()
    base = dict(constructor='ResObjOptimWrapperConstructor',
                optimizer=dict(type='SGD', lr=0.1),
                clip_grad=dict(max_norm=0.1))
    # No type (mmengine's default) and 'OptimWrapper': clipped apart.
    for extra in ({}, dict(type='OptimWrapper')):
        wrapper = build_optim_wrapper(model, dict(base, **extra))
        assert type(wrapper) is ResObjOptimWrapper
        assert wrapper.clip_grad_kwargs == dict(max_norm=0.1)
    # mmdet's `train.py --amp` sets type='AmpOptimWrapper' and
    # loss_scale='dynamic' on the config: still clipped apart. (mmengine's
    # AMP wrapper refuses a machine without an accelerator; its scaler is
    # disabled here, the class is what is checked.)
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    wrapper = build_optim_wrapper(
        model, dict(base, type='AmpOptimWrapper', loss_scale='dynamic'))
    assert type(wrapper) is ResObjAmpOptimWrapper
    assert isinstance(wrapper, AmpOptimWrapper)
    # Already a ResObj wrapper: unchanged, no warning.
    wrapper = build_optim_wrapper(model, dict(base, type='ResObjOptimWrapper'))
    assert type(wrapper) is ResObjOptimWrapper
    assert not logged

    # Another wrapper type is built as it is, with a warning naming it.
    from mmdet.registry import OPTIM_WRAPPERS

    @OPTIM_WRAPPERS.register_module(force=True)
    class _OtherWrapper(OptimWrapper):
        pass

    wrapper = build_optim_wrapper(model, dict(base, type='_OtherWrapper'))
    assert type(wrapper) is _OtherWrapper
    assert len(logged) == 1
    assert "optim_wrapper.type='_OtherWrapper'" in logged[0]


def test_yolov3_resobj_configs_clip_apart():
    # Every YOLOv3-ResObj config clips its residual subnets apart, and so
    # does it under `--amp`; the vanilla twins keep mmdet's constructor.
    import glob
    import os.path as osp

    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    paths = sorted(glob.glob(osp.join(repo, 'configs', '*',
                                      'resobj-yolov3_*.py')))
    assert len(paths) >= 6
    for path in paths:
        cfg = Config.fromfile(path)
        assert cfg.optim_wrapper.constructor == \
            'ResObjOptimWrapperConstructor', path
        assert cfg.optim_wrapper.get('clip_grad'), path
        twin = path.replace('resobj-yolov3_', 'yolov3_')
        if osp.exists(twin):  # the demo, tree and BCCD twins
            vanilla = Config.fromfile(twin)
            assert 'constructor' not in vanilla.optim_wrapper
            vanilla.optim_wrapper.pop('type', None)
            ours = cfg.optim_wrapper.copy()
            ours.pop('constructor')
            ours.pop('type', None)
            assert ours == vanilla.optim_wrapper, path
