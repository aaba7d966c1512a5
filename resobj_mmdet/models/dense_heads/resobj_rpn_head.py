# Copyright (c) resobj-mmdet contributors.
"""RPN with residual objectness and no random sampler (FasterRCNN-ResObj)."""
from typing import List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, InstanceList, OptInstanceList
from .resobj_mixin import ResObjMixin


@MODELS.register_module()
class ResObjRPNHead(ResObjMixin, RPNHead):
    """RPN head whose objectness is refined by residual objectness.

    The RPN's ``rpn_cls`` logit is ``o_0``. A :class:`ResidualObjectness`
    module with no objectness subnet adds ``T`` residual subnets that read the
    RPN feature. Training uses every non-ignored anchor: the random sampler of
    the vanilla RPN is removed (``PseudoSampler``; a sampling sampler raises
    an error). ``loss_rpn_cls`` is the objectness loss of ``o_0`` and
    ``loss_rpn_res{t}`` the residual losses, both from
    :class:`ResidualObjectnessLoss`; ``loss_rpn_bbox`` is the RPN's
    ``loss_bbox``. Proposals are ranked and NMS-ed on ``o_T``.

    Args:
        in_channels (int): Input feature channels.
        residual_objectness (dict): Config of the refinement module
            (``num_steps`` lives here). ``in_channels``, ``num_anchors`` and
            ``with_objectness_subnet=False`` are set by the head;
            ``feat_channels`` defaults to the head's. The default puts
            GroupNorm in the residual subnets: with the paper's plain
            conv+ReLU they read the RPN's unnormalised feature, and on the
            demo the residual losses diverged within 30 iterations under
            both AdamW and SGD (the RPN's few, often low-IoU positives make
            the gate swing between a handful and nearly all anchors).
        loss_objectness (dict): Config of the objectness loss. RPNHead's
            ``loss_cls`` only sets the sigmoid output and is not used as a
            loss.
        avg_factor_per_image (int, optional): Loss normaliser per image.
            Defaults to 256, what mmdet's RPN divides by (its sampler draws
            256 anchors per image), so that removing the sampler changes
            which anchors enter the loss but not the loss scale that the
            R-CNN stage is balanced against. None normalises by the number of
            positive anchors, as RetinaNet does: on the demo that made the
            RPN losses ~100x vanilla's and cost the Faster R-CNN 22 points
            of bbox mAP.
        init_cfg (dict, optional): Defaults to the RPN's Normal(0, 0.01) with
            the ``rpn_cls`` (``o_0``) bias from the objectness prior
            (``residual_objectness.obj_prior_prob``, 0.01): without the
            sampler every anchor enters the loss, and mmdet's zero bias
            (p = 0.5 for ~10^5 anchors) would start from a huge loss.
        **kwargs: :class:`RPNHead` arguments.
    """

    def __init__(self,
                 in_channels: int,
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness',
                     num_steps=2,
                     norm_cfg=dict(
                         type='GN', num_groups=32, requires_grad=True)),
                 loss_objectness: ConfigType = dict(
                     type='ResidualObjectnessLoss',
                     loss_weight=1.0,
                     res_loss_weight=1.0),
                 avg_factor_per_image: Optional[int] = 256,
                 train_cfg: Optional[ConfigType] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        self._set_residual_objectness_cfg(residual_objectness)
        if avg_factor_per_image is not None and (
                isinstance(avg_factor_per_image, bool)
                or not isinstance(avg_factor_per_image, int)
                or avg_factor_per_image < 1):
            raise ValueError('ResObjRPNHead: `avg_factor_per_image` must be a '
                             'positive int or None, got '
                             f'{avg_factor_per_image!r}')
        self.avg_factor_per_image = avg_factor_per_image
        if init_cfg is None:
            init_cfg = dict(
                type='Normal',
                layer='Conv2d',
                std=0.01,
                override=dict(
                    type='Normal',
                    name='rpn_cls',
                    std=0.01,
                    bias_prob=self.residual_objectness_cfg.get(
                        'obj_prior_prob', 0.01)))
        if train_cfg is not None and train_cfg.get('sampler') is not None:
            sampler = train_cfg['sampler']
            sampler_type = sampler.get('type') if isinstance(sampler,
                                                             dict) else None
            if not isinstance(sampler_type, type):
                sampler_type = TASK_UTILS.get(sampler_type)
            if sampler_type is None or sampler_type.__name__ != \
                    'PseudoSampler':
                raise ValueError(
                    'ResObjRPNHead: residual objectness trains on all anchors; '
                    '`train_cfg.rpn.sampler` must be PseudoSampler (or '
                    f'omitted), got {sampler}')
        super().__init__(
            in_channels, train_cfg=train_cfg, init_cfg=init_cfg, **kwargs)
        if not self.use_sigmoid_cls:
            raise ValueError('ResObjRPNHead: `loss_cls` must use a sigmoid '
                             '(use_sigmoid=True): o_0 is one logit per anchor')
        self.loss_objectness = MODELS.build(loss_objectness)

    def _init_layers(self) -> None:
        """RPN layers plus the residual subnets."""
        super()._init_layers()
        self.res_obj = self._build_residual_objectness(
            dict(
                in_channels=self.feat_channels,
                num_anchors=self.num_base_priors,
                with_objectness_subnet=False),
            feat_channels=self.feat_channels)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward one feature level.

        Args:
            x (Tensor): Features of shape (N, C, H, W).

        Returns:
            tuple[Tensor]:
                - rpn_cls_score: (N, A, H, W), ``o_0``.
                - rpn_bbox_pred: (N, A*4, H, W).
                - obj_pred: (N, (T+1)*A, H, W) ``[o_0, r_1..r_T]`` objectness logits,
                  step-major; its first ``A`` channels are ``o_0``.
        """
        x = F.relu(self.rpn_conv(x))
        rpn_cls_score = self.rpn_cls(x)
        return (rpn_cls_score, self.rpn_reg(x),
                self.res_obj(x, obj_logit=rpn_cls_score))

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     obj_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """Objectness and residual losses over all anchors, box loss on
        positives.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A, H, W) ``o_0``.
            bbox_preds (list[Tensor]): Per level, (N, A*4, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional):
                Ignored boxes per image.

        Returns:
            dict: ``loss_rpn_cls`` (objectness of ``o_0``),
            ``loss_rpn_res1..T`` and ``loss_rpn_bbox`` (all levels).
        """
        (anchors, labels, label_weights, bbox_targets, bbox_weights,
         avg_factor) = self._anchor_targets(cls_scores, batch_gt_instances,
                                            batch_img_metas,
                                            batch_gt_instances_ignore)
        if self.avg_factor_per_image is not None:
            avg_factor = self.avg_factor_per_image * len(batch_img_metas)
        # One call over all levels (= the sum of the per-level losses).
        loss_bbox = self._loss_bbox_single(
            self._levels_as_one(bbox_preds, self.bbox_coder.encode_size),
            anchors, bbox_targets, bbox_weights, avg_factor=avg_factor)
        obj_losses = self.loss_objectness_by_feat(obj_preds, labels,
                                                  label_weights, avg_factor)
        losses = dict(loss_rpn_cls=obj_losses.pop('loss_obj'))
        for key, value in obj_losses.items():
            losses[key.replace('loss_', 'loss_rpn_')] = value
        losses['loss_rpn_bbox'] = loss_bbox
        return losses

    def _parent_predict_inputs(self, cls_scores: List[Tensor],
                               bbox_preds: List[Tensor],
                               obj_preds: List[Tensor], step: int,
                               gate: str) -> tuple:
        """Proposals are ranked and NMS-ed on ``o_step`` (default
        ``o_T``), in place of the RPN's ``o_0``."""
        return self.step_objectness(obj_preds, step, gate), bbox_preds
