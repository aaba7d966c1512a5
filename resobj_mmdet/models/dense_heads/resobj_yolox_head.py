# Copyright (c) resobj-mmdet contributors.
"""YOLOX-ResObj head: residual refinement of YOLOX's objectness."""
from typing import List, Optional, Tuple

import torch.nn as nn
from torch import Tensor

from mmdet.models.dense_heads import YOLOXHead
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.utils import (ConfigType, InstanceList, OptInstanceList,
                         reduce_mean)
from .resobj_mixin import ResObjMixin


class _ObjTargetRecorder(nn.Module):
    """Stands in for YOLOX's ``loss_obj`` during its ``loss_by_feat``.

    YOLOX computes its SimOTA targets and its objectness loss in one method,
    ``loss_obj(o, targets) / normaliser`` on its own flattening of the
    objectness it is given (``o_T``, for SimOTA's cost). This records the
    targets and lets YOLOX's code compute the class, box and L1 losses.
    With ``T = 0``, ``o_T`` is ``o_0``: the recorder computes the summed
    objectness loss on YOLOX's flattening itself (the levels need no second
    flattening) and YOLOX normalises it, exactly as for its own loss.
    Otherwise it returns a zero connected to the graph, and the head
    computes every objectness loss once, by
    :class:`ResidualObjectnessLoss`.
    """

    def __init__(self, objectness_losses, loss: nn.Module, num_steps: int,
                 num_imgs: int) -> None:
        super().__init__()
        # The head's bound method (a plain attribute: no module cycle).
        self.objectness_losses = objectness_losses
        self.loss, self.num_steps, self.num_imgs = loss, num_steps, num_imgs
        self.target = None

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        self.target = target.reshape(self.num_imgs, -1)
        if self.num_steps == 0:
            return self.objectness_losses(
                self.loss, pred.view(self.num_imgs, 1, -1), self.target, None,
                reduction_override='sum')['loss_obj']
        return pred.sum() * 0


