# Vanilla Faster R-CNN on BCCD blood cells, with an ImageNet MobileNetV2 and
# the optimizer of mmdet's faster-rcnn_r50_fpn_1x_coco.py (schedule_1x: SGD,
# momentum 0.9, weight decay 1e-4, linear warm-up over 500 iterations, no
# gradient clipping), lr 0.02 at batch 16 scaled linearly to batch 4. The
# ResObj twin inherits this file and changes only the RPN head and sampler.
_base_ = [
    '../_base_/models/faster-rcnn_mobilenetv2_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py', './_base_/bccd.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

# The model is configs/_base_/models/faster-rcnn_mobilenetv2_fpn.py: at
# 320x240 the cells are 16-117 px, which its anchors from 16 px at stride 8
# cover, platelets included.
model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))

# mmdet's 1x schedule (warm-up included, 500 iterations) stretched to 20
# epochs of 52 iterations, its steps at 8/12 and 11/12 of training. Fifteen
# epochs would put the first step at epoch 10, right where the warm-up ends
# (iteration 500 is in epoch 10): no epoch at the full lr.
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[13, 18], gamma=0.1)
]
# mmdet's lr 0.02 at batch 16 (8 GPUs x 2), scaled linearly to batch 4.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(enable=False, base_batch_size=4)
