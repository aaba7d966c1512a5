# Table 2a, "To Objectness" (34.5 AP; isolated: 35.2): residual gradients
# flow into the objectness subnet and the class tower. T = 1, as the 35.2 AP
# shared by Table 2a/2b/2c suggests the paper used.
_base_ = './resobj-retinanet-t1_r50_fpn_600-1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(residual_objectness=dict(detach_residual=False)))
