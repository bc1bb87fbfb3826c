"""A finished run as a RAMSES output, through `simulators.ramses.write_uniform`.

The learner then reads the box exactly as it would read one RAMSES wrote. Code units carry
over unchanged: boxlen = 1 and unit_l = box side, unit_d = mean density, unit_t = L / c_s, so
the velocity unit unit_l / unit_t is the sound speed. The variables are RAMSES's hydro order:
density, velocity_x, velocity_y, velocity_z, pressure (rho c_s^2 = rho in code units; the
adiabatic index is written as 1, the gas being isothermal). RAMSES grids are 2^L cells a side,
so only power-of-two runs can be written.

The run's own parameters go into `namelist.txt`, in the groups RAMSES uses for the same
settings (AMR_PARAMS, HYDRO_PARAMS with riemann = 'llf' for Rusanov, UNITS_PARAMS) plus a
TURBULENCE_IC group (velocity_index, velocity_seed, rms_mach) that RAMSES itself lacks, so that
`simulators.ramses.pool_oracle_from_namelists` can read them, e.g. {"n":
"TURBULENCE_IC/velocity_index"}.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from simulators.ramses import Units, write_uniform
from simulators.turbulence.errors import InvalidSetting
from simulators.turbulence.simulation import TurbulenceRun
from simulators.turbulence.solver import DEFAULT_SCHEME, Scheme

AXIS_NAMES = ("x", "y", "z")
_RAMSES_RIEMANN = {"rusanov": "llf", "hll": "hll"}
# RAMSES's slope_type: 0 first order, 1 minmod, 2 monotonized central; van Leer has none.
_RAMSES_SLOPE = {"minmod": 1, "mc": 2}


def ramses_fields(run: TurbulenceRun) -> dict[str, np.ndarray]:
    """The run's fields by RAMSES variable name, float64 arrays (N,) * ndim in code units."""
    fields = {"density": np.asarray(run.density, dtype=np.float64)}
    for axis, component in enumerate(run.velocity):
        fields[f"velocity_{AXIS_NAMES[axis]}"] = np.asarray(component, dtype=np.float64)
    fields["pressure"] = fields["density"].copy()  # rho c_s^2 with c_s = 1
    return fields


def ramses_units(run: TurbulenceRun) -> Units:
    """The run's code units as RAMSES's (unit_l, unit_d, unit_t) in cgs."""
    units = run.setup.units
    return Units(unit_l=units.length_cm, unit_d=units.density_g_cm3, unit_t=units.time_s)


def namelist_text(run: TurbulenceRun, scheme: Scheme) -> str:
    """A RAMSES-style namelist recording the run's grid, scheme, units and initial field."""
    n = run.density.shape[0]
    level = int(np.log2(n))
    units = ramses_units(run)
    slope = 0 if scheme.order == 1 else _RAMSES_SLOPE.get(scheme.limiter, 1)
    return "\n".join([
        "&RUN_PARAMS", "hydro=.true.", f"nstepmax={run.steps}", "/", "",
        "&AMR_PARAMS", f"levelmin={level}", f"levelmax={level}", "boxlen=1.0", "/", "",
        "&HYDRO_PARAMS", f"riemann='{_RAMSES_RIEMANN[scheme.riemann]}'",
        f"slope_type={slope}", f"courant_factor={scheme.cfl!r}", "/", "",
        "&UNITS_PARAMS", f"units_density={units.unit_d!r}", f"units_time={units.unit_t!r}",
        f"units_length={units.unit_l!r}", "/", "",
        "&TURBULENCE_IC", f"velocity_index={run.index!r}", f"velocity_seed={run.seed}",
        f"rms_mach={run.setup.mach!r}", f"temperature_k={run.setup.temperature_k!r}",
        f"mean_molecular_weight={run.setup.mean_molecular_weight!r}", "/", "",
    ])


def write_ramses(output_dir: str | os.PathLike, run: TurbulenceRun, *,
                 scheme: Scheme = DEFAULT_SCHEME, iout: int | None = None,
                 overwrite: bool = False) -> Path:
    """Write `run` as the RAMSES output directory `output_dir` (e.g. `run7/output_00001`).

    Args:
        output_dir: directory to create.
        run: a finished run with a power-of-two grid.
        scheme: the scheme the run used (recorded in the namelist).
        iout, overwrite: as for `simulators.ramses.write_uniform`.

    Returns:
        The output directory's path.
    """
    n = run.density.shape[0]
    if n & (n - 1):
        raise InvalidSetting(f"RAMSES grids are 2^L cells a side; this run has n_cells = {n}")
    return write_uniform(output_dir, ramses_fields(run), boxlen=1.0, time=run.time,
                         units=ramses_units(run), gamma=1.0, iout=iout, nstep_coarse=run.steps,
                         namelist=namelist_text(run, scheme), overwrite=overwrite)
