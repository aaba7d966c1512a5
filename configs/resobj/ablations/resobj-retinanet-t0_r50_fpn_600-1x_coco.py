# Table 2c, T = 0 (34.1 AP, RetinaNet-Obj) at the 600-pixel ablation scale.
_base_ = './resobj-retinanet-t2_r50_fpn_600-1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(bbox_head=dict(residual_objectness=dict(num_steps=0)))
