"""Read a RAMSES output directory into leaf cells: levels, integer positions, hydro variables.

A RAMSES output `output_NNNNN/` holds `info_NNNNN.txt` (run metadata and units),
`hydro_file_descriptor.txt` (variable names), and per CPU `amr_NNNNN.outCCCCC` (the oct tree)
and `hydro_NNNNN.outCCCCC` (the variables of every cell of every oct). Each CPU file lists,
level by level, the octs of every domain it holds (its own and copies of its neighbours'); only
its own domain's octs carry data, and a cell is a leaf where its `son` pointer is 0.

The reader loops over CPU files, levels and domains, never over octs or cells: each block of
records becomes one strided numpy view, and leaves are gathered with boolean masks.

    >>> out = read_output("output_00002")
    >>> out.cells.count_per_level()         # {level: number of leaf cells}
    >>> rho = out.cells.fields["density"]    # (n,) float64, code units
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from simulators.ramses.fortran import RamsesFormatError, RecordReader

__all__ = [
    "AmrHeader",
    "Cells",
    "RamsesFormatError",
    "RamsesInfo",
    "RamsesOutput",
    "TilingFault",
    "Units",
    "default_variable_names",
    "find_output_file",
    "output_number",
    "read_amr_header",
    "read_descriptor",
    "read_info",
    "read_output",
    "tiling_fault",
]

# Orderings whose amr files carry one `bound_key(0:ndomain)` record; bisection carries five.
KEY_ORDERINGS = ("hilbert", "planar", "angular")
BISECTION_RECORDS = 5
OUTPUT_DIR_RE = re.compile(r"output_(\d{5,})$")
INFO_RE = re.compile(r"info_(\d{5,})\.txt$")


class Units(NamedTuple):
    """Code units in cgs, as RAMSES writes them: length [cm], density [g/cm^3], time [s]."""

    unit_l: float = 1.0
    unit_d: float = 1.0
    unit_t: float = 1.0

    @property
    def unit_m(self) -> float:
        """Mass unit [g] of a 3-D run: unit_d * unit_l^3."""
        return self.unit_d * self.unit_l**3

    @property
    def unit_v(self) -> float:
        """Velocity unit [cm/s]."""
        return self.unit_l / self.unit_t


@dataclass(frozen=True)
class RamsesInfo:
    """The contents of `info_NNNNN.txt`.

    `boxlen` is the box side in code length units; `domains` holds the Hilbert key range
    (ind_min, ind_max) of each CPU domain, shape (ncpu, 2) (empty for other orderings);
    `extra` keeps any non-standard `name = value` lines.
    """

    ncpu: int
    ndim: int
    levelmin: int
    levelmax: int
    ngridmax: int
    nstep_coarse: int
    boxlen: float
    time: float
    aexp: float
    H0: float
    omega_m: float
    omega_l: float
    omega_k: float
    omega_b: float
    units: Units
    ordering: str
    domains: np.ndarray = field(repr=False)
    extra: Mapping[str, float | str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class AmrHeader:
    """What the reader needs from an amr file's header.

    `octs` is the number of octs per level and domain as listed in this file, shape
    (nlevelmax, ncpu + nboundary): domains 0..ncpu-1 are CPU domains, the rest boundaries.
    `nx` is the coarse grid, (3,); the box is its central cell.
    """

    ncpu: int
    ndim: int
    nx: tuple[int, int, int]
    nlevelmax: int
    ngridmax: int
    nboundary: int
    boxlen: float
    time: float
    octs: np.ndarray
    ordering: str


@dataclass(frozen=True)
class Cells:
    """Leaf cells of an AMR mesh in a box of side `boxlen`.

    Fields:
        level: (n,) int; the cell's refinement level L (size boxlen / 2^L).
        index: (n, ndim) int64; the cell's integer coordinates at its own level, in
            [0, 2^L); cell i spans [i, i + 1) * boxlen / 2^L along each axis.
        fields: name -> (n,) float64, in code units.
        boxlen: box side in code length units.
    """

    level: np.ndarray
    index: np.ndarray
    fields: Mapping[str, np.ndarray]
    boxlen: float = 1.0

    def __post_init__(self) -> None:
        level = np.asarray(self.level)
        index = np.asarray(self.index)
        if level.ndim != 1 or not np.issubdtype(level.dtype, np.integer):
            raise ValueError(f"Cells.level must be a 1-D integer array, got {level.dtype} "
                             f"of shape {level.shape}")
        if index.ndim != 2 or index.shape[0] != len(level) or not 1 <= index.shape[1] <= 3:
            raise ValueError(f"Cells.index must have shape (n={len(level)}, ndim in 1..3), "
                             f"got {index.shape}")
        if not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"Cells.index must be integer, got {index.dtype}")
        if len(level) and not 0 <= level.min() <= level.max() <= 52:
            raise ValueError(f"Cells.level must lie in [0, 52], got [{level.min()}, "
                             f"{level.max()}]")
        # Column by column: reductions along a length-ndim axis are slow in numpy.
        if len(level) and (index.min() < 0 or np.any(
                functools.reduce(np.maximum, index.T) >> level)):
            outside = np.any((index < 0) | (index >= np.left_shift(1, level.astype(
                np.int64))[:, None]), axis=1)
            first = int(np.argmax(outside))
            raise ValueError(f"Cells.index {index[first].tolist()} of cell {first} lies outside "
                             f"[0, 2^{int(level[first])}) at its level")
        fields = {}
        for name, values in self.fields.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != level.shape:
                raise ValueError(f"Cells field {name!r} has shape {values.shape}, "
                                 f"expected {level.shape}")
            fields[name] = values
        boxlen = float(self.boxlen)
        if not (math.isfinite(boxlen) and boxlen > 0):
            raise ValueError(f"Cells.boxlen must be a positive finite number, got {self.boxlen!r}")
        object.__setattr__(self, "level", level.astype(np.int32, copy=False))
        object.__setattr__(self, "index", index.astype(np.int64, copy=False))
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "boxlen", boxlen)

    def __len__(self) -> int:
        return len(self.level)

    @property
    def ndim(self) -> int:
        return self.index.shape[1]

    @property
    def size(self) -> np.ndarray:
        """Cell side in code length units, (n,)."""
        return self.boxlen * np.ldexp(1.0, -self.level)

    @property
    def position(self) -> np.ndarray:
        """Cell centres in code length units, box [0, boxlen]^ndim, (n, ndim)."""
        return (self.index + 0.5) * self.size[:, None]

    @property
    def volume(self) -> np.ndarray:
        """Cell volume (area in 2-D, length in 1-D) in code units, (n,)."""
        return self.size**self.ndim

    @property
    def finest_level(self) -> int:
        return int(self.level.max())

    @property
    def coarsest_level(self) -> int:
        return int(self.level.min())

    def count_per_level(self) -> dict[int, int]:
        """Number of leaf cells at each level present, {level: count}, levels ascending."""
        counts = np.bincount(self.level) if len(self) else np.zeros(0, np.int64)
        return {int(lv): int(c) for lv, c in enumerate(counts) if c}

    def by_level(self, *names: str):
        """Yield (level, index (m, ndim), [values (m,) of each name]) per level, ascending.

        The arrays themselves, not copies, where all cells share one level.
        """
        values = [self.fields[require_field(self, n)] for n in names]
        counts = self.count_per_level()
        if len(counts) == 1:
            yield next(iter(counts)), self.index, values
            return
        for level in counts:
            at = self.level == level
            yield level, self.index[at], [v[at] for v in values]

    def integral(self, name: str = "density") -> float:
        """Sum of field * cell volume over all leaves (the total mass for density)."""
        return float(np.sum(self.fields[require_field(self, name)] * self.volume))

    def select(self, mask: np.ndarray) -> Cells:
        """The cells where `mask` (n,) is true."""
        return Cells(self.level[mask], self.index[mask],
                     {k: v[mask] for k, v in self.fields.items()}, self.boxlen)


def require_field(cells: Cells, name: str) -> str:
    if name not in cells.fields:
        raise KeyError(f"no field {name!r}; available: {', '.join(cells.fields)}")
    return name


class TilingFault(NamedTuple):
    """How leaf cells fail to tile their box exactly once.

    `level` is where it shows, `rows` the leaves at fault (positions in the Cells; empty for a
    hole, which no leaf marks), `problem` a phrase saying what is wrong.
    """

    level: int
    rows: np.ndarray
    problem: str


def _cell_keys(index: np.ndarray, level: int) -> np.ndarray:
    """One sortable key per cell of `level`, (n,), equal exactly for equal coordinates: the
    coordinates packed into an int64 where they fit, else each row as one structured value."""
    ndim = index.shape[1]
    if ndim * level <= 62:
        keys = np.zeros(len(index), np.int64)
        for d in range(ndim):
            keys |= index[:, d] << (d * level)
        return keys
    rows = np.ascontiguousarray(index, dtype=np.int64)
    return rows.view([(f"axis{d}", np.int64) for d in range(ndim)]).reshape(-1)


def _covered_fraction(counts: Mapping[int, int], ndim: int) -> str:
    """The share of the box the leaves' volumes add up to, printed so that a tiny gap shows."""
    volume = math.fsum(n * 2.0 ** (-ndim * level) for level, n in counts.items())
    return f"{volume:.12g}"


