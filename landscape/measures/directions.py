"""Directions in parameter space for slices: filter-normalized random directions and PCA.

Random directions follow Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets",
section 4): a unit-variance Gaussian direction d, each *filter* of which is rescaled to the
norm of the same filter of theta, so a step of 1 along d moves every filter by about its own
size whatever the scale of the layer. Biases and normalization parameters are zeroed by
default (`ignore="biasbn"`), as in their tool.

PCA directions follow their section 7: the top principal components of the checkpoints'
offsets from the final point, and the trajectory's least-squares coordinates in that plane.

>>> import torch
>>> from torch import nn
>>> from landscape.core.layout import Layout
>>> layout = Layout.of_parameters(nn.Linear(3, 2))
>>> theta = torch.tensor([3.0, 0.0, 4.0, 0.0, 1.0, 0.0, 0.5, -0.5])  # rows of norm 5 and 1
>>> d = random_direction(theta, layout, generator=torch.Generator().manual_seed(0))
>>> d[:6].reshape(2, 3).norm(dim=1)  # each output neuron's row has theta's row norm
tensor([5.0000, 1.0000])
>>> d[6:]  # the bias is ignored
tensor([0., 0.])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from landscape.core.layout import Entry, Layout
from landscape.errors import ConfigError

IGNORE_OPTIONS = ("biasbn", "none")  # biasbn: zero biases and norm params (Li et al.); none: keep
PARAMETER_KINDS = ("weight", "bias", "norm")


def random_direction(
    theta: torch.Tensor,
    layout: Layout,
    *,
    generator: torch.Generator,
    filter_normalize: bool = True,
    ignore: str = "biasbn",
) -> torch.Tensor:
    """A random direction (P,) in theta's dtype and device, filter-normalized to theta.

    Entries are drawn N(0, 1) from `generator` on the generator's device, then moved, so a seed
    gives the same direction on any device. With `filter_normalize`, every tensor of two or more
    dimensions is rescaled filter by filter (along dim 0: a Conv weight (out, in, kh, kw) per
    output filter, a Linear weight (out, in) per output neuron's row): d_i <- d_i / ||d_i|| *
    ||theta_i|| (L2 norms), so a filter of theta that is zero gets a zero direction.

    `ignore="biasbn"` zeroes every entry of kind `bias` or `norm` (Li et al.'s default).
    `ignore="none"` keeps them and normalizes each tensor of at most one dimension *as a whole*
    (d <- d / ||d|| * ||theta_t||). This departs from Li et al.'s code, which copies theta's
    values into such a direction (d = theta_t), so that moving along it only rescales those
    biases and norm weights: a deterministic direction that is not random at all. Li et al.
    select what to ignore by dimension (<= 1), this by kind; they differ only for a 1-D tensor
    of kind `weight` (e.g. a PReLU slope), which is kept here and normalized as a whole.

    Without `filter_normalize` the direction is the raw Gaussian (ignored entries still zero).
    theta is never modified.
    """
    _check_direction_args(theta, layout, ignore, generator)
    noise = torch.randn(
        theta.shape, generator=generator, dtype=theta.dtype, device=generator.device
    ).to(theta.device)
    parts = [
        _direction_part(entry, noise, theta, filter_normalize=filter_normalize, ignore=ignore)
        for entry in layout.entries
    ]
    return torch.cat(parts) if parts else noise


def random_plane(
    theta: torch.Tensor,
    layout: Layout,
    *,
    generator: torch.Generator,
    filter_normalize: bool = True,
    ignore: str = "biasbn",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two directions (P,) drawn one after the other from `generator` (x first, then y).

    Like Li et al., they are not orthogonalized: two Gaussian directions in P dimensions have a
    cosine of about 1/sqrt(P). See `orthogonalize` to make them exactly orthogonal.
    """
    d1 = random_direction(
        theta, layout, generator=generator, filter_normalize=filter_normalize, ignore=ignore
    )
    d2 = random_direction(
        theta, layout, generator=generator, filter_normalize=filter_normalize, ignore=ignore
    )
    return d1, d2


def orthogonalize(direction: torch.Tensor, against: torch.Tensor) -> torch.Tensor:
    """`direction` (P,) minus its component along `against` (P,): Gram-Schmidt, one step.

    The result is orthogonal to `against` but no longer exactly filter-normalized.
    """
    _check_pair(direction, against, "orthogonalize")
    norm_sq = torch.dot(against, against)
    if norm_sq == 0:
        raise ConfigError(
            "orthogonalize: expected a nonzero `against` direction, found the zero vector; "
            "pass a direction with at least one nonzero entry"
        )
    return direction - torch.dot(direction, against) / norm_sq * against


@dataclass(frozen=True)
class PCAResult:
    directions: torch.Tensor  # (n, P) principal components: orthonormal (unit L2 norm each)
    explained_variance_ratio: torch.Tensor  # (n,) share of the centred variance, descending
    coordinates: torch.Tensor  # (n_ckpt, n) least-squares coordinates of trajectory - final


def pca_directions(
    trajectory: torch.Tensor,
    final: torch.Tensor,
    n: int = 2,
    *,
    layout: Layout | None = None,
    ignore: str = "none",
) -> PCAResult:
    """Li et al.'s PCA directions of an optimization path, and the path projected onto them.

    trajectory (n_ckpt, P): the checkpoints; final (P,): the point the plane is centred on.
    The rows theta_i - final are centred on their mean (as sklearn's PCA in Li et al.'s code)
    and decomposed by SVD; the directions are the top `n` right singular vectors, unit norm,
    each signed so that its largest-magnitude entry is positive (deterministic). The explained
    variance ratio is each component's share of the total centred variance. The coordinates are
    the least-squares solution of directions.T @ c = theta_i - final, so `final` sits at the
    origin and a step of 1 is one unit of L2 distance in parameter space.

    `ignore="biasbn"` (needs `layout`) zeroes bias and norm entries of the offsets before the
    PCA, as Li et al.'s `--ignore biasbn`; their default, like this one, is "none".
    Inputs are never modified.
    """
    offsets = _pca_offsets(trajectory, final, n, layout, ignore)
    centred = offsets - offsets.mean(dim=0)
    # in float64, then rounded back: LAPACK's float32 results varied in their last bits from
    # one call to the next in one process (a full test run; MKL's kernels may depend on memory
    # alignment), and the same seed must give the same stored numbers
    _, singular, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    variance = singular**2
    total = variance.sum()
    if total == 0:
        raise ConfigError(
            "pca_directions: expected checkpoints that differ from each other, found "
            f"{len(trajectory)} identical offsets; pass checkpoints from along the path"
        )
    directions = _sign_fixed(vh[:n]).to(offsets.dtype)
    coordinates = project_onto(trajectory, final, directions)
    return PCAResult(directions, (variance[:n] / total).to(offsets.dtype), coordinates)


def project_onto(
    points: torch.Tensor, origin: torch.Tensor, directions: torch.Tensor
) -> torch.Tensor:
    """Least-squares coordinates (m, n) of points (m, P) - origin (P,) on directions (n, P).

    The directions need not be orthogonal (e.g. two random filter-normalized ones); for
    orthonormal directions this is the plain dot product. Units: multiples of each direction.
    """
    if directions.dim() != 2 or points.dim() != 2 or points.shape[1] != directions.shape[1]:
        raise ConfigError(
            "project_onto: expected points (m, P) and directions (n, P) with the same P, found "
            f"{tuple(points.shape)} and {tuple(directions.shape)}; stack vectors as rows"
        )
    _check_pair(origin, directions[0], "project_onto")
    offsets = (points - origin).double()  # solved in float64 for the reason in pca_directions
    solution = torch.linalg.lstsq(directions.T.double(), offsets.T).solution.T
    return solution.to(directions.dtype)


def _direction_part(
    entry: Entry, noise: torch.Tensor, theta: torch.Tensor, *, filter_normalize: bool, ignore: str
) -> torch.Tensor:
    """The slice of the direction for one tensor of the layout, flat (numel,)."""
    d = noise[entry.offset : entry.offset + entry.numel]
    if ignore == "biasbn" and entry.kind in ("bias", "norm"):
        return torch.zeros_like(d)
    if not filter_normalize:
        return d
    t = theta[entry.offset : entry.offset + entry.numel]
    return _filter_normalized(d.reshape(entry.shape), t.reshape(entry.shape)).flatten()


def _filter_normalized(d: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """d rescaled so each filter (row along dim 0; the whole tensor if <= 1-D) has t's norm."""
    rows_d = d.reshape(d.shape[0], -1) if d.dim() >= 2 else d.reshape(1, -1)
    rows_t = t.reshape(rows_d.shape)
    tiny = torch.finfo(d.dtype).tiny  # a Gaussian row is never zero; this only guards 0/0
    scale = rows_t.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True).clamp_min(tiny)
    return (rows_d * scale).reshape(d.shape)


def _sign_fixed(components: torch.Tensor) -> torch.Tensor:
    """Flip each row (n, P) so that its entry of largest magnitude is positive."""
    biggest = components.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(components.gather(1, biggest))
    return components * torch.where(signs == 0, torch.ones_like(signs), signs)


def _pca_offsets(
    trajectory: torch.Tensor, final: torch.Tensor, n: int, layout: Layout | None, ignore: str
) -> torch.Tensor:
    """Validated offsets theta_i - final (n_ckpt, P), bias/norm entries zeroed if asked."""
    if trajectory.dim() != 2 or not trajectory.is_floating_point():
        raise ConfigError(
            "pca_directions: expected `trajectory` a floating tensor (n_ckpt, P), found "
            f"{trajectory.dtype} of shape {tuple(trajectory.shape)}; stack checkpoints as rows"
        )
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(trajectory) - 1:
        raise ConfigError(
            f"pca_directions: expected 1 <= n <= n_ckpt - 1 = {len(trajectory) - 1} components "
            f"(centring removes one), found n={n!r}; store more checkpoints or ask for fewer"
        )
    _check_pair(final, trajectory[0], "pca_directions")
    offsets = trajectory - final
    if ignore == "none":
        return offsets
    if ignore != "biasbn" or layout is None or layout.size != trajectory.shape[1]:
        raise ConfigError(
            f"pca_directions: expected ignore in {IGNORE_OPTIONS} (biasbn with the parameters' "
            f"layout of size P={trajectory.shape[1]}), found ignore={ignore!r}, layout="
            f"{None if layout is None else layout.size}; pass layout=Layout.of_parameters(model)"
        )
    return offsets * _weight_mask(layout, offsets)


def _weight_mask(layout: Layout, like: torch.Tensor) -> torch.Tensor:
    """(P,) 1 on entries of kind weight, 0 on bias and norm entries."""
    mask = torch.ones(like.shape[-1], dtype=like.dtype, device=like.device)
    for e in layout.entries:
        if e.kind in ("bias", "norm"):
            mask[e.offset : e.offset + e.numel] = 0
    return mask


def _check_direction_args(
    theta: torch.Tensor, layout: Layout, ignore: str, generator: torch.Generator
) -> None:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(
            f"random_direction: expected `generator` a torch.Generator, found "
            f"{type(generator).__name__}; pass generator=torch.Generator().manual_seed(seed)"
        )
    if ignore not in IGNORE_OPTIONS:
        raise ConfigError(
            f"random_direction: expected ignore in {IGNORE_OPTIONS}, found {ignore!r}; "
            "use 'biasbn' (Li et al.'s default) or 'none'"
        )
    if theta.dim() != 1 or not theta.is_floating_point() or theta.shape[0] != layout.size:
        raise ConfigError(
            f"random_direction: expected theta a floating tensor of shape ({layout.size},) "
            f"matching the layout, found {theta.dtype} of shape {tuple(theta.shape)}; pass the "
            "flat parameter vector of the model the layout was built from"
        )
    kinds = {e.kind for e in layout.entries} - set(PARAMETER_KINDS)
    if kinds:
        raise ConfigError(
            f"random_direction: expected a parameter layout (kinds {PARAMETER_KINDS}), found "
            f"kinds {sorted(kinds)}; use Layout.of_parameters(model), not Layout.of_buffers"
        )


def _check_pair(a: torch.Tensor, b: torch.Tensor, where: str) -> None:
    if a.dim() != 1 or a.shape != b.shape or not a.is_floating_point():
        raise ConfigError(
            f"{where}: expected two floating vectors of the same shape (P,), found "
            f"{a.dtype} {tuple(a.shape)} and {b.dtype} {tuple(b.shape)}; pass flat vectors"
        )
