"""RAMSES outputs: read them, paint and project them, write them, and query them as oracles.

    >>> from simulators.ramses import read_output, paint, column_density, write_uniform
    >>> out = read_output("output_00002")                  # leaf cells + metadata + units
    >>> rho = paint(out)                                    # (2^L,)*ndim at the finest level
    >>> sigma = column_density(out, "z")                    # (2^L, 2^L), indexed [x, y]
    >>> write_uniform("copy/output_00001", {"density": rho}, boxlen=out.boxlen)

The oracles (`RamsesPoolOracle`, `RamsesCommandOracle` and their builders, products such as
`ColumnDensityImage`) live in `simulators.ramses.oracle` and are imported on first use, so
that the reader and the command line start without loading the framework.
"""

from simulators.ramses.fortran import RamsesFormatError
from simulators.ramses.grids import (
    AXES,
    FLIPS,
    axis_number,
    column_density,
    flips,
    log_column_density,
    paint,
    quarter_cuts,
    training_images,
)
from simulators.ramses.hilbert import hilbert_keys
from simulators.ramses.namelist import NamelistError, parameter_value, read_namelist, set_values
from simulators.ramses.reader import (
    Cells,
    RamsesInfo,
    RamsesOutput,
    Units,
    read_descriptor,
    read_info,
    read_output,
)
from simulators.ramses.writer import sample_cells, uniform_cells, write_amr, write_uniform

_ORACLE_NAMES = (
    "ColumnDensityImage",
    "FieldGrid",
    "Product",
    "RamsesCommandOracle",
    "RamsesPoolOracle",
    "TrainingImages",
    "latest_output",
    "pool_oracle_from_namelists",
    "pool_oracle_from_table",
)


def __getattr__(name: str):
    if name in _ORACLE_NAMES:
        from simulators.ramses import oracle

        return getattr(oracle, name)
    raise AttributeError(f"module 'simulators.ramses' has no attribute {name!r}")


__all__ = [
    "AXES",
    "FLIPS",
    "Cells",
    "NamelistError",
    "RamsesFormatError",
    "RamsesInfo",
    "RamsesOutput",
    "Units",
    "axis_number",
    "column_density",
    "flips",
    "hilbert_keys",
    "log_column_density",
    "paint",
    "parameter_value",
    "quarter_cuts",
    "read_descriptor",
    "read_info",
    "read_namelist",
    "read_output",
    "sample_cells",
    "set_values",
    "training_images",
    "uniform_cells",
    "write_amr",
    "write_uniform",
    *_ORACLE_NAMES,
]