def tiling_fault(cells: Cells) -> TilingFault | None:
    """The way `cells` fail to tile their box exactly once, or None when they tile it.

    A tiling needs, at every level: no leaf listed twice; no leaf that also holds finer leaves
    (a cell both leaf and refined, so two leaves overlap); and no hole: every cell of the
    level a leaf, refined, or inside a coarser leaf. Together these say the leaf volumes add
    up to the box's exactly, as integers, with no rounding to hide a missing fine cell. The
    coarsest level at fault is reported. One sort per level, from the finest up.
    """
    if not len(cells):
        return TilingFault(0, np.empty(0, np.int64), "no leaf cells")
    ndim = cells.ndim
    counts = cells.count_per_level()
    levels = sorted(counts)
    single = len(levels) == 1
    faults: list[TilingFault] = []
    refined = np.empty((0, ndim), np.int64)  # distinct cells of the level holding finer leaves
    refined_count: dict[int, int] = {}
    for level in range(levels[-1], levels[0] - 1, -1):
        rows = np.arange(len(cells)) if single else np.flatnonzero(cells.level == level)
        index = cells.index[rows]
        keys = _cell_keys(index, level)
        unique, counted = np.unique(keys, return_counts=True)
        if len(unique) < len(keys):
            twice = np.isin(keys, unique[counted > 1])
            faults.append(TilingFault(level, rows[twice], f"{int(np.sum(counted > 1))} leaf cells are listed "
                                                          f"more than once"))
        refined_count[level] = len(refined)
        if len(refined):
            both = np.isin(keys, _cell_keys(refined, level))
            if both.any():
                faults.append(TilingFault(level, rows[both], f"{int(both.sum())} leaf cells are refined too "
                                                             f"(finer leaves lie inside them)"))
        if level > levels[0]:
            parents = np.concatenate([refined, index]) >> 1
            _, first = np.unique(_cell_keys(parents, level - 1), return_index=True)
            refined = parents[first]
    if faults:
        return min(faults, key=lambda f: f.level)
    inside = 0  # cells of the level inside coarser leaves; Python ints, exact at any level
    for level in range(levels[0], levels[-1] + 1):
        leaves = counts.get(level, 0)
        missing = 2 ** (ndim * level) - leaves - refined_count[level] - inside
        if missing:
            return TilingFault(level, np.empty(0, np.int64),
                               f"{missing} of its {2 ** (ndim * level)} cells are neither leaves nor refined "
                               f"(a hole: the leaf volumes add up to {_covered_fraction(counts, ndim)} of the box)")
        inside = 2**ndim * (inside + leaves)
    return None


