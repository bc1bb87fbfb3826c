"""The ask/tell core every driver shares: the runs, the committee, the rounds and the charges.

An `ActiveLearner` knows nothing of simulators, executors or stores. A driver tells it what
finished (`tell`), has it refit the committee (`refit`, which starts a round) and asks it for
the next queries (`ask`): the batch loop asks once per round and waits, the asynchronous
loop asks whenever a worker is free, the `alframe ask`/`alframe tell` commands ask and tell
days apart. Every random choice comes from `seed` through `round_keys`, so the same
sequence of calls gives the same queries whichever driver makes them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import xarray as xr

from alframe.learners.base import Committee, fit_report, start_deferred
from alframe.learners.coordinates import in_space_coordinates
from alframe.learners.output_units import in_float32_range
from alframe.oracle import Outcome
from alframe.space import Space
from alframe.strategies.base import Strategy, not_pending
from alframe.strategies.diversity import unit_scale
from alframe.strategies.selection import Selection, as_selection, refused_picks

_DISTANCE_BLOCK = 2048  # candidates whose distances to the runs are held in memory at once

# (fitted committee, training outputs (n, n_outputs)) -> the round's metrics
Evaluate = Callable[[Committee, np.ndarray], Mapping[str, Any]]


class LoopError(RuntimeError):
    """The run cannot go on: every run failed, or a checkpoint belongs to another run."""


@dataclass(frozen=True)
class Candidates:
    """How candidates are drawn each round.

    Args:
        size: candidates per round (the pool the strategy chooses from).
        method: "uniform", "sobol" or "lhs". Sobol candidates continue one sequence across
            rounds (offset = runs so far), so with `size` equal to the batch size and
            `RandomSampling` the loop samples a single Sobol design.
        failure_neighbours: leave out candidates whose this many nearest runs are mostly
            failed (see `clear_of_failures`); None keeps every candidate.
    """

    size: int = 2000
    method: str = "uniform"
    failure_neighbours: int | None = 5

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int | np.integer) or self.size < 1:
            raise ValueError(f"candidates.size must be an integer >= 1, got {self.size!r}")
        if self.failure_neighbours is not None and (isinstance(self.failure_neighbours, bool) or not isinstance(
                self.failure_neighbours, int | np.integer) or self.failure_neighbours < 1):
            raise ValueError(f"candidates.failure_neighbours must be an integer >= 1 or null, "
                             f"got {self.failure_neighbours!r}")

    def draw(self, space, *, seed: int, n_runs: int) -> np.ndarray:
        """Candidates (size, dim) for a run that has made (or started) `n_runs` runs."""
        return space.draw(self.size, seed=seed, method=self.method, offset=n_runs)

    def clear_of_failures(self, space, candidates: np.ndarray, runs_x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Which candidates (n, dim) lie outside the regions where runs fail, (n,) bool: those
        whose `failure_neighbours` nearest runs (runs_x (m, dim), ok (m,)) are not mostly failed.

        A simulator that fails over a region of its inputs (a code that does not converge
        there) spends a run on every query there and learns nothing from it; once the region
        has shown itself by a few failures nearby, no strategy proposes it again, passive
        sampling included. A failure here and there among successes (a lost node) removes
        nothing. Distances are measured in the space's coordinates (log10 of log-scale inputs,
        the phase of periodic ones), each scaled to the candidates' range. All True without a
        failed run or with `failure_neighbours` None.
        """
        candidates = np.asarray(candidates, dtype=np.float64)
        ok = np.asarray(ok, dtype=bool)
        if self.failure_neighbours is None or ok.all() or len(candidates) == 0:
            return np.ones(len(candidates), dtype=bool)
        coordinates = getattr(space, "coordinates", None)
        a, b = (candidates, np.asarray(runs_x, np.float64)) if coordinates is None else (
            coordinates(candidates), coordinates(np.asarray(runs_x, np.float64)))
        a, b = unit_scale(a, a), unit_scale(b, a)
        k = min(self.failure_neighbours, len(b))
        failed_near = np.empty(len(a), dtype=np.int64)
        b2 = np.sum(b**2, axis=1)[None, :]
        for start in range(0, len(a), _DISTANCE_BLOCK):  # (block, m) distances at a time, whatever the pool
            block = slice(start, start + _DISTANCE_BLOCK)
            d2 = np.sum(a[block] ** 2, axis=1)[:, None] + b2 - 2.0 * a[block] @ b.T
            failed_near[block] = (~ok)[np.argpartition(d2, k - 1, axis=1)[:, :k]].sum(axis=1)
        return failed_near * 2 <= k


def round_keys(seed: int, round_index: int) -> tuple[jax.Array, jax.Array]:
    """The keys of round `round_index`: (fitting the committee, choosing with it)."""
    fit_key, select_key = jax.random.split(jax.random.fold_in(jax.random.key(seed), round_index))
    return fit_key, select_key


def ask_key(seed: int, round_index: int, ask_index: int) -> jax.Array:
    """The key of the `ask_index`-th ask (from 0) answered by round `round_index`'s committee."""
    key = round_keys(seed, round_index)[1]
    return key if ask_index == 0 else jax.random.fold_in(key, ask_index)


