# Vanilla RPN (random sampler, 256 anchors per image) on the embedded shapes
# dataset, evaluated like mmdet's RPN with proposal recall (AR@100/300/1000).
# Same backbone and schedule as the other demos.
_base_ = ['mmdet::_base_/models/rpn_r50_fpn.py', './_base_/shapes_12e.py']
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
        anchor_generator=dict(scales=[4])))
# An RPN's head is class-agnostic (num_classes=1): no NumClassCheckHook.
custom_hooks = []
# mmdet's CocoMetric with proposal_fast fixed for numpy >= 1.24.
val_evaluator = dict(type='CocoProposalMetric', metric='proposal_fast')
test_evaluator = val_evaluator

# --tta merges proposals with the RPN's own NMS (IoU 0.7) and keeps up to
# 1000 of them, so that AR@300/1000 stay measurable.
tta_model = dict(
    tta_cfg=dict(nms=dict(iou_threshold=0.7), max_per_img=1000))
