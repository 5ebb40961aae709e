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
from landscape.measures.layer_curvature import layer_curvature
from landscape.measures.restart import RECIPES, Recipe, restart
from landscape.measures.sharpness import epsilon_sharpness, perturbation_sharpness
from landscape.measures.slices import (
    barrier_height,
    default_alphas,
    error_barrier,
    grid_coordinates,
    interpolate,
    largest_rise,
    surface_1d,
    surface_2d,
    surface_2d_rows,
)
from landscape.measures.spectral_density import slq
from landscape.measures.trace_hutchpp import HutchppResult, hutchpp_trace

__all__ = [
    "RECIPES",
    "CurvatureError",
    "EigenResult",
    "HutchppResult",
    "Recipe",
    "TraceResult",
    "barrier_height",
    "default_alphas",
    "distance_from_init",
    "epsilon_sharpness",
    "error_barrier",
    "gradient_norms",
    "grid_coordinates",
    "hessian_matrix",
    "hessian_trace",
    "hutchpp_trace",
    "interpolate",
    "largest_rise",
    "layer_curvature",
    "pair_distance",
    "pca_directions",
    "perturbation_sharpness",
    "random_direction",
    "random_plane",
    "restart",
    "slq",
    "surface_1d",
    "surface_2d",
    "surface_2d_rows",
    "top_eigenvalues",
]
