# RetinaNet-ResObj with T = 3 residual steps.
_base_ = './resobj-retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(bbox_head=dict(residual_objectness=dict(num_steps=3)))
