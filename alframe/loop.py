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
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from alframe.active_learner import ActiveLearner, Candidates, LoopError
from alframe.dispatch import run_batch, run_together
from alframe.learners.base import Committee
from alframe.metrics import classification_metrics, higher_is_better, regression_metrics, scalar_metric_names
from alframe.oracle import Oracle
from alframe.recorder import FinishedTestRuns, Recorder, draw_test_set, metric_directions, version_attrs
from alframe.space import DrawMethod
from alframe.strategies.base import Strategy
from alframe.strategies.selection import Selection

__all__ = ["ActiveLearningLoop", "Candidates", "LoopError", "check_target_metric", "draw_test_set",
           "metric_directions", "run_loop", "score_committee", "target_met", "test_evaluator"]


def score_committee(committee: Committee, x_test: np.ndarray, y_test: np.ndarray, *,
                    classification: bool) -> dict[str, Any]:
    """Test metrics of the committee on x_test (m, dim) against y_test (m, n_outputs).

    Regression metrics include arrays (n_outputs,) when there are several outputs (see
    `alframe.metrics.regression_metrics`).
    """
    members = np.asarray(committee.predict_members(x_test))
    if classification:
        return classification_metrics(y_test, members)
    return regression_metrics(y_test, members)


Scorer = Callable[[Committee, np.ndarray, np.ndarray], Mapping[str, Any]]


def test_evaluator(x_test: np.ndarray, y_test: np.ndarray, *, classification: bool, scorer: Scorer | None = None,
                   higher_is_better: tuple[str, ...] = ()) -> Callable[[Committee, np.ndarray], dict[str, Any]]:
    """(fitted committee, its training outputs) -> its metrics on x_test (m, dim), y_test (m, ...):
    `scorer`'s, or by default `score_committee`'s; neither needs the training outputs. Names in
    `higher_is_better` must be among the scorer's metrics."""
    def evaluate(committee: Committee, _training_outputs: np.ndarray) -> dict[str, Any]:
        if scorer is None:
            return score_committee(committee, x_test, y_test, classification=classification)
        metrics = dict(scorer(committee, x_test, y_test))
        unknown = sorted(set(higher_is_better) - set(metrics))
        if unknown:
            raise ValueError(f"higher_is_better names {unknown} that the scorer does not return "
                             f"(it returns {sorted(metrics)})")
        return metrics
    return evaluate


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


