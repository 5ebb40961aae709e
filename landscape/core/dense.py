"""A fused forward for plain MLP templates, K flat parameter vectors at a time, without autograd.

A template that is only a chain of `nn.Linear` layers and elementwise activations (a lone
Linear, an `nn.Sequential` of them, possibly nested, with a leading `nn.Flatten`, or the
toolkit's `landscape.models.MLP`) is evaluated here with matrix products straight from the
flat vectors through the `Layout`: no module, no `functional_call`, and the module's own
parameters are never read. Examples go in blocks small enough for the cores' L2 caches
(`DENSE_BLOCK_BYTES` of the widest layer's activations per thread); the first layer's bias
is folded into its product (the inputs get a column of ones, the weights a row of biases);
activations run in place on buffers made once per call. A first layer at least
`DENSE_GROUP_WIDTH` wide: one point at a time, every product as `F.linear` makes it, outputs
row-major: the generic forward's numbers bit for bit (tested). A narrower one (e.g. MNIST's
784-32, a poor product alone): groups of points whose first layers are one product and whose
later layers are batched, outputs class-major (K, C, B), returned as the (K, B, C) view the
losses take (`batched.cross_entropy` and `accuracy` reduce it along B, vectorized): the
generic forward's numbers up to float rounding (the products' summation order), which
`tests/test_dense.py` checks.

Why, on a CPU: the generic per-point forward of the quick preset's MLP 64-512-10 over 1,297
examples wrote a fresh 2.6 MB hidden layer, beyond the 2 MB L2, and read it back three times
(the bias copy inside `addmm`, ReLU's new tensor, the next product), and its loss and argmax
over (B, 10) logits cost as much as the second layer. bench/SURFACE.md has the profile and
the measurements behind the constants and `objective.stack_path`'s rule (bench/dense_path.py).

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
>>> plan = dense_plan(net)
>>> [(layer.n_in, layer.n_out, layer.bias is not None) for layer in plan.layers]
[(2, 3, True), (3, 1, True)]
>>> dense_plan(nn.Sequential(nn.Conv2d(1, 1, 3))) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from landscape.core.layout import Layout

# Rows per block: this many bytes of the widest layer's activations per torch thread (each
# thread's share of a block's rows stays in its core's L2, 2 MB here, for the next product).
DENSE_BLOCK_BYTES = 2**20
# Points per group: the first layer of ceil(this / its width) points is one product.
DENSE_GROUP_WIDTH = 256

Activation = Callable[[torch.Tensor], torch.Tensor]


def _leaky_relu(slope: float, t: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(t, slope, inplace=True)


def _elu(alpha: float, t: torch.Tensor) -> torch.Tensor:
    return F.elu(t, alpha, inplace=True)


def _gelu(approximate: str, t: torch.Tensor) -> torch.Tensor:
    return t.copy_(F.gelu(t, approximate=approximate))


def _activation(module: nn.Module) -> Activation | None:
    """The module's elementwise function, applied in place, with the module's own kernel."""
    if type(module) is nn.ReLU:
        return torch.relu_
    if type(module) is nn.LeakyReLU:
        return partial(_leaky_relu, module.negative_slope)
    if type(module) is nn.Tanh:
        return torch.tanh_
    if type(module) is nn.Sigmoid:
        return torch.sigmoid_
    if type(module) is nn.ELU:
        return partial(_elu, module.alpha)
    if type(module) is nn.SiLU:
        return partial(F.silu, inplace=True)
    if type(module) is nn.GELU:
        return partial(_gelu, module.approximate)
    return None


@dataclass(frozen=True)
class DenseLayer:
    weight: int  # offset of the (n_out, n_in) weight in the flat vector
    bias: int | None  # offset of the (n_out,) bias; None without one
    n_in: int
    n_out: int
    activations: tuple[Activation, ...]  # applied in order, in place, after the product


@dataclass(frozen=True)
class DensePlan:
    """A dense template as its layers' places in the flat vector; see `dense_plan`."""

    layers: tuple[DenseLayer, ...]
    flatten: bool  # an nn.Flatten before the first Linear: inputs (B, ...) are flattened

    def group(self, k: int) -> int:
        """Points per group: enough that the first layer's product, all the group's points at
        once, is DENSE_GROUP_WIDTH numbers wide (one point for a first layer that wide)."""
        return max(1, min(k, -(-DENSE_GROUP_WIDTH // self.layers[0].n_out)))

    def block_rows(self, group: int, itemsize: int = 4) -> int:
        """Examples per block: DENSE_BLOCK_BYTES per torch thread of a group's widest layer
        activations (the inputs, read once by the first product, do not count)."""
        widest = max(group * layer.n_out for layer in self.layers)
        return max(1, DENSE_BLOCK_BYTES * torch.get_num_threads() // (itemsize * widest))

    def accepts(self, thetas: torch.Tensor, x: torch.Tensor) -> bool:
        """Whether `forward` computes what the template would on these inputs: floating
        thetas (K, P) and x of the same dtype and device, x (B, n_in) or, after a Flatten,
        (B, ...) with n_in numbers per example."""
        n_in = self.layers[0].n_in
        shape_ok = x.dim() == 2 or (self.flatten and x.dim() > 2)
        return (
            thetas.is_floating_point()
            and x.dtype == thetas.dtype
            and x.device == thetas.device
            and shape_ok
            and (x[0].numel() if len(x) else n_in) == n_in
        )

    def forward(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """thetas (K, P), x (B, ...) -> outputs (K, B, n_out); no autograd graph. Check
        `accepts` first.

        Examples go in blocks (`block_rows`), points in groups (`group`). One point per
        group: per block, every layer as F.linear computes it, h W^T + b, so that the
        outputs are the generic forward's bit for bit (bench/SURFACE.md), the last one
        straight into the outputs' rows. Several: per block, the first layer of all the
        group's points as one product (inputs (rows, n_in) times their weights side by side,
        (n_in, G * n_out)), each later layer batched, per point W h^T + b (G, n_out, rows),
        the outputs class-major (K, n_out, B), returned as a (K, B, n_out) view (the losses
        reduce it along B, vectorized). The first layer's bias is folded into its product (a
        ones column on the inputs, a bias row under the weights) when the K points' biases
        hold more numbers than an example's inputs, else added by it.
        """
        x = x.flatten(start_dim=1) if x.dim() > 2 else x
        k, b, first = len(thetas), len(x), self.layers[0]
        fold = first.bias is not None and k * first.n_out > first.n_in
        if fold:
            x = torch.cat([x, x.new_ones(b, 1)], dim=1)
        size = self.group(k)
        spans = _blocks(b, self.block_rows(size, thetas.element_size()))
        blocks = [x[start:stop] for start, stop in spans]
        buffers = {size: self._buffers(size, spans, thetas)}  # per group size: once per call
        with torch.no_grad():
            if size == 1:
                out = thetas.new_empty(k, b, self.layers[-1].n_out)
                targets = [out[:, start:stop] for start, stop in spans]  # (K, rows, n_out)
                for j in range(k):
                    self._point(thetas[j], blocks, fold, buffers[1], [t[j] for t in targets])
                return out
            out = thetas.new_empty(k, self.layers[-1].n_out, b)
            for g in range(0, k, size):
                points = thetas[g : g + size]
                if len(points) not in buffers:  # the last group, when size does not divide K
                    buffers[len(points)] = self._buffers(len(points), spans, thetas, group=True)
                own = buffers[len(points)]
                self._group(points, blocks, spans, fold, own, out[g : g + size])
        return out.transpose(1, 2)

    def _buffers(
        self, g: int, spans: list[tuple[int, int]], like: torch.Tensor, *, group: bool = False
    ) -> list[list[torch.Tensor]]:
        """Per block, for `_point` (g = 1, not `group`) each layer's activations but the
        last's (rows, n_out); for `_group`, the first layer's of G points (rows, G * n_out).
        Made once per call, reused by every point (a fresh megabyte per point costs its page
        faults)."""
        if g == 1 and not group:
            widths = [layer.n_out for layer in self.layers[:-1]]
        else:
            widths = [g * self.layers[0].n_out]
        whole = [like.new_empty(spans[0][1] - spans[0][0], w) for w in widths]
        return [[t[: stop - start] for t in whole] for start, stop in spans]

    def _first(self, thetas: torch.Tensor, fold: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first layer's operands for G points: weights (n_in [+ 1], G * n_out), with a
        row of biases when `fold` (the inputs have the ones column), else the biases (G *
        n_out,) or None."""
        g, first = len(thetas), self.layers[0]
        weights, bias = _weights(thetas, first), _biases(thetas, first)
        if fold and bias is not None:
            return torch.cat([weights, bias], dim=2).view(g * first.n_out, -1).T, None
        stacked = weights.reshape(g * first.n_out, first.n_in).T
        return stacked, None if bias is None else bias.reshape(-1)

    def _point(
        self,
        theta: torch.Tensor,
        blocks: list[torch.Tensor],
        fold: bool,
        buffers: list[list[torch.Tensor]],
        targets: list[torch.Tensor],
    ) -> None:
        """One point (P,) over all blocks into its outputs' blocks `targets` (rows, n_out),
        every layer as F.linear computes it, h W^T + b."""
        stacked, bias = self._first(theta[None], fold)
        operands = [(stacked, bias, self.layers[0].activations)] + [
            (_weights(theta[None], la)[0].T, _flat_bias(theta, la), la.activations)
            for la in self.layers[1:]
        ]
        for xb, views, target in zip(blocks, buffers, targets, strict=True):
            h = xb
            for (weight_t, bias_l, acts), nxt in zip(operands, [*views, target], strict=True):
                _linear(h, weight_t, bias_l, nxt)
                for act in acts:
                    act(nxt)
                h = nxt

    def _group(
        self,
        thetas: torch.Tensor,
        blocks: list[torch.Tensor],
        spans: list[tuple[int, int]],
        fold: bool,
        buffers: list[list[torch.Tensor]],
        out: torch.Tensor,
    ) -> None:
        """G points (G, P) over all blocks into out (G, n_out, B): the first layer as one
        product, each later one batched, W h^T + b per point (G, n_out, rows)."""
        g, n_out = len(thetas), self.layers[0].n_out
        stacked, bias = self._first(thetas, fold)
        later = [(_weights(thetas, la), _biases(thetas, la), la) for la in self.layers[1:]]
        for (start, stop), xb, views in zip(spans, blocks, buffers, strict=True):
            h = views[0]
            _linear(xb, stacked, bias, h)
            for act in self.layers[0].activations:
                act(h)
            ht = h.view(-1, g, n_out).permute(1, 2, 0)  # (G, n_out, rows), a view
            for weight, bias_l, layer in later:
                ht = _batched_product(weight, bias_l, ht)
                for act in layer.activations:
                    act(ht)
            out[:, :, start:stop] = ht


def _linear(
    h: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor
) -> None:
    """out = h W^T (+ b), as F.linear's addmm: h (rows, n_in), W^T (n_in, n_out)."""
    if bias is None:
        torch.mm(h, weight_t, out=out)
    else:
        torch.addmm(bias, h, weight_t, out=out)


def _batched_product(
    weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor
) -> torch.Tensor:
    """W h (+ b) per point: (G, n_out, n_in) @ (G, n_in, rows) -> (G, n_out, rows)."""
    return torch.bmm(weight, h) if bias is None else torch.baddbmm(bias, weight, h)


def _blocks(b: int, rows: int) -> list[tuple[int, int]]:
    """[start, stop) spans of b rows in blocks of at most `rows`, as even as possible (1,297
    rows at 256 a block: five of 260 and one of 257, not five of 256 and one of 17)."""
    count = max(1, -(-b // max(1, rows)))
    size = max(1, -(-b // count))
    return [(start, min(start + size, b)) for start in range(0, b, size)] or [(0, 0)]


def _weights(thetas: torch.Tensor, layer: DenseLayer) -> torch.Tensor:
    """The layer's weights of every point, (G, n_out, n_in): views of thetas (G, P)."""
    flat = thetas[:, layer.weight : layer.weight + layer.n_out * layer.n_in]
    return flat.unflatten(1, (layer.n_out, layer.n_in))


def _flat_bias(theta: torch.Tensor, layer: DenseLayer) -> torch.Tensor | None:
    """The layer's bias of one point (P,), (n_out,), or None."""
    return None if layer.bias is None else theta[layer.bias : layer.bias + layer.n_out]


def _biases(thetas: torch.Tensor, layer: DenseLayer) -> torch.Tensor | None:
    """The layer's biases of every point, (G, n_out, 1), or None."""
    if layer.bias is None:
        return None
    return thetas[:, layer.bias : layer.bias + layer.n_out, None]


def dense_plan(template: nn.Module, layout: Layout | None = None) -> DensePlan | None:
    """`template` as a chain of Linear layers and elementwise activations, or None.

    Accepted: a lone `nn.Linear`, or an `nn.Sequential` (exactly that class, nested ones
    too) or a module whose class declares `DENSE_CHAIN = "<child>"` (its forward is exactly
    that child's, as `landscape.models.MLP`'s), whose leaves are, in order, an optional
    `nn.Flatten()` first, then `nn.Linear` layers (exactly that class), each followed by any
    of ReLU, LeakyReLU, Tanh, Sigmoid, ELU, SiLU, GELU, Identity and Dropout (an identity in
    eval mode). Anything else (another layer, a subclass with its own forward, hooks,
    parametrizations, a template in training mode) gives None: the generic `functional_call`
    path evaluates it.
    `layout` (default: the template's own) places the parameters in the flat vector.
    """
    layout = Layout.of_parameters(template) if layout is None else layout
    offsets = {e.name: e.offset for e in layout.entries}
    leaves = _leaves(template, "")
    if leaves is None or not leaves:
        return None
    layers: list[DenseLayer] = []
    flatten = False
    for name, module in leaves:
        if module._forward_hooks or module._forward_pre_hooks:
            return None
        if type(module) is nn.Flatten:
            if layers or flatten or (module.start_dim, module.end_dim) != (1, -1):
                return None
            flatten = True
        elif type(module) is nn.Linear:
            prefix = f"{name}." if name else ""
            weight = offsets.get(f"{prefix}weight")
            bias = offsets.get(f"{prefix}bias") if module.bias is not None else None
            if weight is None or (module.bias is not None and bias is None):
                return None
            n_out, n_in = module.out_features, module.in_features
            if layers and layers[-1].n_out != n_in:
                return None
            layers.append(DenseLayer(weight, bias, n_in, n_out, ()))
        elif type(module) in (nn.Identity,) or (type(module) is nn.Dropout and not module.training):
            continue
        else:
            act = _activation(module)
            if act is None or not layers:
                return None
            last = layers[-1]
            layers[-1] = DenseLayer(
                last.weight, last.bias, last.n_in, last.n_out, (*last.activations, act)
            )
    if not layers or len(offsets) != sum(1 + (la.bias is not None) for la in layers):
        return None  # parameters the chain does not use: not a plain MLP
    return DensePlan(tuple(layers), flatten)


def _leaves(module: nn.Module, name: str) -> list[tuple[str, nn.Module]] | None:
    """The modules a plain forward runs, in order, with their dotted names; None when the
    forward is not a known chain."""
    if module._forward_hooks or module._forward_pre_hooks:
        return None
    chain = type(module).__dict__.get("DENSE_CHAIN")  # declared by the class itself, not inherited
    if isinstance(chain, str):
        return _leaves(getattr(module, chain), f"{name}.{chain}" if name else chain)
    if type(module) is nn.Sequential:
        out: list[tuple[str, nn.Module]] = []
        for child_name, child in module._modules.items():  # repeats too, as forward runs them
            if child is None:
                continue
            inner = _leaves(child, f"{name}.{child_name}" if name else child_name)
            if inner is None:
                return None
            out += inner
        return out
    if list(module.children()):
        return None
    return [(name, module)]
