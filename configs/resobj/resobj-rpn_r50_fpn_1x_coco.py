# RPN-ResObj, T = 2: the RPN objectness refined by two residual steps and
# trained on all anchors (the 256-anchor random sampler removed). Evaluated,
# like mmdet's RPN, with proposal recall (AR@100/300/1000): CocoProposalMetric
# is mmdet's CocoMetric with proposal_fast fixed for numpy >= 1.24.
# --tta: mmdet's RetinaNet TTA (flip x 1333x800, 666x400, 2000x1200), the
# RPN's test scale; proposals merged with the RPN's NMS and up to 1000 kept
# (below), so that AR@1000 stays measurable.
_base_ = [
    'mmdet::rpn/rpn_r50_fpn_1x_coco.py', 'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['resobj_mmdet'], allow_failed_imports=False)

model = dict(
    rpn_head=dict(
        type='ResObjRPNHead',
        # GroupNorm in the residual subnets keeps them stable (see
        # ResObjRPNHead); the paper's RetinaNet subnets have none.
        residual_objectness=dict(
            type='ResidualObjectness',
            num_steps=2,
            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)),
        loss_objectness=dict(
            type='ResidualObjectnessLoss', loss_weight=1.0,
            res_loss_weight=1.0),
        # Normalise by 256 anchors per image, as mmdet's sampled RPN does
        # (None: by the number of positives; see ResObjRPNHead).
        avg_factor_per_image=256),
    train_cfg=dict(
        rpn=dict(sampler=dict(_delete_=True, type='PseudoSampler'))))
val_evaluator = dict(type='CocoProposalMetric', metric='proposal_fast')
test_evaluator = val_evaluator

tta_model = dict(
    tta_cfg=dict(nms=dict(iou_threshold=0.7), max_per_img=1000))
