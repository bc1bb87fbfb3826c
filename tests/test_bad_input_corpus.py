"""A corpus of bad inputs to the four commands: each is refused with a non-zero exit and exactly
one line on stderr, starting with the command's error prefix, and no traceback anywhere.

    python -m experiments.run       bad settings, unknown names, impossible paths
    python -m experiments.compare   damaged and mismatched sweeps, bad flags and metrics
    python -m simulators.ramses     damaged RAMSES outputs, bad arguments
    python -m simulators.mocca      bad catalogues and model tables, bad arguments

The entry points run in this process (a few through a subprocess, as a user starts them), on
inputs made fresh for each case from small module-wide originals, so that the corpus takes
seconds. Each case names the input, what is done to it, and a fragment the error line holds.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.compare import main as compare_main
from simulators.mocca.__main__ import main as mocca_main
from simulators.ramses.cli import main as ramses_main
from tests.simulators.test_ramses_reader import amr_output, first_son, oct_records, patch
from tests.test_compare import TEST_INPUTS, fake_run

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / ".." / "shared" / "data" / "mocca" / "paper_predictions_harris.csv"
MODELS = REPO / ".." / "shared" / "data" / "mocca" / "simulations.csv"
PREFIX = {"run": "alframe: error: ", "compare": "compare: error: ", "ramses": "ramses: error: ",
          "mocca": "python -m simulators.mocca: error: "}
MODULE = {"run": "experiments.run", "compare": "experiments.compare", "ramses": "simulators.ramses",
          "mocca": "simulators.mocca"}
GRID = np.arange(20, 101, 20)  # simulations after each round of the corpus's sweeps


@dataclass(frozen=True)
class Case:
    """One bad input: the command, its arguments (with {tmp}, {input} and {file} standing for
    the case's directory, its copy of the original input and an existing plain file), what is
    done to the copy first, and a fragment the one error line must hold."""

    command: str
    args: tuple[str, ...]
    says: str
    damage: Callable[[Path], None] | None = None
    in_subprocess: bool = False


def case(id: str, command: str, args: str | tuple[str, ...], says: str, damage: Callable[[Path], None] | None = None,
         *, xfail: str | None = None, in_subprocess: bool = False):
    arguments = tuple(args.split()) if isinstance(args, str) else args
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Case(command, arguments, says, damage, in_subprocess), id=f"{command}-{id}", marks=marks)


# -- damage: small pure edits of a copied input ------------------------------------------


def write(relative: str, text: str | bytes) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode())
    return damage


def remove(relative: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        target = root / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return damage


def both(*damages: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        for each in damages:
            each(root)
    return damage


# experiments.compare: the sweep has qbc and random, seeds 0 and 1.


def store(strategy: str = "random", seed: int = 0) -> str:
    return f"{strategy}/seed={seed}/run.zarr"


def edit_attrs(relative: str, **changes) -> Callable[[Path], None]:
    """Set (None: delete) root attributes of a store, in its zarr.json, as a damaged file would."""
    def damage(root: Path) -> None:
        path = root / relative / "zarr.json"
        meta = json.loads(path.read_text())
        for key, value in changes.items():
            meta["attributes"].pop(key, None) if value is None else meta["attributes"].update({key: value})
        path.write_text(json.dumps(meta))
    return damage


def rerun(strategy: str, seed: int, **differences) -> Callable[[Path], None]:
    """The run of (strategy, seed) written again with other settings."""
    def damage(root: Path) -> None:
        fake_run(root, strategy=strategy, seed=seed, mse=1.0 / GRID, grid=GRID, **differences)
    return damage


def copy_store(source: str, target: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        shutil.copytree(root / source, root / target)
    return damage


def shifted_test_outputs(strategy: str, seed: int) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        import xarray as xr

        from alframe.store import write_zarr

        path = root / store(strategy, seed)
        ds = xr.open_zarr(path).load()
        write_zarr(ds.assign(y_test=ds.y_test + 0.5), path, mode="w")
    return damage


# simulators.ramses: the output is 3-D, levels 2..4, on two CPU files.


def truncate(name: str, keep: int) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / name).write_bytes((root / name).read_bytes()[:keep])
    return damage


def replace_bytes(name: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        data = (root / name).read_bytes()
        assert old in data
        (root / name).write_bytes(data.replace(old, new, 1))
    return damage


def edit_info(old: str, new: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        info = root / "info_00002.txt"
        lines = [new if line.startswith(old) else line for line in info.read_text().splitlines()]
        info.write_text("\n".join(line for line in lines if line is not None) + "\n")
    return damage


def son(level: int, *, refined: bool, value: int) -> Callable[[Path], None]:
    """The first son pointer at `level` of CPU 1's own cells that is (or is not) set, set to `value`."""
    def damage(root: Path) -> None:
        amr = root / "amr_00002.out00001"
        offset, _ = first_son(amr, level, refined=refined)
        patch(amr, offset, np.int32(value))
    return damage


def oct_centre(level: int, value: float) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        amr = root / "amr_00002.out00001"
        where = oct_records(amr)[(level, 1)]
        patch(amr, where["centres"][0], np.float64(value))
    return damage


def leaf_oct_moved(level: int) -> Callable[[Path], None]:
    """The second oct of `level` moved onto the first, on the grid: its cells listed twice."""
    def damage(root: Path) -> None:
        amr = root / "amr_00002.out00001"
        where = oct_records(amr)[(level, 1)]
        data = amr.read_bytes()
        for offset in where["centres"]:
            patch(amr, offset + 8, np.frombuffer(data, "<f8", 1, offset))
    return damage


# simulators.mocca: the catalogue is the source study's table of 50 Harris clusters.


def cell(row: int, column: str, value: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.loc[row, column] = value
        frame.to_csv(path, index=False)
    return damage


def drop_column(column: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=[column]).to_csv(path, index=False)
    return damage


def header_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines()[0] + "\n")


def models_of_one_class(catalog: Path) -> None:
    """models.csv in the case's directory: the shared model table with no black hole anywhere."""
    frame = pd.read_csv(MODELS, dtype=str, keep_default_na=False)
    frame[["Single Black Holes", "Binary Black Holes", "Black Hole Other Count"]] = "0"
    frame.to_csv(catalog.parent.parent / "models.csv", index=False)


LUMINOSITY = "Total V-band luminosity"
CORE = "Observational Core Radius"


# -- the corpus -------------------------------------------------------------------------


RUN = [
    case("budget-negative", "run", "budget=-1", "budget must be an integer >= 1, got -1"),
    case("budget-zero", "run", "budget=0", "budget must be an integer >= 1, got 0"),
    case("budget-not-a-number", "run", "budget=abc", "budget must be an integer >= 1, got 'abc'"),
    case("budget-boolean", "run", "budget=true", "budget must be an integer >= 1, got True"),
    case("batch-size-fraction", "run", "batch_size=2.5", "batch_size must be an integer >= 1, got 2.5"),
    case("batch-size-zero", "run", "batch_size=0", "batch_size must be an integer >= 1, got 0"),
    case("top-level-key-unknown", "run", "+nonsense=1", "+nonsense=1: 'nonsense' is not a top-level key"),
    case("top-level-key-misspelt", "run", "budjet=40", "budjet=40: 'budjet' is not a setting of this config "
         "(nearest: budget"),
    case("node-key-misspelt", "run", ("simulator=heteroscedastic_sine", "simulator.sdlow=0.1"),
         "simulator.sdlow=0.1: simulator 'heteroscedastic_sine' has no setting 'sdlow' ("),
    case("simulator-run-outside", "run", ("simulator=external", "simulator.inputs={{a:[0,1]}}"),
         "this simulator runs outside alframe: drive it with `alframe ask` and `alframe tell`"),
    case("n-initial-zero", "run", "n_initial=0", "n_initial must be an integer >= 1, got 0"),
    case("test-size-negative", "run", "test_size=-3", "test_size must be an integer >= 1, got -3"),
    case("retries-negative", "run", "retries=-1", "retries must be an integer >= 0, got -1"),
    case("in-flight-zero", "run", "in_flight=0", "in_flight must be an integer >= 1, got 0"),
    case("target-not-a-number", "run", "target=abc", "target must be a number or null, got 'abc'"),
    case("target-boolean", "run", "target=true", "target must be a number or null"),
    case("target-metric-unknown", "run", "target=0.1 target_metric=nope", "target metric 'nope' not among"),
    case("target-metric-not-a-name", "run", "target_metric=123", "target_metric must be a metric name, got 123"),
    case("seed-not-a-number", "run", "seed=abc", "seed must be an integer"),
    case("candidates-negative", "run", "candidates.size=-5", "candidates.size must be an integer >= 1, got -5"),
    case("candidates-not-a-number", "run", "candidates.size=abc", "candidates.size must be an integer >= 1, got 'abc'"),
    case("test-seed-not-a-number", "run", "test_seed=abc", "test_seed must be an integer >= 0, got 'abc'"),
    case("seed-negative", "run", "seed=-1", "seed must be an integer >= 0, got -1"),
    case("initial-method-unknown", "run", "initial_method=bogus",
         "initial_method must be one of uniform, sobol, lhs, got 'bogus'"),
    case("potential-unknown", "run", "simulator.potential=nope", "unknown potential 'nope'"),
    case("committee-score-unknown", "run", "strategy=qbc_spread strategy.score=nope", "unknown committee score 'nope'"),
    case("mlp-without-members", "run", "learner=mlp learner.members=0", "members must be >= 1, got 0"),
    case("cache-impossible", "run", "cache=/proc/alframe-cache", "cache /proc/alframe-cache: cannot write there"),
    case("cache-is-a-file", "run", "cache={file}", "cannot write there"),
    case("asynchronous-not-a-boolean", "run", "asynchronous=maybe", "asynchronous must be true or false, got 'maybe'"),
    case("higher-is-better-a-string", "run", "higher_is_better=abc",
         "higher_is_better must be a list of metric names or null, got 'abc'"),
    case("budget-negative-as-a-user-runs-it", "run", "budget=-1", "budget must be an integer >= 1",
         in_subprocess=True),
    case("run-dir-under-a-file", "run", "hydra.run.dir={file}/run", "is a file, not a directory"),
    case("strategy-unknown", "run", "strategy=nope", "strategy=nope: no such strategy"),
    case("strategy-unknown-in-a-sweep", "run", "-m strategy=random,nope", "strategy=nope: no such strategy"),
    case("learner-unknown", "run", "learner=nope", "learner=nope: no such learner"),
    case("simulator-unknown", "run", "simulator=nope", "simulator=nope: no such simulator"),
    case("executor-unknown", "run", "executor=nope", "executor=nope: no such executor"),
]

COMPARE = [
    case("sweep-missing", "compare", "{tmp}/nowhere", "nowhere is not a directory"),
    case("sweep-is-a-file", "compare", "{file}", "is not a directory"),
    case("sweep-without-stores", "compare", "{input}", "no run.zarr found under",
         both(remove("qbc"), remove("random"))),
    case("store-metadata-garbage", "compare", "{input}", "cannot read the run store",
         write(f"{store()}/zarr.json", "{not json")),
    case("two-stores-damaged", "compare", "{input}", "cannot read 2 run stores: ",
         both(write(f"{store()}/zarr.json", "{"), write(f"{store('qbc', 1)}/zarr.json", "[]"))),
    case("store-is-a-file", "compare", "{input}", "cannot read the run store",
         both(remove(store()), write(store(), "not a store"))),
    case("config-not-json", "compare", "{input}", "the `config` attr is not JSON", edit_attrs(store(), config="{")),
    case("no-finished-run", "compare", "{input}", "no finished run under",
         both(remove("qbc"), remove("random/seed=1"), edit_attrs(store(), stop_reason=None))),
    case("two-runs-of-one-seed", "compare", "{input}", "two runs for strategy 'random', seed 0",
         copy_store(store(), "random/again/run.zarr")),
    case("no-budget-attr", "compare", "{input}", "records no `budget` attr", edit_attrs(store(), budget=None)),
    case("not-a-run-store", "compare", "{input}", "is not a run store of this framework",
         edit_attrs(store(), seed=None)),
    case("different-budgets", "compare", "{input}", "runs of different budgets", rerun("random", 1, budget=200)),
    case("different-batch-sizes", "compare", "{input}", "batch_size 10 in ", edit_attrs(store("random", 1),
                                                                                         batch_size=20)),
    case("different-simulators", "compare", "{input}", "runs of different simulators: noise: null vs 0.2",
         rerun("random", 0, simulator={"_target_": "simulators.toy.make_oracle", "noise": 0.2})),
    case("different-test-inputs", "compare", "{input}", "the test inputs (x_test) of ",
         rerun("random", 1, test_inputs=TEST_INPUTS[::-1].copy())),
    case("different-test-outputs", "compare", "{input}", "the test outputs (y_test) of ",
         shifted_test_outputs("random", 0)),
    case("passive-strategy-absent", "compare", "{input} --passive sobol --no-retrain",
         "the passive strategy 'sobol' is not in the sweep"),
    case("passive-run-missing", "compare", "{input} --no-retrain", "'random' has no run for seed 1, which ",
         remove("random/seed=1")),
    case("metric-unknown", "compare", "{input} --metric nope --no-retrain", "metric 'nope' is not a per-round metric"),
    case("metric-bookkeeping", "compare", "{input} --metric fit_s --no-retrain", "metric 'fit_s' is not a per-round"),
    case("targets-nan", "compare", "{input} --targets nan", "--targets must be finite values of the metric"),
    case("targets-not-numbers", "compare", "{input} --targets x", "argument --targets: invalid float value: 'x'"),
    case("relative-targets-zero", "compare", "{input} --relative-targets 0 --no-retrain",
         "--relative-targets must be positive fractions"),
    case("flag-unknown", "compare", "{input} --frobnicate", "unrecognized arguments: --frobnicate"),
    case("no-arguments", "compare", (), "the following arguments are required: sweep_dir"),
    case("direction-attr-garbage", "compare", "{input} --no-retrain", "the `higher_is_better` attr is not a JSON list",
         edit_attrs(store(), higher_is_better="{{")),
    case("retrain-without-a-learner", "compare", "{input}", "cannot refit its final training set from scratch"),
]

RAMSES = [
    case("output-missing", "ramses", "info {tmp}/nowhere", "nowhere: not a directory"),
    case("output-empty", "ramses", "info {input}", "no info_NNNNN.txt (not a RAMSES output directory)",
         lambda root: [p.unlink() for p in root.iterdir()]),
    case("output-is-an-amr-file", "ramses", "info {input}/amr_00002.out00001",
         "expected an output directory or its info file"),
    case("two-info-files", "ramses", "info {input}", "several info files ([2, 3])",
         lambda root: shutil.copy(root / "info_00002.txt", root / "info_00003.txt")),
    case("info-without-boxlen", "ramses", "info {input}", "info_00002.txt: missing boxlen",
         lambda root: (root / "info_00002.txt").write_text("".join(
             line for line in (root / "info_00002.txt").read_text().splitlines(True) if not line.startswith("boxlen")))),
    case("info-ncpu-not-an-integer", "ramses", "info {input}", "line 1: ncpu = 'two' is not an integer",
         edit_info("ncpu", "ncpu        =        two")),
    case("info-binary", "ramses", "info {input}", "info_00002.txt: not a text file", write("info_00002.txt",
                                                                                         b"\xff\xfe\x00\x81")),
    case("descriptor-binary", "ramses", "info {input}", "hydro_file_descriptor.txt: not a text file",
         write("hydro_file_descriptor.txt", b"# version:  1\n\xff\xfe\x81")),
    case("descriptor-against-nvar", "ramses", "info {input}", "nvar = 2, but the variable names list 1",
         write("hydro_file_descriptor.txt", "# version:  1\n# ivar, variable_name, variable_type\n 1, density, d\n")),
    case("amr-truncated", "ramses", "info {input}", "amr_00002.out00001: record", truncate("amr_00002.out00001", 3000)),
    case("hydro-truncated", "ramses", "info {input}", "(truncated file)", truncate("hydro_00002.out00002", 900)),
    case("record-markers-disagree", "ramses", "info {input}", "has mismatched length markers 4 and 12",
         lambda root: patch(root / "amr_00002.out00001", 8, np.int32(12))),
    case("cpu-file-missing", "ramses", "info {input}", "missing CPU file", remove("hydro_00002.out00002")),
    case("ordering-unknown", "ramses", "info {input}", "unknown ordering 'peano'",
         replace_bytes("amr_00002.out00001", b"hilbert".ljust(128), b"peano".ljust(128))),
    case("refined-cell-read-as-leaf", "ramses", "info {input}", "level 3: 1 leaf cells are refined too",
         son(3, refined=True, value=0)),
    case("leaf-lost", "ramses", "info {input}", "level 4: 1 of its 4096 cells are neither leaves nor refined",
         son(4, refined=False, value=9)),
    case("oct-moved-onto-another", "ramses", "info {input}", "level 4: 8 leaf cells are listed more than once",
         leaf_oct_moved(4)),
    case("oct-centre-nan", "ramses", "info {input}", "oct centres at level 4 are not all finite numbers",
         oct_centre(4, float("nan"))),
    case("oct-centre-outside", "ramses", "info {input}", "octs at level 4 lie outside the box", oct_centre(4, 7.0)),
    case("field-unknown", "ramses", "grid {input} --field temperature --out {tmp}/t.npy", "no variable 'temperature'"),
    case("axis-unknown", "ramses", "project {input} --axis w --out {tmp}/w.npy", "invalid choice: 'w'"),
    case("out-not-npy", "ramses", "grid {input} --out {tmp}/rho.txt", "expected a .npy file name"),
    case("out-in-missing-directory", "ramses", "grid {input} --out {tmp}/none/rho.npy",
         "directory {tmp}/none does not exist"),
    case("level-too-deep", "ramses", "grid {input} --level 40 --out {tmp}/rho.npy",
         "level must be an integer in [0, 30], got 40"),
    case("grid-beyond-memory", "ramses", "grid {input} --level 14 --out {tmp}/rho.npy",
         "--level 14: a grid of 16384^3 cells needs about"),
    case("level-not-a-number", "ramses", "grid {input} --level deep --out {tmp}/rho.npy",
         "argument --level: invalid int value: 'deep'"),
    case("command-unknown", "ramses", "explode {input}", "invalid choice: 'explode'"),
    case("damaged-output-as-a-user-runs-it", "ramses", "info {input}", "level 3: 1 leaf cells are refined too",
         son(3, refined=True, value=0), in_subprocess=True),
    case("no-command-as-a-user-runs-it", "ramses", (), "the following arguments are required: command",
         in_subprocess=True),
]

MOCCA = [
    case("value-nan", "mocca", "predict {input}", "line 4, column 'Observational Core Radius': 'nan' is not a number",
         cell(2, CORE, "nan")),
    case("value-inf", "mocca", "predict {input}", "line 6, column 'Total V-band luminosity': 'inf' is not a finite",
         cell(4, LUMINOSITY, "inf")),
    case("value-overflowing-the-logs", "mocca", "predict {input}", "'1e308' is not a finite value below 1e+30",
         cell(4, LUMINOSITY, "1e308")),
    case("value-beyond-float", "mocca", "predict {input}", "'1e400' is not a finite value below 1e+30",
         cell(4, LUMINOSITY, "1e400")),
    case("value-negative", "mocca", "predict {input}", "line 3, column 'Observational Core Radius': '-2' is not positive",
         cell(1, CORE, "-2")),
    case("value-empty", "mocca", "predict {input}", "line 3, column 'Observational Core Radius': empty value",
         cell(1, CORE, "")),
    case("value-not-a-number", "mocca", "predict {input}", "cannot parse '0.3x' as a number", cell(1, CORE, "0.3x")),
    case("catalog-header-only", "mocca", "predict {input}", "no clusters (the file has a header and no rows)",
         header_only),
    case("catalog-empty-file", "mocca", "predict {input}", "cannot read as CSV", lambda path: path.write_text("")),
    case("catalog-binary", "mocca", "predict {input}", "cannot read as CSV",
         lambda path: path.write_bytes(b"\xff\xfe\x00\x81")),
    case("catalog-missing", "mocca", "predict {tmp}/nowhere.csv", "nowhere.csv: file not found"),
    case("cluster-names-repeated", "mocca", "predict {input}", "cluster 'NGC104' appears again (first on line 2)",
         cell(3, "Cluster Name", "NGC104")),
    case("cluster-name-empty", "mocca", "predict {input}", "line 4, column 'Cluster Name': empty cluster name",
         cell(2, "Cluster Name", " ")),
    case("feature-column-missing", "mocca", "predict {input}", "missing column(s) 'Observational Core Radius'",
         drop_column(CORE)),
    case("out-is-a-directory", "mocca", "predict {input} --out {tmp}", "is a directory"),
    case("out-is-the-catalog", "mocca", "predict {input} --out {input}", "is a file this command reads"),
    case("out-under-a-file", "mocca", "predict {input} --out {file}/p.csv", "is a file, not a directory"),
    case("models-missing", "mocca", "predict {input} --models {tmp}/absent.csv", "--models {tmp}/absent.csv: file not found"),
    case("models-of-one-class", "mocca", "predict {input} --models {tmp}/models.csv --classifier decision_tree",
         "all 1289 models lack a BH subsystem", models_of_one_class),
    case("classifier-unknown", "mocca", "predict {input} --classifier svm", "invalid choice: 'svm'"),
    case("seed-not-a-number", "mocca", "predict {input} --seed x", "argument --seed: invalid int value: 'x'"),
    case("folds-too-few", "mocca", "baseline --folds 1 --out-dir {tmp}/out", "--folds 1: cross-validation needs at least 2"),
    case("folds-too-many", "mocca", "baseline --folds 10000 --out-dir {tmp}/out", "more folds than the 162 models"),
    case("depth-zero", "mocca", "baseline --depth 0 --out-dir {tmp}/out", "--depth 0: the shallow tree needs a depth"),
    case("out-dir-is-a-file", "mocca", "harris --out-dir {file}", "is a file, not a directory"),
    case("harris-catalog-missing", "mocca", "harris --catalog {tmp}/mwgc.dat --out-dir {tmp}/out", "mwgc.dat: file not found"),
    case("command-unknown", "mocca", "fly", "invalid choice: 'fly'"),
]


# -- inputs, made once and copied per case -----------------------------------------------


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """The untouched inputs: a sweep (qbc and random, seeds 0 and 1), a refined 3-D RAMSES
    output on two CPU files, and the catalogue of the Harris clusters."""
    root = tmp_path_factory.mktemp("originals")
    for strategy in ("qbc", "random"):
        for seed in (0, 1):
            fake_run(root / "sweep", strategy=strategy, seed=seed, mse=1.0 / GRID, grid=GRID)
    return {"compare": root / "sweep", "ramses": amr_output(root / "ramses", ncpu=2), "mocca": CATALOG,
            "run": root}


def prepare(case: Case, originals: dict[str, Path], tmp_path: Path) -> list[str]:
    """The case's arguments, its input copied into `tmp_path` and damaged."""
    missing = [p for p in (CATALOG, MODELS) if case.command == "mocca" and not p.exists()]
    if missing:
        pytest.skip(f"MOCCA data not found: {missing[0]}")
    source = originals[case.command]
    copy = tmp_path / "input" / source.name
    if case.command in ("compare", "ramses"):
        shutil.copytree(source, copy)
    elif case.command == "mocca":
        copy.parent.mkdir()
        shutil.copy(source, copy)
    if case.damage is not None:
        case.damage(copy)
    (tmp_path / "file").write_text("a plain file\n")
    fill = {"tmp": str(tmp_path), "input": str(copy), "file": str(tmp_path / "file")}
    args = [a.format(**fill) for a in case.args]
    if case.command == "run":
        given = {a.split("=")[0] for a in args}
        args += [f"{key}={value}" for key, value in (("hydra.run.dir", tmp_path / "run"), ("progress", "false"),
                                                     ("test_size", 20)) if key not in given]
        if not case.in_subprocess:
            # Hydra's logging setup would close the test runner's own log handlers in this process.
            args += ["hydra/job_logging=none", "hydra/hydra_logging=none"]
    return args


def run_in_process(command: str, args: list[str], monkeypatch) -> int:
    """The command's entry point, called here; its exit status."""
    try:
        if command == "run":
            # Hydra finds conf/ from the file of a `__main__` task function, as `python -m` runs it.
            monkeypatch.setattr(sys, "argv", [str(REPO / "experiments" / "run.py"), *args])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is imported already
                runpy.run_module("experiments.run", run_name="__main__")
            return 0
        main = {"compare": compare_main, "ramses": ramses_main, "mocca": mocca_main}[command]
        return main(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def run_in_subprocess(command: str, args: list[str]) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", MODULE[command], *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", [*RUN, *COMPARE, *RAMSES, *MOCCA])
def test_bad_input_is_refused_in_one_line(case: Case, originals, tmp_path, capsys, monkeypatch):
    args = prepare(case, originals, tmp_path)
    if case.in_subprocess:
        status, out, err = run_in_subprocess(case.command, args)
    else:
        status = run_in_process(case.command, args, monkeypatch)
        out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err, err[-3000:]
    assert status != 0
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith(PREFIX[case.command]), lines[0]
    assert case.says.format(tmp=tmp_path) in lines[0], lines[0]


def test_the_corpus_is_large_and_covers_every_command():
    cases = [param.values[0] for param in (*RUN, *COMPARE, *RAMSES, *MOCCA)]
    assert len(cases) >= 60
    assert {c.command for c in cases} == set(PREFIX)
    ids = [param.id for param in (*RUN, *COMPARE, *RAMSES, *MOCCA)]
    assert len(ids) == len(set(ids))
