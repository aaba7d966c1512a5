# Copyright (c) resobj-mmdet contributors.
"""Loss of residual objectness (paper Algorithm 1), shared by every head."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

NO_POS_GATES = ('all', 'none')
EPS = torch.finfo(torch.float32).eps  # mmdet's weight_reduce_loss eps


def refine_objectness(logits: Tensor,
                      labels: Tensor,
                      weights: Tensor,
                      no_pos_gate: str = 'all',
                      detach_prev: bool = True,
                      gate_quantile: float = 0.0) -> Tuple[Tensor, Tensor]:
    """Algorithm 1's gated refinement of the objectness logits.

    For ``t = 1..T``, per image::

        minp_t = min over positive anchors of o_{t-1}
        S_t    = {i : o_{t-1,i} >= minp_t}          (non-ignored anchors)
        o_t    = o_{t-1} + r_t on S_t, o_{t-1} elsewhere

    ``S_t`` always holds every positive and the negatives scored at least as
    high as the weakest positive of the image. The gates are computed on
    detached logits (sigmoid is monotonic, so comparing logits equals
    comparing scores and avoids fp16 saturation ties) and need no gradient,
    so only that recursion runs step by step (four element-wise operators
    per step, nothing to differentiate). Every positive is in every gate,
    so on positives ``o_t`` is the cumulative sum and all ``minp_t`` come
    from one masked minimum. The differentiable part is one expression
    over all steps: ``o_t = sg(o_{t-1}) + r_t * [S_t]`` with gradient
    isolation (``sg``: no gradient), ``o_t = o_0 + sum_{s<=t} r_s * [S_s]``
    without. No host-device synchronisation.

    Args:
        logits (Tensor): ``[o_0, r_1, ..., r_T]`` of shape (B, T+1, N).
        labels (Tensor): Binary objectness targets, shape (B, N).
        weights (Tensor): Per-anchor weights, 0 for ignored anchors, (B, N).
        no_pos_gate (str): ``'all'``: an image without positive anchors gates
            all its non-ignored anchors; ``'none'``: none of them.
        detach_prev (bool): Gradient isolation: detach ``o_{t-1}`` in
            ``o_t = o_{t-1} + r_t``.
        gate_quantile (float): 0 (default): Algorithm 1, ``minp_t`` is the
            minimum over the image's positives. ``q`` in (0, 1): their
            ``q``-quantile (the lower of two neighbours), so that a few
            weak positives (borderline or forced matches) do not open the
            gate to almost every negative; the positives below it stay in
            the gate. Not in the paper.

    Returns:
        tuple[Tensor, Tensor]: The refined logits ``o_0..o_T`` (B, T+1, N)
        and the gates ``S_1..S_T`` as a bool mask (B, T, N).
    """
    if logits.size(1) == 1:
        return logits, logits.new_zeros((*labels.shape[:1], 0,
                                         labels.shape[1]), dtype=torch.bool)
    refined, keep, _ = _refine(logits, labels, weights, no_pos_gate,
                               detach_prev, gate_quantile)
    return refined, keep[:, 1:]


def _refine(logits: Tensor,
            labels: Tensor,
            weights: Tensor,
            no_pos_gate: str,
            detach_prev: bool,
            gate_quantile: float,
            mask_ignored: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`refine_objectness` for T >= 1, with the gates of every step
    as one mask ``keep`` (B, T+1, N): ``[1, S_1..S_T]``, and the logits
    that opened them, ``minp`` (B, T, 1): not finite for an image without
    positives (before ``no_pos_gate`` maps it).

    The differentiable part is two operators whatever T is: with gradient
    isolation ``refined = logits * keep + [0, sg(o_0..o_{T-1})]``, without
    it ``refined = cumsum(logits * keep)``. ``mask_ignored=False`` leaves
    the ignored anchors in the gates they would have: for a loss that
    weights them by 0 (the same values and gradients, three operators
    fewer).
    """
    valid = weights > 0
    pos = (labels > 0) & valid
    with torch.no_grad():
        values = logits  # no_grad: nothing below is differentiated
        big = torch.finfo(values.dtype).max
        # minp_t for every step at once, (B, T, 1). Python scalars as fill
        # values: no host-to-device copy (a synchronising one on CUDA).
        prev_pos = values[:, :1] if values.size(1) == 2 else \
            values.cumsum(dim=1)[:, :-1]  # (a cumsum of one step: itself)
        # An image without positives: NaN (quantile) or inf (minimum), i.e.
        # no anchor in its gates; 'all' opens them to every anchor.
        if gate_quantile > 0:
            minp = torch.nanquantile(
                prev_pos.masked_fill(~pos[:, None], float('nan')),
                gate_quantile, dim=2, keepdim=True, interpolation='lower')
            raw = minp
            if no_pos_gate == 'all':
                minp = minp.nan_to_num(nan=-big)
        else:
            # inf, not `big`: 'all' then maps it with one operator.
            minp = torch.where(pos[:, None], prev_pos,
                               float('inf')).amin(dim=2, keepdim=True)
            raw = minp
            if no_pos_gate == 'all':
                minp = minp.nan_to_num(nan=float('nan'), posinf=-big)
        o, *residuals = values.unbind(1)
        # keep[:, 0] (o_0 itself) is all ones; ignored anchors leave the
        # gates at the end (they never set minp).
        prevs, keep = [torch.zeros_like(o)], [torch.ones_like(pos)]
        for t, (r, m) in enumerate(zip(residuals, minp.unbind(1))):
            # `| pos`: the cumulative sum and the step-by-step sum may round
            # differently; a positive stays in its gate regardless.
            gate = (o >= m) | pos
            prevs.append(o)
            keep.append(gate)
            if t + 1 < len(residuals):
                o = torch.where(gate, o + r, o)
        keep = torch.stack(keep, dim=1)
        if mask_ignored:
            keep[:, 1:].bitwise_and_(valid[:, None])
    if detach_prev:
        return logits * keep + torch.stack(prevs, dim=1), keep, raw
    return (logits * keep).cumsum(dim=1), keep, raw


