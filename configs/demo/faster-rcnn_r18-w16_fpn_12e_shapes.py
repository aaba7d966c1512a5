# Vanilla Faster R-CNN on the embedded shapes dataset: mmdet's Faster R-CNN
# with the demos' backbone and schedule, a narrow FPN/RPN/RoI head.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', './_base_/shapes_12e.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        # Objects span ~8-96 px: anchors from 16 px at stride 4.
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=4)),
    # Fewer proposals and RoIs than COCO's 2000/1000/512: CPU-sized.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))
