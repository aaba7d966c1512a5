import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from resobj_mmdet.engine.hooks import ObjectnessStatsHook
from resobj_mmdet.models.losses import ResidualObjectnessLoss


def sig(x):
    return 1 / (1 + math.exp(-x))


# One image, T = 1, four anchors; anchor 3 is ignored (weight 0).
O0 = [2.0, -1.0, 0.0, -3.0]
R1 = [1.0, 0.5, -1.0, 0.0]
LABELS = torch.tensor([[1, 0, 1, 0]])
WEIGHTS = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
EXPECTED = {
    'obj_pos_t0': (sig(2.0) + sig(0.0)) / 2,
    'obj_neg_t0': sig(-1.0),  # the ignored anchor is left out
    'obj_pos_t1': (sig(3.0) + sig(-1.0)) / 2,
    'obj_neg_t1': sig(-0.5),
    'gate_t1': 2.0,  # minp = 0 -> S_1 = {0, 2}
    'gate_frac_t1': 2 / 3,  # of the three non-ignored anchors
    'minp_t1': sig(0.0),  # the weaker positive opens the gate
}


class Model(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.loss = ResidualObjectnessLoss()


def fake_runner(model, it):
    return SimpleNamespace(
        model=model,
        iter=it,
        message_hub=MessageHub.get_instance(f'objstats-{id(model)}-{it}'),
        logger=SimpleNamespace(warning=lambda msg: None))


def test_means_on_hand_built_batch():
    loss = ResidualObjectnessLoss()
    loss.record_stats = True
    loss(torch.tensor([[O0, R1]]), LABELS, WEIGHTS, avg_factor=2)
    scalars = ObjectnessStatsHook.to_scalars(loss.stats)
    assert set(scalars) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert scalars[key] == pytest.approx(value, rel=1e-6), key


def test_hook_writes_message_hub_on_interval_only():
    model = Model()
    hook = ObjectnessStatsHook(interval=2)
    runner = fake_runner(model, it=1)  # (1 + 1) % 2 == 0 -> records
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    assert model.loss.record_stats
    model.loss(torch.tensor([[O0, R1]]), LABELS, WEIGHTS, avg_factor=2)
    hook.after_train_iter(runner, 0)
    assert not model.loss.record_stats and model.loss.stats is None
    for key, value in EXPECTED.items():
        assert runner.message_hub.get_scalar(
            f'train/{key}').current() == pytest.approx(value, rel=1e-6)

    quiet = fake_runner(model, it=2)  # (2 + 1) % 2 != 0 -> off, no cost
    hook.before_train_iter(quiet, 0)
    assert not model.loss.record_stats
    model.loss(torch.tensor([[O0, R1]]), LABELS, WEIGHTS, avg_factor=2)
    assert model.loss.stats is None
    hook.after_train_iter(quiet, 0)
    assert 'train/obj_pos_t0' not in quiet.message_hub.log_scalars


def test_batch_without_positives_logs_no_nan():
    loss = ResidualObjectnessLoss()
    loss.record_stats = True
    loss(torch.tensor([[O0, R1]]), torch.zeros(1, 4), avg_factor=1)
    scalars = ObjectnessStatsHook.to_scalars(loss.stats)
    assert 'obj_pos_t0' not in scalars and 'obj_neg_t0' in scalars
    assert all(math.isfinite(v) for v in scalars.values())


@pytest.mark.parametrize('interval', [0, -1, 1.5, True])
def test_bad_interval(interval):
    with pytest.raises(ValueError, match='interval'):
        ObjectnessStatsHook(interval=interval)
