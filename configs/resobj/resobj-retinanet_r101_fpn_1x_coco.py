# RetinaNet-ResObj R101-FPN, T = 2. Written as mmdet writes its own R101
# variants (mmdet::retinanet/retinanet_r101_fpn_1x_coco.py is the R50 config
# with this backbone change), so the head stays defined in one place.
_base_ = './resobj-retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
