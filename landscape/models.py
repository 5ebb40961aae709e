"""The networks: MLP, the paper's LeNet-like CNN, a small CIFAR-style ResNet, and their inits.

`lenet-paper` and `resnet-paper` are the nets of the authors' code
(MerkulovDaniil/neural_networks_extreme_overfitting), whose details the paper's text lost;
`lenet` and `resnet` are ours, kept for the CPU presets and the numbers measured with them.

Every model maps a batch (B, *input_shape) to (B, n_outputs). Initialization is explicit and
seeded (`generator=`), done on the CPU so the same seed gives the same initial point on any
device.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from landscape.config import ModelConfig
from landscape.core.layout import NORM_LAYERS
from landscape.errors import ConfigError


def _activation(name: str) -> nn.Module:
    return nn.LeakyReLU(0.01) if name == "leaky_relu" else nn.ReLU()


class MLP(nn.Module):
    """Fully connected net: flatten, then Linear + activation per hidden width, then Linear."""

    # its forward is self.net(x): landscape.core.dense may evaluate that chain directly
    DENSE_CHAIN = "net"

    def __init__(self, n_in: int, widths: tuple[int, ...], n_out: int, activation: str):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for w in widths:
            layers += [nn.Linear(n_in, w), _activation(activation)]
            n_in = w
        layers.append(nn.Linear(n_in, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LeNet(nn.Module):
    """Merkulov & Oseledets' CNN: conv 16/32/64 (3x3, padding 1), max-pool after the first
    two, then a fully connected layer of 84 and the output layer."""

    def __init__(self, input_shape: tuple[int, ...], n_out: int, activation: str):
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            _activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            _activation(activation),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            _activation(activation),
        )
        flat = 64 * (h // 4) * (w // 4)  # two 2x2 pools
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 84), _activation(activation), nn.Linear(84, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class PaperLeNet(nn.Module):
    """The authors' LeNet (their code's ConvNet and ConvNet_cifar): conv 16/32/64 with 5x5
    kernels and padding 2, max-pool after the first two (and after the third on 3-channel
    images, as in their CIFAR-10 net), then a fully connected layer of 84 and the output layer
    with no nonlinearity between the two. 328,870 parameters on MNIST's (1, 28, 28).
    """

    def __init__(self, input_shape: tuple[int, ...], n_out: int, activation: str):
        super().__init__()
        c, h, w = input_shape
        pools = 3 if c == 3 else 2
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(((c, 16), (16, 32), (32, 64))):
            layers += [nn.Conv2d(c_in, c_out, 5, padding=2), _activation(activation)]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        flat = 64 * (h // 2**pools) * (w // 2**pools)
        # no activation between fc1 and fc2, as in their forward(): out = fc2(fc1(out))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 84), nn.Linear(84, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """He et al.'s two-conv residual block with BatchNorm; a conv + BatchNorm shortcut on a
    change of shape, 1x1 (ours) or 3x3 (the authors' code: `shortcut_kernel=3`)."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, activation: str, shortcut_kernel: int = 1
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = _activation(activation)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            k = shortcut_kernel
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """Small CIFAR-style ResNet: blocks [2, 2, 2] with 16/32/64 channels (ResNet-14).

    `shortcut_kernel=3` is the authors' ResNet (`resnet-paper`): the same stem, blocks and
    head, with 3x3 convolutions in the two shortcuts. Their head's AvgPool2d(8) is the global
    average on CIFAR-10's 8x8 maps; the adaptive pool here also fits MNIST's 7x7.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_out: int,
        activation: str,
        shortcut_kernel: int = 1,
    ):
        super().__init__()
        c = input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(c, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), _activation(activation)
        )
        blocks: list[nn.Module] = []
        c_in = 16
        for stage, c_out in enumerate((16, 32, 64)):
            for i in range(2):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride, activation, shortcut_kernel))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_model(cfg: ModelConfig, *, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """A module for `cfg`, not yet seeded: call `init_parameters` to initialize it.

    Layer constructors draw from the global RNG; it is forked so callers' streams stay put.
    """
    with torch.random.fork_rng(devices=[]):
        return _build(cfg, input_shape, n_outputs)


def _build(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    if cfg.name == "mlp":
        n_in = math.prod(input_shape)
        return MLP(n_in, cfg.widths, n_outputs, cfg.activation)
    if len(input_shape) != 3:
        raise ConfigError(
            f"model {cfg.name!r}: expects images of shape (C, H, W), found input shape "
            f"{input_shape}; use model.name = 'mlp' for this dataset"
        )
    if cfg.name == "lenet":
        return LeNet(input_shape, n_outputs, cfg.activation)
    if cfg.name == "lenet-paper":
        return PaperLeNet(input_shape, n_outputs, cfg.activation)
    shortcut_kernel = 3 if cfg.name == "resnet-paper" else 1
    return ResNet(input_shape, n_outputs, cfg.activation, shortcut_kernel)


def init_parameters(module: nn.Module, cfg: ModelConfig, *, generator: torch.Generator) -> None:
    """Seeded in-place initialization of every Linear and Conv layer; norms get weight 1, bias 0.

    `xavier_uniform`: Glorot uniform weights, bias 0 (the paper's text). `xavier_uniform_weights`:
    Glorot uniform weights and PyTorch's default biases, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    as the authors' code does (it applies xavier_uniform to `.weight` only). `kaiming`: He
    normal, fan-in, gain of the activation, bias 0.1 (the ring blog). `default`: PyTorch's own
    init drawn from `generator`'s seed.
    """
    if cfg.init == "default":
        _default_init(module, generator)
        return
    if cfg.init == "xavier_uniform_weights":
        _xavier_weights_default_biases(module, generator)
        return
    bias = cfg.bias_init if cfg.bias_init is not None else (0.1 if cfg.init == "kaiming" else 0.0)
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            if cfg.init == "xavier_uniform":
                nn.init.xavier_uniform_(m.weight, generator=generator)
            else:
                nn.init.kaiming_normal_(
                    m.weight,
                    a=0.01 if cfg.activation == "leaky_relu" else 0.0,
                    mode="fan_in",
                    nonlinearity="leaky_relu" if cfg.activation == "leaky_relu" else "relu",
                    generator=generator,
                )
            if m.bias is not None:
                nn.init.constant_(m.bias, bias)
        elif isinstance(m, NORM_LAYERS) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _xavier_weights_default_biases(module: nn.Module, generator: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, generator=generator)
            if m.bias is not None:  # PyTorch's reset_parameters bias, drawn from `generator`
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, NORM_LAYERS) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _default_init(module: nn.Module, generator: torch.Generator) -> None:
    # reset_parameters() draws from the global RNG: fork it so the caller's state is untouched.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            reset = getattr(m, "reset_parameters", None)
            if m is not module and callable(reset):
                reset()


def has_batchnorm(module: nn.Module) -> bool:
    """Whether the forward pass depends on batch statistics (BatchNorm layers)."""
    return any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in module.modules())