@dataclass
class Runs:
    """Every run told so far: x (n, dim), y (n, n_outputs), ok (n,), error (n,)."""

    x: np.ndarray
    y: np.ndarray
    ok: np.ndarray
    error: np.ndarray

    @classmethod
    def empty(cls, dim: int, n_outputs: int) -> "Runs":
        return cls(np.empty((0, dim)), np.empty((0, n_outputs)), np.empty(0, bool), np.empty(0, object))

    @classmethod
    def from_store(cls, data: xr.Dataset, dim: int, n_outputs: int) -> "Runs":
        if "x" not in data:
            return cls.empty(dim, n_outputs)
        return cls(data["x"].values, data["y"].values, data["ok"].values, data["error"].values)

    def __len__(self) -> int:
        return len(self.ok)

    def extend(self, x: np.ndarray, outcome: Outcome) -> None:
        self.x = np.concatenate([self.x, np.asarray(x, dtype=np.float64).reshape(len(outcome), -1)])
        self.y = np.concatenate([self.y, outcome.y])
        self.ok = np.concatenate([self.ok, outcome.ok])
        self.error = np.concatenate([self.error, outcome.error])


def quoted_cost(strategy: Strategy, n_candidates: int) -> float | None:
    """What `strategy` says, before choosing, that choosing among `n_candidates` will cost
    (its `selection_cost`), or None for a strategy that quotes nothing."""
    quote = getattr(strategy, "selection_cost", None)
    return None if quote is None else float(quote(n_candidates))


