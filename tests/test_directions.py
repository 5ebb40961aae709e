"""Filter-normalized random directions (Li et al. 2018) and PCA directions of a trajectory."""

import pytest
import torch
from torch import nn

from landscape.config import ModelConfig
from landscape.core.layout import Layout
from landscape.errors import ConfigError
from landscape.measures.directions import (
    orthogonalize,
    pca_directions,
    project_onto,
    random_direction,
    random_plane,
)
from landscape.models import build_model, init_parameters


def lenet_point() -> tuple[torch.Tensor, Layout]:
    cfg = ModelConfig(name="lenet")
    model = build_model(cfg, input_shape=(1, 8, 8), n_outputs=10)
    init_parameters(model, cfg, generator=torch.Generator().manual_seed(0))
    layout = Layout.of_parameters(model)
    return layout.flatten(dict(model.named_parameters())), layout


def normed_point() -> tuple[torch.Tensor, Layout]:
    """A net with BatchNorm and LayerNorm; theta random so every tensor has a nonzero norm."""
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.LayerNorm(6), nn.Linear(6, 3))
    layout = Layout.of_parameters(model)
    return torch.randn(layout.size, generator=torch.Generator().manual_seed(1)), layout


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def part(v: torch.Tensor, layout: Layout, name: str) -> torch.Tensor:
    return layout.unflatten(v)[name]


def test_each_filter_has_the_norm_of_thetas_filter():
    theta, layout = lenet_point()
    d = random_direction(theta, layout, generator=seeded())
    weights = [e for e in layout.entries if e.kind == "weight"]
    assert {len(e.shape) for e in weights} == {2, 4}  # both Linear and Conv weights checked
    for e in weights:
        got = part(d, layout, e.name).flatten(start_dim=1).norm(dim=1)
        want = part(theta, layout, e.name).flatten(start_dim=1).norm(dim=1)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=0)


def test_biases_and_norm_params_are_zero_by_default():
    for theta, layout in (lenet_point(), normed_point()):
        d = random_direction(theta, layout, generator=seeded())
        for e in layout.entries:
            if e.kind in ("bias", "norm"):
                assert torch.all(part(d, layout, e.name) == 0), e.name
    kinds = {e.kind for e in normed_point()[1].entries}
    assert kinds == {"weight", "bias", "norm"}


def test_ignore_none_normalizes_one_dimensional_tensors_as_a_whole():
    theta, layout = normed_point()
    d = random_direction(theta, layout, generator=seeded(), ignore="none")
    for e in layout.entries:
        if len(e.shape) == 1:
            got, want = part(d, layout, e.name), part(theta, layout, e.name)
            torch.testing.assert_close(got.norm(), want.norm(), rtol=1e-5, atol=0)
            assert not torch.allclose(got, want)  # not a copy of theta (Li et al.'s choice)
    kept = random_direction(theta, layout, generator=seeded(), ignore="biasbn")
    weight = layout.entries[0].name
    assert torch.equal(part(d, layout, weight), part(kept, layout, weight))


def test_entries_are_unit_gaussian_with_both_signs():
    theta, layout = lenet_point()
    raw = random_direction(theta, layout, generator=seeded(), filter_normalize=False, ignore="none")
    assert abs(raw.mean().item()) < 0.05 and abs(raw.std().item() - 1) < 0.05
    d = random_direction(theta, layout, generator=seeded())
    weights = d[d != 0]
    assert (weights > 0).any() and (weights < 0).any()
    assert (weights > 0).float().mean().item() == pytest.approx(0.5, abs=0.05)


def test_same_seed_same_direction_and_theta_unchanged():
    theta, layout = lenet_point()
    before = theta.clone()
    a = random_direction(theta, layout, generator=seeded(3))
    b = random_direction(theta, layout, generator=seeded(3))
    c = random_direction(theta, layout, generator=seeded(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(theta, before)
    assert a.dtype == theta.dtype and a.shape == theta.shape and torch.isfinite(a).all()


def test_zero_filter_of_theta_gets_a_zero_direction():
    layout = Layout.of_parameters(nn.Linear(3, 2))
    theta = torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 0.1, 0.2])
    d = random_direction(theta, layout, generator=seeded())
    assert torch.equal(d[:3], torch.zeros(3))
    assert d[3:6].norm().item() == pytest.approx(3.0, rel=1e-6)


def test_random_plane_draws_two_directions_in_sequence():
    theta, layout = lenet_point()
    gen = seeded(7)
    d1, d2 = random_plane(theta, layout, generator=seeded(7))
    assert torch.equal(d1, random_direction(theta, layout, generator=gen))
    assert torch.equal(d2, random_direction(theta, layout, generator=gen))
    cosine = torch.dot(d1, d2) / (d1.norm() * d2.norm())
    assert abs(cosine.item()) < 0.1
    ortho = orthogonalize(d2, d1)
    assert abs(torch.dot(ortho, d1).item()) < 1e-4 * d1.norm().item() * d2.norm().item()


