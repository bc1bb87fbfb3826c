"""The benchmark suite: active against passive sampling on problems nobody tuned for.

    python -m experiments.bench.suite [--quick] [--seeds N] [--first-seed S] [--strategies random,qbc]
        [--problems a,b | --held-out] [--out DIR] [--jobs 2] [--verdicts-only] [-- extra Hydra overrides]

Each problem x strategy x seed is one run of `experiments.run`: one Hydra sweep per problem
(`experiment=compare`, or the MOCCA preset), into OUT/runs/PROBLEM, with the budgets, batch
sizes and test sizes of `PROBLEMS`. Runs resume from their stores, so running the suite again
recomputes nothing finished. After each sweep `experiments.compare.compare` writes its verdict
there; the suite then writes OUT/leaderboard.{csv,json,md,png}: for every problem and strategy
the simulations needed to reach passive sampling's final test error, the ratio to passive's
need, paired tests both ways, the final R^2, each strategy's final error against passive's and
how steeply passive's error falls. `--verdicts-only` runs nothing and rewrites the leaderboard
from the verdicts already in OUT.

By default the suite runs the problems the defaults were chosen on; `--held-out` runs the
held-out problems instead, which no default, preset or budget was chosen by, so that their
verdict says how the defaults fare on simulators nobody tuned them for.

OUT is results/bench/suite by default, results/bench/suite_quick with --quick (the two modes'
budgets differ, and a run resumes only with the settings it was started with), and
suite_held_out[_quick] for the held-out problems.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from experiments.compare import is_higher_better, json_value
from experiments.run import check_command_line

# The table the MOCCA pool reads; without it the problem is skipped rather than fetched.
from simulators.mocca.data import DEFAULT_PATH as MOCCA_TABLE

REPO = Path(__file__).resolve().parents[2]
PASSIVE = "random"
DEFAULT_STRATEGY = "qbc"
CEILING = "hindsight"  # knows the simulator's answers: a reference for what a strategy could save
KINDS = ("smooth", "kinked", "discontinuous", "sharp", "chaotic", "heteroscedastic", "failing", "classification")
SLOW_RATIO = 1.5  # the summary lists problems where the default strategy saves less than this
LOW_R2 = 0.9      # ... and smooth problems whose final R^2 stays below this
LOG_TAIL = 15     # lines of a failed sweep's log shown on stderr
ARROW = 1.6       # a bounded median's arrow spans this factor on the plot's log axis


class SuiteError(ValueError):
    """Bad suite arguments or a compare table the leaderboard cannot read; says which."""


@dataclass(frozen=True)
class Problem:
    """One benchmark problem and its loop settings.

    Args:
        name: the problem's name on the command line and in the leaderboard.
        kind: one of KINDS; "smooth" problems are the ones a decent emulator should fit.
        select: Hydra overrides choosing the problem (simulator, experiment preset).
        budget, quick_budget: simulations per run in full and in --quick mode.
        batch_size, n_initial: simulations per round, and in the initial design.
        candidates: candidates drawn per round.
        test_size, quick_test_size: held-out test points (ignored where the problem gives its
            own test set).
        needs: a file the problem reads; the problem is skipped, with the reason, when absent.
        what: one line on what the problem tests.
        held_out: a problem no default was chosen on. The held-out problems run only when asked
            for (`--held-out`, or by name) and are summarised apart, so that their verdict says
            how the defaults fare on simulators they were not tuned for.
    """

    name: str
    kind: str
    select: tuple[str, ...]
    budget: int
    quick_budget: int
    batch_size: int = 10
    n_initial: int = 20
    candidates: int = 2000
    test_size: int = 1000
    quick_test_size: int = 500
    needs: Path | None = None
    what: str = ""
    held_out: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SuiteError(f"problem {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("budget", "quick_budget", "batch_size", "n_initial", "candidates", "test_size",
                     "quick_test_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SuiteError(f"problem {self.name!r}: {name} must be an integer >= 1, got {value!r}")

    @property
    def smooth(self) -> bool:
        return self.kind == "smooth"

    def settings(self, quick: bool) -> dict[str, int]:
        """The loop settings of one mode, as Hydra override keys -> values."""
        return {
            "budget": self.quick_budget if quick else self.budget,
            "batch_size": self.batch_size,
            "n_initial": self.n_initial,
            "candidates.size": self.candidates,
            "test_size": self.quick_test_size if quick else self.test_size,
        }


def _function(name: str, kind: str, budget: int, quick_budget: int, what: str, **settings: Any) -> Problem:
    return Problem(name=name, kind=kind, select=("experiment=compare", f"simulator={name}"), budget=budget,
                   quick_budget=quick_budget, what=what, **settings)


# Budgets where a decent emulator is plausible with the default learner; --quick halves them
# (2 seeds of all eleven problems are meant to take about 20 minutes on 2 cores). Tune here.
PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    _function("ishigami", "smooth", 300, 150, "3-D, strongly non-linear, an x1-x3 interaction"),
    _function("borehole", "smooth", 300, 150, "8-D physical model, inputs of very unequal influence"),
    _function("otl_circuit", "smooth", 300, 150, "6-D circuit voltage, nearly additive"),
    _function("piston", "smooth", 300, 150, "7-D piston cycle time, strong interactions"),
    _function("friedman", "smooth", 300, 150, "5-D Friedman #1: sine interaction, quadratic, linear terms"),
    _function("friedman10", "smooth", 400, 200, "Friedman #1 with 5 inert inputs (10-D)", n_initial=30),
    _function("wing_weight", "smooth", 300, 150, "10-D aircraft wing weight, four inputs carry the variance"),
    _function("robot_arm", "smooth", 400, 200, "8-D robot arm reach: periodic angles, a kink at the shoulder",
              n_initial=30),
    _function("hartmann6", "sharp", 300, 150, "6-D, four narrow wells, near zero elsewhere"),
    _function("environmental", "smooth", 300, 150,
              "4 inputs, 30 outputs (a pollutant at 5 places x 6 times), one sharp after a spill"),
    _function("genz_discontinuous", "discontinuous", 300, 150, "2-D exponential that drops to 0 across two edges"),
    _function("genz_gaussian_peak", "sharp", 300, 150, "2-D Gaussian peak of sd 0.047, zero elsewhere"),
    _function("heteroscedastic_sine", "heteroscedastic", 200, 100,
              "1-D sine, noise sd 0.5 -> 1.5 across the box; scored on the noise-free mean"),
    _function("friedman_corner", "failing", 300, 150,
              "Friedman #1, every run failing where x1 + x2 > 1.4 (18 % of the box, a corner)"),
    _function("ishigami_hole", "failing", 300, 150,
              "Ishigami, every run failing where x1^2 + x2^2 < 1.5^2 (18 % of the box, a hollow inside)"),
    _function("cubic_root", "failing", 300, 150,
              "largest root of a cubic, every run failing where only one root is real (24 %), steepest beside them"),
    _function("potential1d", "smooth", 1000, 300, "particle in an anharmonic well, x(t) from (x0, v0, t)",
              batch_size=20),
    Problem(name="mocca", kind="classification", select=("experiment=mocca_bhs", "learner=auto"), budget=400, quick_budget=200,
            needs=MOCCA_TABLE, what="MOCCA pool: which cluster models host a black-hole subsystem (F1)"),
    # Held out: no default, preset or budget above was chosen by looking at these; their
    # budgets were fixed before their first run.
    _function("sobol_g", "kinked", 300, 150, "8-D product of V-shaped factors of very unequal weight",
              held_out=True),
    _function("welch", "smooth", 400, 200, "20-D: a few strong inputs with interactions, many weak, two inert",
              n_initial=40, held_out=True),
    _function("dette_pepelyshev", "smooth", 300, 150, "8-D, strongly curved in three inputs", held_out=True),
    _function("gramacy_lee", "sharp", 300, 150, "6-D, ever faster oscillation as x1 -> 1, two inert inputs",
              held_out=True),
    _function("franke", "smooth", 150, 80, "2-D: two bumps, a ridge and a dip", held_out=True),
    _function("currin", "smooth", 150, 80, "2-D exponential, steep near one edge", held_out=True),
    _function("branin", "smooth", 150, 80, "2-D curved valley with three minima", held_out=True),
    _function("sir_epidemic", "smooth", 300, 150,
              "SIR epidemic, 3 inputs (one log-scaled), 12 outputs over many orders of magnitude", held_out=True),
    _function("standard_map", "chaotic", 400, 200,
              "MEGNO chaos indicator of the standard map: about 2, tens in thin chaotic layers", held_out=True),
    _function("driven_pendulum", "sharp", 150, 80,
              "driven, damped pendulum: 4 inputs, its angle at 30 times; a few runs swing over the top",
              held_out=True),
    # From other fields, each tried once with the defaults (4 seeds at the budget below) before
    # it joined; nothing was chosen on them.
    _function("lotka_volterra", "smooth", 150, 80, "predators at a fixed time: oscillates across 4 rates",
              held_out=True),
    _function("resonance", "sharp", 150, 80, "a driven oscillator's amplitude: a ridge narrowing with log damping",
              held_out=True),
    _function("projectile", "smooth", 150, 80, "a projectile's range over three decades of air drag",
              held_out=True),
    _function("ringdown", "smooth", 150, 80, "a damped sinusoid at 100 times; a periodic phase", held_out=True),
    _function("pendulum_flip", "classification", 150, 80,
              "does a damped pendulum swing over the top? (F1)", held_out=True),
)}
TUNING = tuple(name for name, problem in PROBLEMS.items() if not problem.held_out)
HELD_OUT = tuple(name for name, problem in PROBLEMS.items() if problem.held_out)


# -- running ----------------------------------------------------------------------------


def _env_from_here() -> dict[str, str]:
    """This process's environment with PYTHONPATH's relative entries made absolute: the sweeps
    run in the repository, and a module of your own beside you (PYTHONPATH=.) must still import."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def _absolute_config_dirs(overrides: Sequence[str]) -> list[str]:
    """`overrides` with the directory of each `--config-dir`/`-cd` made absolute (the sweeps run
    in the repository, not where the suite was started)."""
    out, after_flag = [], False
    for argument in overrides:
        flag, sep, value = argument.partition("=")
        if after_flag:
            out.append(str(Path(argument).expanduser().resolve()))
        elif flag in ("--config-dir", "-cd") and sep:
            out.append(f"{flag}={Path(value).expanduser().resolve()}")
        else:
            out.append(argument)
        after_flag = flag in ("--config-dir", "-cd") and not sep
    return out


