"""A lognormal random density field: a fast SURROGATE for the turbulence simulator, not physics.

    density = exp(sigma g - sigma^2 / 2) / <exp(sigma g - sigma^2 / 2)>

with g a unit-variance Gaussian random field whose per-mode spectrum is k^-n, n the velocity
index of the run it stands in for. It mimics only what a test of the image pipeline or of a
learner needs: a positive, mean-1 density whose maps get smoother as n grows, seeded like the
simulator. It does not solve any equation; the one-point width of its log-density, sigma, is a
free parameter (default 0.45, from sigma^2 = ln(1 + b^2 M^2) with b = 1/3 and M = 1.41, the
relation for fully developed solenoidally driven turbulence, which the real 0.5 Myr runs do
not reach), and tying the density spectrum's index to the velocity index is an assumption.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.fields import check_index, gaussian_field
from simulators.turbulence.simulation import check_cells, check_seed
from simulators.turbulence.solver import resolve_dtype

DEFAULT_SIGMA = math.sqrt(math.log(1.0 + (1.41 / 3.0) ** 2))


def lognormal_density(index: float, *, n_cells: int, seed: int, sigma: float = DEFAULT_SIGMA,
                      ndim: int = 3, dtype="float32") -> np.ndarray:
    """A lognormal surrogate density field with mean 1 (see the module docstring).

    Args:
        index: spectral index n of the Gaussian field under the exponential.
        n_cells: cells per side N.
        seed: integer in [0, 2**32).
        sigma: standard deviation of ln(density) (before the mean is divided out), > 0.
        ndim: 2 or 3.
        dtype: float32, or float64 in JAX 64-bit mode.

    Returns:
        (N,) * ndim positive density, indexed [x, y, z], mean exactly 1 (to round-off).
    """
    grid = check_cells(n_cells, ndim)
    dtype = resolve_dtype(dtype)
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise InvalidSetting(f"sigma must be a positive finite number, got {sigma!r}")
    # A separate stream from the velocity field of the same seed.
    key = jax.random.fold_in(jax.random.key(check_seed(seed)), 1)
    g = gaussian_field(key, grid, check_index(index), rms=1.0, dtype=dtype)
    density = jnp.exp(sigma * g)
    return np.asarray(density / jnp.mean(density))
