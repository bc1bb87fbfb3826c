"""Running queries on an executor: one task per query, failures turned into data.

A task that raises, times out or loses its worker does not stop anything: it becomes a
failed `Outcome` row whose `error` names the reason, after `retries` further attempts.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass

import numpy as np

from alframe.oracle import Oracle, Outcome, concat_outcomes


def evaluate(oracle: Oracle, query: np.ndarray) -> Outcome:
    """Run one query (dim,) on `oracle`; a module-level function so workers can unpickle it."""
    return oracle.run(np.asarray(query, dtype=np.float64)[None, :])


def describe_failure(exc: BaseException) -> str:
    """One line naming why a task failed."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def failed_outcome(reason: str, n_outputs: int, cost_s: float = 0.0) -> Outcome:
    """A one-row failed Outcome with `reason` as its error text."""
    return Outcome(y=np.full((1, n_outputs), np.nan), ok=np.zeros(1, bool), error=np.array([reason], dtype=object),
                   cost_s=np.array([cost_s]))


@dataclass
class Attempt:
    """A query in flight: its point, how often it was tried, and when this try was submitted."""

    query: np.ndarray
    tries: int
    submitted: float


def submit(executor: Executor, oracle: Oracle, query: np.ndarray, tries: int = 1) -> tuple[Future, Attempt]:
    """Submit one query; returns its future and the bookkeeping for it."""
    return executor.submit(evaluate, oracle, query), Attempt(np.asarray(query, np.float64), tries, time.perf_counter())


def outcome_of(future: Future, attempt: Attempt, n_outputs: int) -> Outcome:
    """The future's Outcome, or a failed row naming the exception it raised."""
    try:
        outcome = future.result()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a row of data
        return failed_outcome(describe_failure(exc), n_outputs, time.perf_counter() - attempt.submitted)
    if len(outcome) != 1:
        return failed_outcome(f"oracle returned {len(outcome)} results for one query", n_outputs)
    return outcome


def run_batch(executor: Executor, oracle: Oracle, queries: np.ndarray, *, retries: int = 0) -> Outcome:
    """Run every query (n, dim) as its own task, wait for all, retry failures; (n,) outcomes in order."""
    n_outputs = oracle.outputs.dim
    if len(queries) == 0:
        return concat_outcomes([], n_outputs)
    results: list[Outcome | None] = [None] * len(queries)
    tasks = dict(submit(executor, oracle, q) for q in queries)
    index = {id(a): i for i, a in enumerate(tasks.values())}
    while tasks:
        done, _ = wait(list(tasks), return_when="FIRST_COMPLETED")
        for future in done:
            attempt = tasks.pop(future)
            outcome = outcome_of(future, attempt, n_outputs)
            if not outcome.ok[0] and attempt.tries <= retries:
                again, retry = submit(executor, oracle, attempt.query, attempt.tries + 1)
                index[id(retry)] = index.pop(id(attempt))
                tasks[again] = retry
                continue
            results[index.pop(id(attempt))] = with_tries(outcome, attempt.tries)
    return concat_outcomes(results, n_outputs)


def with_tries(outcome: Outcome, tries: int) -> Outcome:
    """Note in a failed row's error how many tries it had (retries leave a trace)."""
    if outcome.ok[0] or tries == 1:
        return outcome
    # Outcome's own __len__ (runs, not fields) rules out NamedTuple._replace.
    return Outcome(outcome.y, outcome.ok, np.array([f"{outcome.error[0]} (after {tries} tries)"], dtype=object),
                   outcome.cost_s)


def run_together(oracle: Oracle, queries: np.ndarray, *, retries: int = 0) -> Outcome:
    """One vectorised `oracle.run` for all queries (n, dim), then again for the failed rows,
    up to `retries` times; (n,) outcomes in order."""
    outcome = oracle.run(queries)
    if len(outcome) != len(queries):
        raise ValueError(f"oracle returned {len(outcome)} results for {len(queries)} queries")
    tries = np.ones(len(queries), dtype=int)
    y, ok, error, cost = (np.array(a, copy=True) for a in outcome)
    for attempt in range(2, retries + 2):
        again = np.flatnonzero(~ok)
        if len(again) == 0:
            break
        redo = oracle.run(queries[again])
        y[again], ok[again], error[again] = redo.y, redo.ok, redo.error
        cost[again] += redo.cost_s
        tries[again] = attempt
    error = np.array([e if k or t == 1 else f"{e} (after {t} tries)" for e, k, t in zip(error, ok, tries)],
                     dtype=object)
    return Outcome(y, ok, error, cost)
