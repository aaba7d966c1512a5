# Copyright (c) resobj-mmdet contributors.
"""Residual objectness refinement (Chen et al., Pattern Recognition 2022).

The module is shared by every ResObj head: RetinaNet builds its objectness
subnet here, while YOLOv3 and the RPN hand in the objectness logit they
already predict and only use the residual subnets.
"""
import copy
import functools
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
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
    Training with the loss's ``gate_momentum`` set also keeps, in the buffer
    ``gate_logit`` (T, ), a running mean of the logit that opens each gate
    (the weakest positive's), with which a head's
    ``test_cfg.residual_gate='trained'`` applies ``r_t`` only where
    ``o_{t-1}`` reaches it (see ``ResObjMixin.step_objectness``).

    Layout: when the T residual subnets read one shared feature
    (``residual_input`` ``'objectness'`` or ``'class'``), they are stored
    and run fused, so that their cost in operator calls does not grow with
    T: ``res_tower`` (the T hidden convs as one conv with T * feat_channels
    outputs, later hidden convs grouped by step) and ``res_logit`` (the T
    logit convs as one conv with T * A outputs, grouped by step). Subnet t
    owns the output channels ``[t*C, (t+1)*C)`` of each, so the maths is
    that of T separate subnets. ``'chain'`` (subnet t reads subnet t-1)
    keeps one ``res_towers[t]`` / ``res_logits[t]`` per step. A checkpoint
    saved with per-step subnets for a shared input loads into the fused
    layout (:meth:`_load_from_state_dict` concatenates them).

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
            (docs/real_images.md, "Accuracy").
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
        # Running threshold of Algorithm 1's gates, the logit of the weakest
        # positive per step (NaN: not kept). Filled in by the head's
        # ResidualObjectnessLoss when its gate_momentum is set; read with
        # ``test_cfg.residual_gate='trained'``.
        self.register_buffer('gate_logit',
                             torch.full((self.num_steps, ), float('nan')))

    def _tower(self, num_convs: int, in_channels: int,
               groups: int = 1) -> nn.Sequential:
        """``num_convs`` conv + norm + act layers.

        With ``groups > 1`` the tower is ``groups`` towers of
        ``feat_channels`` run as one: the first conv maps the shared input
        to ``groups * feat_channels`` channels, the later ones are grouped
        convs, and a GroupNorm gets ``groups`` times its groups, so that
        every tower is normalised over its own channels only.
        """
        norm_cfg = self.norm_cfg
        if groups > 1 and norm_cfg is not None and norm_cfg.get('type') == 'GN':
            norm_cfg = copy.deepcopy(norm_cfg)
            norm_cfg['num_groups'] = norm_cfg['num_groups'] * groups
        out_channels = self.feat_channels * groups
        layers = []
        for i in range(num_convs):
            layers.append(
                ConvModule(
                    in_channels,
                    out_channels,
                    self.kernel_size,
                    padding=self.kernel_size // 2,
                    groups=groups if i > 0 else 1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=self.act_cfg))
            in_channels = out_channels
        return nn.Sequential(*layers)

    def _logit_conv(self, in_channels: int, steps: int = 1,
                    groups: int = 1) -> nn.Conv2d:
        return nn.Conv2d(
            in_channels,
            self.num_anchors * steps,
            self.kernel_size,
            padding=self.kernel_size // 2,
            groups=groups)

    @property
    def fused(self) -> bool:
        """Whether the residual subnets are stored fused (see the class
        docstring): T >= 1 and one shared input."""
        return self.num_steps > 0 and self.residual_input != 'chain'

    def _init_layers(self) -> None:
        """Build the objectness subnet and the residual subnets."""
        obj_out = self.in_channels
        if self.with_objectness_subnet:
            self.obj_tower = self._tower(self.obj_convs, self.in_channels)
            obj_out = self.feat_channels if self.obj_convs else \
                self.in_channels
            self.obj_logit = self._logit_conv(obj_out)
        if self.fused:
            in_ch = self.in_channels if self.residual_input == 'class' \
                else obj_out
            steps = self.num_steps
            self.res_tower = self._tower(self.res_convs, in_ch, groups=steps)
            self.res_logit = self._logit_conv(
                self.feat_channels * steps if self.res_convs else in_ch,
                steps, groups=steps if self.res_convs else 1)
            return
        self.res_towers = nn.ModuleList()
        self.res_logits = nn.ModuleList()
        prev_out = obj_out
        for _ in range(self.num_steps):  # chain: subnet t reads subnet t-1
            self.res_towers.append(self._tower(self.res_convs, prev_out))
            out_ch = self.feat_channels if self.res_convs else prev_out
            self.res_logits.append(self._logit_conv(out_ch))
            prev_out = out_ch

    def residual_parameters(self) -> List[nn.Parameter]:
        """Parameters of the residual subnets (towers and logit convs, fused
        or per step): with ``detach_residual`` only the residual losses
        train them."""
        parts = (getattr(self, name, None)
                 for name in ('res_tower', 'res_logit', 'res_towers',
                              'res_logits'))
        return [
            p for part in parts if isinstance(part, nn.Module)
            for p in part.parameters()
        ]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Load checkpoints of the per-step layout into the fused one.

        Before the fusion, a module stored one tower and one logit conv per
        step (``res_towers.{t}.*``, ``res_logits.{t}.*``). Subnet t's
        parameters are the output-channel block t of the fused convs and
        norms, so they are concatenated along dim 0 in step order (a
        norm's ``num_batches_tracked`` is shared: step 0's is kept).
        """
        if self.fused and any(
                k.startswith((prefix + 'res_towers.', prefix + 'res_logits.'))
                for k in state_dict):
            for old, new in (('res_towers.', 'res_tower.'),
                             ('res_logits.', 'res_logit.')):
                groups = {}
                for key in [k for k in state_dict
                            if k.startswith(prefix + old)]:
                    step, rest = key[len(prefix + old):].split('.', 1)
                    groups.setdefault(rest, {})[int(step)] = \
                        state_dict.pop(key)
                for rest, by_step in groups.items():
                    if sorted(by_step) != list(range(self.num_steps)):
                        error_msgs.append(
                            f'{prefix}{old}*.{rest}: the checkpoint has '
                            f'steps {sorted(by_step)}, this module '
                            f'{self.num_steps}')
                        continue
                    values = [by_step[t] for t in range(self.num_steps)]
                    state_dict[prefix + new + rest] = values[0] if \
                        rest.endswith('num_batches_tracked') else \
                        torch.cat(values)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # Checkpoints without the running gate thresholds (not kept, or
        # from before them): they stay NaN (unknown), which only
        # ``residual_gate='trained'`` refuses.
        if prefix + 'gate_logit' in missing_keys:
            missing_keys.remove(prefix + 'gate_logit')

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # Thresholds not kept (NaN) stay out of checkpoints, which hold no
        # non-finite value then, as before the thresholds existed.
        if bool(self.gate_logit.isnan().any()):
            del destination[prefix + 'gate_logit']

    def _residual_logit_convs(self) -> List[nn.Module]:
        return [self.res_logit] if self.fused else list(self.res_logits)

    @property
    def _plain_logit_convs(self) -> bool:
        """Whether the residual logit convs are plain ``nn.Conv2d`` (no
        subclass with its own forward), which the lite fusion relies on."""
        return all(type(c) is nn.Conv2d for c in self._residual_logit_convs())

    @property
    def fusable(self) -> bool:
        """Whether :meth:`switch_to_deploy` can fold the residuals: lite
        subnets (``res_convs=0``) reading one shared feature with plain
        ``nn.Conv2d`` logit convs."""
        return (self.fused and self.res_convs == 0
                and self._plain_logit_convs
                and (not self.with_objectness_subnet
                     or type(self.obj_logit) is nn.Conv2d))

    def switch_to_deploy(self) -> bool:
        """Re-parameterise a lite module for inference (mmdet/mmyolo's name).

        Inference uses ``o_T = o_0 + r_1 + ... + r_T`` on every anchor. With
        lite subnets every ``r_t`` is one linear conv of the same feature
        (block t of ``res_logit``), so their sum is one conv whose weights
        and bias are the sums of the blocks'. When that feature is also the
        objectness logit conv's input (an objectness subnet with
        ``residual_input='objectness'``, the RetinaNet default), the sum
        folds into the objectness logit conv itself and the module costs
        exactly what ``T = 0`` costs. Otherwise (``'class'`` input, or
        ``o_0`` from the host head) the T blocks become one conv.

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
        steps, a = self.num_steps, self.num_anchors
        conv = self.res_logit
        weight = conv.weight.reshape(steps, a, *conv.weight.shape[1:]).sum(0)
        bias = conv.bias.reshape(steps, a).sum(0)
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
        del self.res_tower, self.res_logit
        self.folded_steps = self.num_steps
        self.num_steps = 0
        self.deploy = True
        return True

    @staticmethod
    def _kaiming_per_step(conv: nn.Conv2d, steps: int) -> None:
        """Kaiming normal (mmcv's ``fan_out`` mode, ReLU gain) with the fan
        of one step's subnet: a fused conv's ``weight.size(0)`` is T times
        one subnet's, and PyTorch's own fan would shrink the std by
        sqrt(T)."""
        fan_out = conv.weight.size(0) // steps * conv.weight[0][0].numel()
        nn.init.normal_(conv.weight, 0, math.sqrt(2.0 / fan_out))
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)

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
            towers = [getattr(self, 'obj_tower', None)]
            towers += list(getattr(self, 'res_towers', []))
            for tower in towers:
                for m in (tower.modules() if tower is not None else []):
                    if isinstance(m, nn.Conv2d):
                        kaiming_init(m, a=0, nonlinearity='relu', bias=0)
            for m in (self.res_tower.modules() if self.fused else []):
                if isinstance(m, nn.Conv2d):
                    self._kaiming_per_step(m, self.num_steps)
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
        feat = x if self.residual_input == 'class' else obj_feat
        if self.detach_residual:
            feat = feat.detach()
        if self.fused:
            # All T subnets in one tower and one logit conv: the operator
            # calls do not grow with T.
            res = self.res_logit(self.res_tower(feat))
            return torch.cat([obj_logit, res], dim=1)
        outs = [obj_logit]
        for tower, logit_conv in zip(self.res_towers, self.res_logits):
            feat = tower(feat)
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
    n, c, h, w = obj_pred.shape
    if step == 0:  # o_0 (the map itself when T = 0: no operator)
        return obj_pred if c == num_anchors else obj_pred[:, :num_anchors]
    blocks = obj_pred if c == (step + 1) * num_anchors else \
        obj_pred[:, :(step + 1) * num_anchors]
    return blocks.reshape(n, step + 1, num_anchors, h, w).sum(dim=1)