@dataclass(frozen=True)
class _Checkpoint:
    """A round's decision, written before its simulations start."""

    round_index: int
    learner: dict[str, Any]  # `ActiveLearner.state()` after the round's ask
    metrics: dict[str, Any]  # the round's record
    plan: np.ndarray  # (k, dim) queries chosen in this round
    first_sample: int  # store rows before the plan's first run
    stop_reason: str | None = None  # why nothing was chosen, when nothing was


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
        if self.target is not None and self.scorer is None:
            check_target_metric(self.target_metric, self.oracle.outputs.task)

    # -- the pieces ---------------------------------------------------------------------

    def evaluator(self, x_test: np.ndarray, y_test: np.ndarray) -> Callable[[Committee, np.ndarray], dict]:
        """The round metrics of a fitted committee on the test set, given its training outputs."""
        return test_evaluator(x_test, y_test, classification=self._classification, scorer=self.scorer,
                              higher_is_better=self.higher_is_better)

    def _target_met(self, metrics: Mapping[str, Any]) -> bool:
        return target_met(metrics, self.target_metric, self.target, self.higher_is_better)

    def identity(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What identifies this run: its config and the loop settings that change its results."""
        loop_settings = {name: repr(getattr(self, name)) for name in (
            "seed", "budget", "batch_size", "n_initial", "initial_method", "candidates", "test_size",
            "test_seed", "target", "target_metric", "retries")}
        if self.higher_is_better:  # only when declared, so that stores made before it still resume
            loop_settings["higher_is_better"] = repr(self.higher_is_better)
        if self.test_set is not None:
            loop_settings["test_set"] = hashlib.blake2b(
                b"".join(np.ascontiguousarray(a).tobytes() for a in self.test_set), digest_size=16).hexdigest()
        return {"config": dict(config), "loop": loop_settings}

    def _round(self, learner: ActiveLearner, first_sample: int) -> _Checkpoint:
        """Refit, and choose the round's batch unless the target is met or the budget spent."""
        metrics = learner.refit()
        start = time.perf_counter()
        selection: Selection | None = None
        if not self._target_met(metrics):
            selection = learner.ask(self.batch_size)
        record = learner.round_record(metrics, None if selection is None else selection.cost,
                                      time.perf_counter() - start)
        if selection is None:
            stop_reason = f"target {self.target_metric} {self.target} reached"
        else:
            stop_reason = selection.stop_reason if len(selection) == 0 else None
        plan = np.empty((0, self.oracle.space.dim)) if selection is None else selection.points
        return _Checkpoint(learner.round_index, learner.state(), record, plan, first_sample,
                           stop_reason or ("budget spent" if len(plan) == 0 else None))

    # -- the loop -----------------------------------------------------------------------

    def run(self, path: str | Path, *, config: Mapping[str, Any] | None = None,
            simulator_version: str | None = None) -> xr.Dataset:
        """Run (or resume) the loop, storing everything under `path` (a zarr directory).

        `config` is recorded in the store's attrs and identifies the run: resuming requires
        the same config. `simulator_version` names the simulator's code (a declared version, a
        digest of its source); a store holding runs of another version is refused
        (`StoreMismatchError`). Returns the finished store's Dataset. Raises
        `alframe.lock.StoreLockedError` while another process writes the same store.
        """
        config = dict(config or {})
        space = self.oracle.space
        with Recorder(path, space=space, outputs=self.oracle.outputs, identity=self.identity(config),
                      attrs={"config": json.dumps(config, sort_keys=True, default=str), "seed": self.seed,
                             "budget": self.budget, "batch_size": self.batch_size,
                             "label": self.label, **version_attrs(simulator_version)}) as recorder:
            if recorder.finished:
                return recorder.data
            checkpoint: _Checkpoint | None = recorder.load()
            x_test, y_test = recorder.test_set(self._draw_test_set)
            learner = ActiveLearner(space, self.committee, self.strategy, self.candidates, seed=self.seed,
                                    budget=self.budget, evaluate=self.evaluator(x_test, y_test),
                                    runs=recorder.runs(), charged=recorder.recorded_charges(),
                                    charging="selection_cost" in recorder.data)
            n_rounds = recorder.n_rounds
            if self.progress:
                recorder.say_resuming(self.label, len(learner.runs), self.budget)
            bar = tqdm(total=self.budget, initial=len(learner.runs), desc=self.label, unit="sim",
                       disable=not self.progress, dynamic_ncols=True)
            try:
                if len(learner.runs) < self.n_initial:
                    design = space.draw(self.n_initial, seed=self.seed, method=self.initial_method, offset=0)
                    self._run_and_record(recorder, learner, design[len(learner.runs):], 0, bar)
                if checkpoint is not None:  # the round it holds comes first, its choice made
                    learner.restore(checkpoint.learner)
                while True:
                    if checkpoint is None:
                        checkpoint = self._round(learner, len(learner.runs))
                        recorder.save(checkpoint)
                    if n_rounds < checkpoint.round_index:
                        recorder.record_round(checkpoint.metrics, self.higher_is_better)
                        n_rounds += 1
                        self._show(bar, checkpoint.metrics, final=checkpoint.stop_reason is not None)
                    done_in_plan = len(learner.runs) - checkpoint.first_sample
                    self._run_and_record(recorder, learner, checkpoint.plan[done_in_plan:], checkpoint.round_index,
                                         bar)
                    if checkpoint.stop_reason is not None:
                        stop_reason = checkpoint.stop_reason
                        break
                    checkpoint = None
                return recorder.finish(stop_reason)
            finally:
                bar.close()

    def _draw_test_set(self, kept: FinishedTestRuns | None = None) -> tuple[np.ndarray, np.ndarray]:
        return draw_test_set(self.oracle, self.test_size, self.test_seed, self.test_set,
                             progress=self.progress, label=f"{self.label} test set", executor=self.executor,
                             retries=self.retries, kept=kept)

    def _run_and_record(self, recorder: Recorder, learner: ActiveLearner, queries: np.ndarray,
                        round_index: int, bar) -> None:
        if len(queries) == 0:
            return
        if self.executor is None:
            try:
                outcome = run_together(self.oracle, queries, retries=self.retries)
            except ValueError as exc:
                raise LoopError(str(exc)) from None
        else:
            outcome = run_batch(self.executor, self.oracle, queries, retries=self.retries)
        recorder.record_runs(queries, outcome, round_index=round_index)
        learner.tell(queries, outcome)
        bar.update(len(queries))

    def _show(self, bar, metrics: Mapping[str, float], *, final: bool = False) -> None:
        # The scores after the last runs come as one more round with nothing to run: "final"
        # says so, where a bare round number would follow the last one at the same count.
        keys = ("f1", "accuracy") if self._classification else ("mse", "r2")
        keys = dict.fromkeys((*keys, self.target_metric))  # a scorer's own metrics may be none of these
        shown = {k: f"{metrics[k]:.3g}" for k in keys if isinstance(metrics.get(k), int | float)}
        bar.set_postfix({"round": "final" if final else metrics["round"], **shown}, refresh=False)


def run_loop(path: str | Path, *, config: Mapping[str, Any] | None = None, **kwargs: Any) -> xr.Dataset:
    """Shorthand for `ActiveLearningLoop(**kwargs).run(path, config=config)`."""
    return ActiveLearningLoop(**kwargs).run(path, config=config)
