"""Write RAMSES outputs: uniform grids and AMR hierarchies, on one or several CPU files.

The files follow RAMSES's own layout (`output_amr.f90`, `output_hydro.f90`): info file, new-style
hydro file descriptor, and per CPU an amr and a hydro file, double precision, Hilbert ordering,
periodic box (no boundary cells). The oct tree is complete: father, neighbour and son pointers,
CPU maps and linked lists, so that RAMSES-format readers (this package's, yt's) read it back.

With several CPUs the box is split like RAMSES splits it: by ranges of the Hilbert key of cell
centres (`bound_key`), chosen so that each domain holds about the same number of leaf cells.
An oct belongs to the domain of its father cell. Each CPU file lists its own octs plus copies of
their ancestors and of their children held by other domains, so that its tree is connected and
every cell that is refined anywhere shows as refined in it.

Values of refined (non-leaf) cells are volume averages of their children; readers use leaves only.

    >>> write_uniform("run/output_00001", {"density": rho, "velocity_x": vx, ...},
    ...               boxlen=10.0, time=0.3, units=Units(3.0857e18, 1.5e-20, 3.16e13))
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulators.ramses.fortran import encode_block, encode_record, write_records
from simulators.ramses.hilbert import hilbert_keys
from simulators.ramses.reader import OUTPUT_DIR_RE, Cells, Units

__all__ = ["sample_cells", "uniform_cells", "write_amr", "write_uniform"]

VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NCOARSE = 1  # a periodic box is one coarse cell
CODE_UNITS = Units()  # unit_l = unit_d = unit_t = 1 (cgs)
# Largest level whose Hilbert keys (ndim * (levelmax + 1) bits) fit the float64 bound keys exactly.
MAX_LEVEL = {1: 52, 2: 25, 3: 16}


# --------------------------------------------------------------------------- building cells


def uniform_cells(fields: Mapping[str, np.ndarray], *, boxlen: float = 1.0) -> Cells:
    """Leaf cells of a uniform grid.

    Args:
        fields: name -> array of shape (2^L,) * ndim, ndim in 1..3, L >= 1, indexed [x, y, z].
        boxlen: box side in code length units.
    """
    if not fields:
        raise ValueError("uniform_cells needs at least one field")
    shapes = {name: np.shape(values) for name, values in fields.items()}
    shape = next(iter(shapes.values()))
    for name, other in shapes.items():
        if other != shape:
            raise ValueError(f"field {name!r} has shape {other}, expected {shape} like the others")
    ndim = len(shape)
    if not 1 <= ndim <= 3 or len(set(shape)) != 1:
        raise ValueError(f"a uniform grid must be a cube (n,) * ndim with ndim in 1..3, "
                         f"got shape {shape}")
    n = shape[0]
    level = int(n).bit_length() - 1
    if n < 2 or 2**level != n:
        raise ValueError(f"grid side must be a power of two >= 2 (2^level cells), got {n}")
    index = np.indices(shape).reshape(ndim, -1).T
    return Cells(level=np.full(len(index), level, dtype=np.int32), index=index,
                 fields={name: np.asarray(v, dtype=np.float64).reshape(-1)
                         for name, v in fields.items()},
                 boxlen=boxlen)


def sample_cells(fn: Callable[[np.ndarray], Mapping[str, np.ndarray]], *, ndim: int,
                 levelmin: int, levelmax: int,
                 refine: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 boxlen: float = 1.0) -> Cells:
    """An AMR hierarchy: a uniform grid at `levelmin`, refined where `refine` says.

    Args:
        fn: positions (n, ndim) in code units -> {name: (n,) values}, evaluated at leaf centres.
        ndim: 1, 2 or 3.
        levelmin, levelmax: coarsest and finest levels, 1 <= levelmin <= levelmax.
        refine: (positions (n, ndim), sizes (n,)) -> (n,) bool; which cells of a level below
            levelmax to split into 2^ndim children.
        boxlen: box side in code length units.
    """
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    if not 1 <= levelmin <= levelmax:
        raise ValueError(f"need 1 <= levelmin <= levelmax, got {levelmin}, {levelmax}")
    bits = np.indices((2,) * ndim).reshape(ndim, -1).T  # (2^ndim, ndim) child offsets
    index = np.indices((2**levelmin,) * ndim).reshape(ndim, -1).T
    leaves_index, leaves_level = [], []
    for level in range(levelmin, levelmax + 1):
        size = boxlen / 2**level
        split = np.zeros(len(index), bool) if level == levelmax else np.asarray(
            refine((index + 0.5) * size, np.full(len(index), size)), dtype=bool)
        if split.shape != (len(index),):
            raise ValueError(f"refine returned shape {split.shape}, expected ({len(index)},)")
        leaves_index.append(index[~split])
        leaves_level.append(np.full(int((~split).sum()), level, dtype=np.int32))
        index = (2 * index[split][:, None, :] + bits[None, :, :]).reshape(-1, ndim)
    index = np.concatenate(leaves_index)
    level = np.concatenate(leaves_level)
    position = (index + 0.5) * (boxlen / 2.0**level)[:, None]
    values = fn(position)
    return Cells(level=level, index=index, fields=dict(values), boxlen=boxlen)


# --------------------------------------------------------------------------- the oct tree


@dataclass
class _Octs:
    """The octs of one level L (cells of size boxlen / 2^L), in Hilbert order.

    coords: (m, ndim) the father cell's coordinates at level L - 1.
    child: (m, 2^ndim) row of the child oct in level L + 1, -1 for a leaf.
    values: (m, 2^ndim, nvar).
    parent: (m,) row of the oct holding the father cell in level L - 1 (0 at level 1).
    father_ind: (m,) which cell of the parent oct is the father (0-based `ind`).
    keys: (m,) Hilbert key of the father cell's centre.
    """

    coords: np.ndarray
    child: np.ndarray
    values: np.ndarray
    parent: np.ndarray
    father_ind: np.ndarray
    keys: np.ndarray


def _cell_ind(coords: np.ndarray) -> np.ndarray:
    """RAMSES's cell number inside its oct, ix + 2 iy + 4 iz, from cell coordinates (n, ndim)."""
    return sum(((coords[:, d] & 1) << d) for d in range(coords.shape[1]))


