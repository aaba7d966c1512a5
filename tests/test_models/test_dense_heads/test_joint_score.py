"""``joint_score_logit``: logit(sigmoid(c) * sigmoid(o)), exportable."""
import pytest
import torch

from resobj_mmdet.models.dense_heads import joint_score_logit


def _reference(cls, obj, a):
    """float64: c + o - log(1 + e^c + e^o), the objectness broadcast over
    the K classes of its anchor."""
    n, ak, h, w = cls.shape
    c = cls.double().reshape(n, a, ak // a, h, w)
    o = obj.double()[:, :, None].expand_as(c)
    lse = torch.logsumexp(torch.stack([torch.zeros_like(c), c, o]), dim=0)
    return (c + o - lse).reshape(n, ak, h, w)


def test_matches_float64_over_a_wide_range():
    g = torch.Generator().manual_seed(0)
    cls = (torch.rand(2, 2 * 3, 7, 9, generator=g) - 0.5) * 60
    obj = (torch.rand(2, 2, 7, 9, generator=g) - 0.5) * 60
    out = joint_score_logit(cls, obj)
    assert out.dtype == torch.float32 and out.shape == cls.shape
    torch.testing.assert_close(out.double(), _reference(cls, obj, 2),
                               rtol=1e-6, atol=1e-5)
    # And the probability it stands for.
    torch.testing.assert_close(
        out.double().sigmoid(),
        (cls.double().reshape(2, 2, 3, 7, 9).sigmoid() *
         obj.double()[:, :, None].sigmoid()).reshape(2, 6, 7, 9),
        rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('c,o', [(1e4, 1e4), (-1e4, 1e4), (1e4, -1e4),
                                 (-1e4, -1e4), (0.0, 1e4), (30.0, -30.0)])
def test_finite_and_exact_for_huge_logits(c, o):
    cls = torch.full((1, 1, 1, 1), c)
    obj = torch.full((1, 1, 1, 1), o)
    out = joint_score_logit(cls, obj)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), _reference(cls, obj, 1),
                               rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_fp32(dtype):
    g = torch.Generator().manual_seed(1)
    cls = ((torch.rand(1, 4, 5, 5, generator=g) - 0.5) * 40).to(dtype)
    obj = ((torch.rand(1, 1, 5, 5, generator=g) - 0.5) * 40).to(dtype)
    out = joint_score_logit(cls, obj)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), _reference(cls, obj, 1),
                               rtol=1e-6, atol=1e-5)


def test_no_logaddexp_in_the_traced_graph():
    """ONNX opset 11 has no logaddexp: the traced graph must not use it."""
    graph = torch.jit.trace(joint_score_logit,
                            (torch.randn(1, 3, 2, 2), torch.randn(1, 1, 2, 2)))
    kinds = {n.kind() for n in graph.graph.nodes()}
    assert 'aten::softplus' in kinds
    assert not {k for k in kinds if 'logaddexp' in k}
