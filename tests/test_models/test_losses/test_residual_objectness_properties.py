"""Property-based tests (hypothesis) of the residual objectness loss."""
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from resobj_mmdet.models.losses import ResidualObjectnessLoss
from resobj_mmdet.models.losses.residual_objectness_loss import \
    refine_objectness

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
# Logits from ordinary to far beyond sigmoid saturation (fp32 exp overflows
# at ~88): the loss must stay finite and the properties hold everywhere.
LOGIT = st.one_of(
    st.floats(-30, 30, width=32),
    st.sampled_from([-1e4, -1e3, -100.0, 100.0, 1e3, 1e4, 0.0]))


@st.composite
def batches(draw, min_steps=0, max_steps=3):
    """(logits (B, T+1, N), labels (B, N), weights (B, N))."""
    b = draw(st.integers(1, 3))
    n = draw(st.integers(1, 24))
    steps = draw(st.integers(min_steps, max_steps))
    logits = torch.tensor(
        draw(st.lists(LOGIT, min_size=b * (steps + 1) * n,
                      max_size=b * (steps + 1) * n)),
        dtype=torch.float32).reshape(b, steps + 1, n)
    labels = torch.tensor(
        draw(st.lists(st.booleans(), min_size=b * n, max_size=b * n)),
        dtype=torch.float32).reshape(b, n)
    # 0 marks ignored anchors; fractional weights as YOLOv3's mean uses.
    weights = torch.tensor(
        draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0]),
                      min_size=b * n, max_size=b * n)),
        dtype=torch.float32).reshape(b, n)
    return logits, labels, weights


NO_POS_GATE = st.sampled_from(['all', 'none'])
AVG = st.one_of(st.none(), st.floats(0.0, 50.0))


@SETTINGS
@given(batches(), NO_POS_GATE, AVG, st.randoms(use_true_random=False))
def test_anchor_permutation_invariance(batch, no_pos_gate, avg, rnd):
    logits, labels, weights = batch
    n = labels.size(1)
    perm = list(range(n))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    loss = ResidualObjectnessLoss(no_pos_gate=no_pos_gate)
    a = loss(logits, labels, weights, avg_factor=avg)
    b = loss(logits[..., perm], labels[:, perm], weights[:, perm],
             avg_factor=avg)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-4,
                                   msg=key)
    _, gates = refine_objectness(logits, labels, weights, no_pos_gate)
    _, gates_p = refine_objectness(logits[..., perm], labels[:, perm],
                                   weights[:, perm], no_pos_gate)
    assert torch.equal(gates[..., perm], gates_p)


@SETTINGS
@given(batches(min_steps=1), NO_POS_GATE)
def test_every_positive_in_every_gate(batch, no_pos_gate):
    logits, labels, weights = batch
    _, gates = refine_objectness(logits, labels, weights, no_pos_gate)
    pos = (labels > 0) & (weights > 0)
    assert gates[pos[:, None].expand_as(gates)].all()
    # ...and no ignored anchor in any gate.
    assert not gates[(weights == 0)[:, None].expand_as(gates)].any()


@SETTINGS
@given(batches(), NO_POS_GATE, AVG, st.sampled_from(['mean', 'sum']))
def test_losses_finite_and_non_negative(batch, no_pos_gate, avg, reduction):
    logits, labels, weights = batch
    losses = ResidualObjectnessLoss(
        no_pos_gate=no_pos_gate, reduction=reduction)(
            logits, labels, weights, avg_factor=avg)
    assert set(losses) == {'loss_obj'} | {
        f'loss_res{t}' for t in range(1, logits.size(1))}
    for key, value in losses.items():
        assert torch.isfinite(value) and value >= 0, (key, value)


@SETTINGS
@given(batches(max_steps=0), AVG)
def test_t0_is_plain_weighted_bce(batch, avg):
    logits, labels, weights = batch
    losses = ResidualObjectnessLoss()(logits, labels, weights,
                                      avg_factor=avg)
    assert list(losses) == ['loss_obj']
    bce = F.binary_cross_entropy_with_logits(
        logits[:, 0].double(), labels.double(), weights.double(),
        reduction='sum')
    expected = bce / max(avg, 1.0) if avg is not None else bce / labels.numel()
    torch.testing.assert_close(losses['loss_obj'].double(), expected,
                               rtol=1e-5, atol=1e-5)


@SETTINGS
@given(batches(min_steps=1), NO_POS_GATE)
def test_residual_gradient_only_inside_gate(batch, no_pos_gate):
    """r_t learns on S_t only: anchors outside the gate get no gradient."""
    logits, labels, weights = batch
    logits = logits.clone().requires_grad_()
    losses = ResidualObjectnessLoss(no_pos_gate=no_pos_gate)(
        logits, labels, weights, avg_factor=1.0)
    sum(losses.values()).backward()
    _, gates = refine_objectness(logits.detach(), labels, weights,
                                 no_pos_gate)
    # With the default isolation (o_{t-1} detached in o_t), r_t reaches the
    # loss only through o_t on S_t.
    for t in range(1, logits.size(1)):
        assert (logits.grad[:, t][~gates[:, t - 1]] == 0).all()
