"""Networks that are not ours, written the way their authors write them, for `landscape import`.

`make_resnet` follows torchvision's ResNet (BasicBlock, BatchNorm, a 1x1 conv + BatchNorm
`downsample` shortcut, `fc` head; its state_dict names); `make_transformer` is a small
`nn.TransformerEncoder` classifier. Both are trained for a few steps on tiny generated data
by `train_briefly` and saved with safetensors, as a user would before importing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, width: int, num_classes: int, in_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(width, width), BasicBlock(width, width))
        self.layer2 = nn.Sequential(
            BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 2 * width)
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def make_resnet(width: int = 4, num_classes: int = 4, in_channels: int = 3) -> nn.Module:
    return ResNet(width, num_classes, in_channels)


class TransformerClassifier(nn.Module):
    """Tokens (B, T, features) -> embedding + learned positions -> encoder -> mean -> classes."""

    def __init__(self, features: int, d_model: int, nhead: int, layers: int, num_classes: int):
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=2 * d_model, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos[:, : x.shape[1]]
        return self.head(self.encoder(h).mean(dim=1))


def make_transformer(
    features: int = 4, d_model: int = 16, nhead: int = 2, layers: int = 2, num_classes: int = 3
) -> nn.Module:
    return TransformerClassifier(features, d_model, nhead, layers, num_classes)


def make_broken(width: int = 4) -> nn.Module:
    raise ValueError(f"width {width} is not supported by this factory")


def make_not_a_module(**kwargs: object) -> int:
    return 42


# -- tiny data -------------------------------------------------------------------------------


def images(n_train: int = 48, n_test: int = 24, classes: int = 4, *, seed: int = 0) -> dict:
    """3x8x8 images whose class sets the mean of one quadrant; float32 x, int64 y."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = rng.normal(0, 0.5, (n, 3, 8, 8)).astype(np.float32)
        for c in range(classes):
            r, q = divmod(c, 2)
            x[y == c, :, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 1.0
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    return out


def sequences(n_train: int = 48, n_test: int = 24, classes: int = 3, *, seed: int = 0) -> dict:
    """(6 tokens, 4 features) sequences whose class shifts one feature; float32 x, int64 y."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = rng.normal(0, 0.5, (n, 6, 4)).astype(np.float32)
        x[np.arange(n), :, y] += 1.0
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    return out


def tiny_images() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A `--data module:function` source: the four arrays of `images()`."""
    d = images()
    return d["x_train"], d["y_train"], d["x_test"], d["y_test"]


# -- what a user does before importing ---------------------------------------------------------


def train_briefly(model: nn.Module, data: dict, *, steps: int, lr: float = 1e-2, seed: int = 0):
    """Adam on minibatches of 16 for `steps` steps (train mode: BatchNorm statistics move)."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:16]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def save(model: nn.Module, path: Path) -> Path:
    """What the README tells a user: the state_dict, parameters and buffers, as safetensors."""
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path
