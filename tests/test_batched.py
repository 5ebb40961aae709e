"""The stacked losses of `landscape.core.batched` against PyTorch's own."""

import pytest
import torch
from torch import nn

from landscape.core.batched import cross_entropy, shifted_cross_entropy


def torch_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K, B, C), (K, B) -> (K,) through nn.functional.cross_entropy (log_softmax)."""
    k, b, c = logits.shape
    per = nn.functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none")
    return per.reshape(k, b).mean(dim=1)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("shape", [(3, 17, 10), (1, 5, 2), (2, 64, 100)])
@pytest.mark.parametrize("fn", [cross_entropy, shifted_cross_entropy])  # 100 classes: differ
def test_cross_entropy_equals_torch_values_and_gradients(fn, shape, scale):
    gen = torch.Generator().manual_seed(0)
    k, b, c = shape
    z = (scale * torch.randn(shape, generator=gen)).requires_grad_()
    y = torch.randint(0, c, (k, b), generator=gen)
    ours, theirs = fn(z, y), torch_cross_entropy(z, y)
    assert ours.shape == (k,)
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=0)
    weights = torch.rand(k, generator=gen)  # a different upstream gradient per stack member
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), z)
    (g_theirs,) = torch.autograd.grad((theirs * weights).sum(), z)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-7)


def test_cross_entropy_keeps_a_confident_example_small_loss():
    # z_y - max = 0 and one other logit 20 below: loss log(1 + e^-20) = 2.06e-9 exactly, at
    # any offset; logsumexp(z) - z_y would round it to 0 at an offset of 1e4
    for offset in (0.0, 1e4):
        z = torch.tensor([[[offset, offset - 20.0]]])
        got = shifted_cross_entropy(z, torch.tensor([[0]]))
        torch.testing.assert_close(got, torch.log1p(torch.exp(torch.tensor([-20.0]))))


def test_cross_entropy_second_derivative_equals_torch():
    # the Hessian-vector products go through a double backward of this loss
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 7, 5, generator=gen, dtype=torch.float64).requires_grad_()
    y = torch.randint(0, 5, (2, 7), generator=gen)
    v = torch.randn(2, 7, 5, generator=gen, dtype=torch.float64)
    hvps = []
    for fn in (shifted_cross_entropy, torch_cross_entropy):
        (g,) = torch.autograd.grad(fn(z, y).sum(), z, create_graph=True)
        hvps.append(torch.autograd.grad(g, z, v)[0])
    torch.testing.assert_close(hvps[0], hvps[1], rtol=1e-10, atol=1e-12)


def test_cross_entropy_under_vmap_and_grad_equals_torch():
    # Objective.gradient takes torch.func.grad of a (1, B, C) stack; forward_stack is a vmap
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(4, 9, 3, generator=gen)
    y = torch.randint(0, 3, (4, 9), generator=gen)

    def one(fn):
        return lambda zi, yi: fn(zi.unsqueeze(0), yi.unsqueeze(0))[0]

    g_ours = torch.func.vmap(torch.func.grad(one(shifted_cross_entropy)))(z, y)
    g_theirs = torch.func.vmap(torch.func.grad(one(torch_cross_entropy)))(z, y)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-7)


def test_cross_entropy_is_shifted_without_autograd_and_log_softmax_with_it():
    # training (gradients) keeps nn.functional's exact numbers, so trained weights do not move
    gen = torch.Generator().manual_seed(5)
    z = 3 * torch.randn(4, 33, 10, generator=gen)
    y = torch.randint(0, 10, (4, 33), generator=gen)
    with torch.no_grad():
        assert torch.equal(cross_entropy(z, y), shifted_cross_entropy(z, y))
    assert torch.equal(cross_entropy(z, y), torch_cross_entropy(z, y))
    wide = torch.randn(2, 5, 40, generator=gen)  # above SHIFTED_MAX_CLASSES: log_softmax always
    with torch.no_grad():
        assert torch.equal(cross_entropy(wide, y[:2, :5]), torch_cross_entropy(wide, y[:2, :5]))
