# Copyright (c) resobj-mmdet contributors.
"""ATSS-ResObj head: focal loss replaced by residual objectness."""
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import Scale
from mmengine.config import ConfigDict
from torch import Tensor

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS
from mmdet.utils import InstanceList, OptInstanceList, reduce_mean
from .resobj_mixin import TowerResObjMixin


@MODELS.register_module()
class ResObjATSSHead(TowerResObjMixin, ATSSHead):
    """ATSS head with imbalance transfer and residual objectness.

    Everything ATSS adds to RetinaNet stays: the adaptive training sample
    selection (ATSS assigner), GIoU box loss and the centerness branch with
    its BCE loss on positives. What RetinaNet-ResObj changes, this head
    changes the same way: the class branch predicts P(class | object) with a
    sigmoid loss on positive anchors only, and an objectness subnet on the
    class tower plus ``T`` residual subnets (:class:`ResidualObjectness`)
    learn foreground vs background over every non-ignored anchor with
    :class:`ResidualObjectnessLoss` (Algorithm 1's gates).

    Score: mmdet's ATSS multiplies the predicted centerness into the class
    score (``score_factors``). Here the class score is the joint
    ``sigmoid(cls) * sigmoid(o_T)``, and centerness multiplies that:
    ``score = P(class | object) * P(object) * centerness``. Centerness is a
    localisation-quality factor, not a foreground probability, so it stays
    outside the objectness (which the residual steps refine) and ranks boxes
    of one object, as in ATSS.

    Args:
        See :class:`TowerResObjMixin`; ``**kwargs`` are :class:`ATSSHead`'s.
        ``init_cfg`` defaults to ATSS's Normal(0, 0.01) with the class bias
        from ``cls_prior_prob``.
    """

    cls_conv_name = 'atss_cls'

    def forward_single(self, x: Tensor, scale: Scale) -> Sequence[Tensor]:
        """Forward one feature level.

        Args:
            x (Tensor): Features of shape (N, C, H, W).
            scale (:obj:`Scale`): Learnable scale of the box prediction.

        Returns:
            tuple[Tensor]: ``cls_score`` (N, A*K, H, W) logits of
            P(class | object), ``bbox_pred`` (N, A*4, H, W), ``centerness``
            (N, A, H, W) and ``obj_pred`` (N, (T+1)*A, H, W)
            ``[o_0, r_1..r_T]``.
        """
        cls_feat, reg_feat = self._tower_feats(x)
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        return (self.atss_cls(cls_feat), bbox_pred,
                self.atss_centerness(reg_feat), self.res_obj(cls_feat))

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     centernesses: List[Tensor],
                     obj_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> dict:
        """ATSS's box and centerness losses, the class loss on positives
        only, and the objectness losses over all anchors.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A*K, H, W).
            bbox_preds (list[Tensor]): Per level, (N, A*4, H, W).
            centernesses (list[Tensor]): Per level, (N, A, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W).
            batch_gt_instances (list[:obj:`InstanceData`]): GT per image.
            batch_img_metas (list[dict]): Image meta information.
            batch_gt_instances_ignore (list[:obj:`InstanceData`], optional):
                Ignored (crowd) boxes per image.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_bbox`` and
            ``loss_centerness`` (all levels), ``loss_obj`` and
            ``loss_res1..T``.
        """
        batch_gt_instances = self._drop_degenerate_gts(batch_gt_instances,
                                                       batch_img_metas)
        featmap_sizes = [featmap.size()[-2:] for featmap in bbox_preds]
        assert len(featmap_sizes) == self.prior_generator.num_levels
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=device)
        (anchor_list, labels_list, label_weights_list, bbox_targets_list,
         bbox_weights_list, avg_factor) = self.get_targets(
             anchor_list,
             valid_flag_list,
             batch_gt_instances,
             batch_img_metas,
             batch_gt_instances_ignore=batch_gt_instances_ignore)
        # ATSS's own normaliser (one host read, as in ATSSHead).
        avg_factor = reduce_mean(
            torch.tensor(avg_factor, dtype=torch.float, device=device)).item()
        # ATSSHead's loss once over all levels (= the sum of its per-level
        # losses; see ResObjMixin._loss_all_levels).
        labels = torch.cat(labels_list, dim=1)
        label_weights = torch.cat(label_weights_list, dim=1)
        loss_cls, loss_bbox, loss_centerness, bbox_avg_factor = \
            self.loss_by_feat_single(
                torch.cat(anchor_list, dim=1),
                self._levels_as_one(cls_scores, self.cls_out_channels),
                self._levels_as_one(bbox_preds, 4),
                self._levels_as_one(centernesses, 1),
                labels,
                # Imbalance transfer: negatives give no class loss.
                self._positive_only(labels, label_weights),
                torch.cat(bbox_targets_list, dim=1),
                avg_factor=avg_factor)
        bbox_avg_factor = reduce_mean(bbox_avg_factor).clamp_(min=1).item()
        losses = dict(
            loss_cls=loss_cls,
            loss_bbox=loss_bbox / bbox_avg_factor,
            loss_centerness=loss_centerness)
        losses.update(
            self.loss_objectness_by_feat(obj_preds, labels, label_weights,
                                         avg_factor))
        return losses

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        centernesses: List[Tensor],
                        obj_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        step: Optional[int] = None) -> InstanceList:
        """Detections scored by ``sigmoid(cls) * sigmoid(o_step) *
        sigmoid(centerness)``.

        Args:
            cls_scores (list[Tensor]): Per level, (N, A*K, H, W).
            bbox_preds (list[Tensor]): Per level, (N, A*4, H, W).
            centernesses (list[Tensor]): Per level, (N, A, H, W).
            obj_preds (list[Tensor]): Per level, (N, (T+1)*A, H, W).
            batch_img_metas (list[dict], optional): Image meta information.
            cfg (ConfigDict, optional): Test config; defaults to test_cfg.
            rescale (bool): Rescale boxes to the original image size.
            with_nms (bool): Apply NMS.
            step (int, optional): Refinement step whose objectness scores
                the boxes; -1 is ``o_T``. None (default): the test config's
                ``objectness_step``, -1 when it has none.

        Returns:
            list[:obj:`InstanceData`]: Per image ``scores`` (n, ),
            ``labels`` (n, ) and ``bboxes`` (n, 4).
        """
        return super().predict_by_feat(
            cls_scores,
            bbox_preds,
            obj_preds,
            batch_img_metas=batch_img_metas,
            cfg=cfg,
            rescale=rescale,
            with_nms=with_nms,
            step=step,
            score_factors=centernesses)
