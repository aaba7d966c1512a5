# RetinaNet with GHM-C and GHM-R (mmdet's ghm/retinanet_r50_fpn_ghm-1x_coco.py:
# the gradient harmonizing losses replace focal loss and L1, and that recipe
# clips gradients at norm 35) on DeepPCB defects: the vanilla DeepPCB config
# with the ghm config's difference.
_base_ = './retinanet_mobilenetv2_fpn_crop320-12e_deeppcb.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        loss_cls=dict(
            _delete_=True,
            type='GHMC',
            bins=30,
            momentum=0.75,
            use_sigmoid=True,
            loss_weight=1.0),
        loss_bbox=dict(
            _delete_=True,
            type='GHMR',
            mu=0.02,
            bins=10,
            momentum=0.7,
            loss_weight=10.0)))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
