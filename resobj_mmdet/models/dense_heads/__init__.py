from .resobj_head import ResObjHead, joint_score_logit

__all__ = ['ResObjHead', 'joint_score_logit']
