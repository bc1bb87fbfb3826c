"""The verdict of a sweep: how many simulations each strategy needs, against passive sampling.

    python -m experiments.compare SWEEP_DIR [--passive random] [--metric mse]
                                  [--targets 1e-2 1e-3] [--relative-targets 0.95 0.9]
                                  [--allow-mixed]

Gathers every `run.zarr` under SWEEP_DIR into one Dataset (dims `strategy`, `seed`,
`n_labeled`, the last being simulations spent), saved as `SWEEP_DIR/comparison.zarr` with
every numeric per-round variable of the stores (per-output ones gain an `output` dim), and
writes beside it:

- `summary.csv`, `summary.json` (a list of records) and `verdict.txt`: the default targets,
  for each target and strategy the simulations needed to reach it for good (median and
  quartiles over seeds; a seed that never reaches it counts as budget + 1 and is censored),
  the ratio passive/strategy with its bound, one-sided paired Wilcoxon tests both ways, and
  the strategy's final R^2. `verdict.txt` holds one line per strategy and target and every
  caveat (a target left out, a passive model without skill).
- `summary_targets.*` / `verdict_targets.txt` for `--targets` (values of the metric) and
  `summary_relative.*` / `verdict_relative.txt` for `--relative-targets`, beside the default
  summary, which they never replace; with `--metric` other than the default (mse, or f1 for
  classification) or the runs' own `target_metric`, every name gains `_<metric>`
  (`summary_rmse.csv`, `learning_curves_rmse.png`);
- `retrain.csv`: every strategy's final training set refitted from scratch with the same
  recipe, scored on the same test set (the gain is in the data, not in the training path);
- `learning_curves.png` (median and 16-84 % band over seeds, with R^2 below when the
  stores have it), `queried_points.png`, for more than two inputs `queried_embedding.png` (and
  its scores, `queried_embedding.json`: see `experiments.embed`), and for the 1-D potential
  `query_energy.png`.

Default targets: passive's final metric (median over seeds) and, for a lower-is-better
metric, up to 3 round values (1 or 3 times a power of ten) between it and the initial
design's. A target the initial design (the first round, shared by every strategy) already
reaches on the median seed is left out: reaching it costs nothing. When passive's final
model has no useful skill (median final R^2 below 0.2; for a classification, macro f1 less than
a fifth of the way from what predicting the commonest class everywhere scores to 1), its final
error is no target either.
Nor is an error so small that reaching it would mean R^2 above 1 - 1e-6 (an `mse` or `rmse`
below 1e-6 of the constant predictor's): at that level the counts measure round-off and a
Gaussian process's jitter, not what was learnt, and no simulator is that precise.

Relative targets: a fraction f of passive's final *skill*. For a lower-is-better metric (an
error) the target is passive_final / f, for a higher-is-better one f * passive_final; so 0.9
asks "who reaches 90 % of what passive sampling ends with, and how much sooner".

Runs that do not belong together are refused, in one line naming two stores and the field that
differs: another budget, batch size or simulator (its settings; `seed` entries may follow the
run's seed), another test set (a sha256 digest of the stored test inputs, and of the test
outputs between runs of one seed or of one simulator setting), or a seed with no passive run
(each seed's runs are compared in pairs). `--allow-mixed` compares them anyway, and then every
verdict says so: the header and a note per difference in `verdict*.txt` and the printed tables,
and `comparison.zarr`'s `mixed` attr; with several budgets every run is cut at the smallest.
A store that cannot be read, or two runs of one strategy and seed, are refused whatever the
flag; a damaged store is named (all of them, in one line).

Metric direction: the store attr `higher_is_better` (a JSON list of the per-round metrics
where higher is better) when the stores have it, else the metric's name by
`alframe.metrics.higher_is_better` (accuracy, f1, r2, names starting with r2 or skill or
ending with _accuracy, _f1, _score, _r2 are higher-is-better; everything else is an error).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import wilcoxon

from alframe import plots
from alframe.compilation_cache import default_directory
from alframe.compilation_cache import enable as enable_compilation_cache
from alframe.learners.coordinates import in_space_coordinates
from alframe.learners.gp import NOISE_FLOOR
from alframe.learners.output_units import in_float32_range
from alframe.loop import score_committee
from alframe.metrics import STANDARDISED_METRICS
from alframe.metrics import higher_is_better as higher_by_name
from alframe.metrics import simulations_to_reach
from alframe.space import Box
from alframe.store import read_run
from alframe.store import write_zarr
from experiments.embed import embed_runs

# Per-round variables that describe the run rather than score the model: kept in
# comparison.zarr, never offered as a --metric.
BOOKKEEPING = ("round", "n_runs", "n_labeled", "fit_s", "select_s", "selection_cost")
# Below this median final R^2 passive sampling's model is barely better than predicting the
# test set's mean, and "reaching its error" is no achievement.
NO_SKILL_R2 = 0.2
# An error below this fraction of the constant predictor's (R^2 above 1 - 1e-6) is beyond the
# precision of any simulator and of the model's own arithmetic: no target is set there.
RESOLUTION = 1e-6
TARGET_KINDS = ("passive_final", "intermediate", "relative", "given")
SUMMARY_COLUMNS = ("target", "target_kind", "metric", "strategy", "budget", "median_simulations",
                   "median_bound", "q25_simulations", "q75_simulations", "seeds_reached", "seeds",
                   "censored", "ratio_vs_passive", "ratio_bound", "p_value", "p_worse", "r2", "final_metric")
_COMPARISON_DIMS = ("strategy", "seed", "n_labeled", "output")


class SweepError(ValueError):
    """The sweep directory cannot be compared; the message says why."""


class MixedSweepError(SweepError):
    """The sweep's runs differ in a field a fair verdict needs equal (`--allow-mixed` lets them)."""


class Mismatch(NamedTuple):
    """Two stores of a sweep that differ in `field` (budget, batch_size, simulator, test set):
    the one seen first, the other, and a sentence naming both and the difference."""

    field: str
    first: str
    second: str
    message: str


class Target(NamedTuple):
    """A value of the metric to reach, and where it came from (one of TARGET_KINDS)."""

    value: float
    kind: str


# -- reading the sweep ------------------------------------------------------------------


def _source(ds: xr.Dataset) -> str:
    return str(ds.encoding.get("source", "?"))


def _config(ds: xr.Dataset, path: Path) -> dict[str, Any]:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}: the `config` attr is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise SweepError(f"{path}: the `config` attr is not a JSON object")
    return config


def _one_line(text: object) -> str:
    return " ".join(str(text).split("\n"))


def _listed(items: Sequence[str], most: int = 3) -> str:
    """`a, b, c and 4 more`: a list for a one-line message."""
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def sweep_variant(path: Path, sweep_dir: Path) -> str:
    """Which sweep a run store belongs to, among several in one directory: the settings Hydra
    names the folders below its `seed=N` folder with (`budget=60`), '' when there are none."""
    parts = Path(path).relative_to(sweep_dir).parts[:-1]
    seed_at = next((i for i, part in enumerate(parts) if part.startswith("seed=")), None)
    return "" if seed_at is None else "/".join(parts[seed_at + 1:])


def load_runs(sweep_dir: Path, *, allow_mixed: bool = False, skipped: list[str] | None = None,
              only: str | None = None) -> dict[tuple[str, int], xr.Dataset]:
    """Every finished run store under `sweep_dir`, keyed by (strategy, seed).

    Unfinished runs are skipped: their paths are appended to `skipped` when it is given, else
    said in one line on stderr once the sweep has loaded. Stores that cannot be read (all of
    them named in one SweepError), two runs of one (strategy, seed), and, unless
    `allow_mixed`, runs that do not belong together (`sweep_mismatches`: MixedSweepError)
    are refused. Each Dataset's `encoding["source"]` is its path.
    """
    paths = sorted(Path(sweep_dir).rglob("run.zarr"))
    if not paths:
        raise SweepError(f"no run.zarr found under {sweep_dir}")
    variant_of = {path: sweep_variant(path, sweep_dir) for path in paths}
    variants = sorted(set(variant_of.values()))
    if only is not None:
        paths = [path for path in paths if variant_of[path] == only]
        if not paths:
            raise SweepError(f"no run of --only {only!r} under {sweep_dir} (its sweeps: "
                             f"{', '.join(repr(v) for v in variants)})")
    runs: dict[tuple[str, int], xr.Dataset] = {}
    damaged: list[tuple[Path, Exception]] = []
    unfinished: list[str] = []
    for path in paths:
        try:
            ds = read_run(path)
        # A damaged store makes zarr raise almost anything (an AttributeError for a list as
        # zarr.json): each is named with its store.
        except Exception as exc:  # noqa: BLE001
            damaged.append((path, exc))
            continue
        if "stop_reason" not in ds.attrs:
            unfinished.append(str(path))
            continue
        ds.encoding["source"] = str(path)
        config = _config(ds, path)
        if "seed" not in ds.attrs or "n_runs" not in ds:
            raise SweepError(f"{path} is not a run store of this framework (no `seed` attr or `n_runs` variable)")
        key = (str(config.get("strategy_name", ds.attrs.get("label", "?"))), int(ds.attrs["seed"]))
        if key in runs:
            if len(variants) > 1:
                raise SweepError(f"{sweep_dir} holds {len(variants)} sweeps ({', '.join(repr(v) for v in variants)}): "
                                 f"--only {variants[-1]} compares one, its verdict going to "
                                 f"{Path(sweep_dir) / variants[-1]}")
            simulators = {json.dumps(c.get("simulator"), sort_keys=True) for c in (_config(runs[key], path), config)}
            what = "another simulator" if len(simulators) > 1 else "other settings (a budget, say)"
            raise SweepError(f"two runs for strategy {key[0]!r}, seed {key[1]}: {_source(runs[key])} and {path}; "
                             f"a sweep of {what} belongs in a directory of its own (hydra.sweep.dir=...): "
                             "give the directory of one sweep")
        runs[key] = ds
    if len(damaged) == 1:
        path, exc = damaged[0]
        raise SweepError(f"cannot read the run store {path}: {type(exc).__name__}: {_one_line(exc)}")
    if damaged:
        each = "; ".join(f"{path} ({type(exc).__name__}: {_one_line(exc)})" for path, exc in damaged)
        raise SweepError(f"cannot read {len(damaged)} run stores: {each}")
    if not runs:
        raise SweepError(f"no finished run under {sweep_dir} ({_unfinished_phrase(unfinished)})")
    mismatches = sweep_mismatches(runs)
    if mismatches and not allow_mixed:
        raise MixedSweepError(mismatches[0].message)
    base = None if only is None else strategy_free(only)
    if base is not None and base != only and base in variants:
        # A sweep that changed a strategy's own settings (`strategy=qbc strategy.failure_settles=0.75`)
        # ran that strategy alone: the other strategies' runs are those of the sweep it varies.
        ran = {strategy for strategy, _ in runs}
        borrowed = {key: ds for key, ds in load_runs(sweep_dir, allow_mixed=allow_mixed, skipped=unfinished,
                                                     only=base).items() if key[0] not in ran}
        if borrowed:
            names = sorted({strategy for strategy, _ in borrowed})
            print(f"compare: {', '.join(names)} from the sweep {base!r}, which differs from {only!r} only in "
                  "strategy settings", file=sys.stderr)
            runs.update(borrowed)
    if skipped is not None:
        skipped.extend(unfinished)
    elif unfinished:
        print(f"skipping {_unfinished_phrase(unfinished)}", file=sys.stderr)
    return runs