def sweep_command(problem: Problem, *, quick: bool, seeds: int, strategies: Sequence[str], sweep_dir: Path,
                  jobs: int, extra: Sequence[str] = (), first_seed: int = 0) -> list[str]:
    """The `experiments.run -m` command line of one problem's sweep (strategies x seeds)."""
    settings = [f"{key}={value}" for key, value in problem.settings(quick).items()]
    return [sys.executable, "-m", "experiments.run", "-m", *problem.select,
            f"strategy={','.join(strategies)}", f"seed=range({first_seed},{first_seed + seeds})", *settings, "progress=false",
            f"hydra.sweep.dir={sweep_dir}",
            # Fixed run directories: a run with other settings is refused by its store instead
            # of starting beside it and confusing the verdict.
            "hydra.sweep.subdir='${hydra:runtime.choices.strategy}/seed=${seed}'",
            f"hydra.launcher.n_jobs={jobs}", *_absolute_config_dirs(extra)]


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(f"    {line}" for line in text[-lines:])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def eta_seconds(elapsed: float, done_work: float, left_work: float) -> float:
    """Time left if the remaining work goes at the rate so far (work: budget x seeds x strategies)."""
    return elapsed / done_work * left_work if done_work > 0 else float("nan")


# -- the leaderboard ----------------------------------------------------------------------

