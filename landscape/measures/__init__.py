"""Measures of stored points: each a pure function of flat parameter vectors and an Objective."""

from landscape.measures.curvature import (
    CurvatureError,
    EigenResult,
    TraceResult,
    hessian_matrix,
    hessian_trace,
    top_eigenvalues,
)
from landscape.measures.directions import pca_directions, random_direction, random_plane
from landscape.measures.distance import distance_from_init, pair_distance
from landscape.measures.gradient import gradient_norms
from landscape.measures.restart import RECIPES, Recipe, restart
from landscape.measures.sharpness import epsilon_sharpness, perturbation_sharpness
from landscape.measures.slices import (
    barrier_height,
    default_alphas,
    grid_coordinates,
    interpolate,
    surface_1d,
    surface_2d,
    surface_2d_rows,
)

__all__ = [
    "RECIPES",
    "CurvatureError",
    "EigenResult",
    "Recipe",
    "TraceResult",
    "barrier_height",
    "default_alphas",
    "distance_from_init",
    "epsilon_sharpness",
    "gradient_norms",
    "grid_coordinates",
    "hessian_matrix",
    "hessian_trace",
    "interpolate",
    "pair_distance",
    "pca_directions",
    "perturbation_sharpness",
    "random_direction",
    "random_plane",
    "restart",
    "surface_1d",
    "surface_2d",
    "surface_2d_rows",
    "top_eigenvalues",
]
