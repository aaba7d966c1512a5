# Copyright (c) resobj-mmdet contributors.
"""Gradient clipping that keeps the residual subnets apart.

With ``detach_residual=True`` (the paper's gradient isolation, Table 2a) the
residual losses reach only the residual subnets' own parameters. mmengine's
``clip_grad=dict(max_norm=...)`` clips by the norm of *all* gradients, so
when clipping is active (mmdet's YOLOv3 recipe: ``max_norm=35``, exceeded at
every iteration on BCCD) the residual gradients still enlarge that norm and
shrink every other parameter's update: the isolation leaks through the
optimizer. These wrappers clip the residual subnets' gradients by their own
norm and everything else by the rest's norm, each with the configured
``clip_grad``. Without ``clip_grad`` they are mmengine's wrappers.

Configs select them through ``optim_wrapper.constructor`` rather than
``optim_wrapper.type``: mmdet's ``tools/train.py --amp`` overwrites the type
with ``'AmpOptimWrapper'``, which would silently bring back global
clipping; the constructor maps whichever of mmengine's two wrappers the
config ends up with to its ResObj counterpart.
"""
import logging
from typing import Iterator, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import (AmpOptimWrapper, DefaultOptimWrapperConstructor,
                            OptimWrapper)

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from ...models.layers import ResidualObjectness


def residual_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Parameters that only the residual losses train.

    The residual towers and logit convs of every
    :class:`ResidualObjectness` whose residual input is detached. Modules
    with ``detach_residual=False`` are skipped: their residual losses reach
    the shared features by design.

    Args:
        model (nn.Module): The model (or a wrapper of it, e.g. DDP).

    Yields:
        nn.Parameter: Each such parameter once.
    """
    for module in model.modules():
        if isinstance(module, ResidualObjectness) and \
                module.detach_residual:
            yield from module.residual_parameters()


class _ResidualClipMixin:
    """Clip the residual subnets' gradients apart from the others'.

    The residual parameters are found in the model the Runner hands to
    ``initialize_count_status`` at the start of training; until then (a
    wrapper used outside a Runner) everything is clipped together, as by
    mmengine's wrapper. The norm of the non-residual gradients is logged as
    ``grad_norm``, the residual one as ``grad_norm_residual``.
    """

    def initialize_count_status(self, model: nn.Module, init_counts: int,
                                max_counts: int) -> None:
        super().initialize_count_status(model, init_counts, max_counts)
        self._residual_ids = {id(p) for p in residual_parameters(model)}

    def _clip_grad(self) -> None:
        residual_ids = getattr(self, '_residual_ids', set())
        shared: List[torch.Tensor] = []
        residual: List[torch.Tensor] = []
        for group in self.optimizer.param_groups:
            for p in group['params']:
                if p.requires_grad and p.grad is not None:
                    (residual if id(p) in residual_ids else shared).append(p)
        for params, name in ((shared, self.grad_name),
                             (residual, f'{self.grad_name}_residual')):
            if not params:
                continue
            norm = self.clip_func(params, **self.clip_grad_kwargs)
            # clip_grad_value_ returns None.
            if norm is not None:
                self.message_hub.update_scalar(f'train/{name}', float(norm))


@OPTIM_WRAPPERS.register_module()
class ResObjOptimWrapper(_ResidualClipMixin, OptimWrapper):
    """:class:`mmengine.optim.OptimWrapper` whose ``clip_grad`` clips the
    residual subnets' gradients by their own norm (see the module doc)."""


@OPTIM_WRAPPERS.register_module()
class ResObjAmpOptimWrapper(_ResidualClipMixin, AmpOptimWrapper):
    """:class:`mmengine.optim.AmpOptimWrapper` whose ``clip_grad`` clips the
    residual subnets' gradients by their own norm (see the module doc)."""


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ResObjOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor that builds the ResObj counterpart of
    the configured wrapper: ``OptimWrapper`` becomes
    :class:`ResObjOptimWrapper`, ``AmpOptimWrapper`` (also when set by
    ``--amp``) :class:`ResObjAmpOptimWrapper`.

    Use it as ``optim_wrapper = dict(constructor=
    'ResObjOptimWrapperConstructor')``; ``paramwise_cfg`` works as with the
    default constructor. Any other wrapper type is built unchanged, with a
    warning that its clipping is not kept apart.
    """

    COUNTERPARTS = {
        'OptimWrapper': 'ResObjOptimWrapper',
        'AmpOptimWrapper': 'ResObjAmpOptimWrapper',
    }

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        optim_wrapper_cfg = optim_wrapper_cfg.copy()
        type_ = optim_wrapper_cfg.get('type', 'OptimWrapper')
        optim_wrapper_cfg['type'] = self.COUNTERPARTS.get(type_, type_)
        if optim_wrapper_cfg['type'] not in (
                'ResObjOptimWrapper', 'ResObjAmpOptimWrapper',
                ResObjOptimWrapper, ResObjAmpOptimWrapper):
            print_log(
                f'ResObjOptimWrapperConstructor: optim_wrapper.type={type_!r}'
                ' has no ResObj counterpart; its clip_grad clips the residual'
                ' subnets together with the rest', logger='current',
                level=logging.WARNING)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
