"""A particle in a 1-D potential: inputs (x0, v0, t), output x(t).

The toy case of the design: a unit-mass particle started at x0 with velocity v0 in a potential
V(x), integrated by velocity Verlet (or BAOAB Langevin dynamics when friction is on) with a
fixed number of steps, optionally observed with Gaussian noise.

    >>> from simulators.potential1d import make_oracle
    >>> oracle = make_oracle("anharmonic", noise_std=0.01, seed=1)
    >>> outcome = oracle.run(oracle.space.draw(8, seed=0))
    >>> outcome.y.shape, bool(outcome.ok.all())
    ((8, 1), True)

The particle's energy, E = v0^2/2 + V(x0), is `energy(x0, v0, potential)`; V alone is
`potential_energy(x, potential)` (the energy of a particle at rest at x).
"""

from simulators.potential1d.integrator import (
    bucket_size,
    energy,
    energy_trace,
    langevin_end,
    potential_energy,
    trajectory_end,
)
from simulators.potential1d.oracle import Potential1D, make_oracle, query_hashes, query_keys
from simulators.potential1d.potentials import POTENTIALS, Potential, get_potential

__all__ = [
    "POTENTIALS",
    "Potential",
    "Potential1D",
    "bucket_size",
    "energy",
    "energy_trace",
    "get_potential",
    "langevin_end",
    "make_oracle",
    "potential_energy",
    "query_hashes",
    "query_keys",
    "trajectory_end",
]
