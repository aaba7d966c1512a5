from .resobj_head import ResObjHead, joint_score_logit
from .resobj_mixin import ResObjMixin
from .resobj_rpn_head import ResObjRPNHead
from .resobj_yolov3_head import ResObjYOLOV3Head

__all__ = [
    'ResObjHead', 'ResObjMixin', 'ResObjRPNHead', 'ResObjYOLOV3Head',
    'joint_score_logit'
]
