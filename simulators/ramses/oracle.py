"""RAMSES simulations as alframe oracles.

Two ways to get a simulation's answer for a query:
- `RamsesPoolOracle`: the simulations were run beforehand, one directory each; the pool is the
  table of their parameters (read from each run's namelist, or from a CSV table), and a query
  is answered by reading that run's output.
- `RamsesCommandOracle`: each query launches the simulator: the query's values are written into
  a namelist template, the executable runs in a fresh directory, and the output it writes is read.

What an oracle returns is a *product* of the output: `ColumnDensityImage` (a projected, by
default log, column-density image), `FieldGrid` (a variable on a uniform grid) or
`TrainingImages` (the augmented images of the turbulence case), flattened into one row of y.
A run that fails (no such simulation, non-zero exit, timeout, missing or unreadable output)
becomes a failed row with the reason; `run` never raises for a single bad run.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from alframe.oracle import Outcome, OutputSpec
from alframe.space import Pool, Space
from simulators.ramses.fortran import RamsesFormatError
from simulators.ramses.grids import AXES, axis_number, column_density, paint, training_images
from simulators.ramses.namelist import (
    NamelistError,
    parameter_value,
    read_namelist,
    set_values,
)
from simulators.ramses.reader import OUTPUT_DIR_RE, RamsesOutput, read_output

__all__ = [
    "ColumnDensityImage",
    "FieldGrid",
    "Product",
    "RamsesCommandOracle",
    "RamsesPoolOracle",
    "TrainingImages",
    "latest_output",
    "pool_oracle_from_namelists",
    "pool_oracle_from_table",
]

# What a failed read or product raises; anything else is a bug and propagates.
RUN_ERRORS = (RamsesFormatError, NamelistError, KeyError, ValueError, OSError)


# --------------------------------------------------------------------------- products


@runtime_checkable
class Product(Protocol):
    """What an oracle returns from an output: a fixed-shape array of a few variables."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def variables(self) -> tuple[str, ...]:
        """Hydro variables the product needs (only these are read)."""
        ...

    def __call__(self, output: RamsesOutput) -> np.ndarray: ...


def _check_product_level(level) -> int:
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or not 1 <= level <= 16:
        raise ValueError(f"level must be an integer in [1, 16], got {level!r}")
    return int(level)


def _check_ndim(output: RamsesOutput, ndim: int, name: str) -> None:
    if output.ndim != ndim:
        raise ValueError(f"{output.path}: {name} expects a {ndim}-D output, got {output.ndim}-D")


@dataclass(frozen=True)
class ColumnDensityImage:
    """Column density of `field` along `axis` at `level`, shape (2^level,) * (ndim - 1).

    log10 of it when `log` (the images the turbulence CNN learns from).
    """

    level: int
    axis: str = "z"
    ndim: int = 3
    log: bool = True
    field: str = "density"

    def __post_init__(self) -> None:
        _check_product_level(self.level)
        if self.ndim not in (2, 3):
            raise ValueError(f"ColumnDensityImage needs ndim 2 or 3, got {self.ndim!r}")
        object.__setattr__(self, "axis", AXES[axis_number(self.axis, self.ndim)])

    @property
    def name(self) -> str:
        return f"{'log_' if self.log else ''}column_{self.field}_{self.axis}"

    @property
    def shape(self) -> tuple[int, ...]:
        return (2**self.level,) * (self.ndim - 1)

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.field,)

    def __call__(self, output: RamsesOutput) -> np.ndarray:
        _check_ndim(output, self.ndim, "ColumnDensityImage")
        column = column_density(output, self.axis, level=self.level, field=self.field)
        if not self.log:
            return column
        if not np.all(column > 0):
            raise ValueError(f"{output.path}: column of {self.field!r} is not positive "
                             f"everywhere; its log is undefined")
        return np.log10(column)