def _centre_keys(coords: np.ndarray, level: int, levelmax: int) -> np.ndarray:
    """Hilbert keys of cell centres at `level`, on RAMSES's 2^(levelmax+1) key grid."""
    return hilbert_keys((2 * coords + 1) << (levelmax - level), levelmax + 1)


def _build_tree(cells: Cells, levelmax: int, hilbert_order: bool) -> list[_Octs]:
    """Octs of levels 1..levelmax (list index L - 1), checking the leaves tile the box once.

    With `hilbert_order`, octs are sorted by the Hilbert key of their father cell (what a
    domain decomposition needs); otherwise they stay in x-major order and carry no keys.
    """
    ndim, twotondim = cells.ndim, 2**cells.ndim
    names = list(cells.fields)
    values = np.stack([cells.fields[n] for n in names], axis=1) if names else \
        np.empty((len(cells), 0))
    tree: list[_Octs | None] = [None] * levelmax
    below: _Octs | None = None
    for level in range(levelmax, 0, -1):
        single_level = cells.coarsest_level == cells.finest_level == level
        at = slice(None) if single_level else cells.level == level
        leaf_coords = cells.index[at]
        refined = below.coords if below is not None else np.empty((0, ndim), np.int64)
        coords = np.concatenate([leaf_coords, refined])
        oct_keys = np.ravel_multi_index(tuple((coords >> 1).T), (2 ** (level - 1),) * ndim)
        unique, row = np.unique(oct_keys, return_inverse=True)
        slot = row * twotondim + _cell_ind(coords)
        filled = np.bincount(slot, minlength=len(unique) * twotondim)
        if np.any(filled > 1):
            raise ValueError(f"cells overlap: {int(np.sum(filled > 1))} cells at level {level} "
                             f"are given more than once (as leaves or as refined)")
        if np.any(filled == 0):
            raise ValueError(f"cells do not cover the box: octs at level {level} miss "
                             f"{int(np.sum(filled == 0))} of their {len(filled)} cells")
        n_leaf = len(leaf_coords)
        child = np.full(len(unique) * twotondim, -1, dtype=np.int64)
        oct_values = np.empty((len(unique) * twotondim, values.shape[1]))
        oct_values[slot[:n_leaf]] = values[at]
        if below is not None:
            child[slot[n_leaf:]] = np.arange(len(refined))
            oct_values[slot[n_leaf:]] = below.values.mean(axis=1)
            below.parent = row[n_leaf:]
            below.father_ind = _cell_ind(refined)
        father = np.stack(np.unravel_index(unique, (2 ** (level - 1),) * ndim), axis=1)
        below = _Octs(coords=father.astype(np.int64), child=child.reshape(-1, twotondim),
                      values=oct_values.reshape(-1, twotondim, values.shape[1]),
                      parent=np.zeros(len(unique), np.int64),
                      father_ind=np.zeros(len(unique), np.int64),
                      keys=_centre_keys(father, level - 1, levelmax) if hilbert_order
                      else np.zeros(len(unique), np.int64))
        tree[level - 1] = below
    if len(tree[0].coords) != 1:
        raise ValueError("cells do not form one tree under the box's coarse cell")
    if not hilbert_order:
        return tree
    # Hilbert order inside each level; remap the links between levels accordingly.
    orders = [np.argsort(octs.keys, kind="stable") for octs in tree]
    ranks = [np.argsort(order) for order in orders]
    for level, (octs, order) in enumerate(zip(tree, orders), start=1):
        child = octs.child[order]
        refined = child >= 0
        child[refined] = ranks[level][child[refined]] if level < levelmax else -1
        parent = ranks[level - 2][octs.parent[order]] if level > 1 else octs.parent[order]
        tree[level - 1] = _Octs(coords=octs.coords[order], child=child,
                                values=octs.values[order], parent=parent,
                                father_ind=octs.father_ind[order], keys=octs.keys[order])
    return tree


