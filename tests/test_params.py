import torch
from torch import nn

from landscape.config import ModelConfig
from landscape.core.layout import Layout
from landscape.models import build_model, init_parameters


def test_layout_round_trip_and_kinds():
    m = build_model(ModelConfig(name="resnet"), input_shape=(3, 8, 8), n_outputs=10)
    layout = Layout.of_parameters(m)
    assert layout.size == sum(p.numel() for p in m.parameters())
    flat = layout.flatten(dict(m.named_parameters()))
    back = layout.unflatten(flat)
    for name, p in m.named_parameters():
        assert torch.equal(back[name], p.detach())
    kinds = {e.name: e.kind for e in layout.entries}
    assert kinds["stem.1.weight"] == "norm" and kinds["head.2.bias"] == "bias"
    assert kinds["stem.0.weight"] == "weight"
    assert Layout.from_arrays(layout.to_arrays()) == layout


def test_unflatten_keeps_leading_dims():
    layout = Layout.of_parameters(nn.Linear(3, 2))
    theta = torch.arange(2 * 8, dtype=torch.float32).reshape(2, 8)
    parts = layout.unflatten(theta)
    assert parts["weight"].shape == (2, 2, 3) and parts["bias"].shape == (2, 2)
    assert torch.equal(layout.flatten(parts, batch_dims=1), theta)


def test_buffer_layout_skips_integer_buffers():
    m = build_model(ModelConfig(name="resnet"), input_shape=(3, 8, 8), n_outputs=10)
    names = Layout.of_buffers(m).names
    assert names and all("num_batches_tracked" not in n for n in names)


def test_init_is_seeded_and_follows_the_recipe():
    cfg = ModelConfig(name="mlp", widths=(16,), init="kaiming", activation="leaky_relu")
    a = build_model(cfg, input_shape=(4,), n_outputs=3)
    b = build_model(cfg, input_shape=(4,), n_outputs=3)
    init_parameters(a, cfg, generator=torch.Generator().manual_seed(5))
    init_parameters(b, cfg, generator=torch.Generator().manual_seed(5))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert torch.all(a.net[1].bias == 0.1)  # the ring blog's bias 0.1
    x = ModelConfig(name="mlp", widths=(16,))
    c = build_model(x, input_shape=(4,), n_outputs=3)
    init_parameters(c, x, generator=torch.Generator().manual_seed(5))
    bound = (6 / (4 + 16)) ** 0.5  # Glorot uniform
    assert c.net[1].weight.abs().max() <= bound and torch.all(c.net[1].bias == 0)


def test_default_init_does_not_touch_global_rng():
    cfg = ModelConfig(name="lenet", init="default")
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    m = build_model(cfg, input_shape=(1, 8, 8), n_outputs=10)
    torch.manual_seed(0)
    init_parameters(m, cfg, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), expected)