@pytest.mark.parametrize(
    "kwargs",
    [{"ignore": "bias"}, {"generator": 0}, {"theta": torch.zeros(5)}],
)
def test_bad_arguments_raise_config_error(kwargs):
    theta, layout = lenet_point()
    args = {"theta": theta, "generator": seeded(), **kwargs}
    with pytest.raises(ConfigError, match="random_direction: expected"):
        random_direction(args.pop("theta"), layout, **args)


def test_buffer_layout_is_refused():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    buffers = Layout.of_buffers(model)
    with pytest.raises(ConfigError, match=r"Layout\.of_parameters"):
        random_direction(torch.zeros(buffers.size), buffers, generator=seeded())


def plane_trajectory(noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """12 checkpoints final + a_i u + b_i v (+ noise) in P = 40; returns (traj, final, [u; v])."""
    gen = seeded(11)
    basis, _ = torch.linalg.qr(torch.randn(40, 2, dtype=torch.float64, generator=gen))
    t = torch.linspace(0, 1, 12, dtype=torch.float64)
    coeffs = torch.stack([3 * (1 - t), torch.sin(3 * t)], dim=1)  # reaches (0, sin 3) at the end
    final = torch.randn(40, dtype=torch.float64, generator=gen)
    traj = final + coeffs @ basis.T - coeffs[-1] @ basis.T
    traj = traj + noise * torch.randn(traj.shape, dtype=torch.float64, generator=gen)
    return traj, final, basis.T


def test_pca_recovers_the_plane_of_a_planar_trajectory():
    traj, final, plane = plane_trajectory()
    before = traj.clone()
    result = pca_directions(traj, final)
    assert result.directions.shape == (2, 40) and result.coordinates.shape == (12, 2)
    torch.testing.assert_close(result.directions @ result.directions.T, torch.eye(2).double())
    in_plane = (plane @ result.directions.T).norm(dim=1)  # u and v lie in span(directions)
    torch.testing.assert_close(in_plane, torch.ones(2).double())
    assert result.explained_variance_ratio.sum().item() == pytest.approx(1.0, abs=1e-10)
    assert result.explained_variance_ratio[0] >= result.explained_variance_ratio[1] > 0
    rebuilt = final + result.coordinates @ result.directions
    torch.testing.assert_close(rebuilt, traj)
    assert torch.equal(traj, before)


def test_pca_with_noise_explains_almost_everything_in_two_components():
    traj, final, _ = plane_trajectory(noise=1e-3)
    ratio = pca_directions(traj, final).explained_variance_ratio
    assert 0.999 < ratio.sum().item() < 1.0
    assert torch.equal(
        pca_directions(traj, final).directions, pca_directions(traj, final).directions
    )


def test_pca_signs_are_deterministic_and_final_is_the_origin():
    traj, final, _ = plane_trajectory()
    result = pca_directions(traj, final)
    biggest = result.directions.abs().argmax(dim=1)
    assert (result.directions.gather(1, biggest[:, None]) > 0).all()
    torch.testing.assert_close(result.coordinates[-1], torch.zeros(2).double(), atol=1e-12, rtol=0)


def test_pca_ignore_biasbn_zeroes_bias_entries():
    layout = Layout.of_parameters(nn.Linear(4, 3))
    traj = torch.randn(6, layout.size, generator=seeded(2))
    result = pca_directions(traj, traj[-1], layout=layout, ignore="biasbn")
    assert torch.all(part(result.directions[0], layout, "bias") == 0)
    with pytest.raises(ConfigError, match="layout"):
        pca_directions(traj, traj[-1], ignore="biasbn")


def test_pca_refuses_too_many_components_and_a_still_trajectory():
    traj, final, _ = plane_trajectory()
    with pytest.raises(ConfigError, match="n_ckpt - 1 = 11"):
        pca_directions(traj, final, n=12)
    with pytest.raises(ConfigError, match="identical"):
        pca_directions(final.repeat(3, 1), final)


def test_project_onto_non_orthogonal_directions_is_least_squares():
    gen = seeded(5)
    dirs = torch.randn(2, 30, dtype=torch.float64, generator=gen)
    origin = torch.randn(30, dtype=torch.float64, generator=gen)
    coords = torch.tensor([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0]], dtype=torch.float64)
    points = origin + coords @ dirs
    torch.testing.assert_close(project_onto(points, origin, dirs), coords)