@dataclass(frozen=True)
class RamsesOutput:
    """One RAMSES output: where it is, its metadata and its leaf cells.

    `variables` are the hydro variables in file order (all of them, even if only some were
    read into `cells.fields`); `gamma` is the adiabatic index from the hydro files.
    """

    path: Path
    number: int
    info: RamsesInfo
    variables: tuple[str, ...]
    gamma: float
    cells: Cells

    @property
    def ndim(self) -> int:
        return self.info.ndim

    @property
    def boxlen(self) -> float:
        return self.info.boxlen

    @property
    def time(self) -> float:
        return self.info.time

    @property
    def units(self) -> Units:
        return self.info.units


# --------------------------------------------------------------------------- text files


def parse_fortran_float(text: str) -> float:
    """A Fortran real: accepts D exponents and the E-less form `0.1+100` of 3-digit exponents."""
    s = text.strip().replace("D", "E").replace("d", "e")
    try:
        return float(s)
    except ValueError:
        match = re.fullmatch(r"([+-]?[0-9.]+)([+-][0-9]{3})", s)
        if match:
            return float(f"{match.group(1)}e{match.group(2)}")
        raise


_INFO_INTS = ("ncpu", "ndim", "levelmin", "levelmax", "ngridmax", "nstep_coarse")
_INFO_FLOATS = ("boxlen", "time", "aexp", "H0", "omega_m", "omega_l", "omega_k", "omega_b",
                "unit_l", "unit_d", "unit_t")


