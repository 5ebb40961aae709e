"""A network as a function of one flat float32 parameter vector plus a layout.

The layout lists each tensor's name, shape, offset into the flat vector and kind (`weight`,
`bias` or `norm`; buffers have kind `buffer`), so any tool can cut a stored vector back into
tensors without this code.

>>> from torch import nn
>>> layout = Layout.of_parameters(nn.Linear(3, 2))
>>> [(e.name, e.shape, e.offset, e.kind) for e in layout.entries]
[('weight', (2, 3), 0, 'weight'), ('bias', (2,), 6, 'bias')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from landscape.errors import StoreError

# Normalization layers: their weights are per-channel scales, filter-normalized as a whole.
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


@dataclass(frozen=True)
class Entry:
    name: str  # dotted parameter name, as in module.named_parameters()
    shape: tuple[int, ...]
    offset: int  # first index in the flat vector
    kind: str  # weight | bias | norm | buffer

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Layout:
    entries: tuple[Entry, ...]

    @property
    def size(self) -> int:
        """Length P of the flat vector."""
        return sum(e.numel for e in self.entries)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    @classmethod
    def of_parameters(cls, module: nn.Module) -> Layout:
        """Layout of `module`'s parameters, kinds taken from the owning layer's type."""
        kinds = {}
        for prefix, m in module.named_modules():
            for pname, _ in m.named_parameters(recurse=False):
                full = f"{prefix}.{pname}" if prefix else pname
                is_norm = isinstance(m, NORM_LAYERS)
                # "in_proj_bias" (nn.MultiheadAttention) is a bias too
                is_bias = pname == "bias" or pname.endswith("_bias")
                kinds[full] = "norm" if is_norm else ("bias" if is_bias else "weight")
        named = [(n, tuple(p.shape), kinds[n]) for n, p in module.named_parameters()]
        return cls._packed(named)

    @classmethod
    def of_buffers(cls, module: nn.Module) -> Layout:
        """Layout of the floating-point buffers (BatchNorm running statistics)."""
        named = [
            (n, tuple(b.shape), "buffer")
            for n, b in module.named_buffers()
            if b.is_floating_point()
        ]
        return cls._packed(named)

    @classmethod
    def _packed(cls, named: list[tuple[str, tuple[int, ...], str]]) -> Layout:
        entries, offset = [], 0
        for name, shape, kind in named:
            entries.append(Entry(name, shape, offset, kind))
            offset += math.prod(shape)
        return cls(tuple(entries))

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """(..., P) -> {name: (..., *shape)} as views of `theta` (no copy)."""
        lead = theta.shape[:-1]
        return {
            e.name: theta[..., e.offset : e.offset + e.numel].reshape(*lead, *e.shape)
            for e in self.entries
        }

    def flatten(self, tensors: Mapping[str, torch.Tensor], batch_dims: int = 0) -> torch.Tensor:
        """{name: (*lead, *shape)} -> (*lead, P), `batch_dims` leading dims kept."""
        parts = [tensors[e.name].detach().flatten(start_dim=batch_dims) for e in self.entries]
        return torch.cat(parts, dim=-1)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for the store: name, shape (as 'a,b'), offset, numel, kind."""
        return {
            "name": np.array([e.name for e in self.entries], dtype=object),
            "shape": np.array([",".join(map(str, e.shape)) for e in self.entries], dtype=object),
            "offset": np.array([e.offset for e in self.entries], dtype=np.int64),
            "numel": np.array([e.numel for e in self.entries], dtype=np.int64),
            "kind": np.array([e.kind for e in self.entries], dtype=object),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Layout:
        """Inverse of `to_arrays` (strings may come back from HDF5 as bytes)."""

        def text(v: object) -> str:
            return v.decode() if isinstance(v, bytes) else str(v)

        try:
            entries = tuple(
                Entry(
                    text(n),
                    tuple(int(s) for s in text(sh).split(",") if s),
                    int(o),
                    text(k),
                )
                for n, sh, o, k in zip(
                    arrays["name"], arrays["shape"], arrays["offset"], arrays["kind"], strict=True
                )
            )
        except (KeyError, ValueError) as e:
            raise StoreError(
                f"parameter layout table is malformed ({e}); the store is corrupt"
            ) from None
        return cls(entries)
