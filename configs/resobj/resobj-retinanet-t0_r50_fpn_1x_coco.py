# RetinaNet-ResObj with T = 0 (RetinaNet-Obj in the paper: objectness only, no residual step).
_base_ = './resobj-retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(bbox_head=dict(residual_objectness=dict(num_steps=0)))
