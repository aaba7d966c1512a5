# Vanilla Faster R-CNN on BCCD trained twice as long as the 20e config: its
# 20-epoch curve ends flat only because the lr was cut (seed 0 gains 0.067 AP
# from 20 to 40 epochs; docs/benchmarks/bccd.md, "The twins at 40
# epochs"). Same recipe, steps at 8/12 and 11/12 of training as mmdet's 1x.
_base_ = './faster-rcnn_mobilenetv2_fpn_20e_bccd.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

max_epochs = 40
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[27, 37], gamma=0.1)
]
