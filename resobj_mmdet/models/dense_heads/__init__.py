from .resobj_atss_head import ResObjATSSHead
from .resobj_head import ResObjHead
from .resobj_mixin import ResObjMixin, joint_score_logit
from .resobj_rpn_head import ResObjRPNHead
from .resobj_ssd_head import ResObjSSDHead
from .resobj_yolov3_head import ResObjYOLOV3Head
from .resobj_yolox_head import ResObjYOLOXHead
from .ssd_head_compat import SSDHeadCompat

__all__ = [
    'ResObjATSSHead', 'ResObjHead', 'ResObjMixin', 'ResObjRPNHead',
    'ResObjSSDHead', 'ResObjYOLOV3Head', 'ResObjYOLOXHead', 'SSDHeadCompat',
    'joint_score_logit'
]
