"""The asynchronous loop: W simulations always in flight, each result used as it arrives.

A batch-synchronous loop waits for the slowest run of every batch, and its workers idle
while the committee trains. Here, whenever runs finish, queries take their places straight
away (chosen by the newest committee, with every pending point excluded and, for batch rules
that spread, discounted around), then every run that finished since the last write is
recorded in one append, and the committee is refitted in a background thread after every
`refit_every` results. The driver never waits on a fit or the disk: it chooses and submits,
and a writer thread appends the runs and fits to the store in order.

The queries in flight are checkpointed beside the store before they are submitted, and a
finished run stays listed there until its append has committed; the newest committee is
checkpointed by the thread that fitted it. So a driver killed at any moment resumes with
the same command: recorded runs are neither lost nor repeated, and the runs that were in
flight or finished unrecorded are submitted again (an `alframe.cache` wrapper makes those
free).

With several workers the order in which results arrive varies from run to run, so only a
`SequentialExecutor` run is reproducible bit for bit.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from alframe.active_learner import ActiveLearner, Candidates, LoopError
from alframe.dispatch import Attempt, outcome_of, submit, with_tries
from alframe.executors import SequentialExecutor
from alframe.learners.base import Committee
from alframe.loop import Scorer, check_target_metric, target_met, test_evaluator
from alframe.oracle import Oracle, concat_outcomes
from alframe.recorder import Recorder, draw_test_set, version_attrs
from alframe.space import DrawMethod
from alframe.strategies.base import Strategy, not_pending


def _row_keys(points: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(points, dtype=np.float64)}


def _untaken(candidates: np.ndarray, taken: set[bytes], first_coordinates: np.ndarray) -> np.ndarray:
    """Mask (n,) of the candidates (n, dim) that are not exactly a taken point. Only candidates
    whose first coordinate equals a taken point's (`first_coordinates`) are compared in full."""
    mask = np.ones(len(candidates), dtype=bool)
    rows = np.ascontiguousarray(candidates, dtype=np.float64)
    for i in np.flatnonzero(np.isin(rows[:, 0], first_coordinates)):
        mask[i] = rows[i].tobytes() not in taken
    return mask


