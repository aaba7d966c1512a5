# Vanilla RetinaNet (focal loss) on real aerial tree crowns, with an ImageNet
# MobileNetV2 and the optimizer of mmdet's retinanet_r50_fpn_1x_coco.py
# (schedule_1x: SGD, momentum 0.9, weight decay 1e-4, linear warm-up over
# 500 iterations from 0.001x, no gradient clipping), lr 0.01 at batch 16
# scaled linearly to batch 4. The ResObj twin inherits this file and changes
# only the head.
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/trees.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

# The model is configs/_base_/models/retinanet_mobilenetv2_fpn.py (crowns are
# 8-106 px: its strides 8-32 with anchors from 16 px cover them), 64 wide.
model = dict(
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=1, in_channels=64, feat_channels=64))

# mmdet's 1x schedule (warm-up included, 500 iterations) stretched to 16
# epochs of 74 iterations: its steps at 8/12 and 11/12 of training. Twelve
# epochs would end 388 iterations after the warm-up; neither focal loss nor
# ResObj learns much in that (docs/benchmarks/trees.md).
max_epochs = 16
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[11, 15], gamma=0.1)
]
# mmdet's lr 0.01 at batch 16 (8 GPUs x 2), scaled linearly to batch 4.
optim_wrapper = dict(optimizer=dict(lr=0.0025))
auto_scale_lr = dict(enable=False, base_batch_size=4)
