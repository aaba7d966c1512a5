# Vanilla YOLOv3 on the embedded shapes dataset, with the other demos' data,
# schedule and backbone (ResNet-18, 16 base channels, from scratch). mmdet
# has no YOLOv3 model base, so the model is stated here: YOLOv3's head,
# losses, assigner and test settings as in
# mmdet::yolo/yolov3_d53_8xb8-ms-608-273e_coco.py, scaled to 256x256 images:
# three levels (strides 32/16/8), narrow channels, anchors for 8-96 px.
_base_ = './_base_/shapes_12e.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    type='YOLOV3',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
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
    neck=dict(
        type='YOLOV3Neck',
        num_scales=3,
        in_channels=[128, 64, 32],
        out_channels=[64, 32, 16]),
    bbox_head=dict(
        type='YOLOV3Head',
        num_classes=4,
        in_channels=[64, 32, 16],
        out_channels=[128, 64, 32],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(48, 48), (64, 64), (96, 96)],
                        [(20, 20), (28, 28), (36, 36)],
                        [(8, 8), (11, 11), (15, 15)]],
            strides=[32, 16, 8]),
        bbox_coder=dict(type='YOLOBBoxCoder'),
        featmap_strides=[32, 16, 8],
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0,
            reduction='sum'),
        loss_conf=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0,
            reduction='sum'),
        loss_xy=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=2.0,
            reduction='sum'),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
    train_cfg=dict(
        assigner=dict(
            type='GridAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.5,
            min_pos_iou=0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        conf_thr=0.005,
        nms=dict(type='nms', iou_threshold=0.45),
        max_per_img=100))

# --tta merges the flipped and rescaled predictions with YOLOv3's own NMS
# (IoU 0.45).
tta_model = dict(tta_cfg=dict(nms=dict(iou_threshold=0.45)))
