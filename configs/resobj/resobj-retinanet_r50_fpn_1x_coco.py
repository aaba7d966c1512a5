# RetinaNet-ResObj, T = 2 (paper Table 2c/3): focal loss replaced by
# objectness + two residual objectness steps; class branch trained with
# sigmoid BCE on positive anchors only.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    bbox_head=dict(
        type='ResObjHead',
        residual_objectness=dict(
            type='ResidualObjectness',
            num_steps=2,
            obj_convs=1,
            res_convs=1,
            residual_input='objectness',
            detach_residual=True,
            obj_prior_prob=0.01),
        # ResObjHead's defaults (docs/real_images.md; docs/benchmarks/trees.md): weight
        # 0.5 on the objectness and each residual loss, normalised by an EMA
        # (momentum 0.9) of the number of positives, so that mmdet's SGD
        # recipe trains without gradient clipping. An image without
        # positives gates all its anchors ('none': no residual loss for it).
        loss_objectness=dict(
            type='ResidualObjectnessLoss',
            loss_weight=0.5,
            res_loss_weight=0.5,
            avg_factor_momentum=0.9,
            no_pos_gate='all'),
        loss_cls=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=True,
            loss_weight=1.0)))
