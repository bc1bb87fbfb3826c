"""One-dimensional potentials V(x) for a unit-mass particle.

Each potential is an elementwise JAX function; the force is -dV/dx by `jax.grad`, so a new
potential only needs V. Energies and forces are in units where the mass is 1.

Registry (`POTENTIALS`):
    anharmonic   V = x^2/2 + x^4/4          single well, minimum V(0) = 0 (the default)
    double_well  V = x^4/4 - x^2/2          minima V(+-1) = -1/4, barrier V(0) = 0
    morse        V = D (1 - exp(-a x))^2    D = 1 (well depth), a = 1 (inverse width);
                                            minimum V(0) = 0, unbound for E >= D, steep for x < 0
    pendulum     V = 1 - cos x              minimum V(0) = 0, rotates over the top for E > 2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

MORSE_D = 1.0
MORSE_A = 1.0


@dataclass(frozen=True)
class Potential:
    """A named potential energy V(x), elementwise on arrays of any shape.

    Hashable (V is compared by identity), so it can key a cache of compiled integrators.
    """

    name: str
    V: Callable[[jax.Array], jax.Array] = field(repr=False)
    formula: str = ""

    def force(self, x: jax.Array) -> jax.Array:
        """-dV/dx, same shape as `x`."""
        # Summing first makes jax.grad elementwise for any array shape, because V acts per element.
        return -jax.grad(lambda y: jnp.sum(self.V(y)))(x)


def _anharmonic(x):
    return 0.5 * x**2 + 0.25 * x**4


def _double_well(x):
    return 0.25 * x**4 - 0.5 * x**2


def _morse(x):
    return MORSE_D * (1.0 - jnp.exp(-MORSE_A * x)) ** 2


def _pendulum(x):
    return 1.0 - jnp.cos(x)


POTENTIALS: dict[str, Potential] = {
    "anharmonic": Potential("anharmonic", _anharmonic, "x^2/2 + x^4/4"),
    "double_well": Potential("double_well", _double_well, "x^4/4 - x^2/2"),
    "morse": Potential("morse", _morse, f"D (1 - exp(-a x))^2, D = {MORSE_D}, a = {MORSE_A}"),
    "pendulum": Potential("pendulum", _pendulum, "1 - cos x"),
}


def get_potential(potential: str | Potential) -> Potential:
    """Look a potential up by name, or pass a `Potential` through unchanged."""
    if isinstance(potential, Potential):
        return potential
    try:
        return POTENTIALS[potential]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown potential {potential!r}; valid names: {', '.join(sorted(POTENTIALS))}"
        ) from None