def strategy_free(variant: str) -> str:
    """A sweep's settings (`budget=120,strategy.failure_settles=0.75`) without those of the
    strategy's own node (`budget=120`)."""
    return ",".join(part for part in variant.split(",") if part and not part.startswith(("strategy.", "+strategy.")))


def _unfinished_phrase(paths: Sequence[str]) -> str:
    return f"{len(paths)} unfinished run{'s' * (len(paths) != 1)}" + (f": {_listed(paths)}" if paths else "")


def _without_seeds(node: Any) -> Any:
    """A config node with every `seed` entry left out (a simulator's noise follows the run's seed)."""
    if isinstance(node, dict):
        return {k: _without_seeds(v) for k, v in node.items() if k != "seed"}
    if isinstance(node, list):
        return [_without_seeds(v) for v in node]
    return node


def _digest(values: Any) -> str:
    """A short sha256 of an array's shape and float64 values: equal exactly for equal arrays."""
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()[:12]


def _test_set_digests(ds: xr.Dataset) -> tuple[str, str]:
    """(digest of x_test, digest of y_test), "none" for a store without a test set."""
    if "x_test" not in ds or "y_test" not in ds:
        return "none", "none"
    return _digest(ds["x_test"].values), _digest(ds["y_test"].values)


class _FirstSeen:
    """The first value recorded under each key, with its store, to compare later ones with."""

    def __init__(self) -> None:
        self.seen: dict[Any, tuple[Any, str]] = {}

    def differs(self, key: Any, value: Any, path: str) -> tuple[Any, str] | None:
        """The earlier (value, store) under `key` when `value` differs from it; None otherwise."""
        earlier = self.seen.setdefault(key, (value, path))
        return earlier if earlier[0] != value else None


def sweep_mismatches(runs: Mapping[tuple[str, int], xr.Dataset]) -> list[Mismatch]:
    """The first pair of stores that differ in each field a fair verdict needs equal: budget,
    batch_size, simulator (the `simulator` config node, equal between the runs of one seed and
    equal but for its `seed` entries across seeds), test set (the digest of the stored test
    inputs across all runs, of the test outputs between runs of one seed or one simulator
    setting). Stores without a batch_size attr or a simulator node are not compared on those.

    Raises SweepError for a store without a `budget` attr (it is not a finished run).
    """
    found: dict[str, Mismatch] = {}
    budgets, batches, simulators, inputs, outputs = (_FirstSeen() for _ in range(5))

    def keep_first(field: str, earlier: tuple[Any, str], path: str, message: str) -> None:
        found.setdefault(field, Mismatch(field, earlier[1], path, message))

    for (_, seed), ds in runs.items():
        path = _source(ds)
        if "budget" not in ds.attrs:
            raise SweepError(f"{path} records no `budget` attr")
        budget = ds.attrs["budget"]
        if earlier := budgets.differs(None, budget, path):
            keep_first("budget", earlier, path, f"runs of different budgets cannot be compared fairly: {earlier[0]} "
                                                f"in {earlier[1]}, {budget} in {path}; compare each budget in its "
                                                f"own sweep")
        if "batch_size" in ds.attrs:
            batch = ds.attrs["batch_size"]
            if earlier := batches.differs(None, batch, path):
                keep_first("batch_size", earlier, path, f"runs of different batch sizes: batch_size {earlier[0]} in "
                                                        f"{earlier[1]}, {batch} in {path}")
        simulator = _config(ds, Path(path)).get("simulator")
        if simulator is not None:
            for key, node in ((("seed", seed), simulator), ("any seed", _without_seeds(simulator))):
                if earlier := simulators.differs(key, node, path):
                    keep_first("simulator", earlier, path, f"runs of different simulators: "
                                                           f"{_describe_difference(earlier[0], node)} ({earlier[1]} "
                                                           f"against {path})")
        x_digest, y_digest = _test_set_digests(ds)
        if earlier := inputs.differs(None, x_digest, path):
            keep_first("test set", earlier, path, f"runs scored on different test sets: the test inputs (x_test) of "
                                                  f"{earlier[1]} and {path} differ (sha256 {earlier[0]} vs "
                                                  f"{x_digest})")
        # A simulator seeded by the run gives other test outputs on another seed: compare them
        # between runs of one seed, and between runs of one simulator setting.
        setting = json.dumps(simulator, sort_keys=True, default=str)
        for key in (("seed", seed), ("simulator", setting)):
            if earlier := outputs.differs(key, y_digest, path):
                keep_first("test set", earlier, path, f"runs scored on different test sets: the test outputs "
                                                      f"(y_test) of {earlier[1]} and {path} differ (sha256 "
                                                      f"{earlier[0]} vs {y_digest})")
    order = ("budget", "batch_size", "simulator", "test set")
    return [found[f] for f in order if f in found]


def _describe_difference(a: Any, b: Any) -> str:
    """The differing entries of two config nodes, short: `noise: 0.1 vs 0.2`."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return f"{json.dumps(a, default=str)[:120]} vs {json.dumps(b, default=str)[:120]}"
    keys = sorted({*a, *b}, key=lambda k: (k != "_target_", str(k)))
    parts = [f"{k}: {json.dumps(a.get(k), default=str)[:80]} vs {json.dumps(b.get(k), default=str)[:80]}"
             for k in keys if a.get(k) != b.get(k)]
    return "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")


def common_budget(runs: Mapping[tuple[str, int], xr.Dataset]) -> int:
    """The budget every run of the sweep had (load_runs has checked that they agree)."""
    budgets = {ds.attrs["budget"] for ds in runs.values()}
    if len(budgets) != 1:
        raise SweepError(f"runs of different budgets cannot be compared fairly: {sorted(budgets)}")
    return int(budgets.pop())


def unpaired_runs(runs: Mapping[tuple[str, int], xr.Dataset], passive: str) -> list[tuple[str, int]]:
    """(strategy, seed) of the runs whose seed has no passive run: they have nothing to be
    compared with in pairs. Empty when the sweep has no passive run at all (said elsewhere)."""
    passive_seeds = {seed for strategy, seed in runs if strategy == passive}
    if not passive_seeds:
        return []
    return sorted(key for key in runs if key[1] not in passive_seeds)


def _unpaired_message(runs: Mapping[tuple[str, int], xr.Dataset], unpaired: Sequence[tuple[str, int]],
                      passive: str) -> str:
    seeds = sorted({seed for _, seed in unpaired})
    stores = [_source(runs[key]) for key in unpaired]
    return (f"the passive strategy {passive!r} has no run for seed{'s' * (len(seeds) > 1)} "
            f"{', '.join(map(str, seeds))}, which {_listed(stores)} ran; each seed's runs are compared in pairs")


def metric_directions(runs: Mapping[tuple[str, int], xr.Dataset], names: Sequence[str]) -> dict[str, bool]:
    """name -> whether higher is better: a store's `higher_is_better` attr (a JSON list of
    names) decides for the variables it holds, the name rule for stores without the attr."""
    declared: dict[str, tuple[bool, str]] = {}
    for ds in runs.values():
        raw = ds.attrs.get("higher_is_better")
        if raw is None:
            continue
        try:
            higher = json.loads(raw) if isinstance(raw, str) else list(raw)
        except (TypeError, json.JSONDecodeError):
            higher = None
        if not isinstance(higher, list) or not all(isinstance(n, str) for n in higher):
            raise SweepError(f"{_source(ds)}: the `higher_is_better` attr is not a JSON list of names: {raw!r}")
        for name in names:
            if name not in ds:
                continue
            says = name in higher
            if name in declared and declared[name][0] != says:
                raise SweepError(f"the stores disagree on whether higher {name} is better: "
                                 f"{declared[name][1]} and {_source(ds)}")
            declared[name] = (says, _source(ds))
    return {name: declared[name][0] if name in declared else bool(higher_by_name(name)) for name in names}


def _per_round_layout(runs: Mapping[tuple[str, int], xr.Dataset]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The numeric per-round variables of the stores: scalar ones (dims (round,)), and
    per-output ones (dims (round, output)) with their output names, where every store that
    has one agrees on those names. Strings and other layouts are left out."""
    scalar: dict[str, None] = {}
    per_output: dict[str, np.ndarray | None] = {}
    for ds in runs.values():
        for name in (str(v) for v in ds.variables):
            var = ds[name]
            if var.dtype.kind not in "biuf":
                continue
            if var.dims == ("round",):
                scalar[name] = None
            elif var.dims == ("round", "output"):
                outputs = np.array([str(v) for v in (ds["output"].values if "output" in ds.coords
                                                     else range(var.shape[1]))], dtype=object)
                if name not in per_output:
                    per_output[name] = outputs
                elif per_output[name] is not None and not np.array_equal(per_output[name], outputs):
                    per_output[name] = None
    return list(scalar), {k: v for k, v in per_output.items() if v is not None and k not in scalar}


