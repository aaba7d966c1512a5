# Copyright (c) resobj-mmdet contributors.
"""What every ResObj head shares, written once."""
import logging
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from torch import Tensor

from mmdet.models.dense_heads import AnchorHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes, get_box_tensor, stack_boxes
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from ..layers.residual_objectness import (cumulative_objectness,
                                           flatten_objectness,
                                           levels_in_anchor_order)
from ..losses import ResidualObjectnessLoss


def joint_score_logit(cls_score: Tensor, obj_logit: Tensor) -> Tensor:
    """Logit of ``sigmoid(cls) * sigmoid(obj)``, computed stably.

    mmdet's post-processing applies ``sigmoid`` to the class map and then
    thresholds, ranks (``nms_pre``) and NMS-es on it. Feeding it the logit of
    the joint probability P(class) = P(class|obj) * P(obj) makes all of that
    operate on the paper's inference score, with mmdet's own code.

    Args:
        cls_score (Tensor): Class logits, shape (N, A*K, H, W).
        obj_logit (Tensor): Objectness logits, shape (N, A, H, W).

    Returns:
        Tensor: Joint logits, shape (N, A*K, H, W), fp32.
    """
    n, ak, h, w = cls_score.shape
    a = obj_logit.size(1)
    cls = cls_score.float().reshape(n, a, ak // a, h, w)
    obj = obj_logit.float()[:, :, None]  # broadcast over the K classes
    # logit(sigmoid(c) * sigmoid(o)) = c + o - log(1 + e^c + e^o)
    #                                = o - softplus(softplus(o) - c):
    # exact, finite for any logits, one pass over the (N, A*K, H, W) map,
    # and only ops ONNX has (Softplus), so it exports at opset 11.
    joint = obj - F.softplus(F.softplus(obj) - cls)
    return joint.reshape(n, ak, h, w)


# Defaults of the objectness loss of the heads that normalise it by the number
# of positive anchors (RetinaNet, ATSS, SSD: the heads whose focal loss or
# hard negative mining ResObj replaces). Measured on real images under
# mmdet's SGD recipes (docs/real_images.md; docs/benchmarks/trees.md): with weight 1 the
# all-anchor BCE diverges at twice the recipe's learning rate and barely
# learns at it; 0.5 is the largest weight tried that stays finite at twice
# the rate. The running normaliser follows the authors' release (an EMA of
# the number of positives): a batch with few positives cannot blow the loss
# up. RPN (256 per image), YOLOv3 ('sum') and YOLOX (T = 0 must be YOLOX)
# keep the loss' own defaults.
POSITIVE_NORMALISED_LOSS = dict(
    type='ResidualObjectnessLoss',
    loss_weight=0.5,
    res_loss_weight=0.5,
    avg_factor_momentum=0.9)


# Where inference applies the residuals (test_cfg.residual_gate): 'all'
# anchors, the paper's; 'trained', only where o_{t-1} reaches the running
# threshold of training's gate S_t (step t never saw the anchors below it).
RESIDUAL_GATES = ('all', 'trained')

# The class loss of imbalance transfer (sigmoid BCE, applied to positives
# only): the default of every head with a class branch of its own.
POSITIVE_CLS_LOSS = dict(
    type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)


def default_cls_prior(num_classes: int) -> float:
    """Prior of P(class | object).

    ``1/K`` for ``K > 1`` (the authors' release): the classes start uniform
    given an object. With one class, P(class | object) is 1 by definition;
    0.99 keeps the logit finite, so the joint score starts at the objectness
    instead of half of it (the former 0.5 halved every early score and
    kept a one-class detector below mmdet's ``score_thr`` for longer).
    """
    return 1.0 / num_classes if num_classes > 1 else 0.99


class ResObjMixin:
    """Residual objectness plumbing for mmdet heads.

    Provides the refinement-module construction, the choice of the scoring
    step, joint-score prediction, and, for ``AnchorHead`` subclasses, anchor
    targets, the class (on positives) and box losses and the objectness
    loss, each computed once over all levels. ``loss_by_feat`` and
    ``predict_by_feat`` are those of a head predicting ``(cls_scores,
    bbox_preds, obj_preds)``; heads with other outputs override them.
    """

    def _set_residual_objectness_cfg(self, residual_objectness: dict) -> None:
        """Validate and keep the refinement module config.

        Called before ``super().__init__`` because mmdet heads build their
        layers inside it.
        """
        if not isinstance(residual_objectness, dict):
            raise TypeError(
                f'{type(self).__name__}: `residual_objectness` must be a '
                f'config dict, got {residual_objectness!r}')
        self.residual_objectness_cfg = ConfigDict(residual_objectness)

    @staticmethod
    def _positive_normalised_loss(loss_objectness: dict) -> dict:
        """``loss_objectness`` over :data:`POSITIVE_NORMALISED_LOSS`: a
        config states only what it changes (its ``type`` included)."""
        cfg = dict(POSITIVE_NORMALISED_LOSS)
        if loss_objectness.get('type', cfg['type']) not in (
                cfg['type'], ResidualObjectnessLoss):
            return dict(loss_objectness)  # another loss: its own defaults
        cfg.update(loss_objectness)
        return cfg

    def _check_residual_objectness_loss(self, loss_cfg: dict,
                                        field: str) -> None:
        """Raise naming ``field`` unless ``loss_cfg`` builds a
        :class:`ResidualObjectnessLoss` (heads that replace their parent's
        objectness loss in place: YOLOv3's ``loss_conf``, YOLOX's
        ``loss_obj``)."""
        loss_type = loss_cfg.get('type')
        if not isinstance(loss_type, type):
            loss_type = MODELS.get(loss_type)
        if loss_type is not ResidualObjectnessLoss:
            raise ValueError(
                f'{type(self).__name__}: `{field}` must be a '
                f'ResidualObjectnessLoss config, got {loss_cfg}')

    def _check_sigmoid_cls(self, loss_cls: dict) -> None:
        """Imbalance transfer needs a sigmoid class loss (background is
        the objectness' job); raise naming ``loss_cls`` otherwise."""
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError(
                f'{type(self).__name__}: `loss_cls` must be a sigmoid loss '
                '(use_sigmoid=True): background is modelled by the '
                f'objectness, not by a softmax class; got {loss_cls}')

    def _imbalance_transfer_init_cfg(self, num_classes: int, loss_cls: dict,
                                     cls_prior_prob: Optional[float],
                                     init_cfg: Optional[dict],
                                     cls_conv: str) -> Optional[dict]:
        """Check the class loss and give the class conv its prior.

        With imbalance transfer the class branch predicts P(class | object)
        on positives only, so its loss must be a sigmoid loss (background is
        the objectness' job) and its bias starts from P(class | object), not
        from the focal-loss prior.

        Args:
            num_classes (int): ``K``.
            loss_cls (dict): The head's class loss config.
            cls_prior_prob (float, optional): Prior of the class bias; None
                uses :func:`default_cls_prior`.
            init_cfg (dict, optional): The user's init_cfg; returned as is
                when given.
            cls_conv (str): Name of the class logit conv.

        Returns:
            dict: The init_cfg to pass on: Normal(0, 0.01) convs, the class
            conv's bias from the prior.
        """
        self._check_sigmoid_cls(loss_cls)
        if init_cfg is not None:
            return init_cfg
        if cls_prior_prob is None:
            cls_prior_prob = default_cls_prior(num_classes)
        return dict(
            type='Normal',
            layer='Conv2d',
            std=0.01,
            override=dict(
                type='Normal', name=cls_conv, std=0.01,
                bias_prob=cls_prior_prob))

    def _positive_only(self, labels: Tensor, label_weights: Tensor) -> Tensor:
        """Class-loss weights of imbalance transfer: negatives get none.

        Args:
            labels (Tensor): Labels, ``num_classes`` for background; any
                shape, e.g. (N, sum H*W*A).
            label_weights (Tensor): Anchor weights, same shape.

        Returns:
            Tensor: The weights, zero on every non-positive anchor.
        """
        return label_weights * (labels < self.num_classes).to(
            label_weights.dtype)

    def joint_scores(self,
                     cls_scores: List[Tensor],
                     obj_preds: List[Tensor],
                     step: int = -1,
                     gate: Optional[str] = None) -> List[Tensor]:
        """Per level, the logit of ``sigmoid(cls) * sigmoid(o_step)``.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A*K, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W).
            step (int): Refinement step (see :meth:`step_objectness`).
            gate (str, optional): Where the residuals apply (see
                :meth:`step_objectness`).

        Returns:
            list[Tensor]: Per level, (N, A*K, H, W) joint logits, to hand to
            mmdet's post-processing in place of the class logits.
        """
        return [
            joint_score_logit(cls, obj) for cls, obj in zip(
                cls_scores, self.step_objectness(obj_preds, step, gate))
        ]

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     obj_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """Class and box losses on positives, objectness on every anchor.

        The loss of the ``AnchorHead`` subclasses whose predictions are
        ``(cls_scores, bbox_preds, obj_preds)`` (RetinaNet, SSD): the class
        loss of imbalance transfer and the head's box loss, once over all
        levels, and the objectness losses. Heads with other outputs or
        targets (ATSS, RPN, YOLOv3, YOLOX) override it.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A_l*K, H, W) logits of
                P(class | object).
            bbox_preds (list[Tensor]): Per level, (N, A_l*4, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A_l, H, W)
                ``[o_0, r_1..r_T]``.
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional):
                Ignored (crowd) boxes per image.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox`` (all levels),
            ``loss_obj`` and ``loss_res1..T``.
        """
        (anchors, labels, label_weights, bbox_targets, bbox_weights,
         avg_factor) = self._anchor_targets(cls_scores, batch_gt_instances,
                                            batch_img_metas,
                                            batch_gt_instances_ignore)
        # Imbalance transfer: negatives give no class loss (and SSD's hard
        # negative mining is not used).
        loss_cls, loss_bbox = self._loss_all_levels(
            cls_scores, bbox_preds, anchors, labels, label_weights,
            bbox_targets, bbox_weights, avg_factor)
        losses = dict(loss_cls=loss_cls, loss_bbox=loss_bbox)
        losses.update(
            self.loss_objectness_by_feat(obj_preds, labels, label_weights,
                                         avg_factor))
        return losses

    def _parent_predict_inputs(self, cls_scores: List[Tensor],
                               bbox_preds: List[Tensor],
                               obj_preds: List[Tensor], step: int,
                               gate: str) -> tuple:
        """The leading arguments of the parent head's ``predict_by_feat``,
        scored by ``o_step`` with the residuals applied per ``gate``.

        By default the joint logits of :meth:`joint_scores` replace the
        class logits (RetinaNet, ATSS, SSD). Heads whose parent scores by
        an objectness of its own override it: the RPN ranks proposals on
        ``o_step``, YOLOX takes ``o_step`` as its objectness.

        Returns:
            tuple: Positional arguments that precede ``batch_img_metas``.
        """
        return self.joint_scores(cls_scores, obj_preds, step,
                                 gate), bbox_preds

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        obj_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        step: Optional[int] = None,
                        **kwargs) -> InstanceList:
        """The parent head's post-processing on the refined scores.

        Boxes are thresholded, ranked (``nms_pre``) and NMS-ed by the parent
        head's own code on what :meth:`_parent_predict_inputs` gives it: by
        default ``sigmoid(cls) * sigmoid(o_step)``.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A_l*K, H, W) class
                logits (the RPN's: ``o_0``, (N, A_l, H, W)).
            bbox_preds (list[Tensor]): Per level, (N, A_l*4, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A_l, H, W)
                ``[o_0, r_1..r_T]``.
            batch_img_metas (list[dict], optional): Image meta information.
            cfg (ConfigDict, optional): Test config; defaults to test_cfg.
            rescale (bool): Rescale boxes to the original image size.
            with_nms (bool): Apply NMS.
            step (int, optional): Refinement step whose objectness scores
                the boxes; -1 is ``o_T`` (the paper's inference). None
                (default) takes the test config's ``objectness_step``,
                -1 when it has none. The same config's ``residual_gate``
                (default ``'all'``) says where the residuals apply, see
                :meth:`step_objectness`.
            **kwargs: Passed to the parent, e.g. ``score_factors`` (ATSS's
                centerness, multiplied into the score).

        Returns:
            list[:obj:`InstanceData`]: Per image ``scores`` (n, ),
            ``labels`` (n, ) and ``bboxes`` (n, 4).
        """
        return super().predict_by_feat(
            *self._parent_predict_inputs(cls_scores, bbox_preds, obj_preds,
                                         self._inference_step(step, cfg),
                                         self._gate_setting(cfg)),
            batch_img_metas=batch_img_metas,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms,
            **kwargs)

    def _build_residual_objectness(self, fixed: dict, **defaults):
        """Build a :class:`ResidualObjectness` from the user's config.

        Args:
            fixed (dict): Arguments the head imposes (channels, anchors...).
            **defaults: Arguments the user's config may override.
        """
        cfg = self.residual_objectness_cfg.copy()
        cfg.setdefault('type', 'ResidualObjectness')
        for key, value in defaults.items():
            cfg.setdefault(key, value)
        cfg.update(fixed)
        return MODELS.build(cfg)

    def _drop_degenerate_gts(self,
                             batch_gt_instances: InstanceList,
                             batch_img_metas: List[dict],
                             clip: bool = False) -> InstanceList:
        """Remove GT boxes no anchor can match, with a logged warning.

        A box with non-finite coordinates, zero or negative width/height, or
        no overlap with the image has IoU 0 with every anchor, and assigners
        with ``min_pos_iou=0`` (RetinaNet's, YOLOv3's) then make *every*
        anchor with IoU 0 a positive of that box. mmdet's ``CocoDataset``
        drops such boxes silently; a custom dataset or pipeline may not.
        The check reads the batch's boxes once on the host (the one host
        sync, a few hundred numbers) and tests them there, so it costs two
        device operators whatever the batch; the device only works when a
        box has to be dropped or clipped.

        Args:
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information
                (``img_shape``).
            clip (bool): Also clip the kept boxes to the image, as mmdet's
                transforms do with ``clip_object_border=True``. YOLOv3 needs
                it: a box centre outside the feature grid crashes its
                ``responsible_flags`` with an IndexError.

        Returns:
            list[:obj:`InstanceData`]: The GTs, degenerate boxes removed
            (the input list itself when nothing is removed or clipped).
        """
        if not batch_gt_instances:
            return batch_gt_instances
        counts = [len(gt) for gt in batch_gt_instances]
        boxes = torch.cat(
            [get_box_tensor(gt.bboxes) for gt in batch_gt_instances])
        host = boxes.cpu().numpy().astype(np.float64)  # the one host sync
        size = np.repeat(
            [[m['img_shape'][1], m['img_shape'][0]] for m in batch_img_metas],
            counts, axis=0).reshape(-1, 2)
        with np.errstate(invalid='ignore'):
            # finite, and the part inside [0, w] x [0, h] has positive area
            # (so x1 < x2, x2 > 0 and x1 < w, and the same for y)
            lo, hi = np.maximum(host[:, :2], 0), np.minimum(host[:, 2:], size)
            keep = np.isfinite(host).all(1) & (hi > lo).all(1)
            outside = (host[:, :2] < 0).any(1) | (host[:, 2:] > size).any(1)
        if keep.all() and not (clip and outside.any()):
            return batch_gt_instances
        if clip:
            batch_gt_instances = [
                self._clip_gt(gt, meta['img_shape'][:2])
                for gt, meta in zip(batch_gt_instances, batch_img_metas)
            ]
        if keep.all():
            return batch_gt_instances
        keeps = np.split(keep, np.cumsum(counts)[:-1])
        dropped = [int((~k).sum()) for k in keeps]
        self._num_degenerate_batches = getattr(
            self, '_num_degenerate_batches', 0) + 1
        self._num_degenerate_gts = getattr(self, '_num_degenerate_gts',
                                           0) + sum(dropped)
        n = self._num_degenerate_batches
        if n & (n - 1) == 0:  # batches 1, 2, 4, 8...: visible, not a flood
            print_log(
                f'{type(self).__name__}: dropped {sum(dropped)} GT box(es) '
                f'with non-finite coordinates, zero/negative width or height, '
                f'or outside the image (per image: {dropped}; '
                f'{self._num_degenerate_gts} in {n} batch(es) so far). Fix '
                f'the annotations or the pipeline that produces them.',
                logger='current',
                level=logging.WARNING)
        return [
            gt[torch.from_numpy(k).to(boxes.device)]
            for gt, k in zip(batch_gt_instances, keeps)
        ]

    @staticmethod
    def _clip_gt(gt, img_shape: Tuple[int, int]):
        """A copy of ``gt`` with its boxes clipped to ``img_shape``."""
        h, w = img_shape
        boxes = get_box_tensor(gt.bboxes)
        clipped = torch.stack([
            boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
            boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)
        ], dim=1)
        gt = gt.clone()
        gt.bboxes = clipped if isinstance(gt.bboxes, Tensor) else \
            type(gt.bboxes)(clipped)
        return gt

    @property
    def residual_objectness_modules(self) -> list:
        """The head's :class:`ResidualObjectness` module(s)."""
        if hasattr(self, 'res_objs'):
            return list(self.res_objs)
        return [self.res_obj]

    @property
    def num_steps(self) -> int:
        """Number of residual steps ``T``."""
        return self.residual_objectness_modules[0].num_steps

    @property
    def detach_residual(self) -> bool:
        """Whether residual gradients are isolated (paper Table 2a)."""
        return self.residual_objectness_modules[0].detach_residual

    def _resolve_step(self, step: int) -> int:
        """Map ``step`` (negative counts from ``T``) to ``0..T``."""
        num_steps = self.num_steps
        if isinstance(step, bool) or not isinstance(step, int) or \
                not -(num_steps + 1) <= step <= num_steps:
            raise ValueError(
                f'{type(self).__name__}.predict_by_feat: `step` must be an '
                f'int in [0, {num_steps}] (or negative), got {step!r}')
        return step % (num_steps + 1)

    def _inference_step(self, step: Optional[int],
                        cfg: Optional[ConfigDict]) -> int:
        """The step whose objectness scores detections.

        An explicit ``step`` wins; otherwise the test config's
        ``objectness_step`` (e.g. ``--cfg-options
        model.bbox_head.test_cfg.objectness_step=0`` to test a checkpoint
        on ``o_0``), and by default ``-1``: ``o_T``, the paper's inference.
        """
        if step is not None:
            return step
        cfg = self.test_cfg if cfg is None else cfg
        step = -1 if cfg is None else cfg.get('objectness_step', -1)
        try:
            return self._resolve_step(step)
        except ValueError:
            raise ValueError(
                f'{type(self).__name__}: test_cfg.objectness_step must be '
                f'an int in [0, {self.num_steps}] (or negative), got '
                f'{step!r}') from None

    def _gate_setting(self, cfg: Optional[ConfigDict]) -> str:
        """``residual_gate`` of the config that predicts (the test config,
        or e.g. the RPN's ``rpn_proposal`` in training), like
        :meth:`_inference_step`; ``'all'`` when unset."""
        cfg = self.test_cfg if cfg is None else cfg
        return 'all' if cfg is None else cfg.get('residual_gate', 'all')

    def _inference_gate(self, gate: Optional[str],
                        step: int) -> Optional[Tensor]:
        """The thresholds of ``residual_gate='trained'`` up to ``step``,
        None for ``'all'`` or step 0. ``gate`` None reads
        ``test_cfg.residual_gate``."""
        field = 'test_cfg.residual_gate'
        if gate is None:
            gate = self._gate_setting(None)
        if gate not in RESIDUAL_GATES:
            raise ValueError(f'{type(self).__name__}: {field} must be one of '
                             f'{RESIDUAL_GATES}, got {gate!r}')
        if gate == 'all':
            return None
        module = self.residual_objectness_modules[0]
        if module.deploy:
            raise ValueError(
                f"{type(self).__name__}: {field}='trained' needs the "
                'residual steps; switch_to_deploy() folded them into one '
                "conv that applies them everywhere ('all')")
        if step == 0:
            return None
        thresholds = module.gate_logit
        # One host sync of T values: a checkpoint trained before the
        # thresholds were kept has none to gate with.
        if bool(thresholds.isnan().any()):
            raise ValueError(
                f"{type(self).__name__}: {field}='trained' needs the running "
                'gate thresholds that training keeps in `gate_logit` when '
                'the objectness loss has `gate_momentum` (e.g. 0.99); this '
                "model has none: use 'all', or train with it")
        return thresholds

    def step_objectness(self, obj_preds: List[Tensor],
                        step: int = -1,
                        gate: Optional[str] = None) -> List[Tensor]:
        """Inference objectness ``o_step`` of every level.

        Args:
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W)
                ``[o_0, r_1..r_T]``.
            step (int): Refinement step, ``0..T``; negative counts from
                ``T`` (-1, the paper's inference, is ``o_T``).
            gate (str, optional): Where the residuals apply. ``'all'``:
                every anchor, ``o_t = o_{t-1} + r_t`` (the paper).
                ``'trained'``: only where ``o_{t-1}`` reaches the running
                threshold of training's gate ``S_t`` (the logit of the
                weakest positive, averaged over training batches), i.e. on
                the anchors step t was trained on; elsewhere
                ``o_t = o_{t-1}``. None (default): ``test_cfg.residual_gate``,
                ``'all'`` when unset.

        Returns:
            list[Tensor]: Per level, (N, A, H, W) logits.
        """
        step = self._resolve_step(step)
        thresholds = self._inference_gate(gate, step)
        # A per level from the channels: SSD has different anchor counts.
        blocks = self.num_steps + 1
        if thresholds is None:
            return [
                cumulative_objectness(obj, obj.size(1) // blocks, step)
                for obj in obj_preds
            ]
        outs = []
        for obj in obj_preds:
            n, c, h, w = obj.shape
            o, *residuals = obj.reshape(n, blocks, c // blocks, h,
                                        w)[:, :step + 1].unbind(1)
            for r, thr in zip(residuals, thresholds.to(obj.dtype).unbind()):
                o = torch.where(o >= thr, o + r, o)
            outs.append(o)
        return outs

    def _anchor_targets(self,
                        featmap_tensors: List[Tensor],
                        batch_gt_instances: InstanceList,
                        batch_img_metas: List[dict],
                        batch_gt_instances_ignore: OptInstanceList = None
                        ) -> Tuple:
        """``AnchorHead`` targets of all levels at once, after
        :meth:`_drop_degenerate_gts`.

        What ``AnchorHead.get_targets`` computes (its ``_get_targets_single``
        per image, the sampling results kept for ``get_positive_infos``),
        without splitting the targets into levels: every ResObj loss runs
        once over all levels, and a split that the losses concatenate again
        would cost two operators per level and target.

        Returns:
            tuple: ``(anchors, labels, label_weights, bbox_targets,
            bbox_weights, avg_factor)``; tensors of shape (N, sum H*W*A,
            ...), anchors in mmdet's order (level, y, x, anchor).
        """
        batch_gt_instances = self._drop_degenerate_gts(batch_gt_instances,
                                                       batch_img_metas)
        featmap_sizes = [featmap.size()[-2:] for featmap in featmap_tensors]
        assert len(featmap_sizes) == self.prior_generator.num_levels
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=featmap_tensors[0].device)
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_img_metas)
        anchors = [cat_boxes(a) for a in anchor_list]
        results = multi_apply(
            self._get_targets_single, anchors,
            [torch.cat(f) for f in valid_flag_list], batch_gt_instances,
            batch_img_metas, batch_gt_instances_ignore)
        sampling_results = results[6]
        self._raw_positive_infos.update(sampling_results=sampling_results)
        labels, label_weights, bbox_targets, bbox_weights = (
            torch.stack(r) for r in results[:4])
        avg_factor = sum(r.avg_factor for r in sampling_results)
        return (stack_boxes(anchors), labels, label_weights, bbox_targets,
                bbox_weights, avg_factor)

    @staticmethod
    def _levels_as_one(maps: List[Tensor], channels: int) -> Tensor:
        """Per-level prediction maps as one map of a single "level".

        mmdet's per-level losses flatten a (N, A*C, H, W) map with
        ``permute(0, 2, 3, 1).reshape(-1, C)``; the returned map flattens
        that way to every level's anchors in anchor order, so one such call
        covers all levels (and, being a permuted view of a contiguous
        tensor, without a copy there).

        Args:
            maps (list[Tensor]): Per level, (N, A_l*C, H_l, W_l).
            channels (int): ``C``, values per anchor.

        Returns:
            Tensor: (N, C, sum_l H_l*W_l*A_l, 1), anchors ordered as mmdet's
            anchor generators order them (level, y, x, anchor).
        """
        # (N, 1, sum HWA, C) -> (N, C, sum HWA, 1)
        return levels_in_anchor_order(maps, 1, channels).permute(0, 3, 2, 1)

    def _loss_all_levels(self, cls_scores: List[Tensor],
                         bbox_preds: List[Tensor], anchors: Tensor,
                         labels: Tensor, label_weights: Tensor,
                         bbox_targets: Tensor, bbox_weights: Tensor,
                         avg_factor: float) -> Tuple[Tensor, Tensor]:
        """Class loss on positives and box loss, once over all levels.

        ``AnchorHead.loss_by_feat_single`` called once on the levels
        concatenated, with the class weights of imbalance transfer
        (:meth:`_positive_only`). With the levels' shared ``avg_factor``
        this is the sum over levels of the per-level losses (what
        ``parse_losses`` logs), in one call of ``loss_cls`` and
        ``loss_bbox`` instead of one per level: the eager operator calls of
        the class and box losses drop by about the number of levels (what a
        training step on a GPU is bound by at mmdet's sizes), and a sigmoid
        ``CrossEntropyLoss``'s one-hot expansion (a ``nonzero``, a host sync
        on CUDA) runs once instead of per level.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A*C, H, W) with
                ``C = cls_out_channels``.
            bbox_preds (list[Tensor]): Per level, (N, A*4, H, W).
            anchors (Tensor): (N, sum H*W*A, 4), from
                :meth:`_anchor_targets` as the targets below.
            labels (Tensor): (N, sum H*W*A).
            label_weights (Tensor): (N, sum H*W*A).
            bbox_targets (Tensor): (N, sum H*W*A, 4).
            bbox_weights (Tensor): (N, sum H*W*A, 4).
            avg_factor (float): Normaliser of both losses.

        Returns:
            tuple[Tensor, Tensor]: ``loss_cls`` and ``loss_bbox``.
        """
        return AnchorHead.loss_by_feat_single(
            self, self._levels_as_one(cls_scores, self.cls_out_channels),
            self._levels_as_one(bbox_preds, self.bbox_coder.encode_size),
            anchors, labels, self._positive_only(labels, label_weights),
            bbox_targets, bbox_weights, avg_factor)

    def _loss_bbox_single(self, bbox_pred: Tensor, anchors: Tensor,
                          bbox_targets: Tensor, bbox_weights: Tensor,
                          avg_factor: float) -> Tensor:
        """The box half of ``AnchorHead.loss_by_feat_single``.

        Args:
            bbox_pred (Tensor): (N, A*4, H, W) deltas.
            anchors (Tensor): (N, H*W*A, 4) anchors.
            bbox_targets (Tensor): (N, H*W*A, 4) targets.
            bbox_weights (Tensor): (N, H*W*A, 4) weights.
            avg_factor (float): Normaliser.

        Returns:
            Tensor: The box loss of the level.
        """
        target_dim = bbox_targets.size(-1)
        bbox_targets = bbox_targets.reshape(-1, target_dim)
        bbox_weights = bbox_weights.reshape(-1, target_dim)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(
            -1, self.bbox_coder.encode_size)
        if self.reg_decoded_bbox:
            anchors = anchors.reshape(-1, anchors.size(-1))
            bbox_pred = get_box_tensor(
                self.bbox_coder.decode(anchors, bbox_pred))
        return self.loss_bbox(
            bbox_pred, bbox_targets, bbox_weights, avg_factor=avg_factor)

    def objectness_losses(self, loss, obj_preds,
                          labels: Tensor, weights: Optional[Tensor],
                          avg_factor: Optional[float] = None,
                          **kwargs) -> dict:
        """Objectness + residual losses over all levels at once.

        The one place where every head hands its objectness to
        :class:`ResidualObjectnessLoss`. The levels are concatenated because
        the gate's minimum positive score is taken per image over all of its
        anchors; the module's gradient isolation is passed on, and so is
        its ``gate_logit``, which training updates when the loss has
        ``gate_momentum`` set.

        Args:
            loss (:class:`ResidualObjectnessLoss`): The head's loss module.
            obj_preds (list[Tensor] | Tensor): Per level, (N, (T+1)*A, H, W)
                ``[o_0, r_1..r_T]``, or already flattened, (N, T+1,
                sum H*W*A).
            labels (Tensor): Binary objectness targets, (N, sum H*W*A) in
                anchor order.
            weights (Tensor, optional): Anchor weights, 0 for ignored, same
                shape; None: all ones.
            avg_factor (float, optional): Loss normaliser.
            **kwargs: Passed to the loss (``reduction_override``).

        Returns:
            dict[str, Tensor]: ``loss_obj`` and ``loss_res1..T``.
        """
        if not isinstance(obj_preds, Tensor):
            obj_preds = flatten_objectness(obj_preds, self.num_steps)
        return loss(
            obj_preds,
            labels,
            weights,
            avg_factor=avg_factor,
            detach_prev=self.detach_residual,
            running_gate=self.residual_objectness_modules[0].gate_logit,
            **kwargs)

    def loss_objectness_by_feat(self, obj_preds: List[Tensor],
                                labels: Tensor, label_weights: Tensor,
                                avg_factor: Optional[float]) -> dict:
        """:meth:`objectness_losses` from ``AnchorHead`` targets.

        Args:
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W)
                ``[o_0, r_1..r_T]``.
            labels (Tensor): (N, sum H*W*A) class labels, ``num_classes``
                for background, all levels (:meth:`_anchor_targets`).
            label_weights (Tensor): (N, sum H*W*A); 0 marks ignored anchors.
            avg_factor (float, optional): Loss normaliser.

        Returns:
            dict[str, Tensor]: ``loss_obj`` and ``loss_res1..T``.
        """
        obj_labels = ((labels >= 0) & (labels < self.num_classes)).float()
        return self.objectness_losses(self.loss_objectness, obj_preds,
                                      obj_labels, label_weights, avg_factor)


