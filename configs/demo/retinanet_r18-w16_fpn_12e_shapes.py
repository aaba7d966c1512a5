# Vanilla RetinaNet (focal loss) on the embedded synthetic shapes dataset:
# mmdet's RetinaNet with a small ResNet-18 (16 base channels, trained from
# scratch: no download) and a narrow FPN/head. The ResObj demo inherits this
# file and changes only the head, so the two train side by side.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', './_base_/shapes_12e.py'
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
    bbox_head=dict(
        num_classes=4,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # Objects span ~8-96 px: anchors from 16 px at stride 8.
        anchor_generator=dict(octave_base_scale=2)))
