"""One turbulent-box run: the talk's initial conditions, evolved by the solver, in code units.

Initial conditions: uniform density 1 (6.77e-22 g/cm^3), a divergence-free Gaussian random
velocity field with per-mode spectrum P_v(k) ~ k^-n on the modes 1 <= |m| < N/2, scaled to an
rms Mach number of 1.41, isothermal gas with c_s = 1. The box evolves for 0.5 Myr (0.00954
code time units, 1 % of a sound-crossing time; the flow moves ~1.3 % of the box).
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.fields import MAX_CELLS, check_index, solenoidal_velocity
from simulators.turbulence.solver import (
    DEFAULT_MAX_STEPS,
    DEFAULT_SCHEME,
    Scheme,
    State,
    check_scheme,
    evolve_checked,
    from_primitive,
    resolve_dtype,
)
from simulators.turbulence.units import CloudSetup

SEED_LIMIT = 2**32
TALK_SETUP = CloudSetup()


class TurbulenceRun(NamedTuple):
    """The end of one run, in code units (box 1, mean density 1, c_s 1).

    Fields:
        density: (N,) * ndim, indexed [x, y, z]; cell (i, j, k) centred at ((i+1/2)/N, ..).
        velocity: (ndim, N, ..) in units of c_s (a Mach number per component).
        time: code time reached.
        steps: solver steps taken.
        index: the spectral index n of the initial velocity field.
        seed: the seed of the initial velocity field.
        setup: the physical set-up (for conversions to cgs: `setup.units`).
    """

    density: np.ndarray
    velocity: np.ndarray
    time: float
    steps: int
    index: float
    seed: int
    setup: CloudSetup


def check_seed(seed) -> int:
    """`seed` as an int in [0, 2**32), or InvalidSetting."""
    integer = isinstance(seed, int | np.integer) and not isinstance(seed, bool)
    if not integer or not 0 <= seed < SEED_LIMIT:
        raise InvalidSetting(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def check_cells(n_cells, ndim: int = 3) -> tuple[int, ...]:
    """The grid (n_cells,) * ndim, n_cells even in [8, MAX_CELLS], or InvalidSetting."""
    try:
        n = operator.index(n_cells)
    except TypeError:
        raise InvalidSetting(f"n_cells must be an even integer in [8, {MAX_CELLS}], "
                             f"got {n_cells!r}") from None
    if isinstance(n_cells, bool) or n % 2 or not 8 <= n <= MAX_CELLS:
        raise InvalidSetting(f"n_cells must be an even integer in [8, {MAX_CELLS}], "
                             f"got {n_cells!r}")
    if ndim not in (2, 3):
        raise InvalidSetting(f"ndim must be 2 or 3, got {ndim!r}")
    return (n,) * ndim


def initial_state(index: float, *, n_cells: int, seed: int, mach: float = 1.41, ndim: int = 3,
                  dtype="float32") -> State:
    """Uniform density 1 and a solenoidal Gaussian velocity field of spectrum k^-index.

    Args:
        index: spectral index n of the per-mode velocity power spectrum.
        n_cells: cells per side N.
        seed: integer in [0, 2**32); the same seed gives the same modes at every N.
        mach: rms Mach number sqrt(<|v|^2>) / c_s.
        ndim: 3, or 2 for a slab of the same physics (cheap tests).
        dtype: float32, or float64 in JAX 64-bit mode.

    Returns:
        `State`: density (N,) * ndim, momentum (ndim, N, ..).
    """
    grid = check_cells(n_cells, ndim)
    dtype = resolve_dtype(dtype)
    velocity = solenoidal_velocity(jax.random.key(check_seed(seed)), grid, check_index(index),
                                   rms=_positive_mach(mach), dtype=dtype)
    return from_primitive(jnp.ones(grid, dtype=dtype), velocity)


def _positive_mach(mach) -> float:
    value = float(mach)
    if not (np.isfinite(value) and value > 0):
        raise InvalidSetting(f"mach must be a positive finite number, got {mach!r}")
    return value


def simulate(index: float, *, n_cells: int = 64, seed: int = 0,
             setup: CloudSetup = TALK_SETUP, scheme: Scheme = DEFAULT_SCHEME, ndim: int = 3,
             max_steps: int = DEFAULT_MAX_STEPS, dtype="float32") -> TurbulenceRun:
    """Run the turbulent box with velocity index `index` for `setup.duration_myr`.

    Args:
        index: spectral index n of the initial velocity field (any n in [0, 10]; the talk
            probes [3, 4.5], Kolmogorov 11/3, Burgers 4).
        n_cells: cells per side N (even, 8 .. 1024).
        seed: seed of the velocity field.
        setup: physical set-up (box, density, temperature, Mach number, duration).
        scheme: solver scheme (Rusanov first order by default).
        ndim: 3 (the talk), or 2.
        max_steps, dtype: as for `solver.evolve`.

    Returns:
        `TurbulenceRun` with numpy density (N,) * ndim and velocity (ndim, N, ..).

    Raises:
        InvalidSetting: a bad argument, named with its value.
        SimulationError: the run broke (non-finite or non-positive density, too many steps).
    """
    scheme = check_scheme(scheme)
    state = initial_state(index, n_cells=n_cells, seed=seed, mach=setup.mach, ndim=ndim,
                          dtype=dtype)
    result = evolve_checked(state, setup.duration_code, dx=1.0 / n_cells, scheme=scheme,
                            max_steps=max_steps, dtype=dtype)
    return TurbulenceRun(
        density=np.asarray(result.state.density),
        velocity=np.asarray(result.state.velocity),
        time=float(result.time),
        steps=int(result.steps),
        index=float(index),
        seed=int(seed),
        setup=setup,
    )