class TowerResObjMixin(ResObjMixin):
    """:class:`ResObjMixin` for heads with a class and a box tower
    (RetinaNet, ATSS): the shared constructor, the refinement module on the
    class tower and the towers' forward.

    A head sets :attr:`cls_conv_name`, the name of its class logit conv
    (whose bias gets the P(class | object) prior), and builds its outputs
    from :meth:`_tower_feats`.

    Args:
        num_classes (int): Number of object classes ``K``.
        in_channels (int): Input feature channels.
        residual_objectness (dict): Config of the refinement module; its
            ``in_channels``, ``num_anchors`` and (unless given)
            ``feat_channels`` are filled in by the head.
            Defaults to ``dict(type='ResidualObjectness', num_steps=2)``.
        loss_objectness (dict): Config of the objectness loss, over
            :data:`POSITIVE_NORMALISED_LOSS` (weights 0.5, running
            normaliser): a config states only what it changes.
        loss_cls (dict): Class loss, applied to positive anchors only. Must be
            a sigmoid loss. Defaults to sigmoid ``CrossEntropyLoss``.
        cls_prior_prob (float, optional): Prior of the class logit bias;
            None uses :func:`default_cls_prior`. Used only when ``init_cfg``
            is None.
        init_cfg (dict, optional): Defaults to Normal(0, 0.01) convs with
            the class bias from ``cls_prior_prob``.
        **kwargs: The parent head's arguments.
    """

    cls_conv_name: str  # set by the head, e.g. 'retina_cls'

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness', num_steps=2),
                 loss_objectness: ConfigType = dict(
                     type='ResidualObjectnessLoss'),
                 loss_cls: ConfigType = POSITIVE_CLS_LOSS,
                 cls_prior_prob: Optional[float] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        init_cfg = self._imbalance_transfer_init_cfg(
            num_classes, loss_cls, cls_prior_prob, init_cfg,
            self.cls_conv_name)
        self._set_residual_objectness_cfg(residual_objectness)
        super().__init__(
            num_classes, in_channels, loss_cls=loss_cls, init_cfg=init_cfg,
            **kwargs)
        self.loss_objectness = MODELS.build(
            self._positive_normalised_loss(loss_objectness))

    def _init_layers(self) -> None:
        """The parent's towers and branches plus the refinement module,
        which reads the class tower's output; its hidden convs default to
        the tower's width."""
        super()._init_layers()
        self.res_obj = self._build_residual_objectness(
            dict(
                in_channels=self.feat_channels
                if self.stacked_convs > 0 else self.in_channels,
                num_anchors=self.num_base_priors),
            feat_channels=self.feat_channels)

    def _tower_feats(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Run the class and box towers on one level.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            tuple[Tensor]: ``cls_feat`` and ``reg_feat``, each
            (N, feat_channels, H, W) (``x`` itself with no tower convs).
        """
        cls_feat = x
        reg_feat = x
        for cls_conv in self.cls_convs:
            cls_feat = cls_conv(cls_feat)
        for reg_conv in self.reg_convs:
            reg_feat = reg_conv(reg_feat)
        return cls_feat, reg_feat