@functools.lru_cache(maxsize=64)
def _anchor_order_index(levels: Tuple[Tuple[int, int, int], ...],
                        groups: int, device: torch.device) -> Tensor:
    """Gather index from the levels' flattened maps to anchor order.

    Args:
        levels (tuple): Per level ``(A, C, H*W)``.
        groups (int): ``G``, outer channel blocks of every level's map.
        device (torch.device): Where the index lives.

    Returns:
        Tensor: (G * sum_l H*W*A*C, ) int64; entry ``(g, l, hw, a, c)`` is
        the position of that value in the levels' maps flattened one after
        the other, each as ``(g, a, c, hw)``. Cached per layout: built on
        the host once, then reused without an operator.
    """
    index = []
    for g in range(groups):
        offset = 0
        for a, c, hw in levels:
            # target (g, hw, a, c) <- offset + ((g*A + a)*C + c)*HW + hw
            index.append(offset + g * a * c * hw +
                         (torch.arange(a * c).view(1, a * c) * hw +
                          torch.arange(hw).view(hw, 1)).reshape(-1))
            offset += groups * a * c * hw
    return torch.cat(index).to(device)


def levels_in_anchor_order(maps: List[Tensor], groups: int,
                           channels: int) -> Tensor:
    """Per-level maps as one tensor in mmdet's anchor order.

    Levels with the same number of anchors per position are concatenated
    and permuted once; levels whose anchor counts differ (SSD) are
    flattened whole, concatenated and put in anchor order by one gather
    with a cached index, instead of a permute and a copy per level: a fixed
    number of operators for any number of levels, forward and backward.
    (Flattening each map whole keeps the backward free of copies: a level's
    gradient is a slice of the concatenation that is viewed back into the
    map's shape, where an ``(N, G, -1)`` reshape would need a copy per
    level when ``G > 1``.)

    Args:
        maps (list[Tensor]): Per level, (N, G*A_l*C, H_l, W_l), channel
            ``(g*A_l + a)*C + c``.
        groups (int): ``G``, outer blocks of channels (the ``T+1`` steps of
            an objectness map; 1 for a class or box map).
        channels (int): ``C``, values per anchor and group.

    Returns:
        Tensor: (N, G, sum_l H_l*W_l*A_l, C), anchors ordered as mmdet's
        anchor generators order them (level, y, x, anchor).
    """
    n = maps[0].size(0)
    if len({m.size(1) for m in maps}) == 1:
        a = maps[0].size(1) // (groups * channels)
        flat = torch.cat([m.flatten(2) for m in maps], dim=2)
        # (N, G, A, C, sum HW) -> (N, G, sum HW, A, C)
        return flat.view(n, groups, a, channels, -1).permute(
            0, 1, 4, 2, 3).reshape(n, groups, -1, channels)
    flat = torch.cat([m.flatten(1) for m in maps], dim=1)
    index = _anchor_order_index(
        tuple((m.size(1) // (groups * channels), channels,
               m.size(2) * m.size(3)) for m in maps), groups, flat.device)
    return flat.index_select(1, index).view(n, groups, -1, channels)


def flatten_objectness(obj_preds: List[Tensor], num_steps: int) -> Tensor:
    """Flatten multi-level step-major ``[o_0, r_1..r_T]`` maps in anchor order.

    Args:
        obj_preds (list[Tensor]): Per level, shape (N, (T+1)*A, H, W).
        num_steps (int): ``T``.

    Returns:
        Tensor: Shape (N, T+1, sum_l H_l*W_l*A), anchors ordered as mmdet's
        anchor generators order them (level, y, x, anchor).
    """
    return levels_in_anchor_order(obj_preds, num_steps + 1, 1).squeeze(3)