@dataclass
class ActiveLearner:
    """Runs, committee, rounds and charges of one active learning run.

    Args:
        space: the input space.
        committee: the committee; unfitted until the first `refit`, then the latest fit
            (warm-started from the previous one where the committee supports it). Where the
            space declares log-scale or periodic inputs, it learns in the space's coordinates
            (`alframe.learners.coordinates`).
        strategy: chooses the queries.
        candidates: how each ask draws its candidates.
        seed: the seed every key derives from (`round_keys`, `ask_key`).
        budget: simulations (and charges) to spend, or None for no limit; asks never choose
            more than it leaves.
        evaluate: the metrics of a fitted committee, given its training outputs (n, n_outputs);
            None for none beyond the counts.
        runs: the runs told so far (empty for a new run).
        round_index: fits made so far; the committee is the fit of this round.
        charged: simulations' worth charged by the strategy so far.
        charging: whether the strategy charges (once it has quoted or reported a cost).
    """

    space: Space
    committee: Committee
    strategy: Strategy
    candidates: Candidates = Candidates()
    seed: int = 0
    budget: float | None = None
    evaluate: Evaluate | None = None
    runs: Runs | None = None
    round_index: int = 0
    charged: float = 0.0
    charging: bool = False
    asks: int = field(default=0, repr=False)  # asks answered by this round's committee

    def __post_init__(self) -> None:
        if self.runs is None:
            raise ValueError("ActiveLearner needs its runs (Runs.empty(dim, n_outputs) for a new run)")
        self.committee = in_space_coordinates(in_float32_range(self.committee), self.space)

    @property
    def spent(self) -> float:
        """Simulations run plus charges (an int while nothing was charged)."""
        return len(self.runs) + self.charged if self.charging else len(self.runs)

    def remaining(self) -> float:
        """What the budget leaves (infinite without one)."""
        return math.inf if self.budget is None else self.budget - self.spent

    # -- tell -------------------------------------------------------------------------

    def tell(self, points: np.ndarray, outcome: Outcome) -> None:
        """Add finished runs: points (k, dim) and their outcome (k rows)."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.space.dim)
        if len(points) != len(outcome):
            raise ValueError(f"told {len(points)} points but {len(outcome)} outcomes")
        self.runs.extend(points, outcome)

    # -- refit ------------------------------------------------------------------------

    def fit(self, x: np.ndarray | None = None, y: np.ndarray | None = None, *,
            spent: float | None = None) -> tuple[Committee, dict[str, Any]]:
        """The next round's committee, fitted on x (n, dim), y (n, n_outputs) (by default
        every successful run), and its metrics (see `refit`; `spent` is their n_runs, by
        default `self.spent`). The learner is left as it was, so a driver may fit in the
        background while it goes on asking and telling; `adopt` takes the result."""
        runs = self.runs
        if x is None:
            if not runs.ok.any():
                raise LoopError(f"all {len(runs)} runs so far failed; the committee has nothing to learn from"
                                + (f" (first error: {runs.error[0]!r})" if len(runs) else ""))
            x, y = runs.x[runs.ok], runs.y[runs.ok]
        round_index = self.round_index + 1
        fit_key, _ = round_keys(self.seed, round_index)
        start = time.perf_counter()
        committee = self.committee.fit(x, y, key=fit_key)
        # Wait for arrays the fit dispatched (a committee may predict from outputs, not x).
        jax.block_until_ready(getattr(committee, "__dict__", committee))
        fit_s = time.perf_counter() - start
        metrics = dict(self.evaluate(committee, y)) if self.evaluate is not None else {}
        return committee, {"round": round_index, "n_runs": self.spent if spent is None else spent, "n_labeled": len(x), **metrics,
                           **fit_report(committee), "fit_s": fit_s}

    def adopt(self, committee: Committee, round_index: int) -> None:
        """Make `committee`, the fit of round `round_index`, the one that answers asks."""
        self.committee, self.round_index, self.asks = committee, round_index, 0

    def refit(self) -> dict[str, Any]:
        """Start the next round: fit the committee on every successful run and evaluate it.

        Returns the round's metrics: round, n_runs (spent so far), n_labeled, what
        `evaluate` returns, what the committee reports of its fit, and fit_s.
        """
        committee, metrics = self.fit()
        self.adopt(committee, metrics["round"])
        return metrics

    # -- ask --------------------------------------------------------------------------

    def ask(self, n: int, *, pending: np.ndarray | None = None, background: bool = True) -> Selection:
        """Up to n new queries chosen by the latest committee, none of them a run told or
        `pending` (m, dim): asked and not yet told, which the strategy also discounts
        around. Charges what choosing cost; never more than the budget leaves.

        With `background`, the committee's deferred work (`alframe.learners.base.Deferring`:
        a choice among families, a kernel retune) starts once the queries are chosen, to run
        beside their simulations; pass False where this process ends before the next fit (a
        command-line ask), which would otherwise wait for work it throws away.

        A Selection with no points says why in `stop_reason`.
        """
        if self.round_index == 0:
            raise LoopError("nothing has been fitted yet: refit before asking")
        dim = self.space.dim
        pending = None if pending is None else np.asarray(pending, dtype=np.float64).reshape(-1, dim)
        left = self.remaining() - (0 if pending is None else len(pending))  # pending runs will be spent
        n = int(min(n, math.floor(left + 1e-9)))
        if n <= 0:
            return Selection.stop(dim, "budget spent", cost=0.0 if self.charging else None)
        n_started = len(self.runs) + (0 if pending is None else len(pending))
        candidates = self.candidates.draw(self.space, seed=self.seed, n_runs=n_started)
        taken = self.runs.x if pending is None or not len(pending) else np.vstack([self.runs.x, pending])
        candidates = candidates[not_pending(candidates, taken)]  # never rerun an input
        clear = self.candidates.clear_of_failures(self.space, candidates, self.runs.x, self.runs.ok)
        if clear.sum() >= min(n, len(candidates)):  # else failures are everywhere: let the strategy judge
            candidates = candidates[clear]
        if len(candidates) == 0:
            return Selection.stop(dim, "no candidates left", cost=0.0 if self.charging else None)
        k = min(n, len(candidates))
        quote = quoted_cost(self.strategy, len(candidates))
        if quote is not None:
            self.charging = True
            k = min(k, math.floor(left - quote + 1e-9))
            if k <= 0:  # nothing could be run after paying for the choice: do not choose
                return Selection.stop(dim, "budget spent", cost=0.0)
        key = ask_key(self.seed, self.round_index, self.asks)
        self.asks += 1
        answer = self.strategy.select(self.committee, candidates, k, key=key, pending=pending,
                                      failed=self.runs.x[~self.runs.ok])
        strategy = f"strategy {type(self.strategy).__module__}.{type(self.strategy).__qualname__}"
        try:
            selection = as_selection(answer, candidates)
        except (TypeError, IndexError) as exc:
            raise LoopError(f"{strategy}: {exc}") from None
        refused = refused_picks(selection, k, bare_indices=not isinstance(answer, Selection))
        if refused is not None:
            raise LoopError(f"{strategy} {refused} (alframe.testing.check_strategy checks a strategy's answers)")
        if background:
            start_deferred(self.committee)
        if selection.cost is None and quote is not None:  # charged as quoted
            selection = Selection(selection.points, selection.indices, quote, selection.stop_reason)
        if selection.cost is not None:
            self.charging = True
            affordable = math.floor(left - selection.cost + 1e-9)
            if affordable <= 0 and len(selection):
                return Selection.stop(dim, "budget spent", cost=0.0)
            selection = selection.first(max(affordable, 0))
        elif self.charging:
            selection = Selection(selection.points, selection.indices, 0.0, selection.stop_reason)
        self.charged += selection.cost or 0.0
        return selection

    def round_record(self, metrics: Mapping[str, Any], charge: float | None, select_s: float) -> dict[str, Any]:
        """A round's metrics as stored: `metrics` from `refit`, with select_s and, for a
        strategy that charges, `selection_cost` (`charge`, the round's charge) and `n_runs`
        as a float."""
        record = {**metrics, "select_s": select_s}
        if self.charging:
            record["n_runs"] = float(record["n_runs"])
            record["selection_cost"] = float(charge or 0.0)
        return record

    # -- state ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What a checkpoint must keep besides the runs (which the store keeps)."""
        return {"committee": self.committee, "round_index": self.round_index, "charged": self.charged,
                "charging": self.charging, "asks": self.asks}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what `state` returned."""
        for name in ("committee", "round_index", "charged", "charging", "asks"):
            setattr(self, name, state[name])
