"""The 1-D potential simulator as an alframe oracle: inputs (x0, v0, t), output x(t).

Randomness (Langevin forcing, observation noise) is a pure function of the oracle's seed and
the query's exact float64 bytes, so a query gives the same answer in any batch, in any order,
and after a resumed run repeats it.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import numpy as np

from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box
from simulators.potential1d.integrator import (
    bucket_size,
    check_langevin,
    check_n_steps,
    langevin_end,
    resolve_dtype,
    trajectory_end,
)
from simulators.potential1d.potentials import Potential, get_potential

INPUT_NAMES = ("x0", "v0", "t")
OUTPUT_NAMES = ("x",)
SEED_LIMIT = 2**32

# Sub-streams of one query's key; fixed forever, or stored runs would stop reproducing.
_DYNAMICS_STREAM = 0
_OBSERVATION_STREAM = 1


def query_hashes(queries: np.ndarray) -> np.ndarray:
    """A 64-bit blake2b digest of each query row's float64 bytes: (n, dim) -> uint32 (n, 2).

    -0.0 is hashed as 0.0 (they are the same input); every other bit of the value counts.
    """
    rows = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype="<f8")) + 0.0)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows)
    return np.frombuffer(digests, dtype="<u4").reshape(len(rows), 2).astype(np.uint32)


def _derive_keys(seed, hashes):
    base = jax.random.key(seed)
    return jax.vmap(lambda h: jax.random.fold_in(jax.random.fold_in(base, h[0]), h[1]))(hashes)


@jax.jit
def _key_data(seed, hashes):
    return jax.random.key_data(_derive_keys(seed, hashes))


@functools.partial(jax.jit, static_argnames="dtype")
def _streams(seed, hashes, dtype):
    """Per query: key data for the dynamics, and one standard normal for the observation."""
    keys = _derive_keys(seed, hashes)
    dynamics = jax.vmap(lambda k: jax.random.fold_in(k, _DYNAMICS_STREAM))(keys)
    normal = jax.vmap(
        lambda k: jax.random.normal(jax.random.fold_in(k, _OBSERVATION_STREAM), dtype=dtype)
    )(keys)
    return jax.random.key_data(dynamics), normal


def _padded_hashes(queries: np.ndarray) -> tuple[np.ndarray, int]:
    hashes = query_hashes(queries)
    n = len(hashes)
    # Padded like the integrator's batches, so varying batch sizes reuse a few compilations.
    return np.pad(hashes, ((0, bucket_size(n) - n), (0, 0))), n


def query_keys(queries: np.ndarray, seed: int) -> jax.Array:
    """One PRNG key per query, from the seed and the query's bytes: (n, dim) -> keys (n,).

    The oracle splits each key into fixed sub-streams (dynamics, observation noise).
    """
    hashes, n = _padded_hashes(queries)
    return jax.random.wrap_key_data(np.asarray(_key_data(np.uint32(check_seed(seed)), hashes))[:n])


def check_seed(seed) -> int:
    """`seed` as an int in [0, 2**32), or ValueError."""
    integer = isinstance(seed, int | np.integer) and not isinstance(seed, bool)
    if not integer or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def _check_range(name: str, value, *, min_low: float | None = None) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high, got {value!r}")
    if min_low is not None and low < min_low:
        raise ValueError(f"{name} must start at >= {min_low}, got {value!r}")
    return low, high


@dataclass(frozen=True)
class Potential1D:
    """The simulator behind `make_oracle`: queries (n, 3) of (x0, v0, t) -> x(t), shape (n,).

    A frozen dataclass rather than a closure so that it pickles into spawned worker
    processes and shows its parameters in logs. Build it through `make_oracle`, which
    validates the parameters.
    """

    potential: Potential
    n_steps: int
    noise_std: float
    gamma: float
    kT: float
    seed: int
    dtype: str = "float32"

    @property
    def stochastic(self) -> bool:
        return self.noise_std > 0 or self.gamma > 0

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float64)
        if queries.ndim != 2 or queries.shape[1] != len(INPUT_NAMES):
            raise ValueError(
                f"queries must have shape (n, 3) for {INPUT_NAMES}, got {queries.shape}"
            )
        x0, v0, t = queries.T
        dtype = resolve_dtype(self.dtype)
        if self.stochastic:
            hashes, n = _padded_hashes(queries)
            streams = _streams(np.uint32(self.seed), hashes, dtype=dtype)
            dynamics, normal = (np.asarray(a)[:n] for a in streams)
        if self.gamma > 0:
            x = langevin_end(x0, v0, t, dynamics, gamma=self.gamma, kT=self.kT,
                             potential=self.potential, n_steps=self.n_steps, dtype=dtype)
        else:
            x = trajectory_end(x0, v0, t, potential=self.potential, n_steps=self.n_steps,
                               dtype=dtype)
        # The integrator is exact at t = 0 in its own precision; give back the float64 input.
        x = np.where(t == 0, x0, np.asarray(x, dtype=np.float64))
        if self.noise_std > 0:
            x = x + self.noise_std * normal.astype(np.float64)
        return x


def make_oracle(
    potential: str | Potential = "anharmonic",
    x0_range: Sequence[float] = (-2.0, 2.0),
    v0_range: Sequence[float] = (-2.0, 2.0),
    t_range: Sequence[float] = (0.0, 5.0),
    n_steps: int = 1000,
    noise_std: float = 0.0,
    gamma: float = 0.0,
    kT: float = 0.0,
    seed: int = 0,
    dtype: str = "float32",
) -> FunctionOracle:
    """The particle-in-a-potential oracle: inputs (x0, v0, t), output x(t).

    Args:
        potential: a name in `POTENTIALS` ("anharmonic", "double_well", "morse", "pendulum")
            or a `Potential`.
        x0_range, v0_range, t_range: (low, high) bounds of the input box; t starts at >= 0.
        n_steps: integrator steps per trajectory, whatever its t (dt = t / n_steps).
        noise_std: standard deviation of Gaussian noise added to each observed x(t).
        gamma, kT: Langevin friction rate and temperature; gamma = 0 gives Hamiltonian
            dynamics, kT > 0 needs gamma > 0.
        seed: integer in [0, 2**32); with the query's bytes it fixes all of a query's noise.
        dtype: "float32", or "float64" when JAX 64-bit mode is on.

    Returns:
        A `FunctionOracle` whose `run(queries)` takes shape (n, 3) and gives y of shape (n, 1).

    Raises:
        ValueError: naming the bad parameter and its value.
    """
    ranges = (
        _check_range("x0_range", x0_range),
        _check_range("v0_range", v0_range),
        _check_range("t_range", t_range, min_low=0.0),
    )
    noise_std = float(noise_std)
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    gamma, kT = check_langevin(gamma, kT)
    simulator = Potential1D(
        potential=get_potential(potential),
        n_steps=check_n_steps(n_steps),
        noise_std=noise_std,
        gamma=gamma,
        kT=kT,
        seed=check_seed(seed),
        dtype=resolve_dtype(dtype).name,
    )
    space = Box(
        names=INPUT_NAMES,
        lower=tuple(low for low, _ in ranges),
        upper=tuple(high for _, high in ranges),
    )
    return FunctionOracle(fn=simulator, space=space, outputs=OutputSpec(names=OUTPUT_NAMES))