@dataclass
class AsyncActiveLearningLoop:
    """Active learning with `in_flight` simulations running at all times.

    Args:
        oracle, committee, strategy, budget, n_initial, initial_method, candidates, test_size,
        test_seed, test_set, seed, target, target_metric, scorer, higher_is_better, retries,
            progress, label: as for `alframe.loop.ActiveLearningLoop`. A strategy that charges
            for choosing is charged at each choice; each fit's record carries what was charged
            since the fit before.
        executor: runs the simulations, one task per query (`alframe.executors`); its
            workers should number at least `in_flight`.
        in_flight: W, the simulations kept running at once.
        refit_every: refit the committee after this many new results (1: after every one).
        fit_in_background: train in one thread and write the store in another while
            simulations go on being submitted; False trains and writes in the driver
            (reproducible with a `SequentialExecutor`, but workers that finish during a fit
            wait for it).
        design_until_fitted: while no committee has been fitted yet, workers the initial
            design leaves idle run further points of the same design (its sequence continued,
            counted against the budget; at most `n_initial` or `max_lag` more, whichever is
            fewer) instead of waiting for the first fit.
        max_lag: the most results the committee that chooses may be missing. Once more have
            come in since the one in use was fitted and a fit is under way, the driver waits for
            it before choosing again. Simulations that take longer than a fit never wait; ones
            quicker than a fit would otherwise spend the budget on the choices of one committee.
            None: twice `in_flight`.
    """

    oracle: Oracle
    committee: Committee
    strategy: Strategy
    executor: Executor = field(default_factory=SequentialExecutor)
    in_flight: int = 4
    refit_every: int = 1
    fit_in_background: bool = True
    design_until_fitted: bool = True
    max_lag: int | None = None
    budget: int = 300
    n_initial: int = 20
    initial_method: DrawMethod = "sobol"
    candidates: Candidates = Candidates()
    test_size: int = 2000
    test_seed: int = 20190101
    test_set: tuple[np.ndarray, np.ndarray] | None = None
    seed: int = 0
    target: float | None = None
    target_metric: str = "mse"
    scorer: Scorer | None = None
    higher_is_better: tuple[str, ...] = ()
    retries: int = 0
    progress: bool = True
    label: str = "alframe async"

    def __post_init__(self) -> None:
        for name in ("budget", "in_flight", "refit_every", "test_size", "n_initial"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if isinstance(self.higher_is_better, str):
            raise ValueError(f"higher_is_better must be a list of metric names, got the string "
                             f"{self.higher_is_better!r}")
        self.higher_is_better = tuple(str(name) for name in self.higher_is_better)
        if self.max_lag is not None and self.max_lag < 1:
            raise ValueError(f"max_lag must be >= 1 result (or None for twice in_flight), got {self.max_lag}")
        self.n_initial = min(self.n_initial, self.budget)
        self._classification = self.oracle.outputs.task == "classification"
        if self.target is not None and self.scorer is None:
            check_target_metric(self.target_metric, self.oracle.outputs.task)

    def _target_met(self, metrics: Mapping[str, float]) -> bool:
        return target_met(metrics, self.target_metric, self.target, self.higher_is_better)

    def identity(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What identifies this run (not the executor: a run may resume on another)."""
        settings = {name: repr(getattr(self, name)) for name in (
            "seed", "budget", "n_initial", "initial_method", "candidates", "test_size", "test_seed", "target",
            "target_metric", "retries", "in_flight", "refit_every")}
        if self.max_lag is not None:
            settings["max_lag"] = repr(self.max_lag)
        if self.higher_is_better:
            settings["higher_is_better"] = repr(self.higher_is_better)
        return {"config": dict(config), "loop": settings, "asynchronous": True}

    # -- the loop -----------------------------------------------------------------------

    def run(self, path: str | Path, *, config: Mapping[str, Any] | None = None,
            simulator_version: str | None = None) -> xr.Dataset:
        """Run (or resume) the loop into the zarr store at `path`; returns the finished store.
        `config` and `simulator_version` as for `ActiveLearningLoop.run`. Raises `alframe.lock.StoreLockedError` while another process writes the same store."""
        config = dict(config or {})
        space, outputs = self.oracle.space, self.oracle.outputs
        with Recorder(path, space=space, outputs=outputs, identity=self.identity(config),
                      attrs={"config": json.dumps(config, sort_keys=True, default=str), "seed": self.seed,
                             "budget": self.budget, "in_flight": self.in_flight, "refit_every": self.refit_every,
                             "label": self.label, **version_attrs(simulator_version)}) as recorder:
            if recorder.finished:
                return recorder.data
            return self._drive(recorder)

    def _drive(self, recorder: Recorder) -> xr.Dataset:
        space, outputs = self.oracle.space, self.oracle.outputs
        # Two checkpoints: the in-flight queries (small, rewritten whenever they change) and
        # the newest learner state (rewritten only after a fit, by the thread that fitted it).
        # Not fsynced: a killed driver leaves its writes in the page cache, and the store
        # they guard is not fsynced either.
        in_flight = recorder.load("resume")
        state = recorder.load("committee")
        x_test, y_test = recorder.test_set(lambda kept: draw_test_set(
            self.oracle, self.test_size, self.test_seed, self.test_set, progress=self.progress,
            label=f"{self.label} test set", retries=self.retries, kept=kept,
            executor=None if isinstance(self.executor, SequentialExecutor) else self.executor))
        learner = ActiveLearner(space, self.committee, self.strategy, self.candidates, seed=self.seed,
                                budget=self.budget, runs=recorder.runs(), charged=recorder.recorded_charges(),
                                charging="selection_cost" in recorder.data,
                                evaluate=test_evaluator(x_test, y_test, classification=self._classification,
                                                        scorer=self.scorer, higher_is_better=self.higher_is_better))
        if state is not None and recorder.n_rounds > 0:
            # Round numbers and charges as recorded: a fit killed before its record was written
            # is redone (and a first fit killed so is no fit at all).
            learner.restore({**state, "round_index": recorder.n_rounds, "charged": recorder.recorded_charges()})
        runs = learner.runs
        fitted_once = learner.round_index > 0
        resubmit = np.empty((0, space.dim)) if in_flight is None else in_flight
        resubmit = resubmit[not_pending(resubmit, runs.x)] if len(runs) else resubmit
        design = space.draw(self.n_initial, seed=self.seed, method=self.initial_method, offset=0)

        design_drawn = self.n_initial
        tasks: dict[Future, Attempt] = {}
        origin: dict[int, int] = {}  # id(attempt) -> the fit whose committee chose it
        # Every recorded run and every query ever submitted, as float64 bytes (and their first
        # coordinates, for a quick pre-check): none is chosen again.
        taken = _row_keys(runs.x)
        taken_first = list(runs.x[:, 0])
        recorded_since_fit = 0
        fitting: Future | None = None
        max_lag = 2 * self.in_flight if self.max_lag is None else self.max_lag
        fitting_on = in_use_on = len(runs)  # runs told when the fit under way, and the one in use, started
        select_s, charged_since_fit = 0.0, 0.0
        asked_stop: str | None = None  # why the last ask chose nothing
        trainer = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="alframe-fit")
                   if self.fit_in_background else SequentialExecutor())
        # Store appends, in order, off the driver: it goes back to its workers while the disk
        # is busy. Each queued append with the queries it records, until it has committed.
        writer = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="alframe-store")
                  if self.fit_in_background else SequentialExecutor())
        writes: deque[tuple[Future, np.ndarray]] = deque()
        stop_reason = None
        target_reached = False
        if self.progress:
            recorder.say_resuming(self.label, len(runs), self.budget)
        bar = tqdm(total=self.budget, initial=len(runs), desc=self.label, unit="sim",
                   disable=not self.progress, dynamic_ncols=True)

        def pending() -> np.ndarray:
            return np.array([a.query for a in tasks.values()]).reshape(-1, space.dim)

        def write(fn, *args, recording: np.ndarray = np.empty((0, space.dim)), **kwargs) -> None:
            """Queue a store append (of the runs `recording`); raise here what a finished one raised."""
            writes.append((writer.submit(fn, *args, **kwargs), recording))
            while writes and writes[0][0].done():
                writes.popleft()[0].result()

        def launch(queries: np.ndarray, chosen_by: int) -> None:
            # Checkpointed before they start: every query in flight, every run finished but not
            # yet committed, and these. A killed driver's successor runs them again; those it
            # finds recorded meanwhile it drops.
            unwritten = [q for future, q in writes if not future.done()]
            recorder.save(np.concatenate([pending(), *unwritten, queries]), "resume", durable=False)
            for q in queries:
                future, attempt = submit(self.executor, self.oracle, q)
                tasks[future] = attempt
                origin[id(attempt)] = chosen_by
                taken.add(attempt.query.tobytes())
                taken_first.append(attempt.query[0])

        def fill() -> None:
            """Submit queries until W are in flight."""
            nonlocal resubmit, select_s, design_drawn, charged_since_fit, asked_stop
            free = int(min(self.in_flight - len(tasks), learner.remaining() - len(tasks)))
            if free <= 0 or target_reached:
                return
            if len(resubmit):
                launch(resubmit[:free], learner.round_index)
                resubmit = resubmit[free:]
            elif len(runs) + len(tasks) < self.n_initial:
                fresh = design[_untaken(design, taken, np.asarray(taken_first))]
                launch(fresh[:free], 0)
            elif fitted_once:
                if fitting is not None and len(runs) - in_use_on > max_lag:
                    return  # the fit under way is awaited: see max_lag
                start = time.perf_counter()
                selection = learner.ask(free, pending=pending())
                charged_since_fit += selection.cost or 0.0
                asked_stop = selection.stop_reason if len(selection) == 0 else None
                launch(selection.points, learner.round_index)
                select_s += time.perf_counter() - start
            elif self.design_until_fitted and runs.ok.any():  # a simulator that fails is not fed more
                free = min(free, self.n_initial + min(self.n_initial, max_lag) - design_drawn)
                if free <= 0:
                    return
                more = space.draw(free, seed=self.seed, method=self.initial_method, offset=design_drawn)
                design_drawn += free
                launch(more[_untaken(more, taken, np.asarray(taken_first))], 0)

        def fit(x: np.ndarray, y: np.ndarray, spent: float) -> tuple[Committee, dict[str, Any]]:
            committee, metrics = learner.fit(x, y, spent=spent)
            # Here, off the driver: pickling a committee takes longer than choosing a query.
            recorder.save({**learner.state(), "committee": committee, "round_index": metrics["round"], "asks": 0},
                          "committee", durable=False)
            return committee, metrics

        def adopt(fit: Future) -> dict[str, Any]:
            """Take the fitted committee for the next choices; its metrics, to record."""
            nonlocal select_s, target_reached, fitted_once, charged_since_fit, in_use_on
            committee, metrics = fit.result()
            in_use_on = fitting_on
            learner.adopt(committee, metrics["round"])
            fitted_once = True
            record = learner.round_record(metrics, charged_since_fit, select_s)
            select_s, charged_since_fit = 0.0, 0.0
            record["in_flight"] = len(tasks)
            target_reached = target_reached or self._target_met(record)
            return record

        def record_fit(metrics: dict[str, Any]) -> None:
            write(recorder.record_round, metrics, self.higher_is_better)
            postfix, shown = {"fit": metrics["round"]}, metrics.get(self.target_metric)
            if isinstance(shown, int | float):  # absent when the target metric is not this task's
                postfix[self.target_metric] = f"{shown:.3g}"
            bar.set_postfix(postfix, refresh=False)

        try:
            while True:
                # 1. Start a fit when enough new results are in and none is running (in the
                #    foreground it is done before the next choice, so that choice sees every result).
                ready_to_fit = len(runs) >= self.n_initial and runs.ok.any()
                due = recorded_since_fit >= self.refit_every or not fitted_once or (
                    not tasks and recorded_since_fit > 0)
                if fitting is None and ready_to_fit and due:
                    fitting_on = len(runs)
                    fitting = trainer.submit(fit, runs.x[runs.ok], runs.y[runs.ok], learner.spent)
                    recorded_since_fit = 0
                    if fitting.done():
                        record_fit(adopt(fitting))
                        fitting = None
                elif len(runs) >= self.n_initial and not runs.ok.any() and not tasks:
                    raise LoopError(f"all {len(runs)} runs so far failed; the committee has nothing to "
                                    f"learn from (first error: {runs.error[0]!r})")

                # 2. Keep W in flight.
                fill()

                if not tasks and fitting is None:
                    if target_reached:
                        stop_reason = f"target {self.target_metric} {self.target} reached"
                    elif learner.remaining() < 1:
                        stop_reason = "budget spent"
                    else:
                        stop_reason = asked_stop or "no candidates left"
                    break

                # 3. Wait for results or the fit, then take whatever else has finished meanwhile.
                wait([*tasks, *([fitting] if fitting else [])], return_when=FIRST_COMPLETED)
                fitted = None
                if fitting is not None and fitting.done():
                    fitted, fitting = adopt(fitting), None
                finished, rounds = [], []
                for future in [f for f in tasks if f.done()]:  # in submission order: reproducible
                    attempt = tasks.pop(future)
                    outcome = outcome_of(future, attempt, outputs.dim)
                    if not outcome.ok[0] and attempt.tries <= self.retries:
                        again, retry = submit(self.executor, self.oracle, attempt.query, attempt.tries + 1)
                        tasks[again] = retry
                        origin[id(retry)] = origin.pop(id(attempt), learner.round_index)
                        continue
                    finished.append((attempt.query, with_tries(outcome, attempt.tries)))
                    rounds.append(origin.pop(id(attempt), learner.round_index))
                if finished:
                    # Everything that finished since the last write, in one append, queued first
                    # so that the checkpoint written before the replacements start lists it.
                    queries = np.array([q for q, _ in finished])
                    outcome = concat_outcomes([o for _, o in finished], outputs.dim)
                    learner.tell(queries, outcome)
                    write(recorder.record_runs, queries, outcome, round_index=np.array(rounds), recording=queries)
                    recorded_since_fit += len(finished)
                    bar.update(len(finished))
                if self.fit_in_background:
                    fill()  # replacements out before the store has even started writing
                if fitted is not None:
                    record_fit(fitted)
            while writes:
                writes.popleft()[0].result()
        finally:
            bar.close()
            trainer.shutdown(wait=True)
            writer.shutdown(wait=True)
        return recorder.finish(stop_reason, "resume", "committee")