REQUIRED_COLUMNS = ("target", "strategy", "median_simulations", "ratio_vs_passive")
OPTIONAL_COLUMNS = ("target_kind", "censored", "ratio_bound", "median_bound", "p_value", "p_worse", "r2",
                    "final_metric", "seeds", "seeds_reached")
LEADERBOARD_COLUMNS = ("problem", "held_out", "kind", "smooth", "strategy", "task", "budget", "seeds", "metric",
                       "target", "r2", "final_metric", "median_simulations", "median_bound", "ratio_vs_passive",
                       "final_error_vs_passive", "passive_error_slope", "censored",
                       "ratio_bound", "p_better", "p_worse", "failed_runs", "default", "note")


@dataclass(frozen=True)
class SeedRatios:
    """Per-seed ratios passive_need / strategy_need at one target, over the paired seeds.

    ratios: (n_seeds,), with a seed that never reached the target counted as budget + 1.
    bound: "" when the median does not depend on those counts; ">=" when it would grow with
    passive's cut-off counts, "<=" when it would shrink with the strategy's, "?" for both.
    """

    ratios: np.ndarray
    median: float
    q25: float
    q75: float
    bound: str


@dataclass
class ProblemResult:
    """One problem's outcome: leaderboard rows and per-seed spreads, or why there are none."""

    problem: Problem
    status: str                      # "ok" | "skipped" | "failed"
    reason: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    spreads: dict[str, SeedRatios] = field(default_factory=dict)
    seconds: float = 0.0


