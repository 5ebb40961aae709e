"""The authors' networks, initialization and restart recipe (their code, not the paper's text),
checked against counts and distributions computed by hand from their layer definitions."""

import math

import pytest
import torch
from torch import nn

from landscape.config import ModelConfig, from_dict
from landscape.errors import ConfigError
from landscape.measures.restart import RECIPES, Recipe, _schedule
from landscape.models import build_model, init_parameters


def _params(name: str, input_shape: tuple[int, ...]) -> int:
    model = build_model(ModelConfig(name=name), input_shape=input_shape, n_outputs=10)
    return sum(p.numel() for p in model.parameters())


def test_lenet_paper_has_the_authors_328870_parameters_on_mnist():
    # conv 5x5: 1*16*25+16, 16*32*25+32, 32*64*25+64; fc 7*7*64 -> 84 -> 10
    by_hand = 416 + 12_832 + 51_264 + (3136 * 84 + 84) + (84 * 10 + 10)
    assert by_hand == 328_870
    assert _params("lenet-paper", (1, 28, 28)) == 328_870
    assert _params("lenet", (1, 28, 28)) == 287_654  # ours: 3x3 kernels, ReLU before the output


def test_lenet_paper_on_cifar_pools_three_times_like_their_convnet_cifar():
    # conv 3*16*25+16, then as on MNIST; fc 4*4*64 -> 84 -> 10
    assert _params("lenet-paper", (3, 32, 32)) == 1216 + 12_832 + 51_264 + 1024 * 84 + 84 + 850
    model = build_model(ModelConfig(name="lenet-paper"), input_shape=(3, 32, 32), n_outputs=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_lenet_paper_ends_in_two_linear_layers_with_nothing_between():
    model = build_model(ModelConfig(name="lenet-paper"), input_shape=(1, 28, 28), n_outputs=10)
    init_parameters(model, ModelConfig(name="lenet-paper"), generator=torch.Generator())
    fc1, fc2 = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    features = torch.flatten(model.features(x), 1)
    expected = features @ (fc2.weight @ fc1.weight).T + fc2.weight @ fc1.bias + fc2.bias
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_resnet_paper_differs_from_ours_by_its_two_3x3_shortcuts():
    # shortcuts 16 -> 32 and 32 -> 64: 9 weights per pair instead of 1
    extra = (9 - 1) * (16 * 32 + 32 * 64)
    for shape in ((3, 32, 32), (1, 28, 28)):
        assert _params("resnet-paper", shape) == _params("resnet", shape) + extra
    model = build_model(ModelConfig(name="resnet-paper"), input_shape=(1, 28, 28), n_outputs=10)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def _paper_init(seed: int) -> nn.Module:
    cfg = ModelConfig(name="lenet-paper", init="xavier_uniform_weights")
    model = build_model(cfg, input_shape=(1, 28, 28), n_outputs=10)
    init_parameters(model, cfg, generator=torch.Generator().manual_seed(seed))
    return model


def test_xavier_uniform_weights_keeps_pytorchs_default_biases_seeded():
    a, b, c = _paper_init(0), _paper_init(0), _paper_init(1)
    params = zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True)
    for (name, pa), pb, pc in params:
        assert torch.equal(pa, pb), name  # same seed, same point
        assert not torch.equal(pa, pc), name  # another seed, another point
    for m in a.modules():
        if not isinstance(m, nn.Linear | nn.Conv2d):
            continue
        fan_in = m.weight[0].numel()
        fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
        glorot = math.sqrt(6 / (fan_in + fan_out))  # xavier_uniform's bound
        assert m.weight.abs().max() <= glorot and m.weight.abs().max() > 0.9 * glorot
        bound = 1 / math.sqrt(fan_in)  # PyTorch's default bias: U(-1/sqrt(fan_in), +)
        assert m.bias.abs().max() <= bound and m.bias.abs().max() > 0.5 * bound
        assert bool((m.bias != 0).all())


def test_xavier_uniform_weights_refuses_a_constant_bias():
    with pytest.raises(ConfigError, match="keeps PyTorch's default biases"):
        from_dict({"model": {"init": "xavier_uniform_weights", "bias_init": 0.0}})
    cfg = from_dict({"model": {"name": "lenet-paper", "init": "xavier_uniform_weights"}})
    assert cfg.model.name == "lenet-paper"


def test_sgd_paper_is_the_authors_restart_and_runs_its_20000_steps():
    assert RECIPES["sgd-paper"] == Recipe("sgd", lr=0.5, batch_size=64, steps=20_000)
    sched = _schedule(RECIPES["sgd-paper"], 2000, 30)
    logs = sched.log_steps
    assert (sched.batch_size, sched.total_steps, logs[0], logs[-1]) == (64, 20_000, 0, 20_000)
    assert sched.steps_per_epoch == 32 and list(sched.checkpoint_steps) == [20_000]
    from landscape.measures.runner import AnalysisConfig

    AnalysisConfig(recipes=("sgd-paper",)).check()
    with pytest.raises(ConfigError, match="sgd-paper"):
        AnalysisConfig(recipes=("sgd-authors",)).check()
