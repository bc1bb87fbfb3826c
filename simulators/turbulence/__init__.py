"""Isothermal supersonic turbulence in a periodic box: the talk's third case, simulated in JAX.

A finite-volume solver of the isothermal Euler equations (Rusanov or HLL fluxes, first or
second order, CFL steps in one compiled loop) evolves a 10 pc box of uniform molecular gas
stirred by a divergence-free Gaussian random velocity field with spectrum k^-n; projected
log column-density maps of the result are what a learner sees.

    >>> from simulators.turbulence import make_oracle, simulate
    >>> run = simulate(11 / 3, n_cells=32, seed=1)          # code units, arrays [x, y, z]
    >>> run.density.shape, run.velocity.shape
    ((32, 32, 32), (3, 32, 32, 32))
    >>> oracle = make_oracle(n_cells=32, output="summary")
    >>> oracle.run(oracle.space.draw(2, seed=0)).y.shape
    (2, 2)

`surrogate.lognormal_density` is a fast lognormal stand-in for tests (a surrogate, not physics);
`write_ramses` stores a run as a RAMSES output; `build_dataset` turns many runs into the
talk's augmented training images, split by run, as zarr. See README.md for the physics, units and options.
"""

from simulators.turbulence.errors import InvalidSetting, SimulationError
from simulators.turbulence.fields import (
    gaussian_field,
    power_spectrum,
    solenoidal_velocity,
    spectral_divergence,
    spectral_slope,
)
from simulators.turbulence.images import (
    column_density,
    column_summary,
    log_column_image,
    resample,
)
from simulators.turbulence.oracle import (
    TurbulenceOracle,
    TurbulenceSimulator,
    make_oracle,
    run_seed,
)
from simulators.turbulence.riemann import sample as riemann_solution
from simulators.turbulence.riemann import star_state
from simulators.turbulence.simulation import TurbulenceRun, initial_state, simulate
from simulators.turbulence.solver import (
    Evolution,
    Scheme,
    State,
    evolve,
    evolve_checked,
    from_primitive,
    stable_time_step,
    step,
)
from simulators.turbulence.surrogate import lognormal_density
from simulators.turbulence.units import CloudSetup, CodeUnits, sound_speed_cm_s

_RAMSES_NAMES = ("namelist_text", "ramses_fields", "ramses_units", "write_ramses")
_DATASET_NAMES = ("build_dataset", "hydro_density", "run_images", "split_by_run")
_INDEX_NAMES = ("IndexCommittee", "flipped", "index_error", "resolution_cost", "resolution_proxy")


def __getattr__(name: str):
    # Imported on first use, so that the solver loads neither the RAMSES package nor zarr.
    if name in _RAMSES_NAMES:
        from simulators.turbulence import ramses_output

        return getattr(ramses_output, name)
    if name in _DATASET_NAMES:
        from simulators.turbulence import dataset

        return getattr(dataset, name)
    if name in _INDEX_NAMES:
        # Learning n from maps needs Flax; the solver does not.
        from simulators.turbulence import index

        return getattr(index, name)
    raise AttributeError(f"module 'simulators.turbulence' has no attribute {name!r}")


__all__ = [
    "CloudSetup",
    "CodeUnits",
    "Evolution",
    "IndexCommittee",
    "InvalidSetting",
    "Scheme",
    "SimulationError",
    "State",
    "TurbulenceOracle",
    "TurbulenceRun",
    "TurbulenceSimulator",
    "build_dataset",
    "column_density",
    "column_summary",
    "evolve",
    "evolve_checked",
    "flipped",
    "from_primitive",
    "gaussian_field",
    "hydro_density",
    "index_error",
    "initial_state",
    "log_column_image",
    "lognormal_density",
    "make_oracle",
    "namelist_text",
    "power_spectrum",
    "ramses_fields",
    "ramses_units",
    "resample",
    "resolution_cost",
    "resolution_proxy",
    "riemann_solution",
    "run_images",
    "run_seed",
    "simulate",
    "solenoidal_velocity",
    "sound_speed_cm_s",
    "spectral_divergence",
    "spectral_slope",
    "split_by_run",
    "stable_time_step",
    "star_state",
    "step",
    "write_ramses",
]
