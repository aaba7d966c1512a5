# Vanilla YOLOv3 on the embedded shapes dataset, with the other demos' data,
# schedule and backbone (ResNet-18, 16 base channels, from scratch). The
# head, losses, assigner and test settings are those of mmdet's YOLOv3
# (configs/_base_/models/yolov3_mobilenetv2.py), scaled to 256x256 images:
# three levels (strides 32/16/8), narrow channels, anchors for 8-96 px.
_base_ = [
    '../_base_/models/yolov3_mobilenetv2.py', './_base_/shapes_12e.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(in_channels=[128, 64, 32], out_channels=[64, 32, 16]),
    bbox_head=dict(
        num_classes=4,
        in_channels=[64, 32, 16],
        out_channels=[128, 64, 32],
        anchor_generator=dict(
            base_sizes=[[(48, 48), (64, 64), (96, 96)],
                        [(20, 20), (28, 28), (36, 36)],
                        [(8, 8), (11, 11), (15, 15)]])))

# --tta merges the flipped and rescaled predictions with YOLOv3's own NMS
# (IoU 0.45).
tta_model = dict(tta_cfg=dict(nms=dict(iou_threshold=0.45)))
