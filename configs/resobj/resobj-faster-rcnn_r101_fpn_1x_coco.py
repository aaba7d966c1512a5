# FasterRCNN-ResObj R101-FPN, T = 2 (paper Table 3: 39.3 -> 40.4 AP). Written
# as mmdet writes its R101 variants (R50 config + backbone change).
_base_ = './resobj-faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