def _median(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else float("nan")


def _last_finite(values: np.ndarray) -> np.ndarray:
    """(strategy, seed, n_labeled) -> (strategy, seed): each curve's last finite value, NaN if none."""
    out = np.full(values.shape[:2], np.nan)
    for i, j in zip(*np.nonzero(np.isfinite(values).any(axis=-1))):
        out[i, j] = values[i, j][np.isfinite(values[i, j])][-1]
    return out


def error_slope(comp: xr.Dataset, name: str, strategy: str, budget: int) -> float:
    """How steeply `strategy`'s median error `name` falls over the second half of the budget:
    minus the slope of log error against log simulations (error ~ n^-slope); NaN with fewer than
    three such rounds. A strategy whose final error is k times lower is then worth about
    k^(1 / slope) times fewer runs: the steeper the fall, the less a lower error saves."""
    values = _curves(comp, name, strategy)
    if values is None:
        return float("nan")
    n = np.asarray(comp["n_labeled"].values, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rounds
        curve = np.nanmedian(values, axis=0)
    used = (n >= budget / 2) & np.isfinite(curve) & (curve > 0)
    if used.sum() < 3:
        return float("nan")
    return float(-np.polyfit(np.log(n[used]), np.log(curve[used]), 1)[0])


def _curves(comp: xr.Dataset, name: str, strategy: str) -> np.ndarray | None:
    """`strategy`'s per-round variable `name`, (seed, n_labeled) float64; None if absent."""
    if name not in comp or strategy not in [str(s) for s in comp.strategy.values]:
        return None
    values = np.asarray(comp[name].sel(strategy=strategy).values, dtype=np.float64)
    return values if values.ndim == 2 else None


def final_median(comp: xr.Dataset, name: str, strategy: str) -> float:
    """Median over seeds of `strategy`'s final value of the per-round variable `name`; NaN if absent."""
    values = _curves(comp, name, strategy)
    return float("nan") if values is None else _median(_last_finite(values[None])[0])


def seed_ratios(comp: xr.Dataset, *, metric: str, target: float, strategy: str, budget: int,
                passive: str = PASSIVE) -> SeedRatios:
    """The spread over paired seeds of passive_need / strategy_need to reach `target`."""
    from experiments.compare import sims_needed

    need = sims_needed(comp, metric, target)
    present = np.isfinite(comp[metric].values).any(axis=-1)  # (strategy, seed): the run exists
    names = [str(s) for s in comp.strategy.values]
    p, s = names.index(passive), names.index(strategy)
    paired = present[p] & present[s]
    base, other = need.values[p, paired], need.values[s, paired]
    base_cut, other_cut = np.isnan(base), np.isnan(other)
    ratios = np.where(base_cut, budget + 1.0, base) / np.where(other_cut, budget + 1.0, other)
    if not len(ratios):
        return SeedRatios(ratios, float("nan"), float("nan"), float("nan"), "")
    median = float(np.median(ratios))
    # Would the median move if the cut-off counts were their true (larger) values?
    grows = float(np.median(np.where(base_cut, np.inf, ratios))) != median
    shrinks = float(np.median(np.where(other_cut, 0.0, ratios))) != median
    bound = "?" if grows and shrinks else ">=" if grows else "<=" if shrinks else ""
    return SeedRatios(ratios, median, float(np.percentile(ratios, 25)), float(np.percentile(ratios, 75)), bound)


def _is_true(value: Any) -> bool:
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def passive_final_rows(table: pd.DataFrame, comp: xr.Dataset, *, metric: str,
                       passive: str = PASSIVE) -> tuple[pd.DataFrame, list[str]]:
    """The rows of compare's table at passive's final error, and notes on how they were found."""
    if "target_kind" in table.columns:
        return table[table["target_kind"] == "passive_final"], []
    # An older table without target kinds: passive's final error is the median of its final values.
    final = final_median(comp, metric, passive)
    if not math.isfinite(final):
        return table.iloc[:0], [f"compare's table has no target_kind column, and passive never scored {metric}"]
    rows = table[np.isclose(table["target"].astype(float), final, rtol=1e-9, atol=0.0)]
    return rows, [f"compare's table has no target_kind column; passive's final {metric} ({final:.3g}) "
                  "was matched by value"]


def problem_result(problem: Problem, table: pd.DataFrame, comp: xr.Dataset, *, budget: int,
                   passive: str = PASSIVE, default_strategy: str = DEFAULT_STRATEGY) -> ProblemResult:
    """Leaderboard rows (one per strategy) and per-seed spreads from compare's table and the
    comparison Dataset of one problem's sweep.

    Raises SuiteError when the table lacks a column the leaderboard cannot do without; other
    missing columns leave NaN and a note.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SuiteError(f"problem {problem.name!r}: compare's table lacks the column(s) {missing} "
                         f"(it has {list(table.columns)})")
    metric = (str(table["metric"].iloc[0]) if "metric" in table.columns and len(table)
              else str(comp.attrs.get("metric", "?")))
    task = str(comp.attrs.get("task", "classification" if problem.kind == "classification" else "regression"))
    strategies = [str(s) for s in comp.strategy.values]
    if passive not in strategies:
        raise SuiteError(f"problem {problem.name!r}: the passive strategy {passive!r} is not in the sweep "
                         f"({strategies})")
    at_target, notes = passive_final_rows(table, comp, metric=metric, passive=passive)
    absent = [c for c in OPTIONAL_COLUMNS if c not in table.columns]
    if absent:
        notes.append(f"compare gave no {', '.join(absent)}")
    seeds_total = len(comp.seed)
    result = ProblemResult(problem, "ok")
    if at_target.empty:
        notes.append(f"no passive_final target (passive's final model may lack skill, its error may be below the "
                     f"resolution compare keeps to, or the initial design already reaches it): "
                     f"see runs/{problem.name}/verdict.txt")
    by_strategy = {str(r["strategy"]): r for r in at_target.to_dict(orient="records")}
    target = _float(at_target["target"].iloc[0]) if not at_target.empty else float("nan")
    passive_final = final_median(comp, metric, passive) if metric in comp else float("nan")
    lower_is_better = not is_higher_better(comp, metric)
    slope = error_slope(comp, metric, passive, budget) if lower_is_better else float("nan")
    failed_runs = json.loads(comp.attrs.get("failed_runs", "{}"))
    for strategy in sorted(strategies, key=lambda s: (s != passive, s)):
        row = by_strategy.get(strategy, {})
        ratio_bound = _text(row.get("ratio_bound"))
        censored = bool(ratio_bound) if "ratio_bound" in row else _is_true(row.get("censored"))
        r2 = _float(row["r2"]) if "r2" in row else final_median(comp, "r2", strategy)
        final = _float(row["final_metric"]) if "final_metric" in row else final_median(comp, metric, strategy)
        error_ratio = passive_final / final if lower_is_better and final > 0 else float("nan")
        own = list(notes)
        if strategy == passive:
            own.append("the passive baseline")
        if ratio_bound == "?":
            own.append("both medians are bounds: the ratio is undetermined")
        failed = _float(failed_runs.get(strategy))
        if failed > 0:
            own.append(f"median {failed:g} failed runs of {budget}, charged to the budget")
        result.rows.append({
            "problem": problem.name, "held_out": problem.held_out, "kind": problem.kind, "smooth": problem.smooth,
            "strategy": strategy,
            "task": task, "budget": int(budget),
            "seeds": int(row["seeds"]) if "seeds" in row else seeds_total,
            "metric": metric, "target": target, "r2": r2, "final_metric": final,
            "median_simulations": _float(row.get("median_simulations")),
            "median_bound": _text(row.get("median_bound")),
            "ratio_vs_passive": _float(row.get("ratio_vs_passive")),
            "final_error_vs_passive": error_ratio, "passive_error_slope": slope,
            "censored": censored, "ratio_bound": ratio_bound,
            "p_better": _float(row.get("p_value")), "p_worse": _float(row.get("p_worse")),
            "failed_runs": failed,
            "default": strategy == default_strategy, "note": "; ".join(own),
        })
        if strategy != passive and math.isfinite(target):
            result.spreads[strategy] = seed_ratios(comp, metric=metric, target=target, strategy=strategy,
                                                   budget=budget, passive=passive)
    return result


def _fmt(value: float, digits: str = ".3g") -> str:
    return "-" if not math.isfinite(value) else format(value, digits)


def _count_text(row: Mapping[str, Any]) -> str:
    value, budget = row["median_simulations"], row["budget"]
    if not math.isfinite(value):
        return "-"
    if value > budget:
        return f"> {budget}"
    text = f"{value:.0f}" if value == round(value) else f"{value:.1f}"
    return f">= {text}" if row.get("median_bound") == ">=" else text


def _ratio_text(row: Mapping[str, Any]) -> str:
    ratio, bound = row["ratio_vs_passive"], row["ratio_bound"]
    if bound == "?":
        return "? (both bounds)"
    if not math.isfinite(ratio):
        return "n/a"
    return f"{bound} {ratio:.2f}" if bound else f"{ratio:.2f}"


def summary_lines(results: Sequence[ProblemResult], *, default_strategy: str = DEFAULT_STRATEGY,
                  passive: str = PASSIVE) -> list[str]:
    """The leaderboard's verdict in a few lines (markdown bullet points); the tuning and the
    held-out problems each get their own when both are there."""
    sets = {held_out: [res for res in results if res.problem.held_out == held_out] for held_out in (False, True)}
    if not sets[False] or not sets[True]:
        return _set_summary(results, default_strategy=default_strategy, passive=passive)
    tuning = _set_summary(sets[False], default_strategy=default_strategy, passive=passive)
    held_out = _set_summary(sets[True], default_strategy=default_strategy, passive=passive)
    return ["Problems the defaults were chosen on:", "", *tuning,
            "", "Held-out problems (never used to choose a default):", "", *held_out]


def _set_summary(results: Sequence[ProblemResult], *, default_strategy: str, passive: str) -> list[str]:
    rows = [r for res in results for r in res.rows]
    default = [r for r in rows if r["strategy"] == default_strategy]
    rated = [r for r in default if math.isfinite(r["ratio_vs_passive"]) and r["ratio_bound"] != "?"]
    lines = []
    if rated:
        bounds = sum(1 for r in rated if r["ratio_bound"])
        lines.append(f"- median ratio vs {passive} for `{default_strategy}` over {_plural(len(rated), 'problem')}: "
                     f"{np.median([r['ratio_vs_passive'] for r in rated]):.2f}"
                     + (f" ({bounds} of the ratios are bounds, counted at their value)" if bounds else ""))
    else:
        lines.append(f"- no problem gave `{default_strategy}` a ratio vs {passive}")
    others = sorted({r["strategy"] for r in rows} - {default_strategy, passive})
    for other in others:
        theirs = [r for r in rows if r["strategy"] == other
                  and math.isfinite(r["ratio_vs_passive"]) and r["ratio_bound"] != "?"]
        ratios = {r["problem"]: r["ratio_vs_passive"] for r in theirs}
        if ratios:
            bounds = sum(1 for r in theirs if r["ratio_bound"])
            lines.append(f"- median ratio vs {passive} for `{other}` over {_plural(len(ratios), 'problem')}: "
                         f"{np.median(list(ratios.values())):.2f}"
                         + (f" ({bounds} of the ratios are bounds, counted at their value)" if bounds else ""))
        if other == CEILING:
            shares = [r["ratio_vs_passive"] / ratios[r["problem"]] for r in rated if r["problem"] in ratios]
            if shares:
                lines.append(f"- `{default_strategy}`'s ratio over `{CEILING}`'s (which knows the simulator's answers), "
                             f"median over {_plural(len(shares), 'problem')}: {np.median(shares):.2f}")
    errors = [r["final_error_vs_passive"] for r in default if math.isfinite(r.get("final_error_vs_passive", math.nan))]
    if errors:
        lines.append(f"- median over {_plural(len(errors), 'problem')} of {passive}'s final error over "
                     f"`{default_strategy}`'s, at the same budget: {np.median(errors):.2f}")
    unrated = [r["problem"] for r in default if r not in rated]
    if unrated:
        lines.append(f"- without a ratio for `{default_strategy}`: {', '.join(unrated)}")
    slow = [f"{r['problem']} ({_ratio_text(r)})" for r in rated
            if r["ratio_vs_passive"] < SLOW_RATIO and r["ratio_bound"] != ">="]
    slow += [f"{r['problem']} ({_ratio_text(r)}, a lower bound)" for r in rated
             if r["ratio_vs_passive"] < SLOW_RATIO and r["ratio_bound"] == ">="]
    lines.append(f"- problems where `{default_strategy}` saves less than {SLOW_RATIO}x: {', '.join(slow) or 'none'}")
    worse = [f"{r['problem']} ({r['strategy']}, p_worse = {r['p_worse']:.3g})" for r in rows
             if r["strategy"] != passive and math.isfinite(r["p_worse"]) and r["p_worse"] < 0.05]
    lines.append(f"- problems where a strategy needs significantly more runs than {passive} (p_worse < 0.05): "
                 f"{', '.join(worse) or 'none'}")
    low: dict[str, list[str]] = {}
    for r in rows:
        if r["smooth"] and math.isfinite(r["r2"]) and r["r2"] < LOW_R2:
            low.setdefault(r["problem"], []).append(f"{r['strategy']} {r['r2']:.2f}")
    lines.append(f"- smooth problems with a final R^2 below {LOW_R2}: "
                 + (", ".join(f"{p} ({', '.join(v)})" for p, v in low.items()) or "none"))
    for res in results:
        if res.status != "ok":
            lines.append(f"- {res.status}: {res.problem.name} ({res.reason})")
    return lines


def leaderboard_markdown(results: Sequence[ProblemResult], *, title: str, header: Sequence[str] = (),
                         default_strategy: str = DEFAULT_STRATEGY) -> str:
    """The leaderboard table (bounds printed as such, R^2 beside every ratio) and its summary."""
    columns = ["problem", "kind", "strategy", "budget", "seeds", "metric", "target (passive final)",
               "simulations (median)", "ratio vs passive", "final error: passive / it", "passive error slope", "R^2",
               "p better", "p worse", "note"]
    lines = [f"# {title}", "", *(f"{h}  " for h in header), *([""] if header else []),
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for res in results:
        for r in res.rows:
            strategy = f"**{r['strategy']}**" if r["default"] else r["strategy"]
            lines.append("| " + " | ".join([
                r["problem"] + (" (held out)" if r.get("held_out") else ""), r["kind"], strategy, str(r["budget"]),
                str(r["seeds"]), r["metric"],
                _fmt(r["target"]), _count_text(r), _ratio_text(r),
                _fmt(r.get("final_error_vs_passive", math.nan), ".2f"),
                _fmt(r.get("passive_error_slope", math.nan), ".2f"), _fmt(r["r2"], ".2f"),
                _fmt(r["p_better"]), _fmt(r["p_worse"]), r["note"].replace("|", "/"),
            ]) + " |")
    lines += ["", "Simulations: median over seeds to reach passive's final error for good; `> budget` when "
              "fewer than half the seeds reach it, `>=` when the median averages a reached count with an "
              "unreached one. Ratio: passive's median need / the strategy's (`>=`/`<=`: a bound, since a "
              "count was cut off by the budget). Final error: passive's median final error over the "
              "strategy's, at the same budget (metrics where lower is better). Passive error slope: s in "
              "passive's median error ~ n^-s over the second half of the budget; an error k times lower is "
              "worth about k^(1/s) times fewer runs. p better / p worse: one-sided paired Wilcoxon tests "
              "over seeds. R^2: median final R^2 on the test set. kind `smooth` marks the problems a decent "
              "emulator should fit.", "", "## Summary", "", *summary_lines(results, default_strategy=default_strategy)]
    return "\n".join(lines) + "\n"


def leaderboard_plot(results: Sequence[ProblemResult], path: Path, *, passive: str = PASSIVE) -> Path:
    """Per problem and strategy: the median per-seed ratio (log y) with its quartile bar; a
    median that is a bound is drawn open, with an arrow the way it could move."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    shown = [res for res in results if res.status == "ok"]
    strategies = sorted({s for res in shown for s in res.spreads} | {r["strategy"] for res in shown for r in res.rows
                                                                     if r["strategy"] != passive})
    fig, ax = plt.subplots(figsize=(max(6.4, 0.75 * len(shown) + 2), 4.6), constrained_layout=True)
    width = 0.7 / max(len(strategies), 1)
    drawn = [1.0, 2.0]  # the y range must hold every marker and arrow head; annotations do not widen it
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, strategy in enumerate(strategies):
        colour = colours[k % len(colours)]
        for i, res in enumerate(shown):
            spread = res.spreads.get(strategy)
            x = i + (k - (len(strategies) - 1) / 2) * width
            if spread is None or not math.isfinite(spread.median):
                ax.annotate("n/a", (x, 1.0), ha="center", va="bottom", fontsize=7, color=colour)
                continue
            ax.vlines(x, spread.q25, spread.q75, color=colour, lw=2.5, alpha=0.6)
            drawn += [v for v in (*spread.ratios, spread.q25, spread.q75) if 0 < v < math.inf]
            ax.plot(np.full(len(spread.ratios), x), spread.ratios, ".", color=colour, alpha=0.35, ms=4)
            open_marker = bool(spread.bound)
            ax.plot(x, spread.median, "o", ms=7, color=colour, mfc="white" if open_marker else colour,
                    label=strategy if i == 0 else None)
            if spread.bound in (">=", "<="):
                head = spread.median * (ARROW if spread.bound == ">=" else 1 / ARROW)
                ax.annotate("", xy=(x, head), xytext=(x, spread.median), arrowprops=dict(arrowstyle="->", color=colour))
                drawn.append(head)
            elif spread.bound == "?":
                ax.annotate("?", (x, spread.median), xytext=(4, 4), textcoords="offset points", color=colour)
    ax.axhline(1.0, color="k", lw=1)
    ax.axhline(2.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log", base=2)
    low, high = min(drawn) / 1.3, max(drawn) * 1.3
    ax.set_ylim(low, high)
    ax.set_yticks([2.0**k for k in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylim(low, high)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([res.problem.name + ("" if res.problem.smooth else "*") + (" (held out)" if res.problem.held_out
                                                                                  else "") for res in shown],
                       rotation=35, ha="right")
    ax.set_xlim(-0.6, max(len(shown), 1) - 0.4)
    ax.set_ylabel(f"{passive} need / strategy need (per seed)")
    ax.set_title("simulations to reach passive's final error: ratio per seed, median and quartiles\n"
                 "(open marker: a bound, arrow the way it could move; * not smooth)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:  # nothing to name where no strategy has a ratio
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_leaderboard(results: Sequence[ProblemResult], out: Path, *, title: str = "Benchmark suite",
                      header: Sequence[str] = ()) -> list[Path]:
    """Write out/leaderboard.{csv,json,md,png}; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for res in results for r in res.rows]
    table = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))
    paths = [out / f"leaderboard.{ext}" for ext in ("csv", "json", "md", "png")]
    table.to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps([{k: json_value(v) for k, v in r.items()} for r in rows], indent=2))
    paths[2].write_text(leaderboard_markdown(results, title=title, header=header))
    leaderboard_plot(results, paths[3])
    return paths


# -- the suite ------------------------------------------------------------------------------


def run_problem(problem: Problem, *, quick: bool, seeds: int, strategies: Sequence[str], out: Path, jobs: int,
                extra: Sequence[str] = (), first_seed: int = 0, verdicts_only: bool = False) -> ProblemResult:
    """Sweep one problem (resuming what is there), compare, and turn the verdict into rows; with
    `verdicts_only`, read the verdict an earlier sweep left in OUT/runs/PROBLEM instead."""
    from experiments.compare import compare

    start = time.perf_counter()
    if problem.needs is not None and not Path(problem.needs).exists():
        return ProblemResult(problem, "skipped", f"{Path(problem.needs).resolve()} is absent")
    sweep_dir = (out / "runs" / problem.name).resolve()
    if verdicts_only:
        return _earlier_verdict(problem, sweep_dir, quick=quick, start=start)
    log = (out / "logs" / f"{problem.name}.log").resolve()
    log.parent.mkdir(parents=True, exist_ok=True)
    command = sweep_command(problem, quick=quick, seeds=seeds, strategies=strategies, sweep_dir=sweep_dir,
                            jobs=jobs, extra=extra, first_seed=first_seed)
    with log.open("w") as stream:
        stream.write("$ " + " ".join(command) + "\n")
        stream.flush()
        code = subprocess.run(command, cwd=REPO, env=_env_from_here(), stdout=stream,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        return ProblemResult(problem, "failed", f"the sweep exited with status {code}; log: {log}\n{_tail(log)}",
                             seconds=time.perf_counter() - start)
    try:
        with log.open("a") as stream, contextlib.redirect_stdout(stream):
            table = compare(sweep_dir, passive=PASSIVE, retrain=False)
        result = _verdict_rows(problem, table, sweep_dir, quick=quick)
    except Exception as exc:  # noqa: BLE001 - one problem's broken verdict must not stop the others
        return ProblemResult(problem, "failed", f"compare: {type(exc).__name__}: {exc}; log: {log}",
                             seconds=time.perf_counter() - start)
    result.seconds = time.perf_counter() - start
    return result


def _verdict_rows(problem: Problem, table: pd.DataFrame, sweep_dir: Path, *, quick: bool) -> ProblemResult:
    """problem_result of compare's table and the comparison.zarr it wrote into sweep_dir."""
    comp = xr.open_zarr(sweep_dir / "comparison.zarr", consolidated=True).load()
    # The runs' own budget: extra overrides may have replaced the table's.
    budget = (int(table["budget"].iloc[0]) if "budget" in table.columns and len(table)
              else int(comp.attrs.get("budget", problem.settings(quick)["budget"])))
    return problem_result(problem, table, comp, budget=budget)


def _earlier_verdict(problem: Problem, sweep_dir: Path, *, quick: bool, start: float) -> ProblemResult:
    """The rows of the verdict (summary.csv, comparison.zarr) a finished sweep left in sweep_dir."""
    summary, comparison = sweep_dir / "summary.csv", sweep_dir / "comparison.zarr"
    if not (summary.exists() and comparison.exists()):
        return ProblemResult(problem, "skipped", f"no verdict in {sweep_dir} (summary.csv and comparison.zarr); "
                             f"run the suite without --verdicts-only first")
    try:
        result = _verdict_rows(problem, pd.read_csv(summary, keep_default_na=False, na_values=[""]), sweep_dir,
                               quick=quick)
    except Exception as exc:  # noqa: BLE001 - one problem's broken verdict must not stop the others
        return ProblemResult(problem, "failed", f"reading {sweep_dir}: {type(exc).__name__}: {exc}",
                             seconds=time.perf_counter() - start)
    result.seconds = time.perf_counter() - start
    return result


def run_suite(problems: Sequence[Problem], *, quick: bool, seeds: int, strategies: Sequence[str], out: Path,
              jobs: int = 2, extra: Sequence[str] = (), command_line: str = "", first_seed: int = 0,
              verdicts_only: bool = False) -> list[ProblemResult]:
    """Run every problem in turn, one progress line each on stderr, then write the leaderboard."""
    if PASSIVE not in strategies:
        raise SuiteError(f"--strategies must include the passive baseline {PASSIVE!r}, got {','.join(strategies)}")
    if seeds < 1:
        raise SuiteError(f"--seeds must be >= 1, got {seeds}")
    if first_seed < 0:
        raise SuiteError(f"--first-seed must be >= 0, got {first_seed}")
    if not verdicts_only and (refused := check_command_line(["-m", *extra, f"strategy={','.join(strategies)}"])):
        raise SuiteError(refused)  # a misspelt strategy or setting, before any problem runs
    work = [p.settings(quick)["budget"] * seeds * len(strategies) for p in problems]
    start = time.perf_counter()
    results = []
    for i, problem in enumerate(problems):
        doing = "reading its verdict" if verdicts_only else "running"
        print(f"[suite] {i + 1}/{len(problems)} {problem.name}: {doing} ({_plural(seeds, 'seed')} x "
              f"{','.join(strategies)}, budget {problem.settings(quick)['budget']})", file=sys.stderr, flush=True)
        result = run_problem(problem, quick=quick, seeds=seeds, strategies=strategies, out=out, jobs=jobs, extra=extra,
                             first_seed=first_seed, verdicts_only=verdicts_only)
        results.append(result)
        elapsed = time.perf_counter() - start
        eta = eta_seconds(elapsed, sum(work[: i + 1]), sum(work[i + 1:]))
        print(f"[suite] {i + 1}/{len(problems)} {problem.name}: {result.status} in {_duration(result.seconds)}; "
              f"elapsed {_duration(elapsed)}, ETA {_duration(eta) if math.isfinite(eta) else '?'}",
              file=sys.stderr, flush=True)
        if result.status != "ok":
            print(f"[suite] {problem.name} {result.status}: {result.reason}", file=sys.stderr, flush=True)
    if results and all(res.status == "failed" for res in results):
        print(f"[suite] every problem failed: nothing was measured, so the leaderboard in {out} is left as it was",
              file=sys.stderr, flush=True)
        return results
    header = [f"`{command_line}`" if command_line else "",
              f"mode: {'quick' if quick else 'full'}, {_plural(seeds, 'seed')}, strategies {', '.join(strategies)}, "
              f"default `{DEFAULT_STRATEGY}` in bold; total {_duration(time.perf_counter() - start)}",
              "verdicts read from the runs already in this folder; nothing ran" if verdicts_only else ""]
    paths = write_leaderboard(results, out, title="Benchmark suite: active against passive sampling",
                              header=[h for h in header if h])
    print(f"[suite] leaderboard: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    print(f"[suite] total elapsed {_duration(time.perf_counter() - start)}", file=sys.stderr, flush=True)
    return results


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SuiteError(f"--{what} needs at least one name")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets and test sets, 2 seeds by default")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per strategy (default: 2 quick, 8 full)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1: report settings chosen on other seeds")
    parser.add_argument("--strategies", default=f"{PASSIVE},{DEFAULT_STRATEGY}",
                        help=f"strategy configs, comma-separated; must include {PASSIVE} (default: %(default)s)")
    parser.add_argument("--problems", default=None, help="comma-separated, from all problems (default: the tuning "
                        "set): " + ", ".join(PROBLEMS))
    parser.add_argument("--held-out", action="store_true",
                        help="run the held-out problems, on which no default was chosen: " + ", ".join(HELD_OUT))
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: results/bench/suite, or results/bench/suite_quick)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once within a problem (hydra.launcher.n_jobs)")
    parser.add_argument("--verdicts-only", action="store_true",
                        help="run nothing: rewrite the leaderboard from the verdicts an earlier run left in OUT")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every problem (after --)")
    args = parser.parse_args(argv)
    try:
        if args.problems is not None and args.held_out:
            raise SuiteError("give --problems or --held-out, not both")
        names = (_names(args.problems, "problems") if args.problems is not None
                 else list(HELD_OUT if args.held_out else TUNING))
        unknown = [n for n in names if n not in PROBLEMS]
        if unknown:
            raise SuiteError(f"unknown problem(s) {unknown}; choose from {', '.join(PROBLEMS)}")
        default_out = "results/bench/suite" + ("_held_out" if args.held_out else "") + ("_quick" if args.quick else "")
        out = args.out or Path(default_out)
        seeds = args.seeds if args.seeds is not None else (2 if args.quick else 8)
        command_line = "python -m experiments.bench.suite " + " ".join(sys.argv[1:] if argv is None else argv)
        results = run_suite([PROBLEMS[n] for n in names], quick=args.quick, seeds=seeds,
                            strategies=_names(args.strategies, "strategies"), out=out, jobs=args.jobs,
                            extra=args.overrides, command_line=command_line.strip(), first_seed=args.first_seed,
                            verdicts_only=args.verdicts_only)
    except SuiteError as exc:
        print(f"suite: error: {exc}", file=sys.stderr)
        return 2
    failed = [r.problem.name for r in results if r.status == "failed"]
    if failed:
        print(f"suite: {len(failed)} problem(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