@MODELS.register_module()
class ResidualObjectnessLoss(nn.Module):
    """Objectness + gated residual objectness BCE losses (Algorithm 1).

    Given ``o_0`` and the residual logits ``r_1..r_T`` of every anchor of a
    batch, it computes::

        L_obj   = BCE(o_0, l)   over every non-ignored anchor
        L_res_t = BCE(o_t, l)   over the gate S_t (see refine_objectness)

    Images without any positive anchor have no minimum positive score. With
    ``no_pos_gate='all'`` (default) every non-ignored anchor of such an image
    is in the gate (no positive to rank against, so every negative counts as
    hard): pure-background images keep training the residual subnets, which
    inference applies to every anchor. ``'none'`` gives such an image no
    residual loss.

    Normalisation follows mmdet's ``avg_factor`` convention (RetinaNet: number
    of positive anchors in the batch), except that ``avg_factor`` is clamped to
    at least 1: the objectness loss is non-zero without positives, and
    mmdet's ``sum / (0 + eps)`` would blow it up by ~1e7.

    Args:
        loss_weight (float): Weight of the objectness loss. Defaults to 1.0.
        res_loss_weight (float): Weight of every residual step's loss.
            Defaults to 1.0.
        no_pos_gate (str): ``'all'`` or ``'none'``, see above.
        reduction (str): ``'mean'`` (default; sum / avg_factor, or the mean
            over all elements when no avg_factor is given) or ``'sum'``.
        avg_factor_momentum (float, optional): When set, training normalises
            by an exponential moving average of ``avg_factor`` (this
            momentum) instead of the batch's own value. See
            :class:`ResObjHead`. None: the batch's ``avg_factor``, as mmdet.
        gate_quantile (float): The quantile of the positives' scores that
            opens the gate, see :func:`refine_objectness`. Defaults to 0,
            the minimum (Algorithm 1).
        gate_momentum (float, optional): Momentum of the running gate
            threshold that training keeps when the head passes
            ``running_gate`` (see :meth:`forward`), for a head's
            ``test_cfg.residual_gate='trained'``: ``ema <- m * ema +
            (1 - m) * mean_b minp_t``, e.g. 0.99. It changes no loss.
            Defaults to None: not kept (16 operator calls a step saved).
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 res_loss_weight: float = 1.0,
                 no_pos_gate: str = 'all',
                 reduction: str = 'mean',
                 avg_factor_momentum: Optional[float] = None,
                 gate_quantile: float = 0.0,
                 gate_momentum: Optional[float] = None) -> None:
        super().__init__()
        if no_pos_gate not in NO_POS_GATES:
            raise ValueError(f'ResidualObjectnessLoss: unknown `no_pos_gate` '
                             f'{no_pos_gate!r}; expected one of '
                             f'{NO_POS_GATES}')
        if reduction not in ('mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction` must be '
                             f"'mean' or 'sum', got {reduction!r}")
        if avg_factor_momentum is not None and (
                isinstance(avg_factor_momentum, bool)
                or not isinstance(avg_factor_momentum, (int, float))
                or not 0.0 <= avg_factor_momentum < 1.0):
            raise ValueError('ResidualObjectnessLoss: `avg_factor_momentum` '
                             'must be None or a float in [0, 1), got '
                             f'{avg_factor_momentum!r}')
        if isinstance(gate_quantile, bool) or not isinstance(
                gate_quantile, (int, float)) or not 0 <= gate_quantile < 1:
            raise ValueError('ResidualObjectnessLoss: `gate_quantile` must '
                             f'be a float in [0, 1), got {gate_quantile!r}')
        self.gate_quantile = float(gate_quantile)
        if gate_momentum is not None and (
                isinstance(gate_momentum, bool)
                or not isinstance(gate_momentum, (int, float))
                or not 0 <= gate_momentum < 1):
            raise ValueError('ResidualObjectnessLoss: `gate_momentum` must '
                             f'be None or a float in [0, 1), got '
                             f'{gate_momentum!r}')
        self.gate_momentum = None if gate_momentum is None else \
            float(gate_momentum)
        self.loss_weight = loss_weight
        self.res_loss_weight = res_loss_weight
        self.no_pos_gate = no_pos_gate
        self.reduction = reduction
        self.avg_factor_momentum = avg_factor_momentum
        # Running normaliser (negative: not started). Persistent when used,
        # so that --resume continues it; otherwise kept out of checkpoints.
        self.register_buffer(
            'avg_factor_ema',
            torch.tensor(-1.0),
            persistent=avg_factor_momentum is not None)
        # The buffer's value as a Python float (see _running_avg_factor).
        self._ema_value: Optional[float] = -1.0
        # Set by ObjectnessStatsHook; off by default (no cost when off).
        self.record_stats = False
        self.stats: Optional[Dict[str, Tensor]] = None

    def forward(self,
                logits: Tensor,
                labels: Tensor,
                weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                detach_prev: bool = True,
                running_gate: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Compute the objectness and per-step residual losses.

        Args:
            logits (Tensor): ``[o_0, r_1, ..., r_T]`` of shape (B, T+1, N)
                for B images and N anchors (all levels).
            labels (Tensor): Binary objectness targets (1 = foreground) of
                shape (B, N).
            weights (Tensor, optional): Per-anchor loss weights of shape
                (B, N); 0 marks ignored anchors, which never enter a loss or a
                gate. Defaults to all ones.
            avg_factor (float, optional): Normaliser of the ``'mean'``
                reduction (clamped to >= 1). None averages over elements.
            reduction_override (str, optional): ``'mean'`` or ``'sum'`` for
                this call instead of ``self.reduction``.
            detach_prev (bool): Gradient isolation of ``o_{t-1}``; heads pass
                their :class:`ResidualObjectness` ``detach_residual``.
            running_gate (Tensor, optional): (T, ) buffer (heads pass their
                :class:`ResidualObjectness` ``gate_logit``) that training
                updates in place when ``gate_momentum`` is set: the
                running mean of ``minp_t``, the logit that opens gate
                ``S_t``, over the images with positives; NaN entries start
                from the batch's value. A batch without positives leaves it
                as it is. No host sync.

        Returns:
            dict[str, Tensor]: ``loss_obj`` and ``loss_res{t}`` for
            ``t = 1..T`` (scalars).
        """
        if logits.dim() != 3:
            raise ValueError('ResidualObjectnessLoss: `logits` must have shape '
                             f'(B, T+1, N), got {tuple(logits.shape)}')
        b, steps, n = logits.shape
        if tuple(labels.shape) != (b, n):
            raise ValueError('ResidualObjectnessLoss: `labels` must have shape '
                             f'{(b, n)}, got {tuple(labels.shape)}')
        if weights is not None and tuple(weights.shape) != (b, n):
            raise ValueError('ResidualObjectnessLoss: `weights` must have '
                             f'shape {(b, n)}, got {tuple(weights.shape)}')
        if reduction_override not in (None, 'mean', 'sum'):
            raise ValueError('ResidualObjectnessLoss: `reduction_override` '
                             f"must be 'mean' or 'sum', got "
                             f'{reduction_override!r}')
        reduction = reduction_override or self.reduction
        if reduction == 'sum':
            avg_factor = None
        elif avg_factor is not None and self.avg_factor_momentum is not None \
                and self.training:
            avg_factor = self._running_avg_factor(avg_factor)
        elif isinstance(avg_factor, Tensor):
            avg_factor = avg_factor.float().clamp(min=1.0)
        elif avg_factor is not None:
            avg_factor = max(float(avg_factor), 1.0)

        # mmdet's weight_reduce_loss: sum / (avg_factor + eps), or the mean
        # over the elements of one step; with the loss weights, a factor of
        # each anchor's weight.
        norm = 1.0
        if reduction == 'mean':
            norm = avg_factor + EPS if avg_factor is not None else float(b * n)
        # Losses in fp32 whatever the autocast/AMP dtype of the head.
        targets = labels.float()
        if steps == 1 and not self.record_stats:  # T = 0: one plain BCE
            return dict(loss_obj=F.binary_cross_entropy_with_logits(
                logits.float().view(b, n), targets,
                weight=None if weights is None else weights.float(),
                reduction='sum') * (self.loss_weight / norm))
        weights = logits.new_ones((b, n), dtype=torch.float32) \
            if weights is None else weights.float()
        # Ignored anchors weigh 0 below: no need to take them out of the
        # gates, except for the statistics.
        refined, keep, minp = _refine(logits.float(), targets, weights,
                                      self.no_pos_gate, detach_prev,
                                      self.gate_quantile, self.record_stats)
        if running_gate is not None and self.training and \
                self.gate_momentum is not None:
            self._update_running_gate(running_gate, minp)
        # Every step's term in one weighted reduction: step 0 over all
        # non-ignored anchors, step t over S_t.
        w = weights[:, None] * keep
        if self.loss_weight == self.res_loss_weight:
            w = w * (self.loss_weight / norm)
        else:
            w = torch.cat([w[:, :1] * (self.loss_weight / norm),
                           w[:, 1:] * (self.res_loss_weight / norm)], dim=1)
        first, *rest = F.binary_cross_entropy_with_logits(
            refined, targets[:, None].expand_as(refined), weight=w,
            reduction='none').sum(dim=(0, 2)).unbind(0)
        losses = dict(loss_obj=first)
        losses.update({f'loss_res{t + 1}': r for t, r in enumerate(rest)})
        if self.record_stats:
            self.stats = self.objectness_stats(logits, targets, weights,
                                               keep[:, 1:], self.gate_quantile)
        return losses

    @torch.no_grad()
    def _running_avg_factor(self, avg_factor):
        """Update and return the running normaliser (clamped to >= 1).

        ``ema <- m * ema + (1 - m) * avg_factor``, started at the first
        batch's value. A Python ``avg_factor`` (RetinaNet's, SSD's: a count
        of positives) keeps the mean as a Python float too and only writes
        it into the buffer (one operator, no host sync); a tensor one
        (ATSS's, reduced over GPUs) updates the buffer with device ops and
        returns a tensor, no host sync either; after one tensor update the
        buffer stays the source, so later Python values take the device
        path too.
        """
        m = self.avg_factor_momentum
        ema = self.avg_factor_ema
        if isinstance(avg_factor, Tensor) or self._ema_value is None:
            # Device ops; once the buffer is ahead of the float it stays
            # the source (reading it back would be a host sync).
            self._ema_value = None
            value = avg_factor.detach().float().to(ema.device) \
                if isinstance(avg_factor, Tensor) \
                else torch.full_like(ema, float(avg_factor))  # no copy
            new = torch.where(ema < 0, value, ema * m + value * (1.0 - m))
            ema.copy_(new)
            return new.clamp(min=1.0)
        value = float(avg_factor)
        self._ema_value = value if self._ema_value < 0 else \
            self._ema_value * m + value * (1.0 - m)
        ema.fill_(self._ema_value)
        return max(self._ema_value, 1.0)

    @torch.no_grad()
    def _update_running_gate(self, running_gate: Tensor,
                             minp: Tensor) -> None:
        """``running_gate`` (T, ) <- its EMA with the batch's mean ``minp``
        (B, T, 1) over the images with positives (finite ``minp``), on
        the device (no host sync)."""
        minp = minp[..., 0]
        finite = minp.isfinite()
        batch = torch.where(finite, minp, 0.0).sum(dim=0) / finite.sum(dim=0)
        # No image with positives (batch NaN): keep the old value; a NaN
        # old value (untrained) starts from the batch's.
        batch = torch.where(batch.isnan(), running_gate, batch)
        old = torch.where(running_gate.isnan(), batch, running_gate)
        running_gate.copy_(old.lerp(batch, 1.0 - self.gate_momentum))

    def reset_running_avg_factor(self) -> None:
        """Forget the running normaliser: the next training batch starts
        it again (what a fresh model does)."""
        self.avg_factor_ema.fill_(-1.0)
        self._ema_value = -1.0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A loaded (resumed) running normaliser continues as it was."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        value = state_dict.get(prefix + 'avg_factor_ema')
        if value is not None:
            self._ema_value = float(value)

    @staticmethod
    @torch.no_grad()
    def objectness_stats(logits: Tensor, labels: Tensor, weights: Tensor,
                         gates: Tensor,
                         gate_quantile: float = 0.0) -> Dict[str, Tensor]:
        """Per-step objectness statistics of a batch (paper Fig. 2/4).

        Scores are those inference would give, ``sigmoid(o_0 + r_1 + ... +
        r_t)`` on every anchor. Ignored anchors are left out.

        Args:
            logits (Tensor): ``[o_0, r_1..r_T]``, (B, T+1, N).
            labels (Tensor): Binary targets, (B, N).
            weights (Tensor): Anchor weights, 0 for ignored, (B, N).
            gates (Tensor): Training gates ``S_1..S_T``, bool (B, T, N).
            gate_quantile (float): The loss's, for ``minp``.

        Returns:
            dict[str, Tensor]: Device tensors, no host sync: ``pos_mean`` and
            ``neg_mean`` of shape (T+1, ) (NaN when the batch has no such
            anchor), ``gate_size`` (T, ) mean anchors per image in ``S_t``,
            ``gate_frac`` (T, ) the fraction of the non-ignored anchors in
            ``S_t``, ``minp`` (T, ) the score ``sigmoid(minp_t)`` that opens
            the gate, averaged over the images with positives (NaN when
            none has), ``num_pos`` and ``num_neg`` (scalars).
        """
        cum = logits.float().cumsum(dim=1)
        scores = cum.sigmoid()
        valid = weights > 0
        pos_mask = (labels > 0) & valid
        pos = pos_mask[:, None].float()
        neg = ((labels <= 0) & valid)[:, None].float()
        num_pos, num_neg = pos.sum(), neg.sum()
        # Positives are in every gate, so o_{t-1} on them is the cumulative
        # sum: minp_t is its minimum over the image's positives.
        has_pos = pos_mask.any(dim=1)
        big = torch.finfo(cum.dtype).max
        if gate_quantile > 0:
            minp = torch.nanquantile(
                cum[:, :-1].masked_fill(~pos_mask[:, None], float('nan')),
                gate_quantile, dim=2, interpolation='lower').nan_to_num(0)
        else:
            minp = cum[:, :-1].masked_fill(~pos_mask[:, None],
                                           big).amin(dim=2)
        minp = (minp.sigmoid() * has_pos[:, None]).sum(dim=0) / \
            has_pos.sum()
        return dict(
            pos_mean=(scores * pos).sum(dim=(0, 2)) / num_pos,
            neg_mean=(scores * neg).sum(dim=(0, 2)) / num_neg,
            gate_size=gates.float().sum(dim=(0, 2)) / logits.size(0),
            gate_frac=gates.float().sum(dim=(0, 2)) / valid.sum(),
            minp=minp,
            num_pos=num_pos,
            num_neg=num_neg)
