# Copyright (c) resobj-mmdet contributors.
"""mmdet's CocoMetric with a ``proposal_fast`` that works on numpy >= 1.24."""
from typing import List, Sequence, Union

import numpy as np

from mmdet.evaluation import CocoMetric
from mmdet.evaluation.functional import bbox_overlaps
from mmdet.evaluation.functional.recall import (_recalls,
                                                print_recall_summary,
                                                set_recall_param)
from mmdet.evaluation.metrics import coco_metric
from mmdet.registry import METRICS


def eval_recalls(gts: List[np.ndarray],
                 proposals: List[np.ndarray],
                 proposal_nums: Union[int, Sequence[int]] = None,
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 logger=None,
                 use_legacy_coordinate: bool = False) -> np.ndarray:
    """``mmdet.evaluation.functional.eval_recalls`` for ragged inputs.

    mmdet 3.3 stacks the per-image IoU matrices with ``np.array(all_ious)``;
    they have one row per GT and so differ between images, which numpy >=
    1.24 refuses (``inhomogeneous shape``). Here they are kept in an object
    array, which ``_recalls`` iterates over as mmdet intended.

    Args:
        gts (list[ndarray]): Per image, (n, 4) GT boxes.
        proposals (list[ndarray]): Per image, (k, 4) or (k, 5) proposals.
        proposal_nums (int | Sequence[int]): Top-N proposals evaluated.
        iou_thrs (float | Sequence[float]): IoU thresholds.
        logger: Where to print the recall summary.
        use_legacy_coordinate (bool): mmdet v1 box coordinates.

    Returns:
        ndarray: Recalls of shape (len(proposal_nums), len(iou_thrs)).
    """
    assert len(gts) == len(proposals)
    proposal_nums, iou_thrs = set_recall_param(proposal_nums, iou_thrs)
    all_ious = np.empty(len(gts), dtype=object)
    for i, (gt, prop) in enumerate(zip(gts, proposals)):
        if prop.ndim == 2 and prop.shape[1] == 5:
            prop = prop[np.argsort(prop[:, 4])[::-1]]
        prop = prop[:min(prop.shape[0], proposal_nums[-1]), :4]
        if gt is None or gt.shape[0] == 0:
            all_ious[i] = np.zeros((0, prop.shape[0]), dtype=np.float32)
        else:
            all_ious[i] = bbox_overlaps(
                gt, prop, use_legacy_coordinate=use_legacy_coordinate)
    recalls = _recalls(all_ious, proposal_nums, iou_thrs)
    print_recall_summary(recalls, proposal_nums, iou_thrs, logger=logger)
    return recalls


@METRICS.register_module()
class CocoProposalMetric(CocoMetric):
    """:class:`CocoMetric` whose ``proposal_fast`` (AR@100/300/1000) runs.

    Identical to mmdet's metric in every other respect. mmdet's own
    ``proposal_fast`` raises ``ValueError: ... inhomogeneous shape`` on
    numpy >= 1.24 whenever images hold different numbers of GT boxes
    (open-mmlab/mmdetection PR #5566, never merged); this one computes the
    same recalls with :func:`eval_recalls`.
    """

    def fast_eval_recall(self, results, proposal_nums, iou_thrs, logger=None):
        """mmdet's ``fast_eval_recall`` with the ragged-safe recall."""
        original = coco_metric.eval_recalls
        coco_metric.eval_recalls = eval_recalls
        try:
            return super().fast_eval_recall(results, proposal_nums, iou_thrs,
                                            logger)
        finally:
            coco_metric.eval_recalls = original
