# Copyright (c) resobj-mmdet contributors.
"""Residual objectness refinement (Chen et al., Pattern Recognition 2022).

The module is shared by every ResObj head: RetinaNet builds its objectness
subnet here, while YOLOv3 and the RPN hand in the objectness logit they
already predict and only use the residual subnets.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import (BaseModule, bias_init_with_prob, kaiming_init,
                            normal_init)
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType

RESIDUAL_INPUTS = ('objectness', 'class', 'chain')


def _check_int(name: str, value, minimum: int) -> int:
    """Validate an integer option and name it in the error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'ResidualObjectness: `{name}` must be an int, '
                        f'got {value!r} ({type(value).__name__})')
    if value < minimum:
        raise ValueError(f'ResidualObjectness: `{name}` must be >= {minimum}, '
                         f'got {value}')
    return value


@MODELS.register_module()
class ResidualObjectness(BaseModule):
    """Objectness subnet followed by ``num_steps`` residual subnets.

    For every anchor it predicts the objectness logit ``o_0`` and the
    residual logits ``r_1..r_T`` (paper: ``o = o_0 + sum_t r_t``). Training
    composes them with Algorithm 1's gates (``o_t = o_{t-1} + r_t`` only on the
    anchors still hard at step ``t``; see :class:`ResidualObjectnessLoss`);
    inference applies every residual to every anchor and uses
    ``o_T = o_0 + sum_t r_t``, as the paper does (:func:`cumulative_objectness`).

    Args:
        in_channels (int): Channels of the input feature map (the class tower
            output for RetinaNet).
        num_anchors (int): Anchors per location ``A``.
        num_steps (int): Number of residual steps ``T``; 0 is plain
            objectness. Defaults to 2.
        feat_channels (int): Channels of the hidden convs. Defaults to 256.
        obj_convs (int): conv3x3+act layers of the objectness subnet before
            its logit conv (paper: 1). Ignored when
            ``with_objectness_subnet=False``. Defaults to 1.
        res_convs (int): conv3x3+act layers of each residual subnet before its
            logit conv (paper: 1; 0 gives a "lite" residual that is a single
            logit conv). Defaults to 1.
        residual_input (str): What the residual subnets read.
            ``'objectness'`` (default, paper Table 2b): the objectness
            subnet's hidden feature; ``'class'``: the module input, i.e. the
            class tower feature (Table 2b alternative); ``'chain'``: subnet
            ``t`` reads the hidden feature of subnet ``t-1`` (subnet 1 reads
            the objectness feature).
        detach_residual (bool): Gradient isolation (paper Table 2a, "Not to
            Objectness"). When True, residual losses do not reach the
            objectness subnet, the class tower or earlier steps: the residual
            subnets read detached features, and the head asks the loss to
            detach ``o_{t-1}`` in ``o_t = o_{t-1} + r_t``. Defaults to True.
        with_objectness_subnet (bool): When False the host head supplies
            ``o_0`` (YOLOv3, RPN) and ``'objectness'`` input means the module
            input. Defaults to True.
        obj_prior_prob (float): Prior used to initialise the objectness logit
            bias. Defaults to 0.01 (paper text; the authors' release uses
            0.001).
        hidden_init (str): Initialisation of the hidden convs of the
            objectness and residual subnets: ``'kaiming'`` (default; mmcv
            ConvModule's own) or ``'normal'`` (Normal(0, 0.01), RetinaNet's
            head convention and the authors' release). The logit convs are
            Normal(0, 0.01) either way, so the initial outputs are the
            priors. With ``'normal'`` the objectness logit sits behind one
            more small-init conv than a RetinaNet class logit and SGD spends
            the warm-up on that plateau: on real images under mmdet's
            RetinaNet recipe the first detections came 3 epochs later
            (docs/benchmarks.md).
        kernel_size (int): Kernel size of every conv. Defaults to 3.
        conv_cfg (dict, optional): Conv config of the hidden convs.
        norm_cfg (dict, optional): Norm config of the hidden convs.
        act_cfg (dict): Activation of the hidden convs. Defaults to ReLU.
        init_cfg (dict, optional): Initialisation config. Defaults to None:
            ``hidden_init`` for the hidden convs, Normal(0, 0.01) for the
            logit convs with the objectness prior as the ``o_0`` bias and
            zero residual biases, so that ``o_t == o_0`` at initialisation.
    """

    def __init__(self,
                 in_channels: int,
                 num_anchors: int,
                 num_steps: int = 2,
                 feat_channels: int = 256,
                 obj_convs: int = 1,
                 res_convs: int = 1,
                 residual_input: str = 'objectness',
                 detach_residual: bool = True,
                 with_objectness_subnet: bool = True,
                 obj_prior_prob: float = 0.01,
                 kernel_size: int = 3,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 hidden_init: str = 'kaiming',
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = _check_int('in_channels', in_channels, 1)
        self.num_anchors = _check_int('num_anchors', num_anchors, 1)
        self.num_steps = _check_int('num_steps', num_steps, 0)
        self.feat_channels = _check_int('feat_channels', feat_channels, 1)
        self.obj_convs = _check_int('obj_convs', obj_convs, 0)
        self.res_convs = _check_int('res_convs', res_convs, 0)
        if residual_input not in RESIDUAL_INPUTS:
            raise ValueError(
                f'ResidualObjectness: unknown `residual_input` '
                f'{residual_input!r}; expected one of {RESIDUAL_INPUTS}')
        if not 0.0 < obj_prior_prob < 1.0:
            raise ValueError('ResidualObjectness: `obj_prior_prob` must be in '
                             f'(0, 1), got {obj_prior_prob}')
        self.residual_input = residual_input
        self.detach_residual = bool(detach_residual)
        self.with_objectness_subnet = bool(with_objectness_subnet)
        self.obj_prior_prob = obj_prior_prob
        self.kernel_size = kernel_size
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        if hidden_init not in ('normal', 'kaiming'):
            raise ValueError('ResidualObjectness: `hidden_init` must be '
                             f"'normal' or 'kaiming', got {hidden_init!r}")
        self.hidden_init = hidden_init
        self.deploy = False
        self._init_layers()

    def _tower(self, num_convs: int, in_channels: int) -> nn.Sequential:
        layers = []
        for _ in range(num_convs):
            layers.append(
                ConvModule(
                    in_channels,
                    self.feat_channels,
                    self.kernel_size,
                    padding=self.kernel_size // 2,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
            in_channels = self.feat_channels
        return nn.Sequential(*layers)

    def _logit_conv(self, in_channels: int) -> nn.Conv2d:
        return nn.Conv2d(
            in_channels,
            self.num_anchors,
            self.kernel_size,
            padding=self.kernel_size // 2)

    def _init_layers(self) -> None:
        """Build the objectness subnet and the residual subnets."""
        obj_out = self.in_channels
        if self.with_objectness_subnet:
            self.obj_tower = self._tower(self.obj_convs, self.in_channels)
            obj_out = self.feat_channels if self.obj_convs else \
                self.in_channels
            self.obj_logit = self._logit_conv(obj_out)
        self.res_towers = nn.ModuleList()
        self.res_logits = nn.ModuleList()
        prev_out = obj_out
        for _ in range(self.num_steps):
            if self.residual_input == 'class':
                in_ch = self.in_channels
            elif self.residual_input == 'objectness':
                in_ch = obj_out
            else:  # chain
                in_ch = prev_out
            self.res_towers.append(self._tower(self.res_convs, in_ch))
            out_ch = self.feat_channels if self.res_convs else in_ch
            self.res_logits.append(self._logit_conv(out_ch))
            prev_out = out_ch

    @property
    def _plain_logit_convs(self) -> bool:
        """Whether the residual logit convs are plain ``nn.Conv2d`` (no
        subclass with its own forward), which the lite fusion relies on."""
        return all(type(c) is nn.Conv2d for c in self.res_logits)

    @property
    def fusable(self) -> bool:
        """Whether :meth:`switch_to_deploy` can fold the residuals: lite
        subnets (``res_convs=0``) reading one shared feature with plain
        ``nn.Conv2d`` logit convs."""
        return (self.num_steps > 0 and self.res_convs == 0
                and self.residual_input in ('objectness', 'class')
                and self._plain_logit_convs
                and (not self.with_objectness_subnet
                     or type(self.obj_logit) is nn.Conv2d))

    def switch_to_deploy(self) -> bool:
        """Re-parameterise a lite module for inference (mmdet/mmyolo's name).

        Inference uses ``o_T = o_0 + r_1 + ... + r_T`` on every anchor. With
        lite subnets every ``r_t`` is one linear conv of the same feature,
        so their sum is one conv whose weights and bias are the sums of
        theirs. When that feature is also the objectness logit conv's input
        (an objectness subnet with ``residual_input='objectness'``, the
        RetinaNet default), the sum folds into the objectness logit conv
        itself and the module costs exactly what ``T = 0`` costs. Otherwise
        (``'class'`` input, or ``o_0`` from the host head) the T convs become
        one.

        Afterwards :meth:`forward` returns ``o_T`` only, shape (N, A, H, W),
        :attr:`num_steps` reads 0 (so heads score with ``o_T``), and training
        is refused. A module that cannot be folded is left unchanged.

        Returns:
            bool: Whether the module was folded (True also when it already
            was).
        """
        if self.deploy:
            return True
        if not self.fusable:
            return False
        weight = torch.stack([c.weight for c in self.res_logits]).sum(0)
        bias = torch.stack([c.bias for c in self.res_logits]).sum(0)
        fold_into_obj = self.with_objectness_subnet and \
            self.residual_input == 'objectness'
        with torch.no_grad():
            if fold_into_obj:
                self.obj_logit.weight.add_(weight)
                self.obj_logit.bias.add_(bias)
            else:
                fused = self._logit_conv(weight.size(1)).to(weight)
                fused.weight.copy_(weight)
                fused.bias.copy_(bias)
                self.fused_res_logit = fused
        del self.res_towers, self.res_logits
        self.folded_steps = self.num_steps
        self.num_steps = 0
        self.deploy = True
        return True

    def init_weights(self) -> None:
        """Hidden convs per ``hidden_init``; Normal(0, 0.01) logit convs;
        objectness prior bias; zero residual bias."""
        if self.init_cfg is not None:
            super().init_weights()
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, mean=0, std=0.01, bias=0)
        if self.hidden_init == 'kaiming':
            for tower in [getattr(self, 'obj_tower', None), *self.res_towers]:
                for m in (tower.modules() if tower is not None else []):
                    if isinstance(m, nn.Conv2d):
                        kaiming_init(m, a=0, nonlinearity='relu', bias=0)
        if self.with_objectness_subnet:
            normal_init(
                self.obj_logit,
                std=0.01,
                bias=bias_init_with_prob(self.obj_prior_prob))

    def forward(self, x: Tensor, obj_logit: Optional[Tensor] = None
                ) -> Tensor:
        """Predict ``o_0`` and the residual logits of one feature level.

        Args:
            x (Tensor): Input feature of shape (N, C, H, W).
            obj_logit (Tensor, optional): ``o_0`` of shape (N, A, H, W) from
                the host head. Required iff the module has no objectness
                subnet.

        Returns:
            Tensor: ``[o_0, r_1, ..., r_T]`` stacked step-major along
            channels, shape (N, (T + 1) * A, H, W); channel ``a`` is ``o_0``
            and channel ``t * A + a`` is ``r_t`` of anchor ``a``. After
            :meth:`switch_to_deploy`: ``o_T``, shape (N, A, H, W).
        """
        if self.deploy and self.training:
            raise RuntimeError(
                'ResidualObjectness: this module was folded for inference '
                '(switch_to_deploy) and cannot be trained; rebuild it from '
                'the config and load the checkpoint to train')
        if self.with_objectness_subnet:
            if obj_logit is not None:
                raise ValueError('ResidualObjectness has its own objectness '
                                 'subnet; do not pass `obj_logit`')
            obj_feat = self.obj_tower(x)
            obj_logit = self.obj_logit(obj_feat)
        else:
            if obj_logit is None:
                raise ValueError('ResidualObjectness(with_objectness_subnet='
                                 'False) needs the host head\'s `obj_logit`')
            obj_feat = x
        if self.deploy and hasattr(self, 'fused_res_logit'):
            feat = obj_feat if self.residual_input == 'objectness' else x
            return obj_logit + self.fused_res_logit(feat)
        if self.num_steps == 0:
            return obj_logit
        if self.detach_residual:
            x, obj_feat = x.detach(), obj_feat.detach()
        if self.res_convs == 0 and self.residual_input != 'chain' and \
                self.num_steps > 1 and self._plain_logit_convs:
            # Lite subnets share one input: their T logit convs run as one
            # conv with T*A outputs (one kernel instead of T small ones).
            feat = x if self.residual_input == 'class' else obj_feat
            res = F.conv2d(
                feat, torch.cat([c.weight for c in self.res_logits]),
                torch.cat([c.bias for c in self.res_logits]),
                padding=self.kernel_size // 2)
            return torch.cat([obj_logit, res], dim=1)
        outs = [obj_logit]
        prev_feat = obj_feat
        for tower, logit_conv in zip(self.res_towers, self.res_logits):
            if self.residual_input == 'class':
                feat = tower(x)
            elif self.residual_input == 'objectness':
                feat = tower(obj_feat)
            else:
                feat = tower(prev_feat)
            prev_feat = feat
            outs.append(logit_conv(feat))
        return torch.cat(outs, dim=1)


def cumulative_objectness(obj_pred: Tensor, num_anchors: int,
                          step: int) -> Tensor:
    """Inference objectness ``o_step = o_0 + r_1 + ... + r_step``.

    Every residual is applied to every anchor (the paper's inference).

    Args:
        obj_pred (Tensor): (N, (T+1)*A, H, W) output of
            :class:`ResidualObjectness`.
        num_anchors (int): ``A``.
        step (int): ``t`` in ``0..T``.

    Returns:
        Tensor: (N, A, H, W) logits.
    """
    n, _, h, w = obj_pred.shape
    blocks = obj_pred[:, :(step + 1) * num_anchors]
    return blocks.reshape(n, step + 1, num_anchors, h, w).sum(dim=1)


def flatten_objectness(obj_preds: List[Tensor], num_steps: int) -> Tensor:
    """Flatten multi-level step-major ``[o_0, r_1..r_T]`` maps in anchor order.

    Args:
        obj_preds (list[Tensor]): Per level, shape (N, (T+1)*A, H, W).
        num_steps (int): ``T``.

    Returns:
        Tensor: Shape (N, T+1, sum_l H_l*W_l*A), anchors ordered as mmdet's
        anchor generators order them (level, y, x, anchor).
    """
    flat = []
    for pred in obj_preds:
        n, c, h, w = pred.shape
        a = c // (num_steps + 1)
        # (N, T+1, A, H, W) -> (N, T+1, H, W, A) -> (N, T+1, H*W*A)
        pred = pred.reshape(n, num_steps + 1, a, h, w).permute(0, 1, 3, 4, 2)
        flat.append(pred.reshape(n, num_steps + 1, -1))
    return torch.cat(flat, dim=2)