@dataclass(frozen=True)
class FieldGrid:
    """`field` painted on the uniform grid of `level`, shape (2^level,) * ndim."""

    level: int
    field: str = "density"
    ndim: int = 3
    weight: str | None = None

    def __post_init__(self) -> None:
        _check_product_level(self.level)
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"FieldGrid needs ndim 1, 2 or 3, got {self.ndim!r}")

    @property
    def name(self) -> str:
        return self.field

    @property
    def shape(self) -> tuple[int, ...]:
        return (2**self.level,) * self.ndim

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.field,) if self.weight in (None, self.field) else (self.field, self.weight)

    def __call__(self, output: RamsesOutput) -> np.ndarray:
        _check_ndim(output, self.ndim, "FieldGrid")
        return paint(output, self.field, level=self.level, weight=self.weight)


@dataclass(frozen=True)
class TrainingImages:
    """The 48 augmented log column-density images of a 3-D output at `level`.

    Shape (3, 4, 4, 2^(level-1), 2^(level-1)): [axis, flip, quarter, u, v].
    """

    level: int
    field: str = "density"

    def __post_init__(self) -> None:
        _check_product_level(self.level)

    @property
    def name(self) -> str:
        return f"log_column_{self.field}_augmented"

    @property
    def shape(self) -> tuple[int, ...]:
        side = 2 ** (self.level - 1)
        return (3, 4, 4, side, side)

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.field,)

    def __call__(self, output: RamsesOutput) -> np.ndarray:
        return training_images(output, level=self.level, field=self.field)


def product_outputs(product: Product) -> OutputSpec:
    """One output name per element of the product, e.g. "log_column_density_z[3,7]"."""
    return OutputSpec(names=tuple(f"{product.name}[{','.join(map(str, i))}]"
                                  for i in np.ndindex(*product.shape)))


def _evaluate(product: Product, output_dir: Path) -> np.ndarray:
    """Read an output and compute the product, flattened; RUN_ERRORS on any failure."""
    values = np.asarray(product(read_output(output_dir, variables=product.variables)),
                        dtype=np.float64)
    if values.shape != product.shape:
        raise ValueError(f"{output_dir}: {product.name} has shape {values.shape}, expected "
                         f"{product.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{output_dir}: {product.name} has non-finite values")
    return values.reshape(-1)


def _outcome(rows: Sequence[tuple[np.ndarray | None, str, float]], size: int) -> Outcome:
    n = len(rows)
    y = np.full((n, size), np.nan)
    ok = np.zeros(n, dtype=bool)
    error = np.full(n, "", dtype=object)
    cost = np.zeros(n)
    for i, (values, message, seconds) in enumerate(rows):
        if values is not None:
            y[i], ok[i] = values, True
        else:
            error[i] = message.replace("\n", " ")
        cost[i] = seconds
    return Outcome(y, ok, error, cost)


