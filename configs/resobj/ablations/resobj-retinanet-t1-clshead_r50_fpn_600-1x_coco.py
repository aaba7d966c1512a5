# Table 2b, "Class Head" (35.0 AP; on the objectness head: 35.2): the
# residual subnet reads the class tower feature instead of the objectness
# subnet's. T = 1, as in resobj-retinanet-t1-flow.
_base_ = './resobj-retinanet-t1_r50_fpn_600-1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(residual_objectness=dict(residual_input='class')))