def read_info(path: str | os.PathLike) -> RamsesInfo:
    """Parse `info_NNNNN.txt`; RamsesFormatError naming the file and the bad line otherwise."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise RamsesFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise RamsesFormatError(f"{path}: not a text file ({exc})") from None
    values: dict[str, float | str] = {}
    ordering = None
    domains = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if ordering is None and "=" in line:
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if key == "ordering type":
                ordering = value
                continue
            if key in _INFO_INTS:
                try:
                    values[key] = int(value)
                except ValueError:
                    raise RamsesFormatError(f"{path}: line {number}: {key} = {value!r} is not "
                                            f"an integer") from None
            else:
                try:
                    values[key] = parse_fortran_float(value)
                except ValueError:
                    if key in _INFO_FLOATS:
                        raise RamsesFormatError(f"{path}: line {number}: {key} = {value!r} is "
                                                f"not a number") from None
                    values[key] = value
        elif ordering is not None:
            parts = line.split()
            if parts and parts[0].isdigit() and len(parts) == 3:
                try:
                    domains.append((parse_fortran_float(parts[1]), parse_fortran_float(parts[2])))
                except ValueError:
                    raise RamsesFormatError(f"{path}: line {number}: bad domain line "
                                            f"{line.strip()!r}") from None
    missing = [k for k in (*_INFO_INTS, *_INFO_FLOATS) if k not in values]
    if missing:
        raise RamsesFormatError(f"{path}: missing {', '.join(missing)}")
    if ordering is None:
        raise RamsesFormatError(f"{path}: missing 'ordering type'")
    ndim = values["ndim"]
    if ndim not in (1, 2, 3):
        raise RamsesFormatError(f"{path}: ndim = {ndim}, expected 1, 2 or 3")
    if values["ncpu"] < 1:
        raise RamsesFormatError(f"{path}: ncpu = {values['ncpu']}, expected >= 1")
    if not 1 <= values["levelmin"] <= values["levelmax"]:
        raise RamsesFormatError(f"{path}: levelmin = {values['levelmin']}, levelmax = "
                                f"{values['levelmax']}; expected 1 <= levelmin <= levelmax")
    if not values["boxlen"] > 0:
        raise RamsesFormatError(f"{path}: boxlen = {values['boxlen']}, expected > 0")
    standard = set(_INFO_INTS) | set(_INFO_FLOATS)
    return RamsesInfo(
        **{k: values[k] for k in _INFO_INTS},
        **{k: values[k] for k in _INFO_FLOATS if not k.startswith("unit_")},
        units=Units(values["unit_l"], values["unit_d"], values["unit_t"]),
        ordering=ordering,
        domains=np.array(domains, dtype=np.float64).reshape(-1, 2),
        extra={k: v for k, v in values.items() if k not in standard},
    )


def default_variable_names(ndim: int, nvar: int) -> tuple[str, ...]:
    """RAMSES's hydro layout without a descriptor: density, velocities, pressure, scalars."""
    names = ["density", *(f"velocity_{c}" for c in "xyz"[:ndim]), "pressure"]
    names += [f"scalar_{i:02d}" for i in range(1, nvar - len(names) + 1)]
    return tuple(names[:nvar])


_NEW_STYLE_RE = re.compile(r"#\s*version:\s*(\d+)")
_NEW_LINE_RE = re.compile(r"^\s*(\d+)\s*,\s*([^,\s]+)\s*,\s*([^,\s]+)\s*$")
_OLD_NVAR_RE = re.compile(r"^\s*nvar\s*=\s*(\d+)\s*$")
_OLD_LINE_RE = re.compile(r"^\s*variable\s*#\s*(\d+)\s*:\s*(\S+)\s*$")


