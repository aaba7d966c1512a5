# Copyright (c) resobj-mmdet contributors. All rights reserved.
"""mmdet 3.3.0's ``SSDHead`` cannot predict; this is it, able to."""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class SSDHeadCompat(SSDHead):
    """mmdet's ``SSDHead``, unchanged but for one attribute.

    In mmdet 3.3.0, ``BaseDenseHead._predict_by_feat_single`` reads
    ``self.loss_cls`` (for v3det's custom class channels), which ``SSDHead``
    never builds (it calls ``BaseDenseHead.__init__`` directly and computes
    its softmax loss inline): every SSD evaluation or inference fails with
    ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``
    (open-mmlab/mmdetection#11305, #11780; the fix, #11524, is unmerged).
    ``loss_cls = None`` makes that check false, as it is for every other
    head; training, losses and outputs are mmdet's own. Only the vanilla SSD
    baselines need it; :class:`ResObjSSDHead` builds a real ``loss_cls``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self, 'loss_cls'):
            self.loss_cls = None
