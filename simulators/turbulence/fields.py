"""Gaussian random fields on a periodic grid: power-law spectra, solenoidal velocities, spectra.

Wavevectors are integer mode numbers m = (m_x, m_y, m_z) (the physical wavenumber is
2 pi m / L for a box of side L); |m| is the mode's wavenumber in units of the box. A field of
spectral index n has Fourier amplitudes sqrt(P(|m|)) xi(m) with P(k) = k^-n, xi a complex
normal per component (E|xi|^2 = 1), on the modes 1 <= |m| < N/2 (the mean, the Nyquist planes and
the anisotropic cube corners are left out). P is the 3-D (per-mode) spectrum: Kolmogorov's
shell spectrum E(k) ~ k^-5/3 is n = 11/3, Burgers' E(k) ~ k^-2 is n = 4.

The normal xi(m) of each mode is a hash of the key and of m itself, not of its position in
an array: the same seed gives the same large-scale modes on every grid, so a
low-resolution field is the high-resolution one with its small scales removed (the property
a multi-fidelity proxy needs). This holds for grids up to `MAX_CELLS` cells per side.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

from simulators.turbulence.errors import InvalidSetting

MAX_CELLS = 1024
_LATTICE = MAX_CELLS  # mode numbers are folded in as (m + MAX_CELLS/2) in a 1024^ndim lattice


def check_grid(shape) -> tuple[int, ...]:
    """`shape` as a tuple of 1 to 3 equal even sizes in [4, MAX_CELLS], or InvalidSetting."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InvalidSetting(f"grid shape must be a tuple of integers, got {shape!r}") from None
    if not 1 <= len(shape) <= 3 or len(set(shape)) != 1:
        raise InvalidSetting(f"grid shape must have 1 to 3 equal sides, got {shape}")
    n = shape[0]
    if n % 2 or not 4 <= n <= MAX_CELLS:
        raise InvalidSetting(f"grid side must be even and in [4, {MAX_CELLS}], got {n}")
    return shape