def read_descriptor(path: str | os.PathLike) -> tuple[str, ...]:
    """Variable names from `hydro_file_descriptor.txt`, in file order.

    Both styles are read: the 2017+ one (`# version:  1`, then lines `ivar, name, type`) and
    the older one (`nvar = N`, then lines `variable #  i: name`).
    """
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        raise RamsesFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise RamsesFormatError(f"{path}: not a text file ({exc})") from None
    if not lines:
        raise RamsesFormatError(f"{path}: empty file descriptor")
    entries: list[tuple[int, str]] = []
    version = _NEW_STYLE_RE.match(lines[0])
    if version:
        if version.group(1) != "1":
            raise RamsesFormatError(f"{path}: descriptor version {version.group(1)}, "
                                    f"only version 1 is known")
        for number, line in enumerate(lines[1:], start=2):
            if line.lstrip().startswith("#"):
                continue
            match = _NEW_LINE_RE.match(line)
            if not match:
                raise RamsesFormatError(f"{path}: line {number}: expected 'ivar, name, type', "
                                        f"got {line.strip()!r}")
            if match.group(3) != "d":
                raise RamsesFormatError(f"{path}: line {number}: variable {match.group(2)!r} "
                                        f"has type {match.group(3)!r}; only 'd' (float64) is "
                                        f"supported")
            entries.append((int(match.group(1)), match.group(2)))
        declared = None
    else:
        match = _OLD_NVAR_RE.match(lines[0])
        if not match:
            raise RamsesFormatError(f"{path}: line 1: expected '# version: 1' or 'nvar = N', "
                                    f"got {lines[0].strip()!r}")
        declared = int(match.group(1))
        for number, line in enumerate(lines[1:], start=2):
            match = _OLD_LINE_RE.match(line)
            if not match:
                raise RamsesFormatError(f"{path}: line {number}: expected 'variable # i: name', "
                                        f"got {line.strip()!r}")
            entries.append((int(match.group(1)), match.group(2)))
    numbers = [i for i, _ in entries]
    if numbers != list(range(1, len(entries) + 1)):
        raise RamsesFormatError(f"{path}: variables are numbered {numbers}, expected 1.."
                                f"{len(entries)}")
    if declared is not None and declared != len(entries):
        raise RamsesFormatError(f"{path}: declares nvar = {declared} but lists "
                                f"{len(entries)} variables")
    names = tuple(name for _, name in entries)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RamsesFormatError(f"{path}: repeated variable names {repeated}")
    return names


# --------------------------------------------------------------------------- locating files


def output_number(path: str | os.PathLike) -> int:
    """The NNNNN of an output directory, from its `info_NNNNN.txt`."""
    path = Path(path)
    if not path.is_dir():
        raise RamsesFormatError(f"{path}: not a directory")
    numbers = sorted(int(m.group(1)) for p in path.iterdir() if (m := INFO_RE.match(p.name)))
    if not numbers:
        raise RamsesFormatError(f"{path}: no info_NNNNN.txt (not a RAMSES output directory)")
    if len(numbers) > 1:
        raise RamsesFormatError(f"{path}: several info files ({numbers}); expected one")
    return numbers[0]


def find_output_file(directory: Path, kind: str, number: int, cpu: int) -> Path:
    return directory / f"{kind}_{number:05d}.out{cpu:05d}"


def _resolve_output(path: str | os.PathLike) -> tuple[Path, int]:
    path = Path(path)
    if path.is_file():
        match = INFO_RE.match(path.name)
        if not match:
            raise RamsesFormatError(f"{path}: expected an output directory or its info file")
        return path.parent, int(match.group(1))
    return path, output_number(path)


# --------------------------------------------------------------------------- amr files


def _octs_per_domain(records: np.ndarray, rows: int, nlevelmax: int) -> np.ndarray:
    # Fortran writes numbl(1:ncpu, 1:nlevelmax) column-major: level-major in C order.
    return records.reshape(nlevelmax, rows).astype(np.int64)


