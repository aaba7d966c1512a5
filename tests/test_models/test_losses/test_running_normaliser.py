"""The positive-normalised defaults: running normaliser, weights, priors."""
import torch
import torch.nn.functional as F

from mmdet.registry import MODELS
from resobj_mmdet.models.dense_heads.resobj_mixin import (
    POSITIVE_NORMALISED_LOSS, default_cls_prior)
from resobj_mmdet.models.losses import ResidualObjectnessLoss


def test_running_normaliser_is_an_ema_of_the_positives():
    loss = ResidualObjectnessLoss(avg_factor_momentum=0.9)
    logits = torch.randn(1, 1, 30)  # T = 0: loss_obj only
    labels = (torch.arange(30) < 5).float()[None]
    bce = F.binary_cross_entropy_with_logits(logits[:, 0], labels).item() * 30
    # Starts at the first value, then ema <- 0.9 ema + 0.1 value.
    out = loss(logits, labels, avg_factor=torch.tensor(10.0))
    assert torch.allclose(out['loss_obj'], torch.tensor(bce / 10))
    out = loss(logits, labels, avg_factor=20.0)
    assert torch.allclose(out['loss_obj'], torch.tensor(bce / 11))
    assert loss.avg_factor_ema.item() == 11.0
    out = loss(logits, labels, avg_factor=21.0)  # the float path, on
    assert torch.allclose(out['loss_obj'], torch.tensor(bce / 12))
    assert loss.avg_factor_ema.item() == 12.0
    # A checkpoint carries it (resume continues the mean) ...
    state = loss.state_dict()
    assert 'avg_factor_ema' in state
    resumed = ResidualObjectnessLoss(avg_factor_momentum=0.9)
    resumed.load_state_dict(state)
    out = resumed(logits, labels, avg_factor=2.0)  # 0.9 * 12 + 0.1 * 2
    assert torch.allclose(out['loss_obj'], torch.tensor(bce / 11))
    resumed.reset_running_avg_factor()
    out = resumed(logits, labels, avg_factor=5.0)  # started again
    assert torch.allclose(out['loss_obj'], torch.tensor(bce / 5))
    # ... and a loss without it keeps it out of checkpoints.
    assert 'avg_factor_ema' not in ResidualObjectnessLoss().state_dict()


def _head(**kwargs):
    return MODELS.build(dict(
        type='ResObjHead', num_classes=1, in_channels=8, feat_channels=8,
        stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                              scales_per_octave=1, ratios=[1.0],
                              strides=[8]), **kwargs))


def test_head_defaults_and_partial_override():
    head = _head()
    assert POSITIVE_NORMALISED_LOSS['loss_weight'] == 0.5
    assert head.loss_objectness.loss_weight == 0.5
    assert head.loss_objectness.res_loss_weight == 0.5
    assert head.loss_objectness.avg_factor_momentum == 0.9
    # A config states only what it changes; the rest stays the default.
    head = _head(loss_objectness=dict(type='ResidualObjectnessLoss',
                                      loss_weight=1.0))
    assert head.loss_objectness.loss_weight == 1.0
    assert head.loss_objectness.res_loss_weight == 0.5
    assert head.loss_objectness.avg_factor_momentum == 0.9


def test_class_prior():
    assert default_cls_prior(1) == 0.99  # P(class | object) = 1 for K = 1
    assert default_cls_prior(80) == 1 / 80
    head = _head()
    head.init_weights()
    bias = head.retina_cls.bias
    assert torch.allclose(bias.sigmoid(), torch.full_like(bias, 0.99))