def _comparison_name(name: str) -> str:
    # A store variable named like a comparison dim (its `n_labeled`, successful runs) would
    # clash with that dim's coordinate.
    return f"round_{name}" if name in _COMPARISON_DIMS else name


def combine(runs: Mapping[tuple[str, int], xr.Dataset], metrics: Sequence[str] | None = None) -> xr.Dataset:
    """One Dataset with dims (strategy, seed, n_labeled[, output]): each per-round variable
    after n simulations.

    Args:
        runs: (strategy, seed) -> run store; each needs `n_runs` (round,), increasing.
        metrics: the per-round variables to keep; None keeps every numeric one ((round,) ->
            (strategy, seed, n_labeled); (round, output) -> (strategy, seed, n_labeled, output)).
    The value at n is that of the last committee fitted on at most n simulations; NaN beyond
    a run's last round, and for a run whose store lacks the variable. attrs
    `higher_is_better` lists (JSON) the kept variables where higher is better.
    """
    scalar, per_output = _per_round_layout(runs)
    if per_output:  # one `output` coordinate: those naming other outputs are left out
        outputs = next(iter(per_output.values()))
        per_output = {m: names for m, names in per_output.items() if np.array_equal(names, outputs)}
    if metrics is not None:
        missing = [m for m in metrics if m not in scalar and m not in per_output]
        if missing:
            raise SweepError(f"no run store holds the per-round variable(s) {missing}; "
                             f"available: {', '.join(sorted(scalar))}")
        scalar = [m for m in metrics if m in scalar]
        per_output = {m: per_output[m] for m in metrics if m in per_output}
    strategies = sorted({s for s, _ in runs})
    seeds = sorted({seed for _, seed in runs})
    grid = np.unique(np.concatenate([np.asarray(ds["n_runs"].values, dtype=np.float64) for ds in runs.values()]))
    if np.all(grid == np.round(grid)):
        grid = grid.astype(np.int64)
    shape = (len(strategies), len(seeds), len(grid))
    data = {m: np.full(shape, np.nan) for m in scalar}
    data.update({m: np.full((*shape, len(names)), np.nan) for m, names in per_output.items()})
    for (strategy, seed), ds in runs.items():
        n_runs = np.asarray(ds["n_runs"].values, dtype=np.float64)
        idx = np.searchsorted(n_runs, grid, side="right") - 1
        valid = (idx >= 0) & (grid <= n_runs[-1])
        at = (strategies.index(strategy), seeds.index(seed))
        for m in data:
            if m in ds:
                data[m][at][valid] = np.asarray(ds[m].values, dtype=np.float64)[idx[valid]]
    variables = {_comparison_name(m): (("strategy", "seed", "n_labeled"), data[m]) for m in scalar}
    variables.update({_comparison_name(m): (("strategy", "seed", "n_labeled", "output"), data[m])
                      for m in per_output})
    coords: dict[str, Any] = {"strategy": np.array(strategies, dtype=object), "seed": seeds, "n_labeled": grid}
    attrs: dict[str, Any] = {}
    if per_output:
        coords["output"] = np.array(next(iter(per_output.values())), dtype=object)
        coords_of_outputs, attrs = _output_description(runs, coords["output"])
        coords.update(coords_of_outputs)
    directions = metric_directions(runs, [*scalar, *per_output])
    higher = sorted(_comparison_name(m) for m, h in directions.items() if h)
    return xr.Dataset(variables, coords=coords, attrs={"higher_is_better": json.dumps(higher), **attrs})


def _output_description(runs: Mapping[tuple[str, int], xr.Dataset], names: np.ndarray) -> tuple[dict, dict]:
    """The first run's coordinate of its outputs (a wavelength, a time) and their units and
    transform, as (coords, attrs) for a comparison over the outputs `names`; empty where that
    run's outputs are others."""
    first = next(iter(runs.values()))
    if "output" not in first.coords or not np.array_equal(first["output"].values.astype(object), names):
        return {}, {}
    attrs = {k: first.attrs[k] for k in ("output_coord_name", "output_units", "output_transform") if k in first.attrs}
    name = attrs.get("output_coord_name")
    coords = {name: ("output", first[name].values)} if name is not None and name in first.coords else {}
    return coords, attrs


def available_metrics(comp: xr.Dataset) -> list[str]:
    """The per-round scalar metrics of `comp` a verdict can be drawn on (bookkeeping left out)."""
    skip = {*BOOKKEEPING, *(_comparison_name(b) for b in BOOKKEEPING)}
    return sorted(str(v) for v in comp.data_vars
                  if comp[v].dims == ("strategy", "seed", "n_labeled") and str(v) not in skip)


def is_higher_better(comp: xr.Dataset, metric: str) -> bool:
    """The direction of `metric` in `comp`: its `higher_is_better` attr, else the name rule."""
    if "higher_is_better" in comp.attrs:
        return metric in json.loads(comp.attrs["higher_is_better"])
    return bool(higher_by_name(metric))


# -- per-seed facts -------------------------------------------------------------------


def _present(comp: xr.Dataset, metric: str) -> np.ndarray:
    """(strategy, seed) bool: the run exists and scored `metric` at least once."""
    return np.isfinite(comp[metric].values).any(axis=-1)


def _edge_values(comp: xr.Dataset, name: str, *, last: bool) -> np.ndarray:
    """(strategy, seed): the last (or first) finite value of each curve of `name`; NaN if none."""
    values = comp[name].values
    finite = np.isfinite(values)
    out = np.full(values.shape[:2], np.nan)
    for i, j in zip(*np.nonzero(finite.any(axis=-1))):
        k = np.flatnonzero(finite[i, j])
        out[i, j] = values[i, j, k[-1] if last else k[0]]
    return out