def read_amr_header(reader: RecordReader) -> AmrHeader:
    """Parse an amr file's header, leaving `reader` at the first level's first record."""
    ncpu = reader.read_scalar("<i4", what="ncpu")
    ndim = reader.read_scalar("<i4", what="ndim")
    nx = tuple(int(v) for v in reader.read("<i4", 3, what="nx, ny, nz"))
    nlevelmax = reader.read_scalar("<i4", what="nlevelmax")
    ngridmax = reader.read_scalar("<i4", what="ngridmax")
    nboundary = reader.read_scalar("<i4", what="nboundary")
    reader.read("<i4", 1, what="ngrid_current")
    boxlen = reader.read_scalar("<f8", what="boxlen")
    if ndim not in (1, 2, 3):
        raise RamsesFormatError(f"{reader.path}: ndim = {ndim}, expected 1, 2 or 3")
    if ncpu < 1 or nlevelmax < 1 or nboundary < 0:
        raise RamsesFormatError(f"{reader.path}: ncpu = {ncpu}, nlevelmax = {nlevelmax}, "
                                f"nboundary = {nboundary} are not a valid header")
    noutput = int(reader.read("<i4", 3, what="noutput, iout, ifout")[0])
    reader.read("<f8", noutput, what="tout")
    reader.read("<f8", noutput, what="aout")
    time = reader.read_scalar("<f8", what="t")
    reader.read("<f8", nlevelmax, what="dtold")
    reader.read("<f8", nlevelmax, what="dtnew")
    reader.read("<i4", 2, what="nstep, nstep_coarse")
    reader.read("<f8", 3, what="einit, mass_tot_0, rho_tot")
    reader.read("<f8", 7, what="cosmology")
    reader.read("<f8", 5, what="aexp, hexp, aexp_old, epot_tot_int, epot_tot_old")
    # mass_sph is absent from old files; tell by the sizes of the level tables that follow.
    tables = [4 * ncpu * nlevelmax] * 3 + [40 * nlevelmax]  # headl, taill, numbl, numbtot
    if reader.peek_nbytes("mass_sph or headl") == 8 and reader.peek_sizes(4) != tables:
        reader.read("<f8", 1, what="mass_sph")
    reader.read("<i4", ncpu * nlevelmax, what="headl")
    reader.read("<i4", ncpu * nlevelmax, what="taill")
    numbl = reader.read("<i4", ncpu * nlevelmax, what="numbl")
    reader.read("<i4", 10 * nlevelmax, what="numbtot")
    octs = _octs_per_domain(numbl, ncpu, nlevelmax)
    if nboundary > 0:
        reader.read("<i4", nboundary * nlevelmax, what="headb")
        reader.read("<i4", nboundary * nlevelmax, what="tailb")
        numbb = reader.read("<i4", nboundary * nlevelmax, what="numbb")
        octs = np.concatenate([octs, _octs_per_domain(numbb, nboundary, nlevelmax)], axis=1)
    reader.read("<i4", 5, what="headf, tailf, numbf, used_mem, used_mem_tot")
    ordering = reader.read("S1", 128, what="ordering").tobytes().decode("ascii", "replace")
    ordering = ordering.strip()
    if ordering in KEY_ORDERINGS:
        reader.read("<f8", ncpu + 1, what="bound_key")
    elif ordering == "bisection":
        reader.skip(BISECTION_RECORDS, what="bisection tree")
    else:
        raise RamsesFormatError(f"{reader.path}: unknown ordering {ordering!r} (expected one of "
                                f"{', '.join(KEY_ORDERINGS)} or bisection)")
    if np.any(octs < 0):
        raise RamsesFormatError(f"{reader.path}: negative oct counts in numbl/numbb")
    ncoarse = nx[0] * nx[1] * nx[2]
    reader.read("<i4", ncoarse, what="coarse son")
    reader.read("<i4", ncoarse, what="coarse flag1")
    reader.read("<i4", ncoarse, what="coarse cpu_map")
    return AmrHeader(ncpu=ncpu, ndim=ndim, nx=nx, nlevelmax=nlevelmax, ngridmax=ngridmax,
                     nboundary=nboundary, boxlen=boxlen, time=time, octs=octs, ordering=ordering)


def _coarse_offsets(header: AmrHeader, path: Path) -> np.ndarray:
    """Per axis, the coarse-grid index of the box's cell: 0 (nx = 1) or 1 (nx = 3, walls)."""
    nx = np.array(header.nx[:header.ndim])
    if np.any((nx != 1) & (nx != 3)):
        raise RamsesFormatError(f"{path}: coarse grid nx, ny, nz = {header.nx}; only a box of "
                                f"one coarse cell (1, or 3 with boundary cells) is supported")
    return (nx - 1) // 2


@dataclass
class _LevelPieces:
    index: list = field(default_factory=list)
    values: list = field(default_factory=list)
    cpu: list = field(default_factory=list)  # the CPU file of each chunk of `index`


def _cell_bits(ndim: int) -> np.ndarray:
    """Offset of cell `ind` in its oct, (2^ndim, ndim) of 0/1: (ind & 1, ind >> 1 & 1, ind >> 2)."""
    ind = np.arange(2**ndim)
    return np.stack([(ind >> d) & 1 for d in range(ndim)], axis=1)


