"""Weights from safetensors files, checked against a module and cut into flat vectors.

safetensors holds named tensors and nothing executable, so reading a file never runs code;
`torch.load` and pickle are never used. Every parameter of the module must be in the file with
its shape; BatchNorm statistics (float buffers) come along when present, else the module's
own values are kept. A mismatch names each missing, unexpected and mis-shaped tensor at once.

A trusted PyTorch checkpoint converts in three lines (see CONVERT_HINT).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import nn

from landscape.core.layout import Layout
from landscape.errors import ModelError
from landscape.store.train_store import file_checksum

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
CONVERT_HINT = (
    "convert a checkpoint you trust once: `import torch, safetensors.torch; "
    "sd = torch.load('model.pt', weights_only=True); "
    "safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors')`"
)


@dataclass(frozen=True)
class Point:
    """One imported point as flat float32 vectors, with where it came from."""

    params: np.ndarray  # (P,) in the module's Layout.of_parameters order
    buffers: np.ndarray  # (P_b,) float buffers; the module's own where the file has none
    file: str
    sha256: str
    buffers_from_file: list[str]  # buffer names read from the file ([] : the module's own)


def read_safetensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU. Raises ModelError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path}: no such file; expected a .safetensors weights file")
    if path.suffix in PICKLE_SUFFIXES:
        raise ModelError(
            f"{what} {path}: a {path.suffix} file is a pickle, which can run code when loaded; "
            f"landscape reads safetensors only: {CONVERT_HINT}"
        )
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise ModelError(
            f"{what} {path}: not a readable safetensors file ({type(e).__name__}: {e}); "
            f"expected the output of safetensors.torch.save_file; {CONVERT_HINT}"
        ) from None


def read_point(path: Path, module: nn.Module, *, what: str) -> Point:
    """The weights in `path` as a Point of `module`'s architecture (checked, never modified)."""
    tensors = read_safetensors(path, what)
    layout, blayout = Layout.of_parameters(module), Layout.of_buffers(module)
    tensors = _canonical_names(tensors, module)
    _check_names_and_shapes(Path(path), what, tensors, module, layout)
    _check_finite(Path(path), what, tensors)
    own = dict(module.named_buffers())
    from_file = [e.name for e in blayout.entries if e.name in tensors]
    buffers = {e.name: tensors.get(e.name, own[e.name]) for e in blayout.entries}
    return Point(
        params=_flat(layout, tensors),
        buffers=_flat(blayout, buffers),
        file=str(Path(path).resolve()),
        sha256=file_checksum(Path(path)),
        buffers_from_file=from_file,
    )


def _flat(layout: Layout, tensors: dict[str, torch.Tensor]) -> np.ndarray:
    if not layout.entries:
        return np.zeros(0, dtype=np.float32)
    cast = {e.name: tensors[e.name].to(torch.float32) for e in layout.entries}
    return layout.flatten(cast).numpy().astype(np.float32)


def _canonical_names(
    tensors: dict[str, torch.Tensor], module: nn.Module
) -> dict[str, torch.Tensor]:
    """A tied parameter saved under any of its names is found under the one the layout uses."""
    canonical = {id(p): n for n, p in module.named_parameters()}
    out = dict(tensors)
    for alias, p in module.named_parameters(remove_duplicate=False):
        name = canonical[id(p)]
        if alias != name and alias in out and name not in out:
            out[name] = out.pop(alias)
    return out


def _expected(module: nn.Module) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """(parameters, buffers) name -> shape; every alias of a tied parameter counts as known."""
    params = {n: tuple(p.shape) for n, p in module.named_parameters(remove_duplicate=False)}
    buffers = {n: tuple(b.shape) for n, b in module.named_buffers()}
    return params, buffers


def _check_names_and_shapes(
    path: Path,
    what: str,
    tensors: dict[str, torch.Tensor],
    module: nn.Module,
    layout: Layout,
) -> None:
    params, buffers = _expected(module)
    known = params | buffers
    missing = [n for n in layout.names if n not in tensors]
    unexpected = sorted(n for n in tensors if n not in known)
    shaped = [
        f"{n}: file {tuple(t.shape)}, model {known[n]}"
        for n, t in tensors.items()
        if n in known and tuple(t.shape) != known[n]
    ]
    typed = [
        f"{n}: {t.dtype}" for n, t in tensors.items() if n in params and not t.is_floating_point()
    ]
    if not (missing or unexpected or shaped or typed):
        return
    lines = [
        f"{what} {path}: the tensors do not match the model ({layout.size} parameters in "
        f"{len(layout.entries)} tensors; the file has {len(tensors)} tensors)"
    ]
    for title, names in (
        ("missing (in the model, not in the file)", missing),
        ("unexpected (in the file, not in the model)", unexpected),
        ("mis-shaped", shaped),
        ("not floating point", typed),
    ):
        if names:
            lines.append(f"  {title}: {len(names)}: " + "; ".join(names))
    if hint := _prefix_hint(list(tensors), list(known)):
        lines.append("  " + hint)
    lines.append(
        "fix: save the state_dict of the same architecture (the same --model and --model-arg "
        "values) with safetensors.torch.save_file"
    )
    raise ModelError("\n".join(lines))


def _prefix_hint(found: list[str], known: list[str]) -> str:
    """'module.' (DataParallel) or another common prefix that, removed, would make names match."""
    if not found or not known:
        return ""
    prefix = found[0].split(".")[0] + "."
    if all(n.startswith(prefix) for n in found):
        stripped = {n[len(prefix) :] for n in found}
        if stripped & set(known):
            return f"every name in the file starts with {prefix!r}: strip it before saving"
    return ""


def _check_finite(path: Path, what: str, tensors: dict[str, torch.Tensor]) -> None:
    bad = []
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n_nan = int(torch.isnan(t).sum())
            n_inf = int(torch.isinf(t).sum())
            bad.append(f"{name} ({n_nan} NaN, {n_inf} inf of {t.numel()})")
    if bad:
        raise ModelError(
            f"{what} {path}: non-finite values in {len(bad)} tensor(s): {'; '.join(bad)}; a "
            "landscape is measured at finite weights: import an earlier checkpoint from before "
            "training diverged"
        )