def mode_numbers(shape) -> np.ndarray:
    """Integer wavevectors of an FFT grid: (ndim, *shape) int, m_d in [-N/2, N/2)."""
    axes = [np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def _mode_grid(shape: tuple[int, ...]) -> jax.Array:
    """`mode_numbers` on the device, int32, for use inside compiled code."""
    n = shape[0]
    axis = (jnp.arange(n, dtype=jnp.int32) + n // 2) % n - n // 2
    return jnp.stack(jnp.meshgrid(*([axis] * len(shape)), indexing="ij"))


def _mode_noise(key, lattice, components: int):
    """Complex standard normals, (components, *lattice.shape) complex64, one per mode and
    component, each a function of (key, the mode's lattice number, component) alone.

    Box-Muller on one threefry-2x32 hash per value: the two 32-bit words give two uniforms
    in (0, 1] (23 bits each), which make one complex normal with independent unit-variance
    real and imaginary parts halves. Three times faster than `jax.random.normal` under a key
    folded per mode, and compiles in half the time.
    """
    words = jax.random.key_data(key)
    flat = lattice.ravel()
    draws = []
    for component in range(components):
        bits = threefry_2x32(words, jnp.stack([flat, jnp.full_like(flat, component)]))
        u1, u2 = (((b >> 9).astype(jnp.float32) + 1.0) * (1.0 / 2**23) for b in bits)
        radius = jnp.sqrt(-jnp.log(u1))  # |z|^2 ~ Exp(1): E|z|^2 = 1, each half variance 1/2
        angle = (2.0 * np.pi) * u2
        draws.append(jax.lax.complex(radius * jnp.cos(angle), radius * jnp.sin(angle)))
    # Materialise the draws: left to itself, XLA fuses the hashing into every consumer and
    # repeats it.
    return jax.lax.optimization_barrier(jnp.stack(draws).reshape(components, *lattice.shape))


@functools.partial(jax.jit, static_argnames=("shape", "components", "solenoidal", "dtype"))
def _random_field(key, index, rms, shape: tuple[int, ...], components: int, solenoidal: bool,
                  dtype):
    """(components, *shape) real field; see `gaussian_field` and `solenoidal_velocity`."""
    n = shape[0]
    modes = _mode_grid(shape)
    lattice = jnp.zeros(shape, dtype=jnp.uint32)
    for m in modes:
        lattice = lattice * _LATTICE + (m + _LATTICE // 2).astype(jnp.uint32)
    noise = _mode_noise(jax.random.fold_in(key, len(shape)), lattice, components).astype(
        jnp.complex128 if dtype == jnp.float64 else jnp.complex64)
    m = modes.astype(dtype)
    k2 = jnp.sum(m * m, axis=0)
    k = jnp.sqrt(k2)
    kept = (k >= 1.0) & (k < n / 2)
    amplitude = jnp.where(kept, jnp.where(kept, k, 1.0) ** (-index / 2.0), 0.0)
    coefficients = amplitude * noise
    if solenoidal:
        along = jnp.sum(m * coefficients, axis=0) / jnp.maximum(k2, 1.0)
        coefficients = coefficients - m * along[None]
    axes = tuple(range(1, len(shape) + 1))
    field = jnp.real(jnp.fft.ifftn(coefficients, axes=axes)).astype(dtype)
    return field * (rms / jnp.sqrt(jnp.mean(jnp.sum(field**2, axis=0))))


def check_index(index) -> float:
    """A spectral index as a float in [0, 10], or InvalidSetting."""
    try:
        value = float(index)
    except (TypeError, ValueError):
        raise InvalidSetting(f"spectral index n must be a number, got {index!r}") from None
    if not 0.0 <= value <= 10.0:
        raise InvalidSetting(f"spectral index n must be in [0, 10], got {index!r}")
    return value


def gaussian_field(key, shape, index: float, *, rms: float = 1.0, dtype="float32") -> jax.Array:
    """A zero-mean real Gaussian random field with P(k) ~ k^-index, scaled to `rms`.

    Args:
        key: JAX PRNG key; with the index it fixes the field.
        shape: (N,) * ndim grid, ndim in 1..3, N even.
        index: spectral index n of the per-mode power spectrum.
        rms: root-mean-square of the returned field.

    Returns:
        (*shape,) array in `dtype`.
    """
    field = _random_field(key, check_index(index), float(rms), check_grid(shape), 1, False,
                          jnp.dtype(dtype))
    return field[0]


def solenoidal_velocity(key, shape, index: float, *, rms: float = 1.0,
                        dtype="float32") -> jax.Array:
    """A divergence-free Gaussian random velocity field with P_v(k) ~ k^-index.

    Each mode's complex vector is projected onto the plane normal to its wavevector,
    v(m) <- v(m) - m (m . v(m)) / |m|^2, so m . v(m) = 0 for every mode of the returned field
    (to round-off); taking the real part keeps that, because the projector is even in m and
    the Nyquist planes, whose modes have no partner -m on the grid, are empty.

    Args:
        key, shape, index, dtype: as for `gaussian_field`; ndim = len(shape) >= 2.
        rms: root-mean-square speed sqrt(<|v|^2>) of the returned field.

    Returns:
        (ndim, *shape) velocity, component d along axis d.
    """
    shape = check_grid(shape)
    if len(shape) < 2:
        raise InvalidSetting(f"a solenoidal field needs 2 or 3 dimensions, got shape {shape}")
    return _random_field(key, check_index(index), float(rms), shape, len(shape), True,
                         jnp.dtype(dtype))


# --- measurements (host-side numpy) ------------------------------------------------------------


def power_spectrum(field, *, vector: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Shell-averaged per-mode power spectrum of a periodic field.

    Args:
        field: (*grid,) scalar field, or (ndim, *grid) vector field when `vector`; grid is
            (N,) * ndim.
        vector: whether the leading axis holds components (their powers are summed).

    Returns:
        k: (N/2 - 1,) shell wavenumbers in box units: shell j (j = 1 .. N/2 - 1) holds the
            modes with round(|m|) = j, and k_j is their mean |m| (on a coarse lattice it
            differs from j by up to 10 %, which would bias a fitted slope).
        power: (N/2 - 1,) mean over the shell's modes of sum_c |f_c(m)|^2 / (number of cells)^2.
    """
    field = np.asarray(field, dtype=np.float64)
    components = field if vector else field[None]
    grid = check_grid(components.shape[1:])
    axes = tuple(range(1, components.ndim))
    spectrum = np.sum(np.abs(np.fft.fftn(components, axes=axes)) ** 2, axis=0)
    spectrum /= float(np.prod(grid)) ** 2
    k = np.sqrt(np.sum(mode_numbers(grid).astype(np.float64) ** 2, axis=0))
    shells = np.rint(k).astype(np.int64).ravel()
    n_shells = grid[0] // 2
    counts = np.bincount(shells, minlength=n_shells + 1)[1:n_shells]
    sums = np.bincount(shells, weights=spectrum.ravel(), minlength=n_shells + 1)[1:n_shells]
    k_sums = np.bincount(shells, weights=k.ravel(), minlength=n_shells + 1)[1:n_shells]
    return k_sums / np.maximum(counts, 1), sums / np.maximum(counts, 1)


def spectral_slope(k: np.ndarray, power: np.ndarray, k_range: tuple[float, float]) -> float:
    """Least-squares slope of log P against log k over k_range[0] <= k <= k_range[1]."""
    k, power = np.asarray(k), np.asarray(power)
    inside = (k >= k_range[0]) & (k <= k_range[1]) & (power > 0)
    if inside.sum() < 2:
        raise InvalidSetting(f"k_range {k_range} holds fewer than two shells with power")
    return float(np.polyfit(np.log(k[inside]), np.log(power[inside]), 1)[0])


def spectral_divergence(velocity) -> float:
    """max |m . v(m)| / max (|m| |v(m)|) over modes: 0 for a divergence-free field.

    Args:
        velocity: (ndim, *grid) field.
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    axes = tuple(range(1, velocity.ndim))
    coefficients = np.fft.fftn(velocity, axes=axes)
    modes = mode_numbers(velocity.shape[1:]).astype(np.float64)
    divergence = np.abs(np.sum(modes * coefficients, axis=0))
    scale = np.sqrt(np.sum(modes**2, axis=0)) * np.sqrt(np.sum(np.abs(coefficients) ** 2, axis=0))
    return float(divergence.max() / scale.max())
