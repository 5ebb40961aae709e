"""What `FlatModel` keeps about a caller's module, none of it on the module itself.

`landscape.core.flat` evaluates a module at flat parameter vectors through `functional_call`, which
needs a module in eval mode, its layouts, and BatchNorm variants in train mode. Making those
from the caller's module would change it (`eval()`, `requires_grad_`, attributes in its
`__dict__`), so they are made from a deep copy, once per module, and kept in a weak-keyed
cache here.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
>>> copy = private_copy(net)
>>> copy.module is private_copy(net).module, copy.module.training, net.training
(True, False, True)
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from torch import nn
from torch.func import replace_all_batch_norm_modules_

from landscape.core.layout import Layout


def norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@dataclass
class PrivateCopy:
    """What FlatModel keeps about a caller's module, none of it on the module itself.

    `module`: a deep copy in eval mode with `requires_grad` off (functional_call runs it with
    other parameters; the caller's module keeps its mode, flags and `__dict__`). `derived`:
    copies of it with only the BatchNorm layers in train mode, Dropout still off ('batch': no
    running statistics, each batch's own; 'calibrate': running statistics updated in place,
    re-estimated at a point).
    """

    module: nn.Module
    layouts: tuple[Layout, Layout]
    signature: tuple
    derived: dict[str, nn.Module] = field(default_factory=dict)
    activations: dict[tuple[int, ...], int] = field(default_factory=dict)


# Keyed by the caller's module (by identity, held weakly): measures build many FlatModels
# around one template, and a copy must not outlive the module it was made from.
_PRIVATE: WeakKeyDictionary[nn.Module, PrivateCopy] = WeakKeyDictionary()


def _signature(module: nn.Module) -> tuple:
    """Names, shapes, dtypes and devices of every tensor: a copy made under another is stale
    (e.g. the caller moved the module or cast it to float64 since)."""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return tuple((n, tuple(t.shape), t.dtype, t.device) for n, t in tensors)


def private_copy(template: nn.Module) -> PrivateCopy:
    """The private copy of `template`, made once per module (again if its tensors changed)."""
    cached, signature = _PRIVATE.get(template), _signature(template)
    if cached is None or cached.signature != signature:
        copy = deepcopy(template).eval()
        for p in copy.parameters():
            p.requires_grad_(False)
        layouts = (Layout.of_parameters(copy), Layout.of_buffers(copy))
        cached = PrivateCopy(copy, layouts, signature)
        _PRIVATE[template] = cached
    return cached


def derived(private: PrivateCopy, kind: str) -> nn.Module:
    """The copy with BatchNorm in train mode: 'batch' (each batch's statistics) or 'calibrate'."""
    if kind not in private.derived:
        copy = deepcopy(private.module)  # in eval mode: Dropout stays off
        if kind == "batch":
            replace_all_batch_norm_modules_(copy)
        for layer in norm_layers(copy):
            layer.train()
        private.derived[kind] = copy
    return private.derived[kind]