def _describe(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------- locating outputs


def latest_output(run_dir: str | os.PathLike, number: int | None = None) -> Path:
    """The output directory `output_NNNNN` of a run: number `number`, or the highest one.

    RamsesFormatError if there is none (a run that crashed or never wrote).
    """
    run_dir = Path(run_dir)
    if number is not None:
        path = run_dir / f"output_{number:05d}"
        if not path.is_dir():
            raise RamsesFormatError(f"{run_dir}: no output_{number:05d} directory")
        return path
    found = sorted((int(m.group(1)), p) for p in run_dir.glob("output_*")
                   if p.is_dir() and (m := OUTPUT_DIR_RE.match(p.name)))
    if not found:
        raise RamsesFormatError(f"{run_dir}: no output_NNNNN directory (the run wrote nothing)")
    return found[-1][1]


# --------------------------------------------------------------------------- pool oracle


@dataclass(frozen=True)
class RamsesPoolOracle:
    """Answers queries from simulations that were run beforehand.

    Args:
        pool: the candidates, one row of parameters per simulation.
        runs: one run directory per pool row (holding its output_NNNNN directories).
        product: what to return from an output.
        output: which output of each run to read; default the highest-numbered.
    """

    pool: Pool
    runs: tuple[Path, ...]
    product: Product
    output: int | None = None
    _outputs: OutputSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        runs = tuple(Path(r) for r in self.runs)
        if len(runs) != len(self.pool):
            raise ValueError(f"pool has {len(self.pool)} rows but {len(runs)} runs")
        keys = {}
        for row, run in zip(self.pool.values, runs):
            other = keys.setdefault(row.tobytes(), run)
            if other != run:
                raise ValueError(f"runs {other} and {run} have the same parameters "
                                 f"{dict(zip(self.pool.names, row))}; add a parameter that "
                                 f"tells them apart")
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "_outputs", product_outputs(self.product))

    @property
    def space(self) -> Pool:
        return self.pool

    @property
    def outputs(self) -> OutputSpec:
        return self._outputs

    def run(self, queries: np.ndarray) -> Outcome:
        """Read the runs matching each query row, (n, dim) -> Outcome with y (n, product size)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if queries.shape[1] != self.pool.dim:
            raise ValueError(f"queries have {queries.shape[1]} columns, the pool "
                             f"{list(self.pool.names)} has {self.pool.dim}")
        rows = []
        for query, index in zip(queries, self.pool.index_of(queries)):
            start = time.perf_counter()
            if index < 0:
                rows.append((None, f"no simulation in the pool has "
                                   f"{dict(zip(self.pool.names, query.tolist()))}", 0.0))
                continue
            try:
                values = _evaluate(self.product, latest_output(self.runs[index], self.output))
                rows.append((values, "", time.perf_counter() - start))
            except RUN_ERRORS as exc:
                rows.append((None, _describe(exc), time.perf_counter() - start))
        return _outcome(rows, self.outputs.dim)


def _find_namelist(run_dir: Path, pattern: str) -> Path:
    found = sorted(run_dir.glob(pattern))
    if len(found) > 1:
        raise NamelistError(f"{run_dir}: several namelists match {pattern!r}: "
                            f"{[p.name for p in found]}")
    if found:
        return found[0]
    try:
        fallback = latest_output(run_dir) / "namelist.txt"
    except RamsesFormatError:
        fallback = None
    if fallback is None or not fallback.is_file():
        raise NamelistError(f"{run_dir}: no namelist matching {pattern!r} and no "
                            f"output_NNNNN/namelist.txt")
    return fallback


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    raise NamelistError(f"{where} is {value!r}, not a number")


def pool_oracle_from_namelists(root: str | os.PathLike, parameters: Mapping[str, str],
                               product: Product, *, namelist: str = "*.nml",
                               output: int | None = None) -> RamsesPoolOracle:
    """A pool oracle over the run directories under `root`, parameters read from namelists.

    Args:
        root: directory holding one sub-directory per run (its namelist, its output_NNNNN/).
        parameters: input name -> namelist parameter, e.g. {"rms": "TURB_PARAMS/turb_rms",
            "x_blast": "INIT_PARAMS/x_center(2)"}; logicals count as 0/1.
        product: what to return from each output.
        namelist: glob of the namelist inside a run directory; where none matches, the
            `namelist.txt` that RAMSES copies into its latest output is used.
        output: output number to read; default each run's highest.

    A run directory is one holding a namelist or an output; one whose output is missing is
    kept in the pool and answers with a failed row.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory of runs")
    runs = sorted(p for p in root.iterdir() if p.is_dir() and (
        any(p.glob(namelist)) or any(OUTPUT_DIR_RE.match(q.name) for q in p.iterdir())))
    if not runs:
        raise ValueError(f"{root}: no run directories (none holds {namelist!r} or an "
                         f"output_NNNNN)")
    values = []
    for run in runs:
        path = _find_namelist(run, namelist)
        parsed = read_namelist(path.read_text())
        try:
            values.append([_number(parameter_value(parsed, spec), f"{path}: {spec}")
                           for spec in parameters.values()])
        except NamelistError as exc:
            raise NamelistError(f"{path}: {exc}") from None
    pool = Pool(names=tuple(parameters), values=np.array(values).reshape(len(runs), -1),
                ids=tuple(r.name for r in runs))
    return RamsesPoolOracle(pool=pool, runs=tuple(runs), product=product, output=output)


