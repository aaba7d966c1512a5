# FasterRCNN-ResObj (T = 2) on BCCD, 40 epochs: the resobj 20e config on the
# schedule of faster-rcnn_mobilenetv2_fpn_40e_bccd.py, so that the twins are
# compared as converged models.
_base_ = './resobj-faster-rcnn_mobilenetv2_fpn_20e_bccd.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

max_epochs = 40
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[27, 37], gamma=0.1)
]
