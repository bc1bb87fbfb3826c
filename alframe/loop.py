"""The active learning loop: fit the committee, pick the next runs, run them, store them.

The loop reads like its description:

    design = initial passive design
    run and store it
    repeat:
        fit the committee on every successful run; score it on the held-out test set
        stop if the budget is spent or the target is met
        draw candidates; the strategy picks a batch; run it; store every result

Everything is derived from one integer seed, and every decision is checkpointed beside the
store before the simulations it asks for start, so a crashed or killed run restarted with
the same arguments continues where it stopped, repeats no finished simulation, and ends
with the same store as a run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

import alframe
from alframe.dispatch import run_batch, run_together
from alframe.learners.base import Committee, fit_report
from alframe.metrics import classification_metrics, higher_is_better, regression_metrics, scalar_metric_names
from alframe.oracle import Oracle, Outcome, concat_outcomes
from alframe.space import DrawMethod
from alframe.store import RunStore, output_description
from alframe.strategies.base import Strategy, not_pending
from alframe.strategies.proxy import ChargedSelection


class LoopError(RuntimeError):
    """The loop cannot go on: every run failed, or a checkpoint belongs to another run."""


@dataclass(frozen=True)
class Candidates:
    """How candidates are drawn each round.

    Args:
        size: candidates per round (the pool the strategy chooses from).
        method: "uniform", "sobol" or "lhs". Sobol candidates continue one sequence across
            rounds (offset = runs so far), so with `size` equal to the batch size and
            `RandomSampling` the loop samples a single Sobol design.
    """

    size: int = 2000
    method: DrawMethod = "uniform"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"candidate pool size must be >= 1, got {self.size}")

    def draw(self, space, *, seed: int, n_runs: int) -> np.ndarray:
        """Candidates (size, dim) for a loop that has made `n_runs` runs."""
        return space.draw(self.size, seed=seed, method=self.method, offset=n_runs)


def score_committee(committee: Committee, x_test: np.ndarray, y_test: np.ndarray, *,
                    classification: bool, y_train: np.ndarray | None = None) -> dict[str, Any]:
    """Test metrics of the committee on x_test (m, dim) against y_test (m, n_outputs).

    y_train (n, n_outputs), the outputs the committee was fitted on, gives the constant
    predictor a regression's r2 is measured against (their mean); without it, the test mean.
    Regression metrics include arrays (n_outputs,) when there are several outputs (see
    `alframe.metrics.regression_metrics`).
    """
    members = np.asarray(committee.predict_members(x_test))
    if classification:
        return classification_metrics(y_test, members)
    y_train_mean = None if y_train is None or len(y_train) == 0 else np.asarray(y_train, np.float64).mean(axis=0)
    return regression_metrics(y_test, members, y_train_mean=y_train_mean)


def metric_directions(metrics: Mapping[str, Any], declared: tuple[str, ...] = ()) -> list[str]:
    """The names in `metrics` (one round's) that are better higher: by
    `alframe.metrics.higher_is_better`, or `declared` so by whoever computed them."""
    return [name for name in metrics if higher_is_better(name) or name in declared]


def record_directions(store: RunStore, metrics: Mapping[str, Any], declared: tuple[str, ...] = ()) -> None:
    """Set the store attr `higher_is_better` (a JSON list of per-round metric names) unless it is set already."""
    names = json.dumps(metric_directions(metrics, declared))
    if store.attrs.get("higher_is_better") != names:
        store.update_attrs(higher_is_better=names)


def check_target_metric(target_metric: str, task: str) -> None:
    """Refuse, before anything runs, a target metric the default scoring of `task` never returns."""
    names = scalar_metric_names(task)
    if target_metric not in names:
        raise ValueError(f"target metric {target_metric!r} not among {sorted(names)} (the {task} test metrics)")


def target_met(metrics: Mapping[str, Any], target_metric: str, target: float | None,
               declared: tuple[str, ...] = ()) -> bool:
    """Whether one round's `metrics` reach `target` on `target_metric`: at or above it for a
    metric that is better higher (see `metric_directions`), else at or below it."""
    if target is None:
        return False
    if target_metric not in metrics:
        raise ValueError(f"target metric {target_metric!r} not among {sorted(metrics)}")
    value = metrics[target_metric]
    if np.ndim(value) != 0:
        raise ValueError(f"target metric {target_metric!r} is an array of shape {np.shape(value)}; "
                         "choose a scalar metric")
    better_higher = higher_is_better(target_metric) or target_metric in declared
    return bool(value >= target if better_higher else value <= target)


def _test_chunks(size: int) -> int:
    """Runs per `oracle.run` call while drawing a test set of `size`: about 50 calls, so its
    progress shows from the start."""
    return max(1, size // 50)


def draw_test_set(oracle: Oracle, size: int, seed: int,
                  given: tuple[np.ndarray, np.ndarray] | None = None, *,
                  progress: bool = False, label: str = "test set") -> tuple[np.ndarray, np.ndarray]:
    """The held-out set: `given` (checked and made 2-D), or `size` uniform draws run on the
    oracle with `seed` (failed runs dropped). Returns x (m, dim), y (m, n_outputs).

    The inputs are drawn at once, so the set depends only on `seed` and `size`; they are run
    in chunks, with a progress bar when `progress`.
    """
    if given is not None:
        x, y = (np.asarray(a) for a in given)
        if len(x) != len(y) or x.ndim != 2 or x.shape[1] != oracle.space.dim:
            raise LoopError(f"test_set must be x (n, {oracle.space.dim}) and y (n, ...), "
                            f"got x {x.shape} and y {y.shape}")
        return x, (y[:, None] if y.ndim == 1 else y)
    x = oracle.space.draw(size, seed=seed, method="uniform")
    chunk = _test_chunks(len(x))
    outcomes = []
    with tqdm(total=len(x), desc=label, unit="sim", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(x), chunk):
            outcomes.append(oracle.run(x[start : start + chunk]))
            bar.update(len(outcomes[-1]))
    outcome = concat_outcomes(outcomes, oracle.outputs.dim)
    if not outcome.ok.any():
        raise LoopError(f"every test-set run failed (first error: {outcome.error[0]!r})")
    return x[outcome.ok], outcome.y[outcome.ok]


@dataclass(frozen=True)
class _Checkpoint:
    """A round's decision, written before its simulations start."""

    round_index: int
    committee: Committee
    metrics: dict[str, float]
    plan: np.ndarray  # (k, dim) queries chosen in this round
    first_sample: int  # store rows before the plan's first run
    exhausted: bool = False  # no candidate was left to choose from


def _config_digest(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save_atomically(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path: Path, digest: str) -> _Checkpoint | None:
    if not path.exists():
        return None
    with open(path, "rb") as f:
        saved_digest, checkpoint = pickle.load(f)
    if saved_digest != digest:
        raise LoopError(f"checkpoint {path} belongs to a different config; remove it or use a new directory")
    return checkpoint


@dataclass
class _History:
    """The runs so far, in memory: x (n, dim), y (n, n_outputs), ok (n,), error (n,)."""

    x: np.ndarray
    y: np.ndarray
    ok: np.ndarray
    error: np.ndarray

    @classmethod
    def from_store(cls, data: xr.Dataset, dim: int, n_outputs: int) -> "_History":
        if "x" not in data:
            return cls(np.empty((0, dim)), np.empty((0, n_outputs)), np.empty(0, bool), np.empty(0, object))
        return cls(data["x"].values, data["y"].values, data["ok"].values, data["error"].values)

    def extend(self, x: np.ndarray, outcome: Outcome) -> None:
        self.x = np.concatenate([self.x, x])
        self.y = np.concatenate([self.y, outcome.y])
        self.ok = np.concatenate([self.ok, outcome.ok])
        self.error = np.concatenate([self.error, outcome.error])


@dataclass
class ActiveLearningLoop:
    """One active (or passive) learning run against one oracle.

    Args:
        oracle: the simulator.
        committee: an unfitted committee (its fits are warm-started from round to round if
            it supports that).
        strategy: picks the runs.
        budget: simulations to spend, failed runs included (test set excluded).
        batch_size: runs per round.
        n_initial: size of the initial passive design.
        initial_method: how the initial design is drawn ("uniform", "sobol", "lhs").
        candidates: how candidates are drawn each round.
        test_size: held-out test points, drawn once with `test_seed` (so every seed and
            strategy is scored on the same test set) and not charged to the budget.
        test_set: a given held-out set (x (n, dim), y (n, n_outputs) or labels (n,)) used
            instead of drawing one, e.g. labelled models kept out of a pool.
        seed: the one seed every random choice derives from.
        target: stop early once the test metric `target_metric` reaches this value.
        target_metric: a metric name ("mse" by default). Metrics that are better higher (see
            `alframe.metrics.higher_is_better`: accuracy, f1, r2, ..., and `higher_is_better`)
            stop when >= target, the others when <=. With the default scorer, a name it never
            returns is refused here.
        scorer: the test metrics of a fitted committee, (committee, x_test, y_test) ->
            {name: value}; None scores its predictions at x_test against y_test (r2 against
            the mean of the training outputs). A committee that reads a simulator's outputs and
            predicts its inputs (an inverse problem) needs its own.
        higher_is_better: names of the scorer's metrics that are better higher beyond those
            `alframe.metrics.higher_is_better` recognises by name. With the rest, recorded in
            the store attr `higher_is_better` (a JSON list of per-round metric names).
        executor: runs each batch's simulations, one task per query, in parallel (see
            `alframe.executors`); None runs the batch as one vectorised `oracle.run` here.
        retries: further tries for a run that fails before it is recorded as failed.
        progress: show a progress bar.
        label: progress bar label.

    A strategy that runs simulations of its own to choose (`ChargedSelection`, e.g. a cheap
    proxy run of every candidate) is charged their cost, in full runs, against the budget;
    the per-round metric `n_runs` then counts runs plus those charges, and `selection_cost`
    records each round's charge.
    """

    oracle: Oracle
    committee: Committee
    strategy: Strategy
    budget: int = 300
    batch_size: int = 10
    n_initial: int = 20
    initial_method: DrawMethod = "sobol"
    candidates: Candidates = Candidates()
    test_size: int = 2000
    test_seed: int = 20190101
    test_set: tuple[np.ndarray, np.ndarray] | None = None
    seed: int = 0
    target: float | None = None
    target_metric: str = "mse"
    scorer: Callable[[Committee, np.ndarray, np.ndarray], Mapping[str, float]] | None = None
    higher_is_better: tuple[str, ...] = ()
    executor: Executor | None = None
    retries: int = 0
    progress: bool = True
    label: str = "alframe"

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        for name in ("budget", "batch_size", "test_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_initial < 1:
            raise ValueError(f"n_initial must be >= 1 (the committee needs data), got {self.n_initial}")
        self.n_initial = min(self.n_initial, self.budget)
        if isinstance(self.higher_is_better, str):
            raise ValueError(f"higher_is_better must be a list of metric names, got the string "
                             f"{self.higher_is_better!r}")
        self.higher_is_better = tuple(str(name) for name in self.higher_is_better)
        self._classification = self.oracle.outputs.task == "classification"
        self._charged = isinstance(self.strategy, ChargedSelection)
        if self.target is not None and self.scorer is None:
            check_target_metric(self.target_metric, self.oracle.outputs.task)

    # -- the pieces ---------------------------------------------------------------------

    def _score(self, committee: Committee, x_test: np.ndarray, y_test: np.ndarray,
               y_train: np.ndarray) -> dict[str, Any]:
        if self.scorer is not None:
            metrics = dict(self.scorer(committee, x_test, y_test))
            unknown = sorted(set(self.higher_is_better) - set(metrics))
            if unknown:
                raise ValueError(f"higher_is_better names {unknown} that the scorer does not return "
                                 f"(it returns {sorted(metrics)})")
            return metrics
        return score_committee(committee, x_test, y_test, classification=self._classification, y_train=y_train)

    def _target_met(self, metrics: Mapping[str, Any]) -> bool:
        return target_met(metrics, self.target_metric, self.target, self.higher_is_better)

    def _fit_and_choose(self, committee, runs: "_History", x_test, y_test, round_index,
                        charged: float = 0) -> _Checkpoint:
        n_runs = len(runs.ok)
        if not runs.ok.any():
            raise LoopError(
                f"all {n_runs} runs so far failed; the committee has nothing to learn from "
                f"(first error: {runs.error[0]!r})"
            )
        fit_key, select_key = jax.random.split(jax.random.fold_in(jax.random.key(self.seed), round_index))
        start = time.perf_counter()
        y_train = runs.y[runs.ok]
        committee = committee.fit(runs.x[runs.ok], y_train, key=fit_key)
        self._score(committee, x_test[:1], y_test[:1], y_train)  # scoring one test point waits for the fit
        fit_s = time.perf_counter() - start
        spent = float(n_runs + charged) if self._charged else n_runs
        metrics = {"round": round_index, "n_runs": spent, "n_labeled": int(runs.ok.sum()),
                   **self._score(committee, x_test, y_test, y_train), **fit_report(committee), "fit_s": fit_s}

        k = min(self.batch_size, math.floor(self.budget - spent + 1e-9))
        plan = np.empty((0, self.oracle.space.dim))
        charge, exhausted = 0.0, False
        start = time.perf_counter()
        if k > 0 and not self._target_met(metrics):
            candidates = self.candidates.draw(self.oracle.space, seed=self.seed, n_runs=n_runs)
            candidates = candidates[not_pending(candidates, runs.x)]  # never rerun a finished input
            exhausted = len(candidates) == 0
            if self._charged:
                charge = float(self.strategy.selection_cost(len(candidates)))
                k = min(k, math.floor(self.budget - spent - charge + 1e-9))
            k = min(k, len(candidates))
            if k > 0:
                plan = candidates[self.strategy.select(committee, candidates, k, key=select_key,
                                                       failed=runs.x[~runs.ok])]
            else:
                charge = 0.0  # nothing will be run, so nothing is chosen and nothing charged
        metrics["select_s"] = time.perf_counter() - start
        if self._charged:
            metrics["selection_cost"] = charge
        return _Checkpoint(round_index, committee, metrics, plan, n_runs, exhausted)

    # -- the loop -----------------------------------------------------------------------

    def run(self, path: str | Path, *, config: Mapping[str, Any] | None = None) -> xr.Dataset:
        """Run (or resume) the loop, storing everything under `path` (a zarr directory).

        `config` is recorded in the store's attrs and identifies the run: resuming requires
        the same config. Returns the finished store's Dataset.
        """
        path = Path(path)
        config = dict(config or {})
        loop_settings = {name: repr(getattr(self, name)) for name in (
            "seed", "budget", "batch_size", "n_initial", "initial_method", "candidates", "test_size",
            "test_seed", "target", "target_metric", "retries")}
        if self.higher_is_better:  # only when declared, so that stores made before it still resume
            loop_settings["higher_is_better"] = repr(self.higher_is_better)
        if self.test_set is not None:
            loop_settings["test_set"] = hashlib.blake2b(
                b"".join(np.ascontiguousarray(a).tobytes() for a in self.test_set), digest_size=16).hexdigest()
        digest = _config_digest({"config": config, "loop": loop_settings})
        space, outputs = self.oracle.space, self.oracle.outputs
        store = RunStore.open(
            path,
            input_names=space.names,
            output_names=outputs.names,
            **output_description(outputs),
            attrs={"config": json.dumps(config, sort_keys=True, default=str), "config_digest": digest,
                   "seed": self.seed, "alframe_version": alframe.__version__, "task": outputs.task,
                   "budget": self.budget, "batch_size": self.batch_size, "label": self.label,
                   **({"classes": list(outputs.classes)} if outputs.classes else {})},
        )
        checkpoint_path = path.with_name(path.name + ".resume.pkl")
        checkpoint = _load_checkpoint(checkpoint_path, digest) if store.exists else None
        data = store.read()
        if "stop_reason" in data.attrs:
            return data

        if "x_test" not in data:
            x_test, y_test = self._draw_test_set()
            store.write_test_set(x_test, y_test)
        else:
            x_test, y_test = data["x_test"].values, data["y_test"].values

        runs = _History.from_store(data, space.dim, outputs.dim)
        n_rounds = data.sizes.get("round", 0)
        # What the strategy was charged for choosing, in full runs, over the stored rounds.
        charged = float(data["selection_cost"].values.sum()) if "selection_cost" in data else 0
        bar = tqdm(total=self.budget, initial=len(runs.ok), desc=self.label, unit="sim",
                   disable=not self.progress, dynamic_ncols=True)
        try:
            if len(runs.ok) < self.n_initial:
                design = space.draw(self.n_initial, seed=self.seed, method=self.initial_method, offset=0)
                self._run_and_store(store, runs, design[len(runs.ok):], 0, bar)
            committee = self.committee if checkpoint is None else checkpoint.committee
            round_index = 1 if checkpoint is None else checkpoint.round_index
            stop_reason = None
            while stop_reason is None:
                resuming = checkpoint is not None and checkpoint.round_index == round_index
                if not resuming:
                    checkpoint = self._fit_and_choose(committee, runs, x_test, y_test, round_index, charged)
                    _save_atomically((digest, checkpoint), checkpoint_path)
                committee = checkpoint.committee
                record_directions(store, checkpoint.metrics, self.higher_is_better)
                if n_rounds < round_index:
                    store.append_round(checkpoint.metrics)
                    n_rounds += 1
                    charged += checkpoint.metrics.get("selection_cost", 0)
                    self._show(bar, checkpoint.metrics)
                done_in_plan = len(runs.ok) - checkpoint.first_sample
                self._run_and_store(store, runs, checkpoint.plan[done_in_plan:], round_index, bar)
                if len(checkpoint.plan) == 0:
                    if self._target_met(checkpoint.metrics):
                        stop_reason = f"target {self.target_metric} {self.target} reached"
                    elif checkpoint.exhausted:
                        stop_reason = "no candidates left"
                    else:
                        stop_reason = "budget spent"
                round_index += 1
            store.update_attrs(stop_reason=stop_reason)
        finally:
            bar.close()
        checkpoint_path.unlink(missing_ok=True)
        return store.read()

    def _draw_test_set(self) -> tuple[np.ndarray, np.ndarray]:
        return draw_test_set(self.oracle, self.test_size, self.test_seed, self.test_set,
                             progress=self.progress, label=f"{self.label} test set")

    def _run_and_store(self, store: RunStore, runs: "_History", queries: np.ndarray, round_index: int,
                       bar) -> None:
        if len(queries) == 0:
            return
        if self.executor is None:
            try:
                outcome = run_together(self.oracle, queries, retries=self.retries)
            except ValueError as exc:
                raise LoopError(str(exc)) from None
        else:
            outcome = run_batch(self.executor, self.oracle, queries, retries=self.retries)
        store.append_runs(queries, outcome, round_index=round_index)
        runs.extend(queries, outcome)
        bar.update(len(queries))

    def _show(self, bar, metrics: Mapping[str, float]) -> None:
        keys = ("f1", "accuracy") if self._classification else ("mse", "r2")
        keys = dict.fromkeys((*keys, self.target_metric))  # a scorer's own metrics may be none of these
        shown = {k: f"{metrics[k]:.3g}" for k in keys if isinstance(metrics.get(k), int | float)}
        bar.set_postfix({"round": metrics["round"], **shown}, refresh=False)


def run_loop(path: str | Path, *, config: Mapping[str, Any] | None = None, **kwargs: Any) -> xr.Dataset:
    """Shorthand for `ActiveLearningLoop(**kwargs).run(path, config=config)`."""
    return ActiveLearningLoop(**kwargs).run(path, config=config)