def pool_oracle_from_table(table: str | os.PathLike | pd.DataFrame, product: Product, *,
                           run_column: str = "run", inputs: Sequence[str] | None = None,
                           output: int | None = None) -> RamsesPoolOracle:
    """A pool oracle from a table with one row per run: its directory and its parameters.

    Args:
        table: a CSV file (run directories relative to its folder) or a DataFrame.
        product: what to return from each output.
        run_column: the column naming each run's directory.
        inputs: parameter columns; default every other numeric column.
        output: output number to read; default each run's highest.
    """
    base = Path.cwd()
    if not isinstance(table, pd.DataFrame):
        base = Path(table).resolve().parent
        table = pd.read_csv(table)
    if run_column not in table.columns:
        raise ValueError(f"table has no column {run_column!r}; columns: {list(table.columns)}")
    if inputs is None:
        inputs = [c for c in table.columns
                  if c != run_column and pd.api.types.is_numeric_dtype(table[c])]
    missing = [c for c in inputs if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column {missing[0]!r}; columns: {list(table.columns)}")
    runs = tuple(base / str(p) for p in table[run_column])
    pool = Pool(names=tuple(inputs), values=table[list(inputs)].to_numpy(dtype=np.float64),
                ids=tuple(str(p) for p in table[run_column]))
    return RamsesPoolOracle(pool=pool, runs=runs, product=product, output=output)


# --------------------------------------------------------------------------- command oracle


@dataclass(frozen=True)
class _CommandJob:
    """Everything one run needs; a plain picklable value for process-pool executors."""

    command: tuple[str, ...]
    template: str
    parameters: tuple[tuple[str, str], ...]
    integer_inputs: frozenset[str]
    product: Product
    workdir: Path
    namelist_name: str
    timeout_s: float | None
    output: int | None


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _run_command(job: _CommandJob, query: np.ndarray) -> tuple[np.ndarray | None, str, float]:
    """Launch one simulation for `query` (dim,) and read its output: (values | None, error, s)."""
    start = time.perf_counter()
    digest = hashlib.blake2b(np.ascontiguousarray(query, dtype="<f8").tobytes(),
                             digest_size=6).hexdigest()
    job.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run_{digest}_", dir=job.workdir))

    def failed(message: str):
        return None, f"{message} [run directory {run_dir}]", time.perf_counter() - start

    try:
        values = {spec: int(round(v)) if name in job.integer_inputs else float(v)
                  for (name, spec), v in zip(job.parameters, query)}
        text = set_values(job.template, values)
    except NamelistError as exc:
        return failed(f"namelist: {exc}")
    namelist_path = run_dir / job.namelist_name
    namelist_path.write_text(text)
    argv = [a.replace("{namelist}", str(namelist_path)).replace("{run_dir}", str(run_dir))
            for a in job.command]
    stdout, stderr = run_dir / "stdout.txt", run_dir / "stderr.txt"
    try:
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            proc = subprocess.run(argv, cwd=run_dir, stdout=out, stderr=err,
                                  timeout=job.timeout_s, check=False)
    except FileNotFoundError:
        return failed(f"command not found: {argv[0]}")
    except PermissionError:
        return failed(f"command not executable: {argv[0]}")
    except subprocess.TimeoutExpired:
        return failed(f"timed out after {job.timeout_s} s")
    if proc.returncode != 0:
        detail = _last_line(stderr) or _last_line(stdout)
        return failed(f"exit status {proc.returncode}" + (f": {detail}" if detail else ""))
    try:
        values = _evaluate(job.product, latest_output(run_dir, job.output))
    except RUN_ERRORS as exc:
        return failed(_describe(exc))
    return values, "", time.perf_counter() - start


@dataclass(frozen=True)
class RamsesCommandOracle:
    """Runs a simulator executable per query and reads the RAMSES output it writes.

    Each query gets a fresh directory `workdir/run_<hash>_<random>/`, holding the namelist (the
    template with the query's values set), the simulator's stdout.txt / stderr.txt and its
    outputs; directories are kept for inspection.

    Args:
        command: the argv to run inside the run directory; "{namelist}" and "{run_dir}" are
            replaced by their paths, e.g. ("mpirun", "-n", "4", "ramses3d", "{namelist}").
        template: namelist text whose parameters the queries set.
        space: the inputs; every name must appear in `parameters`.
        parameters: input name -> namelist parameter "GROUP/key" or "GROUP/key(i)".
        product: what to return from the output.
        workdir: where run directories are made.
        integer_inputs: inputs written as integers (rounded), e.g. a random seed.
        timeout_s: wall-clock limit per run; a run over it fails.
        output: which output to read; default the highest-numbered.
        executor: runs queries concurrently when given (a thread pool is enough: the work is
            in the subprocesses); sequential otherwise.
        namelist_name: file name of the namelist in the run directory.
    """

    command: Sequence[str]
    template: str
    space: Space
    parameters: Mapping[str, str]
    product: Product
    workdir: str | os.PathLike
    integer_inputs: Sequence[str] = ()
    timeout_s: float | None = None
    output: int | None = None
    executor: Executor | None = field(default=None, compare=False)
    namelist_name: str = "run.nml"
    _outputs: OutputSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        command = tuple(str(a) for a in self.command)
        if not command:
            raise ValueError("command must name an executable")
        missing = [n for n in self.space.names if n not in self.parameters]
        if missing:
            raise ValueError(f"inputs {missing} have no namelist parameter in `parameters`")
        extra = [n for n in self.parameters if n not in self.space.names]
        if extra:
            raise ValueError(f"parameters {extra} are not inputs of the space "
                             f"{list(self.space.names)}")
        unknown = [n for n in self.integer_inputs if n not in self.space.names]
        if unknown:
            raise ValueError(f"integer_inputs {unknown} are not inputs of the space")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        if not re.fullmatch(r"[\w.\-]+", self.namelist_name):
            raise ValueError(f"namelist_name {self.namelist_name!r} must be a plain file name")
        # Fail now, not per run, on a template or parameter name that cannot work.
        set_values(self.template, {self.parameters[n]: 0.0 for n in self.space.names})
        object.__setattr__(self, "command", command)
        object.__setattr__(self, "workdir", Path(self.workdir))
        object.__setattr__(self, "_outputs", product_outputs(self.product))

    @property
    def outputs(self) -> OutputSpec:
        return self._outputs

    def _job(self) -> _CommandJob:
        return _CommandJob(command=self.command, template=self.template,
                           parameters=tuple((n, self.parameters[n]) for n in self.space.names),
                           integer_inputs=frozenset(self.integer_inputs), product=self.product,
                           workdir=Path(self.workdir).resolve(),
                           namelist_name=self.namelist_name, timeout_s=self.timeout_s,
                           output=self.output)

    def run(self, queries: np.ndarray) -> Outcome:
        """Run the simulator once per query row, (n, dim) -> Outcome with y (n, product size)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        if queries.shape[1] != self.space.dim:
            raise ValueError(f"queries have {queries.shape[1]} columns, the space "
                             f"{list(self.space.names)} has {self.space.dim}")
        job = self._job()
        jobs = [job] * len(queries)
        mapper = self.executor.map if self.executor is not None else map
        return _outcome(list(mapper(_run_command, jobs, list(queries))), self.outputs.dim)