def _read_cpu(directory: Path, number: int, cpu: int, info: RamsesInfo, nvar_expected: int | None,
              columns: np.ndarray, pieces: dict[int, _LevelPieces]) -> tuple[int, float]:
    """Append the leaves of CPU file `cpu` to `pieces`; return (nvar, gamma)."""
    amr = RecordReader(find_output_file(directory, "amr", number, cpu))
    header = read_amr_header(amr)
    for name, have, want in (("ncpu", header.ncpu, info.ncpu), ("ndim", header.ndim, info.ndim),
                             ("nlevelmax", header.nlevelmax, info.levelmax)):
        if have != want:
            raise RamsesFormatError(f"{amr.path}: {name} = {have}, but the info file says {want}")
    ndim, twotondim = header.ndim, 2**header.ndim
    offsets = _coarse_offsets(header, amr.path)
    bits = _cell_bits(ndim)

    hydro = RecordReader(find_output_file(directory, "hydro", number, cpu))
    h_ncpu = hydro.read_scalar("<i4", what="ncpu")
    nvar = hydro.read_scalar("<i4", what="nvar")
    h_ndim = hydro.read_scalar("<i4", what="ndim")
    h_nlevelmax = hydro.read_scalar("<i4", what="nlevelmax")
    h_nboundary = hydro.read_scalar("<i4", what="nboundary")
    gamma = hydro.read_scalar("<f8", what="gamma")
    for name, have, want in (("ncpu", h_ncpu, header.ncpu), ("ndim", h_ndim, ndim),
                             ("nlevelmax", h_nlevelmax, header.nlevelmax),
                             ("nboundary", h_nboundary, header.nboundary)):
        if have != want:
            raise RamsesFormatError(f"{hydro.path}: {name} = {have}, but {amr.path.name} has "
                                    f"{want}")
    if nvar < 1:
        raise RamsesFormatError(f"{hydro.path}: nvar = {nvar}, expected >= 1")
    if nvar_expected is not None and nvar != nvar_expected:
        raise RamsesFormatError(f"{hydro.path}: nvar = {nvar}, but the variable names list "
                                f"{nvar_expected} (hydro_file_descriptor.txt does not match)")

    own = cpu - 1
    ndomains = header.octs.shape[1]
    skipped_int_records = 1 + 2 * ndim + 3 * twotondim  # father, nbor, son, cpu_map, flag1
    for ilevel in range(1, header.nlevelmax + 1):
        for domain in range(ndomains):
            n = int(header.octs[ilevel - 1, domain])
            where = f"level {ilevel}, domain {domain + 1}"
            h_level = hydro.read_scalar("<i4", what=f"ilevel ({where})")
            h_n = hydro.read_scalar("<i4", what=f"ncache ({where})")
            if h_level != ilevel or h_n != n:
                raise RamsesFormatError(
                    f"{hydro.path}: record {hydro.record - 2}: level {h_level} with {h_n} octs "
                    f"where {amr.path.name} has level {ilevel} with {n} octs ({where})")
            if n == 0:
                continue
            amr.read_block(3, "<i4", n, what=f"ind_grid, next, prev ({where})")
            xg = amr.read_block(ndim, "<f8", n, what=f"oct centres ({where})")
            tree = amr.read_block(skipped_int_records, "<i4", n,
                                  what=f"father, nbor, son, cpu_map, flag1 ({where})")
            values = hydro.read_block(twotondim * nvar, "<f8", n, what=f"hydro variables ({where})")
            if domain != own:
                continue
            son = tree[1 + 2 * ndim:1 + 2 * ndim + twotondim]  # (2^ndim, n)
            leaf = son == 0
            if not leaf.any():
                continue
            # Oct centres sit at odd multiples of 0.5^ilevel inside the box's coarse cell.
            scaled = (xg.T - offsets) * 2.0**ilevel  # (n, ndim)
            # Bounds first, on the floats: a damaged centre (NaN, 1e300) must not reach the cast.
            if not np.all(np.isfinite(scaled)):
                raise RamsesFormatError(f"{amr.path}: oct centres at level {ilevel} are not all "
                                        f"finite numbers")
            if not np.all((scaled > 0) & (scaled < 2**ilevel)):
                raise RamsesFormatError(f"{amr.path}: octs at level {ilevel} lie outside the box")
            odd = np.rint(scaled)
            if np.any(np.abs(scaled - odd) > 1e-6) or np.any(odd.astype(np.int64) % 2 != 1):
                raise RamsesFormatError(f"{amr.path}: oct centres at level {ilevel} are not on "
                                        f"the level's grid")
            corner = odd.astype(np.int64) - 1  # (n, ndim), index of the oct's first cell
            # Leaves in (cell ind, oct) order, the order boolean masks of (2^ndim, n) give.
            columns_data = values.reshape(twotondim, nvar, n)
            piece = pieces.setdefault(ilevel, _LevelPieces())
            piece.cpu.append(cpu)
            if leaf.all():  # a level without refined cells: no gathers, plain copies
                piece.index.append((corner[None, :, :] + bits[:, None, :]).reshape(-1, ndim))
                piece.values.append([np.array(columns_data[:, j, :]).reshape(-1)
                                     for j in columns])
            else:
                ind, oct_row = np.nonzero(leaf)
                piece.index.append(corner[oct_row] + bits[ind])
                piece.values.append([columns_data[ind, j, oct_row] for j in columns])
    amr.expect_end()
    hydro.expect_end()
    return nvar, gamma


