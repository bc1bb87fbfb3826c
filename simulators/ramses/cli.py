"""Command line: `python -m simulators.ramses {info,grid,project} OUTPUT_DIR ...`.

    python -m simulators.ramses info output_00002 [--json]
    python -m simulators.ramses grid output_00002 --field density [--level L] --out rho.npy
    python -m simulators.ramses project output_00002 --axis z [--log] --out sigma.npy

Arrays are saved with numpy.save, indexed [x, y, z] (a projection keeps the other axes in order).
Errors print one line, `ramses: error: ...`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simulators.ramses.fortran import RamsesFormatError
from simulators.ramses.grids import AXES, column_density, log_column_density, paint
from simulators.ramses.reader import RamsesOutput, read_output

PROG = "ramses"


def _summary(output: RamsesOutput) -> dict:
    info, cells = output.info, output.cells
    return {
        "path": str(output.path),
        "output": output.number,
        "ndim": info.ndim,
        "ncpu": info.ncpu,
        "time": info.time,
        "boxlen": info.boxlen,
        "levelmin": info.levelmin,
        "levelmax": info.levelmax,
        "cells_per_level": {str(k): v for k, v in cells.count_per_level().items()},
        "cells": len(cells),
        "variables": list(output.variables),
        "gamma": output.gamma,
        "total_mass": cells.integral("density") if "density" in cells.fields else None,
        "units": {"unit_l": info.units.unit_l, "unit_d": info.units.unit_d,
                  "unit_t": info.units.unit_t},
        "ordering": info.ordering,
    }


def _info_text(summary: dict) -> str:
    per_level = ", ".join(f"{lv}: {n}" for lv, n in summary["cells_per_level"].items())
    units = summary["units"]
    lines = [
        f"output      {summary['path']} (number {summary['output']})",
        f"ndim        {summary['ndim']}",
        f"ncpu        {summary['ncpu']} ({summary['ordering']} ordering)",
        f"time        {summary['time']!r} (code units)",
        f"boxlen      {summary['boxlen']!r} (code units)",
        f"levels      levelmin {summary['levelmin']}, levelmax {summary['levelmax']}",
        f"leaf cells  {summary['cells']} (level: count  {per_level})",
        f"variables   {', '.join(summary['variables'])} (gamma {summary['gamma']!r})",
        f"units       unit_l = {units['unit_l']!r} cm, unit_d = {units['unit_d']!r} g/cm^3, "
        f"unit_t = {units['unit_t']!r} s",
    ]
    if summary["total_mass"] is not None:
        lines.append(f"total mass  {summary['total_mass']!r} (code units)")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, sub-commands' too: `ramses: error: ...` (argparse would print
    the usage first and say `ramses grid:`)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Read RAMSES outputs: metadata, uniform grids, column densities.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    info = commands.add_parser("info", help="levels, cells per level, variables, time, units")
    info.add_argument("output", type=Path, help="output directory (output_NNNNN)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    grid = commands.add_parser("grid", help="a variable on a uniform grid, saved as .npy")
    grid.add_argument("output", type=Path, help="output directory (output_NNNNN)")
    grid.add_argument("--field", default="density", help="hydro variable (default density)")
    grid.add_argument("--level", type=int, default=None,
                      help="grid level (default: the finest level with cells)")
    grid.add_argument("--weight", default=None,
                      help="variable weighting the average of finer cells (default: volume)")
    grid.add_argument("--out", type=Path, required=True, help="destination .npy file")

    project = commands.add_parser("project", help="column density along an axis, saved as .npy")
    project.add_argument("output", type=Path, help="output directory (output_NNNNN)")
    project.add_argument("--axis", default="z", choices=AXES, help="line of sight (default z)")
    project.add_argument("--field", default="density", help="hydro variable (default density)")
    project.add_argument("--level", type=int, default=None,
                         help="grid level (default: the finest level with cells)")
    project.add_argument("--log", action="store_true", help="save log10 of the column density")
    project.add_argument("--out", type=Path, required=True, help="destination .npy file")
    return parser


# paint and the projections hold about three float64 arrays of the result's size at once.
BYTES_PER_GRID_CELL = 3 * 8


def _check_out(path: Path) -> None:
    """Refuse an --out that cannot be written, before reading anything."""
    if path.suffix != ".npy":
        raise ValueError(f"--out {path}: expected a .npy file name")
    if path.is_dir():
        raise ValueError(f"--out {path}: is a directory")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {path}: directory {path.parent} does not exist")


def _save(path: Path, array: np.ndarray) -> None:
    """np.save, whole or not at all: written beside `path`, then renamed over it, so that a
    failed write leaves an earlier file as it was."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(scratch, "wb") as f:
            np.save(f, array)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def _physical_memory() -> int | None:
    """Bytes of memory of this machine, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_fits(level: int | None, finest: int, dims: int) -> None:
    """Refuse a grid of `dims` axes at `level` that cannot fit in memory, before allocating it:
    an allocation past it fails late or gets the process killed, not in one line."""
    level = finest if level is None else level
    if not 0 <= level <= 30:
        return  # the grids' own check says what the levels may be
    needed = BYTES_PER_GRID_CELL * 2 ** (dims * level)
    memory = _physical_memory()
    if memory is not None and needed > memory:
        raise ValueError(f"--level {level}: a grid of {2**level}^{dims} cells needs about "
                         f"{needed / 2**30:.3g} GiB, more than this machine's {memory / 2**30:.3g} GiB")


def _run(args: argparse.Namespace) -> str:
    if args.command == "info":
        summary = _summary(read_output(args.output))
        return json.dumps(summary, indent=2) if args.json else _info_text(summary)
    _check_out(args.out)
    if args.command == "grid":
        output = read_output(args.output, variables=sorted({args.field, args.weight} - {None}))
        _check_fits(args.level, output.cells.finest_level, output.ndim)
        array = paint(output, args.field, level=args.level, weight=args.weight)
    else:
        output = read_output(args.output, variables=[args.field])
        project = log_column_density if args.log else column_density
        if output.ndim <= AXES.index(args.axis):
            raise ValueError(f"--axis {args.axis}: the output is {output.ndim}-D")
        _check_fits(args.level, output.cells.finest_level, output.ndim - 1)
        array = project(output, args.axis, level=args.level, field=args.field)
    _save(args.out, array)
    return f"wrote {args.out}: {array.dtype} array of shape {array.shape}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0, or 2 on any error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        print(_run(args))
    except MemoryError as exc:
        parser.exit(2, f"{PROG}: error: not enough memory ({exc})\n")
    except (RamsesFormatError, KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        message = " ".join(str(message).split("\n"))  # one line, whatever raised it
        parser.exit(2, f"{PROG}: error: {message}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
