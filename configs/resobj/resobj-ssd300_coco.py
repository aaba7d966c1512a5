# SSD300-ResObj, T = 2 (not in the paper): SSD's softmax over K+1 classes
# and online hard negative mining replaced by imbalance transfer (sigmoid
# classes on positives) and residual objectness on every anchor, as
# FasterRCNN-ResObj removes the RPN's sampler. The refinement subnets' hidden
# convs have 256 channels (SSD300's maps have up to 1024; see ResObjSSDHead).
_base_ = ['mmdet::ssd/ssd300_coco.py', './_base_/ssd300_tta.py']
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjSSDHead',
        residual_objectness=dict(
            type='ResidualObjectness', num_steps=2, feat_channels=256),
        loss_objectness=dict(type='ResidualObjectnessLoss'),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    # No hard negative mining: a ratio left on raises an error.
    train_cfg=dict(neg_pos_ratio=None))