def _amr_files(directory: Path, number: int, cpus: Sequence[int]) -> str:
    """The amr files of `cpus`, short: one path, or the directory and the files' names."""
    names = [find_output_file(directory, "amr", number, cpu).name for cpu in cpus]
    if len(names) == 1:
        return str(directory / names[0])
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{directory} ({shown})"


def read_output(path: str | os.PathLike, *, variables: Sequence[str] | None = None) -> RamsesOutput:
    """Read a RAMSES output directory (or its info file) into leaf cells.

    Args:
        path: `.../output_NNNNN` or `.../output_NNNNN/info_NNNNN.txt`.
        variables: hydro variables to keep in `cells.fields` (default: all of them).

    Returns:
        A `RamsesOutput` whose `cells` hold every leaf cell of every CPU domain, ordered by
        level, then CPU file, then as stored; `cells.fields[name]` has shape (n_cells,).

    Raises:
        RamsesFormatError: a missing, truncated or inconsistent file, naming it and the problem;
            leaf cells that do not tile the box exactly once (see `tiling_fault`), naming the
            amr file and the level.
        KeyError: a requested variable that the output does not have.
    """
    directory, number = _resolve_output(path)
    info = read_info(directory / f"info_{number:05d}.txt")
    expected = [find_output_file(directory, kind, number, cpu)
                for cpu in range(1, info.ncpu + 1) for kind in ("amr", "hydro")]
    missing = [p for p in expected if not p.is_file()]
    if missing:
        raise RamsesFormatError(f"{missing[0]}: missing CPU file ({len(missing)} of "
                                f"{len(expected)} amr/hydro files missing; {directory.name}/"
                                f"info_{number:05d}.txt has ncpu = {info.ncpu})")
    descriptor = directory / "hydro_file_descriptor.txt"
    names = read_descriptor(descriptor) if descriptor.is_file() else None
    if names is None:
        probe = RecordReader(find_output_file(directory, "hydro", number, 1))
        probe.skip(1, what="ncpu")
        names = default_variable_names(info.ndim, probe.read_scalar("<i4", what="nvar"))
    wanted = list(names) if variables is None else list(variables)
    unknown = [v for v in wanted if v not in names]
    if unknown:
        raise KeyError(f"{directory}: no variable {unknown[0]!r}; the output has "
                       f"{', '.join(names)}")
    columns = np.array([names.index(v) for v in wanted], dtype=np.int64)

    pieces: dict[int, _LevelPieces] = {}
    gamma = float("nan")
    for cpu in range(1, info.ncpu + 1):
        _, gamma = _read_cpu(directory, number, cpu, info,
                             len(names) if descriptor.is_file() else None, columns, pieces)
    levels = sorted(pieces)
    if not levels:
        raise RamsesFormatError(f"{directory}: no leaf cells in any CPU domain")

    def joined(arrays: list[np.ndarray]) -> np.ndarray:
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    index = joined([a for lv in levels for a in pieces[lv].index])
    level = np.repeat(np.array(levels, dtype=np.int32),
                      [sum(len(a) for a in pieces[lv].index) for lv in levels])
    fields = {name: joined([chunk[j] for lv in levels for chunk in pieces[lv].values])
              for j, name in enumerate(wanted)}
    cells = Cells(level=level, index=index, fields=fields, boxlen=info.boxlen)
    # A damaged oct tree can still parse: a son pointer or an oct centre changed gives
    # leaves that overlap or leave a hole, and every integral over them would be wrong.
    fault = tiling_fault(cells)
    if fault is not None:
        cpu = np.repeat(np.concatenate([pieces[lv].cpu for lv in levels]),
                        [len(a) for lv in levels for a in pieces[lv].index])
        files = _amr_files(directory, number, sorted(set(cpu[fault.rows].tolist())) or
                           list(range(1, info.ncpu + 1)))
        raise RamsesFormatError(f"{files}: level {fault.level}: {fault.problem}; the leaf cells do not "
                                f"tile the box")
    return RamsesOutput(path=directory, number=number, info=info, variables=tuple(names),
                        gamma=gamma, cells=cells)