def _bound_keys(leaf_keys: np.ndarray, ncpu: int, ndim: int, levelmax: int) -> np.ndarray:
    """Domain boundaries on the Hilbert key line, (ncpu + 1,): equal numbers of leaf cells."""
    keys = np.sort(leaf_keys)
    inner = keys[(np.arange(1, ncpu) * len(keys)) // ncpu]
    bounds = np.concatenate([[0], inner, [2 ** (ndim * (levelmax + 1))]])
    if np.any(np.diff(bounds) <= 0):
        raise ValueError(f"cannot split {len(keys)} leaf cells into {ncpu} non-empty domains")
    return bounds


def _cell_keys(octs: _Octs, level: int, levelmax: int) -> np.ndarray:
    """Hilbert keys of every cell of the octs of `level`, (m, 2^ndim) in `ind` order."""
    ndim = octs.coords.shape[1]
    # Cell `ind` of an oct sits at 2 * father + (ind & 1, ind >> 1 & 1, ind >> 2 & 1).
    offsets = np.stack([(np.arange(2**ndim) >> d) & 1 for d in range(ndim)], axis=1)
    coords = (2 * octs.coords[:, None, :] + offsets[None, :, :]).reshape(-1, ndim)
    return _centre_keys(coords, level, levelmax).reshape(-1, 2**ndim)


def _domain_of(keys: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """CPU number (1-based) of each key: bound_key(c-1) <= key < bound_key(c)."""
    return np.searchsorted(bounds, keys, side="right").astype(np.int64)


def _included(tree: list[_Octs], owner: list[np.ndarray], cpu: int) -> list[np.ndarray]:
    """Octs listed in CPU file `cpu`: its own, their children, and all their ancestors."""
    included = [o == cpu for o in owner]
    for level in range(len(tree) - 1):
        children = tree[level].child[owner[level] == cpu]
        included[level + 1][children[children >= 0]] = True
    for level in range(len(tree) - 1, 0, -1):
        included[level - 1][tree[level].parent[included[level]]] = True
    return included


# --------------------------------------------------------------------------- text files


def fortran_e(value: float, width: int = 23, digits: int = 15) -> str:
    """`value` as Fortran's E`width`.`digits` edit descriptor writes it (0.d...dE+ee)."""
    value = float(value)
    if value == 0.0 or not math.isfinite(value):
        body = f"{0.0:.{digits}f}E+00" if value == 0.0 else str(value)
        return body.rjust(width)
    exponent = math.floor(math.log10(abs(value))) + 1
    mantissa = round(abs(value) / 10.0**exponent, digits)
    if mantissa >= 1.0:
        mantissa /= 10.0
        exponent += 1
    sign = "-" if value < 0 else ""
    tail = f"E{exponent:+03d}" if abs(exponent) < 100 else f"{exponent:+04d}"
    return f"{sign}{mantissa:.{digits}f}{tail}".rjust(width)


def _info_text(*, ncpu, ndim, levelmin, levelmax, ngridmax, nstep_coarse, boxlen, time,
               units: Units, bounds: np.ndarray) -> str:
    ints = [("ncpu", ncpu), ("ndim", ndim), ("levelmin", levelmin), ("levelmax", levelmax),
            ("ngridmax", ngridmax), ("nstep_coarse", nstep_coarse)]
    reals = [("boxlen", boxlen), ("time", time), ("aexp", 1.0), ("H0", 1.0), ("omega_m", 1.0),
             ("omega_l", 0.0), ("omega_k", 0.0), ("omega_b", 0.045), ("unit_l", units.unit_l),
             ("unit_d", units.unit_d), ("unit_t", units.unit_t)]
    lines = [f"{k:<12}={v:11d}" for k, v in ints] + [""]
    lines += [f"{k:<12}={fortran_e(v)}" for k, v in reals] + [""]
    lines += ["ordering type=" + "hilbert".ljust(80), "   DOMAIN   ind_min                 ind_max"]
    lines += [f"{i:8d} {fortran_e(bounds[i - 1])} {fortran_e(bounds[i])}"
              for i in range(1, ncpu + 1)]
    return "\n".join(lines) + "\n"


def _descriptor_text(names) -> str:
    lines = ["# version:  1", "# ivar, variable_name, variable_type"]
    lines += [f"{i:2d}, {name}, d" for i, name in enumerate(names, start=1)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- binary files


def _i4(values) -> np.ndarray:
    values = np.asarray(values)
    if values.size and (values.max() > np.iinfo(np.int32).max or values.min() < -2**31):
        raise ValueError("value too large for a RAMSES int32 field (too many octs)")
    return values.astype("<i4")


def _f8(values) -> np.ndarray:
    return np.asarray(values, dtype="<f8")


def _neighbour_cells(tree: list[_Octs], level: int, octs: np.ndarray, ids: list[np.ndarray],
                     ngridmax: int) -> np.ndarray:
    """RAMSES `nbor`: cell numbers of the father cell's neighbours, (2 ndim, n); 0 if absent."""
    ndim = tree[0].coords.shape[1]
    coords = tree[level - 1].coords[octs]
    if level == 1:
        return np.full((2 * ndim, len(octs)), NCOARSE, dtype=np.int64)
    above = tree[level - 2]
    side = 2 ** (level - 1)
    shape = (2 ** (level - 2),) * ndim
    above_keys = np.ravel_multi_index(tuple(above.coords.T), shape)
    order = np.argsort(above_keys)
    sorted_keys = above_keys[order]
    out = np.zeros((2 * ndim, len(octs)), dtype=np.int64)
    for d in range(ndim):
        for s, step in enumerate((-1, 1)):
            nb = coords.copy()
            nb[:, d] = (nb[:, d] + step) % side  # periodic box
            key = np.ravel_multi_index(tuple((nb >> 1).T), shape)
            pos = np.minimum(np.searchsorted(sorted_keys, key), len(sorted_keys) - 1)
            found = sorted_keys[pos] == key
            row = order[pos]
            cell = NCOARSE + _cell_ind(nb) * ngridmax + ids[level - 2][row]
            out[2 * d + s] = np.where(found, cell, 0)
    return out


def _cpu_files(tree, owner, cell_cpu, ids, bounds, cpu, *, ncpu, ndim, levelmax, ngridmax,
               boxlen, time, nstep_coarse, gamma, mass, number) -> tuple[list, list]:
    """The records of CPU file `cpu`: (amr chunks, hydro chunks), for `write_records`."""
    twotondim = 2**ndim
    included = _included(tree, owner, cpu)
    nvar = tree[0].values.shape[2]
    numbl = np.zeros((levelmax, ncpu), dtype=np.int64)
    headl = np.zeros((levelmax, ncpu), dtype=np.int64)
    taill = np.zeros((levelmax, ncpu), dtype=np.int64)
    amr_body, hydro_body = [], []
    for level in range(1, levelmax + 1):
        octs = tree[level - 1]
        for domain in range(1, ncpu + 1):
            rows = np.flatnonzero(included[level - 1] & (owner[level - 1] == domain))
            n = len(rows)
            hydro_body += [encode_record(_i4([level])), encode_record(_i4([n]))]
            if n == 0:
                continue
            grid = ids[level - 1][rows]
            numbl[level - 1, domain - 1] = n
            headl[level - 1, domain - 1], taill[level - 1, domain - 1] = grid[0], grid[-1]
            nxt = np.append(grid[1:], 0)
            prev = np.insert(grid[:-1], 0, 0)
            xg = (octs.coords[rows] + 0.5) * 0.5 ** (level - 1)
            if level == 1:
                father = np.full(n, NCOARSE)
            else:
                father = NCOARSE + octs.father_ind[rows] * ngridmax + \
                    ids[level - 2][octs.parent[rows]]
            nbor = _neighbour_cells(tree, level, rows, ids, ngridmax)
            child = octs.child[rows]
            son = np.zeros_like(child)
            son[child >= 0] = ids[level][child[child >= 0]] if level < levelmax else 0
            son = son.T
            amr_body += [
                encode_block(_i4(np.stack([grid, nxt, prev]))),
                encode_block(_f8(xg.T)),
                encode_block(_i4(np.concatenate([father[None, :], nbor, son,
                                                 cell_cpu[level - 1][rows].T,
                                                 (son > 0).astype(np.int64)]))),
            ]
            hydro_body.append(encode_block(_f8(
                octs.values[rows].transpose(1, 2, 0).reshape(twotondim * nvar, n))))
    total = np.array([len(o.coords) for o in tree])
    per_cpu = np.stack([np.bincount(o, minlength=ncpu + 1)[1:] for o in owner])  # (levels, ncpu)
    numbtot = np.zeros((levelmax, 10), dtype=np.int64)
    numbtot[:, 0], numbtot[:, 1], numbtot[:, 2] = total, per_cpu.min(1), per_cpu.max(1)
    numbtot[:, 3] = total // ncpu
    used = int(numbl.sum())
    header = [
        _i4([ncpu]), _i4([ndim]), _i4([1, 1, 1]), _i4([levelmax]), _i4([ngridmax]), _i4([0]),
        _i4([used]), _f8([boxlen]), _i4([1, 1, number + 1]), _f8([time]),
        _f8([np.finfo(np.float64).max]), _f8([time]), _f8(np.zeros(levelmax)),
        _f8(np.zeros(levelmax)), _i4([nstep_coarse, nstep_coarse]), _f8([0.0, mass, 0.0]),
        _f8([1.0, 0.0, 0.0, 0.045, 1.0, 1.0, boxlen]), _f8([1.0, 0.0, 1.0, 0.0, 0.0]),
        _f8([0.0]), _i4(headl), _i4(taill), _i4(numbl), _i4(numbtot),
        _i4([used + 1, ngridmax, ngridmax - used, used, int(total.sum())]),
    ]
    amr = [encode_record(r) for r in header]
    amr += [encode_record(b"hilbert".ljust(128)), encode_record(_f8(bounds)),
            encode_record(_i4([ids[0][0]])), encode_record(_i4([1])),
            encode_record(_i4([owner[0][0]]))]
    hydro = [encode_record(r) for r in (_i4([ncpu]), _i4([nvar]), _i4([ndim]),
                                        _i4([levelmax]), _i4([0]), _f8([gamma]))]
    return amr + amr_body, hydro + hydro_body


# --------------------------------------------------------------------------- public writers


def _number_of(output_dir: Path, iout: int | None) -> int:
    if iout is not None:
        if isinstance(iout, bool) or not isinstance(iout, int | np.integer) or not \
                1 <= iout <= 99999:
            raise ValueError(f"iout must be an integer in 1..99999, got {iout!r}")
        return int(iout)
    match = OUTPUT_DIR_RE.match(output_dir.name)
    return int(match.group(1)) if match else 1


def write_amr(output_dir: str | os.PathLike, cells: Cells, *, time: float = 0.0,
              units: Units = CODE_UNITS, gamma: float = 1.4, ncpu: int = 1,
              levelmin: int | None = None, levelmax: int | None = None, iout: int | None = None,
              nstep_coarse: int = 0, namelist: str | None = None,
              overwrite: bool = False) -> Path:
    """Write leaf cells as a RAMSES output directory; returns its path.

    Args:
        output_dir: the directory to create, conventionally `.../output_NNNNN`.
        cells: leaf cells tiling the box exactly once (levels >= 1); every field becomes a hydro
            variable, in order (RAMSES's order is density, velocity_x.., pressure, scalars).
        time: simulation time in code units.
        units: code units in cgs (info file's unit_l, unit_d, unit_t).
        gamma: adiabatic index stored in the hydro files.
        ncpu: number of CPU files (domains), 1 <= ncpu <= number of leaf cells.
        levelmin, levelmax: the run's coarsest and finest levels; default the coarsest and
            finest leaf levels (levelmin may not exceed the coarsest leaf level).
        iout: output number NNNNN; default from a directory named output_NNNNN, else 1.
        nstep_coarse: coarse step count to record.
        namelist: text to store as `namelist.txt` (the run's parameter file).
        overwrite: replace an existing output directory.

    Raises:
        ValueError: naming the bad argument (cells that overlap or leave holes included).
        FileExistsError: the directory exists and `overwrite` is false.
    """
    output_dir = Path(output_dir)
    number = _number_of(output_dir, iout)
    ndim = cells.ndim
    if not cells.fields:
        raise ValueError("cells need at least one field to write")
    for name in cells.fields:
        if not VARIABLE_NAME_RE.match(name):
            raise ValueError(f"variable name {name!r} must be letters, digits and underscores")
    if len(cells) == 0:
        raise ValueError("no cells to write")
    if cells.coarsest_level < 1:
        raise ValueError(f"cell levels must be >= 1, got {cells.coarsest_level}")
    levelmax = cells.finest_level if levelmax is None else int(levelmax)
    levelmin = cells.coarsest_level if levelmin is None else int(levelmin)
    if levelmax < cells.finest_level or levelmax > MAX_LEVEL[ndim]:
        raise ValueError(f"levelmax = {levelmax} must be in [{cells.finest_level} (finest leaf "
                         f"level), {MAX_LEVEL[ndim]}] for {ndim}-D")
    if not 1 <= levelmin <= cells.coarsest_level:
        raise ValueError(f"levelmin = {levelmin} must be in [1, {cells.coarsest_level} "
                         f"(coarsest leaf level)]")
    if isinstance(ncpu, bool) or not isinstance(ncpu, int | np.integer) or \
            not 1 <= ncpu <= len(cells):
        raise ValueError(f"ncpu must be an integer in [1, {len(cells)}], got {ncpu!r}")
    for name, value in (("time", time), ("gamma", gamma), *zip(Units._fields, units)):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if any(float(u) <= 0 for u in units):
        raise ValueError(f"units must be positive, got {units}")
    if output_dir.exists():
        if not overwrite and any(output_dir.iterdir()):
            raise FileExistsError(f"{output_dir}: exists and is not empty (overwrite=False)")
        if overwrite:
            shutil.rmtree(output_dir)

    tree = _build_tree(cells, levelmax, hilbert_order=ncpu > 1)
    if ncpu == 1:
        bounds = np.array([0, 2 ** (ndim * (levelmax + 1))])
        owner = [np.ones(len(octs.coords), np.int64) for octs in tree]
        cell_cpu = [np.ones(octs.child.shape, np.int64) for octs in tree]
    else:
        cell_keys = [_cell_keys(octs, level, levelmax) for level, octs in enumerate(tree, 1)]
        leaf_keys = np.concatenate([k[o.child < 0] for k, o in zip(cell_keys, tree)])
        bounds = _bound_keys(leaf_keys, ncpu, ndim, levelmax)
        owner = [_domain_of(octs.keys, bounds) for octs in tree]
        cell_cpu = [_domain_of(k, bounds) for k in cell_keys]
    sizes = np.array([len(o.coords) for o in tree])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    ids = [start + 1 + np.arange(size) for start, size in zip(starts, sizes)]
    ngridmax = int(sizes.sum())
    mass = cells.integral("density") if "density" in cells.fields else 0.0

    output_dir.mkdir(parents=True, exist_ok=True)
    for cpu in range(1, ncpu + 1):
        amr, hydro = _cpu_files(tree, owner, cell_cpu, ids, bounds, cpu, ncpu=ncpu, ndim=ndim,
                                levelmax=levelmax, ngridmax=ngridmax, boxlen=cells.boxlen,
                                time=float(time), nstep_coarse=int(nstep_coarse),
                                gamma=float(gamma), mass=mass, number=number)
        write_records(output_dir / f"amr_{number:05d}.out{cpu:05d}", amr)
        write_records(output_dir / f"hydro_{number:05d}.out{cpu:05d}", hydro)
    (output_dir / "hydro_file_descriptor.txt").write_text(_descriptor_text(cells.fields))
    if namelist is not None:
        (output_dir / "namelist.txt").write_text(namelist)
    # The info file last: readers take its presence to mean the output is complete.
    (output_dir / f"info_{number:05d}.txt").write_text(_info_text(
        ncpu=ncpu, ndim=ndim, levelmin=levelmin, levelmax=levelmax, ngridmax=ngridmax,
        nstep_coarse=int(nstep_coarse), boxlen=cells.boxlen, time=float(time), units=units,
        bounds=bounds))
    return output_dir


def write_uniform(output_dir: str | os.PathLike, fields: Mapping[str, np.ndarray], *,
                  boxlen: float = 1.0, time: float = 0.0, units: Units = CODE_UNITS,
                  gamma: float = 1.4, ncpu: int = 1, iout: int | None = None,
                  nstep_coarse: int = 0, namelist: str | None = None,
                  overwrite: bool = False) -> Path:
    """Write uniform grids as a RAMSES output at level log2(n) (levelmin = levelmax).

    Args:
        output_dir: the directory to create, conventionally `.../output_NNNNN`.
        fields: name -> array (n,) * ndim, n = 2^L, indexed [x, y, z], in code units; RAMSES's
            variables are density, velocity_x, velocity_y, velocity_z, pressure, then scalars.
        boxlen: box side in code length units.
        Other arguments as `write_amr`.
    """
    return write_amr(output_dir, uniform_cells(fields, boxlen=boxlen), time=time, units=units,
                     gamma=gamma, ncpu=ncpu, iout=iout, nstep_coarse=nstep_coarse,
                     namelist=namelist, overwrite=overwrite)