def _median(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


def _quantile(values: np.ndarray, q: float) -> float:
    # A count some seed needed (none interpolated between a measured and a censored one), so
    # a quartile beyond the budget shows as such.
    return float(np.quantile(values, q, method="inverted_cdf")) if len(values) else float("nan")


def passive_final(comp: xr.Dataset, metric: str, passive: str) -> float:
    """Median over seeds of passive's final `metric`."""
    _require_passive(comp, passive)
    final = _median(_edge_values(comp, metric, last=True)[_index(comp, passive)])
    if not math.isfinite(final):
        raise SweepError(f"the passive strategy {passive!r} never scored {metric}")
    return final


def passive_skill(comp: xr.Dataset, passive: str) -> float | None:
    """How much better than a constant passive's final model is, median over seeds: its R^2 (1 -
    its mse over the test mean's), or for a classification its macro f1's share of the way from
    predicting the commonest class everywhere (`f1_constant` in comp.attrs) to 1. None for stores
    without either."""
    if comp.attrs.get("task") == "classification":
        constant = comp.attrs.get("f1_constant")
        if "f1" not in comp or constant is None or not constant < 1:
            return None
        final = _median(_edge_values(comp, "f1", last=True)[_index(comp, passive)])
        skill = (final - constant) / (1 - constant)
    elif "r2" in comp:
        skill = _median(_edge_values(comp, "r2", last=True)[_index(comp, passive)])
    else:
        return None
    return skill if math.isfinite(skill) else None


def skill_phrase(comp: xr.Dataset, skill: float) -> str:
    """`passive_skill` in words: "R^2 = 0.12", or for a classification how far its f1 is from the
    commonest class's."""
    if comp.attrs.get("task") == "classification":
        return (f"f1 only {skill:.0%} of the way from {comp.attrs['f1_constant']:.2f}, what predicting the commonest "
                "class everywhere scores, to 1")
    return f"R^2 = {skill:.2f}"


def _class_names(ds: xr.Dataset) -> list[str]:
    return [str(c) for c in np.atleast_1d(ds.attrs.get("classes", []))]


def _test_labels(ds: xr.Dataset) -> tuple[np.ndarray, int]:
    """A classification store's test labels as class indices (m,), and how many classes there
    are (those the store names, or more if a label says so)."""
    labels = np.asarray(ds["y_test"].values).reshape(-1)
    labels = labels[np.isfinite(labels)].astype(int)
    return labels, max(len(_class_names(ds)), int(labels.max(initial=-1)) + 1)


def _passive_last(comp: xr.Dataset, passive: str) -> list[str]:
    """The strategies of a comparison, passive sampling last, as the verdict names them."""
    return sorted((str(s) for s in comp["strategy"].values), key=lambda s: s == passive)


def commonest_class_f1(runs: Mapping[tuple[str, int], xr.Dataset]) -> float | None:
    """The macro f1 of predicting every test point's class as the commonest one, 2 p / (1 + p) /
    classes for a commonest share p (median over the runs' test sets); None for regression or
    stores without test labels."""
    values = []
    for ds in runs.values():
        if ds.attrs.get("task") != "classification" or "y_test" not in ds:
            return None
        labels, n_classes = _test_labels(ds)
        if not len(labels):
            return None
        share = np.bincount(labels).max() / len(labels)
        values.append(2 * share / (1 + share) / n_classes)
    return float(np.median(values)) if values else None


def constant_predictor_error(comp: xr.Dataset, metric: str, passive: str) -> float | None:
    """The `mse` or `rmse` of predicting the test set's mean (median over passive's seeds of the
    final `mse_constant`); None for other metrics or stores without it."""
    if metric not in ("mse", "rmse") or "mse_constant" not in comp:
        return None
    constant = _median(_edge_values(comp, "mse_constant", last=True)[_index(comp, passive)])
    if not (math.isfinite(constant) and constant > 0):
        return None
    return constant if metric == "mse" else math.sqrt(constant)


def resolution_floor(constant: float, metric: str) -> float:
    """The smallest `metric` worth a target (R^2 = 1 - RESOLUTION), given the constant predictor's."""
    return RESOLUTION * constant if metric == "mse" else math.sqrt(RESOLUTION) * constant


def initial_design_value(comp: xr.Dataset, metric: str) -> float:
    """Median over runs of the first round's `metric`: the initial design every strategy shares."""
    return _median(_edge_values(comp, metric, last=False))


def _index(comp: xr.Dataset, strategy: str) -> int:
    return [str(s) for s in comp.strategy.values].index(strategy)


def _require_passive(comp: xr.Dataset, passive: str) -> None:
    strategies = [str(s) for s in comp.strategy.values]
    if passive not in strategies:
        raise SweepError(f"the passive strategy {passive!r} is not in the sweep (strategies found: "
                         f"{', '.join(strategies)}); name the baseline with --passive NAME")
    if strategies == [passive]:
        raise SweepError(f"only {passive!r} has finished runs in the sweep: there is nothing to compare it with "
                         "(a strategy whose runs did not finish resumes with the sweep's own command)")


def _reaches(value: float, target: float, higher: bool) -> bool:
    return value >= target if higher else value <= target


# -- targets --------------------------------------------------------------------------


CLEAR_OF_FINAL = 1.2
"""An intermediate target's error (or shortfall from 1) is at least this multiple of passive's final."""


def default_targets(comp: xr.Dataset, metric: str, passive: str,
                    stopped_at: float | None = None) -> tuple[list[Target], list[str]]:
    """Passive's final value (median over seeds) and up to 3 round values between it and the
    initial design's: of the metric where lower is better, of its shortfall from 1 for a score
    below 1 where higher is better (F1 0.9, 0.97, 0.99); with the notes explaining any target
    left out (one the initial design already reaches, or a passive model without skill). Where
    runs stopped once they reached a `target` of this metric (`stopped_at`), that target is
    one, and none beyond it: past it a count says where runs stopped, not what they needed.

    Returns: (targets, easiest first; notes, one line each).
    """
    higher = is_higher_better(comp, metric)
    final = passive_final(comp, metric, passive)
    start = initial_design_value(comp, metric)
    notes = []
    candidates = [Target(final, "passive_final")]
    skill = passive_skill(comp, passive)
    if skill is not None and skill < NO_SKILL_R2:
        notes.append(f"passive sampling's final model has no useful skill ({skill_phrase(comp, skill)}, median over "
                     f"seeds), so a ratio at its final {metric} ({final:.3g}) says nothing: that target is left out")
        candidates = []
    constant = constant_predictor_error(comp, metric, passive)
    floor = None if constant is None else resolution_floor(constant, metric)
    decades = [m * 10.0**k for k in range(-12, 7) for m in (1.0, 3.0)]
    # An intermediate target is a round value well clear of passive's final (a count there repeats
    # that row) and, where the constant predictor's error is known, one that takes some skill.
    if not higher:
        lowest = final if floor is None else max(final, floor)  # below the floor: round-off
        highest = start if constant is None else min(start, (1 - NO_SKILL_R2) * constant)
        candidates += [Target(t, "intermediate") for t in [t for t in decades
                                                             if CLEAR_OF_FINAL * lowest < t < highest][:3]]
    elif final < 1 and start < 1:  # a score that is 1 when perfect (F1, accuracy): round shortfalls from 1
        shortfalls = [s for s in decades if CLEAR_OF_FINAL * (1 - final) < s < min(1 - start, 1)][:3]
        candidates += [Target(1 - s, "intermediate") for s in shortfalls]
    if stopped_at is not None:
        for target in [t for t in candidates if (t.value > stopped_at if higher else t.value < stopped_at)]:
            notes.append(f"target {metric} = {target.value:.3g} ({target.kind}) is left out: runs stopped once they "
                         f"reached {stopped_at:.3g} (their target), so a count beyond it says where they stopped, "
                         "not what they needed")
            candidates.remove(target)
        candidates.append(Target(stopped_at, "given"))
    kept = []
    for target in candidates:
        if floor is not None and target.value < floor:
            notes.append(f"target {metric} = {target.value:.3g} ({target.kind}) is left out: it asks for R^2 above "
                         f"1 - {RESOLUTION:g} (the constant predictor's {metric} is {constant:.3g}), where "
                         f"counts measure round-off, not learning")
        elif _reaches(start, target.value, higher):
            notes.append(f"target {metric} = {target.value:.3g} ({target.kind}) is left out: the initial design "
                         f"(shared by every strategy) already reaches it on the median seed ({start:.3g})")
        else:
            kept.append(target)
    if not kept:
        notes.append(f"no default target is left to compare at, so the summary is empty; give --targets "
                     f"or --relative-targets to compare at other values of {metric}")
    return sorted(kept, key=lambda t: t.value, reverse=not higher), notes


def relative_targets(comp: xr.Dataset, metric: str, passive: str, fractions: Sequence[float]) -> list[Target]:
    """Targets at fractions f of passive's final skill: passive_final / f for a lower-is-better
    metric, f * passive_final for a higher-is-better one."""
    bad = [f for f in fractions if not (math.isfinite(f) and f > 0)]
    if bad:
        raise SweepError(f"--relative-targets must be positive fractions of passive's final {metric}, got {bad}")
    final = passive_final(comp, metric, passive)
    higher = is_higher_better(comp, metric)
    return [Target(f * final if higher else final / f, "relative") for f in fractions]


def target_notes(comp: xr.Dataset, metric: str, passive: str, targets: Sequence[Target]) -> list[str]:
    """Caveats for chosen targets: those below the resolution compare keeps to (R^2 above 1 -
    `RESOLUTION`), those the initial design already reaches, a passive model without skill."""
    higher = is_higher_better(comp, metric)
    start = initial_design_value(comp, metric)
    constant = constant_predictor_error(comp, metric, passive)
    floor = None if constant is None or higher else resolution_floor(constant, metric)
    notes = [f"target {metric} = {t.value:.3g} ({t.kind}) asks for R^2 above 1 - {RESOLUTION:g} (the constant "
             f"predictor's {metric} is {constant:.3g}): its counts measure round-off, not learning, and the "
             "default verdict sets no target there" for t in targets if floor is not None and t.value < floor]
    notes += [f"target {metric} = {t.value:.3g} ({t.kind}) is already reached by the initial design on the median "
             f"seed ({start:.3g}): its counts are the initial design's size" for t in targets
             if _reaches(start, t.value, higher)]
    notes += [f"target {metric} = {t.value:.3g} ({t.kind}) lies beyond what {metric} can be ({bound}): no run "
              "reaches it" for t in targets for bound in [_reachable_bound(metric, higher)]
              if bound is not None and (t.value > 1 if higher else t.value < 0)]
    skill = passive_skill(comp, passive)
    if skill is not None and skill < NO_SKILL_R2:
        notes.append(f"passive sampling's final model has no useful skill ({skill_phrase(comp, skill)}, median over "
                     "seeds): "
                     "a ratio against it says little")
    return notes


def _reachable_bound(metric: str, higher: bool) -> str | None:
    """What a target of `metric` cannot pass: "at most 1" for a score (R^2, F1, accuracy), "at least
    0" for an error (mse, rmse, mae); None where the name does not say."""
    base = metric.split("_")[0]
    if higher and base in ("r2", "f1", "accuracy"):
        return "at most 1"
    if not higher and base in ("mse", "rmse", "mae", "rel"):
        return "at least 0"
    return None


# -- the verdict ----------------------------------------------------------------------


def sims_needed(comp: xr.Dataset, metric: str, target: float) -> xr.DataArray:
    """Simulations each (strategy, seed) needs to reach `target` for good; NaN if never.

    Returns: (strategy, seed). The direction of `metric` is `is_higher_better(comp, metric)`.
    """
    sign = -1.0 if is_higher_better(comp, metric) else 1.0
    grid = comp["n_labeled"].values
    values = comp[metric].values
    out = np.full(values.shape[:2], np.nan)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            curve = values[i, j]
            valid = np.isfinite(curve)
            if valid.any():
                out[i, j] = simulations_to_reach(grid[valid], sign * curve[valid], sign * target)
    return xr.DataArray(out, dims=("strategy", "seed"), coords={"strategy": comp.strategy, "seed": comp.seed})


def median_bound(reached: int, seeds: int, median: float = float("nan"), budget: float = float("inf")) -> str:
    """How the median count over `seeds` relates to the truth when `reached` of them reach the
    target (the others count as budget + 1): "" measured; ">" beyond the budget (fewer than
    half reach, i.e. censored, or exactly half with the median, which averages the last
    measured count with an unreached one, past the budget); ">=" a lower bound (exactly half
    reach, the median within the budget)."""
    if seeds == 0 or 2 * reached < seeds or median > budget:
        return ">"
    return ">=" if reached <= seeds // 2 else ""


def _ratio_bound(passive_bound: str, strategy_bound: str) -> str:
    """"" exact; ">=" passive's median is only a lower bound; "<=" the strategy's is; "?" both."""
    return {(False, False): "", (True, False): ">=", (False, True): "<=", (True, True): "?"}[
        (bool(passive_bound), bool(strategy_bound))]


def _paired_tests(base: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """One-sided paired Wilcoxon p-values over seeds: (strategy needs fewer, strategy needs more)."""
    if len(base) == 0:
        return float("nan"), float("nan")
    if np.all(base == values):
        return 1.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fewer = wilcoxon(base, values, alternative="greater", zero_method="zsplit").pvalue
        more = wilcoxon(base, values, alternative="less", zero_method="zsplit").pvalue
    return float(fewer), float(more)


def summarise(comp: xr.Dataset, *, metric: str, passive: str, targets: Sequence[float | Target],
              budget: int) -> pd.DataFrame:
    """One row per (target, strategy), columns SUMMARY_COLUMNS: simulations needed, ratio to
    passive and its bound, paired tests both ways, final R^2 and metric.

    Args:
        comp: as from `combine`, holding `metric` (and `r2` for the r2 column).
        targets: values of `metric` (kind "given") or Targets.
        budget: every run's budget; a seed that never reaches a target counts as budget + 1.
    Each strategy is summarised over the seeds it has runs for; the paired tests use the seeds
    it shares with passive.
    """
    _require_passive(comp, passive)
    targets = [t if isinstance(t, Target) else Target(float(t), "given") for t in targets]
    strategies = [str(s) for s in comp.strategy.values]
    present = _present(comp, metric)
    final = _edge_values(comp, metric, last=True)
    r2 = _edge_values(comp, "r2", last=True) if "r2" in comp else np.full(present.shape, np.nan)
    p = strategies.index(passive)
    rows = []
    for target in targets:
        need = sims_needed(comp, metric, target.value).values
        counts = np.where(np.isfinite(need), need, budget + 1.0)
        passive_counts = counts[p, present[p]]
        passive_median = _median(passive_counts)
        passive_bound = median_bound(int(np.sum(passive_counts <= budget)), len(passive_counts), passive_median, budget)
        for i, strategy in enumerate(strategies):
            values = counts[i, present[i]]
            reached = int(np.sum(values <= budget))
            median = _median(values)
            bound = median_bound(reached, len(values), median, budget)
            if i == p:
                ratio, ratio_bound, (p_value, p_worse) = 1.0, "", (float("nan"), float("nan"))
            else:
                paired = present[i] & present[p]
                ratio = passive_median / median if median > 0 else float("nan")
                ratio_bound = _ratio_bound(passive_bound, bound)
                p_value, p_worse = _paired_tests(counts[p, paired], counts[i, paired])
            rows.append({
                "target": float(target.value),
                "target_kind": target.kind,
                "metric": metric,
                "strategy": strategy,
                "budget": int(budget),
                "median_simulations": median,
                "median_bound": bound,
                "q25_simulations": _quantile(values, 0.25),
                "q75_simulations": _quantile(values, 0.75),
                "seeds_reached": reached,
                "seeds": int(len(values)),
                "censored": bound == ">",
                "ratio_vs_passive": float(ratio),
                "ratio_bound": ratio_bound,
                "p_value": p_value,
                "p_worse": p_worse,
                "r2": _median(r2[i, present[i]]),
                "final_metric": _median(final[i, present[i]]),
            })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


# -- writing and printing -------------------------------------------------------------


def _count(value: float, budget: int, bound: str = "") -> str:
    """A simulation count as printed: "> 400" beyond the budget, ">= 350" a lower bound."""
    if not math.isfinite(value):
        return "-"
    if value > budget:
        return f"> {budget}"
    text = f"{value:.0f}" if value == round(value) else f"{value:.1f}"
    return f">= {text}" if bound == ">=" else text


def _ratio(value: float, bound: str) -> str:
    if bound == "?":
        return "?"
    if not math.isfinite(value):
        return "-"
    return f"{bound} {value:.2g}" if bound else f"{value:.2g}"


def _number(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def skill_text(*r2: float) -> tuple[str, ...]:
    """R^2 values with the decimals that show two digits of the smallest 1 - R^2 (at least 2,
    at most 6), the same for all: 0.9985 and 0.9974, not 1.00 and 1.00."""
    gaps = [1.0 - v for v in r2 if math.isfinite(v) and v < 1.0]
    decimals = min(6, max([2, *(math.floor(-math.log10(g)) + 2 for g in gaps if g > 0)]))
    return tuple("-" if not math.isfinite(v) else f"{v:.{decimals}f}" for v in r2)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as printed: censored counts as "> budget", bounded ratios as ">= 2.9"."""
    rows = []
    for r in table.itertuples(index=False):
        rows.append({
            "target": _number(r.target), "kind": r.target_kind, "strategy": r.strategy,
            "median_simulations": _count(r.median_simulations, r.budget, r.median_bound),
            "q25-q75": f"{_count(r.q25_simulations, r.budget)} - {_count(r.q75_simulations, r.budget)}",
            "reached": f"{r.seeds_reached}/{r.seeds}",
            "ratio_vs_passive": _ratio(r.ratio_vs_passive, r.ratio_bound),
            "p_value": _number(r.p_value), "p_worse": _number(r.p_worse),
            "R^2": skill_text(r.r2)[0], "final": _number(r.final_metric),
        })
    return pd.DataFrame(rows)


def verdict_lines(table: pd.DataFrame, *, passive: str, higher: bool) -> list[str]:
    """One sentence per (target, non-passive strategy) of the summary; `higher`: the metric's direction."""
    reach = ">=" if higher else "<="
    lines = []
    for _, group in table.groupby(["target_kind", "target"], sort=False):
        base = group[group.strategy == passive].iloc[0]
        for r in group[group.strategy != passive].itertuples(index=False):
            mine, theirs = skill_text(r.r2, base.r2)
            if math.isfinite(r.r2) and math.isfinite(base.r2):
                skill = f"; final R^2 {mine} against {passive}'s {theirs}"
            elif math.isfinite(r.final_metric) and math.isfinite(base.final_metric):  # classification: its F1
                skill = f"; final {r.metric} {_number(r.final_metric)} against {passive}'s {_number(base.final_metric)}"
            else:
                skill = ""
            lines.append(
                f"{r.metric} {reach} {r.target:.3g} ({r.target_kind}): {r.strategy} needs "
                f"{_count(r.median_simulations, r.budget, r.median_bound)} simulations (reached on "
                f"{r.seeds_reached}/{r.seeds} seeds), {passive} "
                f"{_count(base.median_simulations, base.budget, base.median_bound)}: ratio "
                f"{_ratio(r.ratio_vs_passive, r.ratio_bound)} (p = {_number(r.p_value)} that it needs fewer, "
                f"{_number(r.p_worse)} that it needs more){skill}")
    return lines


def json_value(value: Any) -> Any:
    """`value` as JSON can hold it: numpy scalars as Python ones, NaN and infinities as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(table: pd.DataFrame, notes: Sequence[str], sweep_dir: Path, *, suffix: str, passive: str,
                  higher: bool, header: str) -> list[str]:
    """Write summary{suffix}.csv, summary{suffix}.json (a list of records, NaN as null) and
    verdict{suffix}.txt (header, notes, one line per strategy and target); return the names."""
    names = [f"summary{suffix}.csv", f"summary{suffix}.json", f"verdict{suffix}.txt"]
    table.to_csv(sweep_dir / names[0], index=False)
    records = [{k: json_value(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
    (sweep_dir / names[1]).write_text(json.dumps(records, indent=2))
    lines = [header, *(f"note: {n}" for n in notes), *verdict_lines(table, passive=passive, higher=higher)]
    (sweep_dir / names[2]).write_text("\n".join(lines) + "\n")
    return names


def _refit_scores(ds: xr.Dataset, seed: int) -> dict[str, float]:
    """The test scores of the store's learner refitted on its final training set, in the
    coordinates the loop gave it (log10 of log-scale inputs, phases of periodic ones) where the
    store records its input space."""
    from hydra.utils import instantiate

    config = json.loads(ds.attrs["config"])
    committee = in_float32_range(instantiate(config["learner"]))
    if "input_space" in ds.attrs:
        committee = in_space_coordinates(committee, Box(**json.loads(ds.attrs["input_space"])))
    ok = ds["ok"].values
    fitted = committee.fit(ds["x"].values[ok], ds["y"].values[ok], key=jax.random.key(10_000 + seed))
    x_test, y_test = ds["x_test"].values, ds["y_test"].values
    if config.get("scorer") is not None:
        return dict(instantiate(config["scorer"])(fitted, x_test, y_test))
    return score_committee(fitted, x_test, y_test, classification=ds.attrs.get("task") == "classification")


def retrain_from_scratch(runs: dict[tuple[str, int], xr.Dataset], *, metric: str) -> pd.DataFrame:
    """Refit each run's final training set from scratch with its own learner config, scored by
    the run's own `scorer` when its config has one (a committee that predicts inputs from
    outputs, say), else at the test inputs like the loop's default. A metric the scorer does
    not give is NaN."""
    rows = []
    for (strategy, seed), ds in sorted(runs.items()):
        try:
            scores = _refit_scores(ds, seed)
        except Exception as exc:  # noqa: BLE001 - whatever the store's own learner raises, name the store
            raise SweepError(f"{_source(ds)}: cannot refit its final training set from scratch "
                             f"({type(exc).__name__}: {_one_line(exc)}); --no-retrain skips this check") from None
        ok = ds["ok"].values
        rows.append({"strategy": strategy, "seed": seed, "n_labeled": int(ok.sum()),
                     f"{metric}_in_loop": float(ds[metric].values[-1]) if metric in ds else float("nan"),
                     f"{metric}_from_scratch": float(scores.get(metric, float("nan")))})
    return pd.DataFrame(rows)


# A passive final R^2 above this: the verdict says how small an error the targets are.
NEAR_PERFECT_R2 = 0.9999


def near_perfect_note(comp: xr.Dataset, passive: str) -> str | None:
    """Where passive sampling's final model (median over seeds) leaves less than 1 - NEAR_PERFECT_R2
    of the test variance unexplained, a sentence saying so: the savings are then counted to an
    error that only some uses of an emulator need. None otherwise, or without R^2 records."""
    if "r2" not in comp or passive not in [str(s) for s in comp["strategy"].values]:
        return None
    r2 = float(comp["r2"].sel(strategy=passive).isel(n_labeled=-1).median("seed"))
    if not (math.isfinite(r2) and r2 > NEAR_PERFECT_R2):
        return None
    return (f"{passive}'s final model already explains all but {1 - r2:.1g} of the test set's variance (R^2 "
            f"{r2:.6f}): the counts are of runs to errors that small, which matter only where the emulator's use "
            "needs them")


# Refitting from scratch may move a comparison by this factor before the verdict says so.
RETRAIN_DISAGREES = 1.3


def retrain_note(scratch: pd.DataFrame, metric: str, passive: str, *, higher: bool) -> str | None:
    """Where refitting every run's final training set from scratch (`retrain_from_scratch`)
    compares an active strategy with passive sampling differently from the loop's own final
    fits (medians over seeds; the two factors differ by `RETRAIN_DISAGREES` or more, or point
    opposite ways), a sentence giving both and how far one run's final error moved: the loop's
    fits (warm starts, a family or kernel chosen some rounds before) then carry as much as the
    data does. None otherwise, or for metrics that are not positive."""
    in_loop, fresh = f"{metric}_in_loop", f"{metric}_from_scratch"
    med = scratch.groupby("strategy")[[in_loop, fresh]].median()
    if passive not in med.index or not (scratch[[in_loop, fresh]].to_numpy() > 0).all():
        return None

    def factor(column: str, strategy: str) -> float:  # > 1: the strategy ends better than passive
        ratio = med.loc[passive, column] / med.loc[strategy, column]
        return 1 / ratio if higher else ratio

    disagreeing = []
    for strategy in (s for s in med.index if s != passive):
        loop, again = factor(in_loop, strategy), factor(fresh, strategy)
        opposite = (loop > 1.1 and again < 1 / 1.1) or (loop < 1 / 1.1 and again > 1.1)
        if opposite or max(loop / again, again / loop) >= RETRAIN_DISAGREES:
            disagreeing.append(f"{passive}/{strategy} {again:.2g} from scratch against {loop:.2g} in the loop")
    if not disagreeing:
        return None
    moved = np.exp(np.abs(np.log(scratch[fresh].to_numpy() / scratch[in_loop].to_numpy()))).max()
    return (f"refitted from scratch, the final training sets compare otherwise (final {metric}, medians over seeds; "
            f"{'; '.join(disagreeing)}): refitting moved one run's final {metric} by up to {moved:.2g}x, so the "
            "loop's fits (warm starts, a family or kernel chosen rounds before) weigh in these counts as much as "
            "the runs chosen do; more seeds narrow it (retrain.csv has every run)")


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _potential1d_energy_plot(runs: dict[tuple[str, int], xr.Dataset], path: Path) -> Path | None:
    """Histogram of the queried particles' energy per strategy (the 1-D potential only)."""
    first = next(iter(runs.values()))
    sim = json.loads(first.attrs["config"]).get("simulator", {})
    if sim.get("_target_") != "simulators.potential1d.make_oracle":
        return None
    import matplotlib.pyplot as plt

    from simulators.potential1d import energy

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    by_strategy: dict[str, list[np.ndarray]] = {}
    for (strategy, _), ds in runs.items():
        x = ds["x"].sel(input=["x0", "v0"]).values[ds["round_of"].values > 0]
        by_strategy.setdefault(strategy, []).append(np.asarray(energy(x[:, 0], x[:, 1], sim.get("potential", "anharmonic"))))
    all_e = np.concatenate([np.concatenate(v) for v in by_strategy.values()])
    bins = np.linspace(0, np.percentile(all_e, 99.5), 40)
    for strategy, parts in sorted(by_strategy.items()):
        ax.hist(np.concatenate(parts), bins=bins, density=True, histtype="step", lw=1.8, label=strategy)
    ax.set_xlabel("particle energy E = v0²/2 + V(x0)")
    ax.set_ylabel("query density (after the initial design)")
    ax.set_title("where the simulations went, by energy")
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _print_section(title: str, notes: Sequence[str], table: pd.DataFrame) -> None:
    print(f"\n## {title}\n")
    for note in notes:
        print(f"note: {note}")
    if notes:
        print()
    print(_markdown(display_table(table)) if len(table) else "(no rows)")


def _mixed_notes(runs: Mapping[tuple[str, int], xr.Dataset], passive: str, budget: int) -> list[str]:
    """One note per way the sweep's runs do not belong together (empty for a fair sweep)."""
    notes = [f"mixed sweep (--allow-mixed), {m.field} differs: {m.message}" for m in sweep_mismatches(runs)]
    if len({ds.attrs["budget"] for ds in runs.values()}) > 1:
        notes.append(f"mixed sweep: every run is compared on its first {budget} simulations, the smallest budget")
    unpaired = unpaired_runs(runs, passive)
    if unpaired:
        notes.append(f"mixed sweep (--allow-mixed), unpaired seeds: {_unpaired_message(runs, unpaired, passive)}")
    return notes


def failed_run_counts(runs: Mapping[tuple[str, int], xr.Dataset]) -> dict[str, list[tuple[int, int]]]:
    """strategy -> [(failed runs, runs) per seed], in seed order."""
    counts: dict[str, list[tuple[int, int]]] = {}
    for (strategy, _), ds in sorted(runs.items()):
        ok = np.asarray(ds["ok"].values, dtype=bool)
        counts.setdefault(strategy, []).append((int((~ok).sum()), len(ok)))
    return counts


def failed_runs_note(counts: Mapping[str, list[tuple[int, int]]]) -> str | None:
    """Where any run failed, how many of each strategy's runs did (median and range over seeds,
    from `failed_run_counts`): a strategy that asks where the simulator fails pays for it in
    simulations. None otherwise."""
    if not any(failed for pairs in counts.values() for failed, _ in pairs):
        return None
    parts = []
    for strategy, pairs in counts.items():
        failed = np.array([f for f, _ in pairs])
        spread = f"{failed.min()}-{failed.max()}" if failed.min() < failed.max() else f"{failed.min()}"
        parts.append(f"{strategy} {spread} of {max(n for _, n in pairs)} (median {np.median(failed):g})")
    return "failed runs per seed (charged to the budget, never trained on): " + ", ".join(parts)


RARE_CLASS_TEST_POINTS = 20


def rare_class_note(runs: Mapping[tuple[str, int], xr.Dataset], metric: str) -> str | None:
    """Where a classification test set holds fewer than `RARE_CLASS_TEST_POINTS` points of some
    class (the fewest over the runs' test sets), which: macro-averaged f1 weighs each class the
    same, so one class's few points can move it by a large step. None otherwise, for regression,
    or for metrics other than f1."""
    first = next(iter(runs.values()))
    if metric != "f1" or first.attrs.get("task") != "classification" or "y_test" not in first:
        return None
    classes = _class_names(first)
    fewest: dict[int, tuple[int, int]] = {}
    for ds in runs.values():
        labels, n_classes = _test_labels(ds)
        for k in range(n_classes):
            count = int((labels == k).sum())
            if k not in fewest or count < fewest[k][0]:
                fewest[k] = (count, len(labels))
    rare = [(k, count, size) for k, (count, size) in sorted(fewest.items()) if count < RARE_CLASS_TEST_POINTS]
    if not rare:
        return None
    named = ", ".join(f"{classes[k] if k < len(classes) else f'class {k}'} {count} of {size}"
                      for k, count, size in rare)
    return (f"few test points of {'a class' if len(rare) == 1 else 'some classes'} ({named}): macro f1 weighs each "
            f"of the {len(fewest)} classes the same, so a few points decide that class's share; "
            "a larger test_size (or a given test set) measures it better")


def _stopped_at_target(ds: xr.Dataset) -> bool:
    return str(ds.attrs.get("stop_reason", "")).startswith("target")


def stop_target(runs: Mapping[tuple[str, int], xr.Dataset], metric: str, higher: bool) -> float | None:
    """The `target` of `metric` at which some of the runs stopped before their budget (the
    loosest, if they differ), or None."""
    targets = []
    for ds in runs.values():
        config = _config(ds, Path(_source(ds)))
        if _stopped_at_target(ds) and config.get("target") is not None and config.get("target_metric", "mse") == metric:
            targets.append(float(config["target"]))
    if not targets:
        return None
    return min(targets) if higher else max(targets)


def early_stop_note(runs: Mapping[tuple[str, int], xr.Dataset]) -> str | None:
    """Where runs stopped at their `target` before the budget, how many: their final values and
    R^2 are at fewer simulations than the budget, and a count past their last round is
    censored. None otherwise."""
    stopped = sorted(f"{strategy} seed {seed} at {int(ds['n_runs'].values[-1])}"
                     for (strategy, seed), ds in runs.items()
                     if _stopped_at_target(ds) and "n_runs" in ds)
    if not stopped:
        return None
    return (f"{len(stopped)} of {len(runs)} runs stopped early at their target ({', '.join(stopped[:4])}"
            f"{', ...' if len(stopped) > 4 else ''}): their final values and R^2 are at fewer simulations than "
            "the budget, and a target below what they reached counts as not reached")


def test_set_note(runs: Mapping[tuple[str, int], xr.Dataset]) -> str | None:
    """Where test-set runs failed (a drawn test set holds fewer runs than `test_size`), how many
    of how many: every error is then measured only where the simulator succeeds. None otherwise,
    or for test sets that were given."""
    dropped: list[tuple[int, int]] = []
    for ds in runs.values():
        config = _config(ds, Path(_source(ds)))
        size = config.get("test_size")
        if config.get("test_set") is None and isinstance(size, int) and "test_sample" in ds.sizes:
            dropped.append((size - int(ds.sizes["test_sample"]), size))
    failed = [d for d, _ in dropped]
    if not failed or max(failed) <= 0:
        return None
    spread = f"{min(failed)}-{max(failed)}" if min(failed) < max(failed) else f"{failed[0]}"
    return (f"{spread} of the {max(n for _, n in dropped)} test-set runs failed and are left out: every error is "
            "measured where the simulator succeeds")


def worst_output_note(comp: xr.Dataset, passive: str, margin: float = 0.05) -> str | None:
    """For a vector output, the output whose final R^2 (median over seeds) is lowest under some
    strategy, with every strategy's, where it falls more than `margin` below that strategy's
    combined R^2 (the mean over outputs, which a well-learnt majority can pad). None otherwise."""
    if "r2_per_output" not in comp or comp.sizes.get("output", 1) < 2 or "r2" not in comp:
        return None
    last = comp.isel(n_labeled=-1)
    per_output = last["r2_per_output"].median("seed").values  # (strategy, output)
    combined = last["r2"].median("seed").values  # (strategy,)
    if not np.isfinite(per_output).any():
        return None
    strategy_index, output_index = np.unravel_index(np.nanargmin(per_output), per_output.shape)
    if not per_output[strategy_index, output_index] < combined[strategy_index] - margin:
        return None
    name = str(comp["output"].values[output_index])
    index = {str(s): i for i, s in enumerate(comp["strategy"].values)}
    order = _passive_last(comp, passive)
    each = ", ".join(f"{s} {per_output[index[s], output_index]:.3g}" for s in order)
    whole = ", ".join(f"{combined[index[s]]:.3g}" for s in order)
    learner = str(comp["strategy"].values[strategy_index])
    return (f"the worst-learnt of the {comp.sizes['output']} outputs (by {learner}'s final R^2) is {name}: "
            f"final R^2 {each} (median over "
            f"seeds), against {whole} for all outputs together (r2_per_output in comparison.zarr has each)")


DECADES_FOR_RELATIVE_ERRORS = 2.0


def relative_error_note(runs: Mapping[tuple[str, int], xr.Dataset], comp: xr.Dataset, metric: str,
                        passive: str) -> str | None:
    """Where the test outputs are positive and one spans `DECADES_FOR_RELATIVE_ERRORS` decades or
    more (a spectrum, a rate), each strategy's final 95th-percentile relative error (median over
    seeds): an mse is then decided by the largest values alone, and a strategy can win it while
    losing on the small ones. None otherwise, or when the verdict is already of a relative error."""
    if metric.startswith("rel_err") or "rel_err_p95" not in comp:
        return None
    first = next(iter(runs.values()))
    if "y_test" not in first:
        return None
    y = np.asarray(first["y_test"].values, dtype=np.float64).reshape(len(first["y_test"]), -1)
    positive = np.all(y > 0, axis=0)
    if not positive.any():
        return None
    spans = np.log10(y[:, positive].max(axis=0) / y[:, positive].min(axis=0))
    widest = int(np.argmax(spans))
    if spans[widest] < DECADES_FOR_RELATIVE_ERRORS:
        return None
    final = comp["rel_err_p95"].isel(n_labeled=-1).median("seed")
    each = ", ".join(f"{s} {float(final.sel(strategy=s)):.3g}" for s in _passive_last(comp, passive))
    # The smallest value is named because the relative errors are decided by it: an output that is
    # physically zero (a concentration long after elimination) may still be 1e-37 and positive.
    smallest = float(y[:, positive][:, widest].min())
    return (f"the test outputs are positive and span up to {spans[widest]:.0f} decades (down to {smallest:.2g}), so "
            f"{metric} is decided by their largest values and a relative error by their smallest: the final "
            f"95th-percentile relative error is {each} (median over seeds; --metric rel_err_p95 for its verdict)")


def given_test_set(runs: Mapping[tuple[str, int], xr.Dataset]) -> bool:
    """Whether the runs were scored on a test set given by a `test_set` node, not drawn."""
    return any(_config(ds, Path(_source(ds))).get("test_set") is not None for ds in runs.values())


def noise_note(comp: xr.Dataset, metric: str, passive: str, *, given_test_set: bool = False) -> str | None:
    """Where the Gaussian process fitted to passive's runs puts a tenth or more of passive's final
    mse down to observation noise (`noise_fraction` x the constant predictor's mse, medians over
    seeds at the last round), a sentence saying so: if the test set carries that noise too, the
    targets near it measure the noise. None otherwise, or without those records, or where the
    noise level is near its lower bound (no noise found: a deterministic simulator learnt to
    round-off would otherwise be told its error is noise). With `given_test_set` (the runs were
    scored on a `test_set` node) the sentence says that it is for the user to know whether that
    set holds the noise."""
    if metric != "mse" or not {"noise_fraction", "mse_constant"} <= set(comp.data_vars):
        return None
    last = comp.sel(strategy=passive).isel(n_labeled=-1)
    if not float(np.nanmedian(last["noise_fraction"].values)) > 100 * NOISE_FLOOR:
        return None
    floor = float(np.nanmedian(last["noise_fraction"].values * last["mse_constant"].values))
    final = float(np.nanmedian(last["mse"].values))
    if not (math.isfinite(floor) and math.isfinite(final) and final > 0 and floor >= 0.1 * final):
        return None
    said = (f"the Gaussian process fitted to {passive}'s runs puts an mse of {floor:.3g} down to observation noise "
            f"({floor / final:.0%} of {passive}'s final mse), or to structure too fine for its runs")
    if given_test_set:
        return (f"{said}; the runs were scored on a given test_set: if its outputs carry that noise, no model gets "
                "far below it and targets near it measure the noise; if they are noise-free, they do not")
    return (f"{said}: if the simulator is noisy and its test outputs carry that noise too, no model gets far below "
            "it and targets near it measure the noise; a noise-free test_set avoids that")


def _check_targets(targets: Sequence[float] | None) -> None:
    bad = [t for t in targets or () if not math.isfinite(t)]
    if bad:
        raise SweepError(f"--targets must be finite values of the metric, got {bad}")


def compare(sweep_dir: Path, *, passive: str = "random", metric: str | None = None,
            targets: Sequence[float] | None = None, relative: Sequence[float] | None = None,
            retrain: bool = True, allow_mixed: bool = False, only: str | None = None) -> pd.DataFrame:
    """Write the sweep's verdict files into `sweep_dir` (see the module docstring).

    Args:
        only: compare only the runs of one sweep among several in `sweep_dir` (their settings
            as Hydra names the folder below each seed's, `budget=60`); the verdict files go
            into `sweep_dir/<only>`.
        allow_mixed: compare runs that do not belong together (other budgets, batch sizes,
            simulators or test sets, seeds without a passive run) instead of refusing them
            with MixedSweepError; every verdict then says how the sweep is mixed.

    Returns: the summary at `targets` and `relative` targets when given (given rows first),
        else the default summary; its `attrs["mixed"]` lists the mixed-sweep notes.
    """
    sweep_dir = Path(sweep_dir)
    _check_targets(targets)
    unfinished: list[str] = []
    runs = load_runs(sweep_dir, allow_mixed=allow_mixed, skipped=unfinished, only=only)
    out_dir = sweep_dir / only if only else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    unpaired = unpaired_runs(runs, passive)
    if unpaired and not allow_mixed:
        raise MixedSweepError(_unpaired_message(runs, unpaired, passive))
    budget = min(int(ds.attrs["budget"]) for ds in runs.values())
    mixed = _mixed_notes(runs, passive, budget)
    # Said with the verdict, which they are not part of.
    sweep_notes = [*mixed, *([f"left out {_unfinished_phrase(unfinished)}"] if unfinished else [])]
    first = next(iter(runs.values()))
    comp = combine(runs)
    if len({ds.attrs["budget"] for ds in runs.values()}) > 1:  # only with allow_mixed
        comp = comp.isel(n_labeled=np.asarray(comp.n_labeled.values) <= budget)
    default_metric = "f1" if first.attrs.get("task") == "classification" else "mse"
    metric = metric or default_metric
    choices = available_metrics(comp)
    if metric not in choices:
        raise SweepError(f"metric {metric!r} is not a per-round metric of the run stores; available: "
                         f"{', '.join(choices) or 'none'}")
    _require_passive(comp, passive)
    comp.attrs.update(metric=metric, passive=passive, sweep_dir=str(sweep_dir), budget=budget,
                      task=str(first.attrs.get("task", "regression")), mixed=json.dumps(mixed))
    if (f1_constant := commonest_class_f1(runs)) is not None:
        comp.attrs["f1_constant"] = f1_constant
    failed = failed_run_counts(runs)
    comp.attrs["failed_runs"] = json.dumps({strategy: float(np.median([f for f, _ in pairs]))
                                            for strategy, pairs in failed.items()})
    write_zarr(comp, out_dir / "comparison.zarr", mode="w")

    higher = is_higher_better(comp, metric)
    seeds = len(comp.seed)
    scratch, unrefitted = None, None
    if retrain:  # before the verdict, which notes where the refits tell otherwise; a failure is raised after it
        try:
            scratch = retrain_from_scratch(runs, metric=metric)
        except SweepError as exc:
            unrefitted = exc
    sweep_notes += [n for n in (failed_runs_note(failed), early_stop_note(runs), test_set_note(runs),
                                 noise_note(comp, metric, passive, given_test_set=given_test_set(runs)),
                                 rare_class_note(runs, metric), worst_output_note(comp, passive),
                                 relative_error_note(runs, comp, metric, passive), near_perfect_note(comp, passive),
                                 None if scratch is None else retrain_note(scratch, metric, passive, higher=higher))
                    if n]
    n_outputs = int(first.sizes.get("output", 1))
    if n_outputs > 1 and metric in STANDARDISED_METRICS:
        sweep_notes.append(f"{metric} is of the {n_outputs} outputs each divided by its test-set standard "
                           f"deviation (mse_per_output in comparison.zarr has each in its own units)")
    flag = f"; a MIXED sweep: {len(mixed)} note{'s' * (len(mixed) > 1)} below say how" if mixed else ""
    scope = f" (--only {only})" if only else ""
    header = (f"verdict of {sweep_dir}{scope}: simulations to reach each target {metric} "
              f"({'higher' if higher else 'lower'} is better), {seeds} seeds, budget {budget}, passive = {passive}{flag}")
    default, notes = default_targets(comp, metric, passive, stopped_at=stop_target(runs, metric, higher))
    notes = [*sweep_notes, *notes]
    table = summarise(comp, metric=metric, passive=passive, targets=default, budget=budget)
    # Another metric's verdict goes beside the default one (or the one the runs were set to
    # judge by, their target_metric) instead of over it.
    base = "" if metric in (default_metric, _config(first, Path(_source(first))).get("target_metric")) else f"_{metric}"
    written = write_summary(table, notes, out_dir, suffix=base, passive=passive, higher=higher,
                            header=header)
    _print_section(f"Simulations to reach each target {metric} ({seeds} seeds, budget {budget}, passive = {passive}"
                   f"{', MIXED sweep' if mixed else ''})", notes, table)
    chosen = []
    for suffix, values in (("_targets", [Target(float(t), "given") for t in targets or ()]),
                           ("_relative", relative_targets(comp, metric, passive, relative) if relative else [])):
        if not values:
            continue
        extra_notes = [*sweep_notes, *target_notes(comp, metric, passive, values)]
        extra = summarise(comp, metric=metric, passive=passive, targets=values, budget=budget)
        written += write_summary(extra, extra_notes, out_dir, suffix=base + suffix, passive=passive, higher=higher,
                                 header=header)
        _print_section(f"Simulations to reach the {values[0].kind} targets{', MIXED sweep' if mixed else ''}",
                       extra_notes, extra)
        chosen.append(extra)

    groups: dict[str, list[xr.Dataset]] = {}
    for (strategy, _), ds in sorted(runs.items()):
        groups.setdefault(strategy, []).append(ds)
    plotted = [plots.learning_curves(groups, out_dir / f"learning_curves{base}.png", metric=metric,
                                     title=f"{metric} against simulations, {seeds} seeds")]
    lowest_seed = min(seed for _, seed in runs)
    shown = {s: runs[(s, lowest_seed)] for s in groups if (s, lowest_seed) in runs}
    plotted.append(plots.queried_points(shown, out_dir / "queried_points.png", title=f"queried points, seed {lowest_seed}"))
    if first.sizes["input"] > 2:  # a plane of two inputs hides the others: one t-SNE map of them all
        queried = sum(ds.sizes["sample"] for ds in shown.values())
        embed_runs(shown, out_dir / "queried_embedding.png", reference=min(500, max(100, queried)))
        plotted.append(out_dir / "queried_embedding.png")
        written.append("queried_embedding.json")
    energy_plot = _potential1d_energy_plot(runs, out_dir / "query_energy.png")
    if energy_plot:
        plotted.append(energy_plot)

    if unrefitted is not None:
        raise unrefitted
    if scratch is not None:
        scratch.to_csv(out_dir / f"retrain{base}.csv", index=False)  # beside the default metric's
        written.append(f"retrain{base}.csv")
        med = scratch.groupby("strategy")[[f"{metric}_in_loop", f"{metric}_from_scratch"]].median().reset_index()
        print(f"\n## Final training sets refitted from scratch (median {metric} over seeds)\n")
        print(_markdown(med))
    print(f"\nwritten to {out_dir}: comparison.zarr, " + ", ".join([*written, *(p.name for p in plotted)]))
    result = pd.concat(chosen, ignore_index=True) if chosen else table
    result.attrs["mixed"] = mixed
    return result


PROG = "compare"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line with the command's own prefix, `compare: error: ...`."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see python -m experiments.compare --help)\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m experiments.compare`: the verdict of a sweep; 0, or 2 after one line
    `compare: error: ...` on stderr for a sweep that cannot be compared."""
    parser = _Parser(prog="python -m experiments.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory holding run.zarr stores")
    parser.add_argument("--passive", default="random", help="the baseline strategy (default: random)")
    parser.add_argument("--metric", default=None,
                        help="any per-round metric of the stores; mse for regression, f1 for classification by default")
    parser.add_argument("--targets", type=float, nargs="+", default=None,
                        help="target values of the metric; written to summary_targets.csv/json beside the "
                             "default summary")
    parser.add_argument("--relative-targets", type=float, nargs="+", default=None, metavar="F",
                        help="targets as fractions F of passive's final skill: passive_final / F for a "
                             "lower-is-better metric (an error), F * passive_final for a higher-is-better one; "
                             "written to summary_relative.csv/json")
    parser.add_argument("--no-retrain", action="store_true", help="skip the retrain-from-scratch check")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="compare runs that do not belong together (other budgets, batch sizes, simulators or "
                             "test sets, seeds without a passive run) instead of refusing them; every verdict then "
                             "says how the sweep is mixed, and runs are cut at the smallest budget")
    parser.add_argument("--only", default=None, metavar="SETTINGS",
                        help="compare the runs of one sweep among several in the directory, named by the folder "
                             "below each seed's (e.g. budget=60); the verdict goes into SWEEP_DIR/SETTINGS")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"{PROG}: error: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    if not args.no_retrain:  # the refits compile the runs' own programs
        enable_compilation_cache(default_directory())
    try:
        compare(args.sweep_dir, passive=args.passive, metric=args.metric, targets=args.targets,
                relative=args.relative_targets, retrain=not args.no_retrain, allow_mixed=args.allow_mixed,
                only=args.only)
    except MixedSweepError as exc:
        print(f"{PROG}: error: {_one_line(exc)}; --allow-mixed compares them anyway, saying so", file=sys.stderr)
        return 2
    except SweepError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only or full sweep directory: the stores are only read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or _one_line(exc)}; the run stores are unchanged", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