@MODELS.register_module()
class ResObjYOLOXHead(ResObjMixin, YOLOXHead):
    """YOLOX head whose objectness is refined by residual objectness.

    YOLOX already trains its class branch on positive priors only and an
    objectness logit ``o_0`` over every prior (BCE, SimOTA's foreground
    mask as target), i.e. it already does the paper's imbalance transfer.
    Each level gets a :class:`ResidualObjectness` module without objectness
    subnet whose ``T`` residual subnets (conv + YOLOX's norm/act, then a
    logit conv) read the level's regression feature, where YOLOX's own
    objectness conv reads. ``loss_obj`` (on ``o_0``) and ``loss_res{t}``
    come from :class:`ResidualObjectnessLoss`, normalised as YOLOX
    normalises ``loss_obj`` (by the number of positive priors, averaged over
    processes). Class, box and L1 losses are YOLOX's.

    Priors are points, not boxes: the gate (Algorithm 1) only needs a label
    and a weight per prior, and every YOLOX prior is either positive or
    negative (weight 1; YOLOX has no ignore region).

    SimOTA's cost uses the predicted scores; it is given ``o_T``, the
    objectness inference scores with. With ``num_steps=0`` the head is
    numerically YOLOX: same maps, losses and predictions (tested).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Input feature channels.
        residual_objectness (dict): Config of the per-level refinement
            modules. ``in_channels``, ``num_anchors`` (1) and
            ``with_objectness_subnet=False`` are set by the head;
            ``feat_channels`` defaults to the head's, ``norm_cfg``/``act_cfg``
            to YOLOX's.
        loss_obj (dict): Config of the :class:`ResidualObjectnessLoss`
            (replaces YOLOX's objectness ``CrossEntropyLoss``).
        **kwargs: :class:`YOLOXHead` arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 residual_objectness: ConfigType = dict(
                     type='ResidualObjectness', num_steps=2),
                 loss_obj: ConfigType = dict(
                     type='ResidualObjectnessLoss',
                     loss_weight=1.0,
                     res_loss_weight=1.0),
                 **kwargs) -> None:
        self._check_residual_objectness_loss(loss_obj, 'loss_obj')
        self._set_residual_objectness_cfg(residual_objectness)
        super().__init__(
            num_classes, in_channels, loss_obj=loss_obj, **kwargs)
        self.num_base_priors = 1  # one point prior per location

    def _init_layers(self) -> None:
        """YOLOX's layers plus one refinement module per level."""
        super()._init_layers()
        self.res_objs = nn.ModuleList([
            self._build_residual_objectness(
                dict(
                    in_channels=self.feat_channels,
                    num_anchors=1,
                    with_objectness_subnet=False),
                feat_channels=self.feat_channels,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg) for _ in self.strides
        ])

    def init_weights(self) -> None:
        """YOLOX's initialisation, then the refinement modules' own."""
        super().init_weights()
        for res_obj in self.res_objs:
            res_obj.init_weights()

    def forward(self, x: Tuple[Tensor]) -> Tuple[List]:
        """Forward all levels.

        Args:
            x (tuple[Tensor]): Neck features, one (N, C, H, W) per level.

        Returns:
            tuple[list[Tensor]]: ``cls_scores`` (N, K, H, W), ``bbox_preds``
            (N, 4, H, W) and ``obj_preds`` (N, T+1, H, W) ``[o_0, r_1..r_T]``
            per level.
        """
        return multi_apply(self.forward_single, x, self.multi_level_cls_convs,
                           self.multi_level_reg_convs,
                           self.multi_level_conv_cls,
                           self.multi_level_conv_reg,
                           self.multi_level_conv_obj, self.res_objs)

    def forward_single(self, x: Tensor, cls_convs: nn.Module,
                       reg_convs: nn.Module, conv_cls: nn.Module,
                       conv_reg: nn.Module, conv_obj: nn.Module,
                       res_obj: nn.Module) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward one level: YOLOX's maps, ``o_0`` refined by ``res_obj``."""
        cls_feat = cls_convs(x)
        reg_feat = reg_convs(x)
        obj_pred = res_obj(reg_feat, obj_logit=conv_obj(reg_feat))
        return conv_cls(cls_feat), conv_reg(reg_feat), obj_pred

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     obj_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """YOLOX's losses, its objectness loss replaced by the residual
        objectness losses.

        Args:
            cls_scores (list[Tensor]): Per level, (N, K, H, W).
            bbox_preds (list[Tensor]): Per level, (N, 4, H, W).
            obj_preds (list[Tensor]): Per level, (N, T+1, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information.
            batch_gt_instances_ignore (list, optional): As in YOLOX.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox``, (``loss_l1``),
            ``loss_obj`` (objectness ``o_0``) and ``loss_res1..T``.
        """
        batch_gt_instances = self._drop_degenerate_gts(batch_gt_instances,
                                                       batch_img_metas)
        recorder = _ObjTargetRecorder(self.objectness_losses, self.loss_obj,
                                      self.num_steps, len(batch_img_metas))
        loss_obj, self.loss_obj = self.loss_obj, recorder
        try:
            # YOLOX's own losses (ResObjMixin's are the anchor heads'); its
            # SimOTA assignment reads o_T, not test_cfg's residual_gate.
            losses = YOLOXHead.loss_by_feat(
                self, cls_scores, bbox_preds,
                self.step_objectness(obj_preds, gate='all'),
                batch_gt_instances, batch_img_metas,
                batch_gt_instances_ignore)
        finally:
            self.loss_obj = loss_obj
        if self.num_steps == 0:
            return losses  # loss_obj from the recorder, YOLOX-normalised
        del losses['loss_obj']  # the recorder's zero
        labels = recorder.target
        # YOLOX's normaliser: positives averaged over processes (>= 1).
        num_pos = reduce_mean(labels.sum())
        losses.update(
            self.objectness_losses(self.loss_obj, obj_preds, labels, None,
                                   num_pos))
        return losses

    def _parent_predict_inputs(self, cls_scores: List[Tensor],
                               bbox_preds: List[Tensor],
                               obj_preds: List[Tensor], step: int,
                               gate: str) -> tuple:
        """YOLOX's post-processing with ``o_step`` as its objectness, so
        scores are ``sigmoid(cls) * sigmoid(o_step)``."""
        return cls_scores, bbox_preds, self.step_objectness(
            obj_preds, step, gate)
