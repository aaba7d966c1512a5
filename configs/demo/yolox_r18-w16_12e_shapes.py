# Vanilla YOLOX on the embedded shapes dataset: the PAFPN neck, head, losses,
# SimOTA assigner and test settings of mmdet::yolox/yolox_s_8xb8-300e_coco.py
# (BN + Swish), narrowed to 64 channels, on the demos' backbone (ResNet-18,
# 16 base channels, from scratch), data and schedule. YOLOX's mosaic/mixup
# pipeline and its mode-switch/EMA hooks are left out: every demo shares one
# pipeline. The ResObj twin inherits this file and changes only the head.
_base_ = './_base_/shapes_12e.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
model = dict(
    type='YOLOX',
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
        type='YOLOXPAFPN',
        in_channels=[32, 64, 128],
        out_channels=64,
        num_csp_blocks=1,
        use_depthwise=False,
        upsample_cfg=dict(scale_factor=2, mode='nearest'),
        norm_cfg=norm_cfg,
        act_cfg=dict(type='Swish')),
    bbox_head=dict(
        type='YOLOXHead',
        num_classes=4,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        strides=(8, 16, 32),
        use_depthwise=False,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='Swish'),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_bbox=dict(
            type='IoULoss',
            mode='square',
            eps=1e-16,
            reduction='sum',
            loss_weight=5.0),
        loss_obj=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='sum',
            loss_weight=1.0),
        loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
    test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65)))

# --tta merges the flipped and rescaled predictions with YOLOX's own NMS (IoU
# 0.65, as mmdet's yolox_tta.py).
tta_model = dict(tta_cfg=dict(nms=dict(iou_threshold=0.65)))
