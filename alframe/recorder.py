"""The one owner of a run's files: its store, the store's lock, its test set and its checkpoint.

A driver opens a `Recorder` for a run directory's `run.zarr`, and everything it writes goes
through it: runs and rounds into the store, the attrs, the held-out test set (drawn once),
and the checkpoint beside the store that lets a killed run resume. Opening takes the store's
lock (`alframe.lock`), so a second writer is refused at once; closing releases it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

import alframe
from alframe.active_learner import LoopError, Runs
from alframe.atomic import write_atomically
from alframe.lock import StoreLock
from alframe.metrics import higher_is_better
from alframe.dispatch import run_batch, run_together
from alframe.oracle import Oracle, Outcome, OutputSpec, concat_outcomes
from alframe.space import Space
from alframe.store import RunStore, StoreDamagedError, StoreMismatchError, output_description


def config_digest(identity: Mapping[str, Any]) -> str:
    """A short digest of what identifies a run (its config and loop settings)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def metric_directions(metrics: Mapping[str, Any], declared: tuple[str, ...] = ()) -> list[str]:
    """The names in `metrics` (one round's) that are better higher: by
    `alframe.metrics.higher_is_better`, or `declared` so by whoever computed them."""
    return [name for name in metrics if higher_is_better(name) or name in declared]


def _test_chunks(size: int) -> int:
    """Runs per `oracle.run` call while drawing a test set of `size`: about 50 calls, so its
    progress shows from the start."""
    return max(1, size // 50)


MIN_TEST_SUCCESS = 0.5  # a test set with fewer successful runs than this share is refused


def _run_chunk(executor: Executor, oracle: Oracle, queries: np.ndarray, retries: int) -> Outcome:
    """A chunk of test queries (n, dim) as one task on the executor (one vectorised run); if
    that task fails as a whole (a run that kills its worker or hangs past the timeout), its
    queries again one task each, so that only the bad runs fail."""
    try:
        outcome = executor.submit(oracle.run, queries).result()
        if len(outcome) == len(queries):
            return outcome
    except Exception:  # noqa: BLE001 - the executor's own failure types (lost worker, timeout, remote error)
        pass
    return run_batch(executor, oracle, queries, retries=retries)


def draw_test_set(oracle: Oracle, size: int, seed: int,
                  given: tuple[np.ndarray, np.ndarray] | None = None, *,
                  progress: bool = False, label: str = "test set", executor: Executor | None = None,
                  retries: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set: `given` (checked and made 2-D), or `size` uniform draws run on the
    oracle with `seed`, failed runs dropped. Returns x (m, dim), y (m, n_outputs).

    The inputs are drawn at once, so the set depends only on `seed` and `size`; they are run
    in chunks, with a progress bar when `progress`: each chunk as one vectorised call, on
    `executor` when one is given (with its timeouts and lost-worker handling; a chunk that
    fails as a whole is run again one task a query, with `retries`). Fewer than half the runs succeeding is refused (a broken simulator
    would otherwise be scored on a few lucky points).
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
            queries = x[start : start + chunk]
            if executor is None:
                try:
                    outcomes.append(run_together(oracle, queries, retries=retries))
                except ValueError as exc:
                    raise LoopError(f"test set: {exc}") from None
            else:
                outcomes.append(_run_chunk(executor, oracle, queries, retries))
            bar.update(len(outcomes[-1]))
    outcome = concat_outcomes(outcomes, oracle.outputs.dim)
    n_ok = int(outcome.ok.sum())
    if n_ok < MIN_TEST_SUCCESS * len(x):
        first = next((e for e in outcome.error if e), "")
        raise LoopError(f"only {n_ok} of {len(x)} test-set runs succeeded (first error: {first!r}); "
                        "fix the simulator or give a test_set")
    return x[outcome.ok], outcome.y[outcome.ok]


class Recorder:
    """A run's store, opened for writing under its lock.

    Args:
        path: the zarr store (a directory; created on the first write).
        space, outputs: what the runs look like.
        identity: what identifies the run (config and loop settings); its digest is stored,
            and reopening with another identity is refused (`StoreMismatchError`).
        attrs: further attrs for a new store (the config JSON, seed, budget, ...).
        lock: the store's lock, when the caller holds it already (else it is taken here).

    Raises `alframe.lock.StoreLockedError` when another process writes the store.
    """

    def __init__(self, path: str | Path, *, space: Space, outputs: OutputSpec, identity: Mapping[str, Any],
                 attrs: Mapping[str, Any], lock: StoreLock | None = None):
        self.path = Path(path)
        self.space, self.outputs = space, outputs
        self.digest = config_digest(identity)
        self.lock = (lock or StoreLock(self.path)).acquire()
        try:
            self.store, self.data = self._open(attrs)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, attrs: Mapping[str, Any]) -> tuple[RunStore, xr.Dataset]:
        outputs = self.outputs
        try:
            store = RunStore.open(
                self.path, input_names=self.space.names, output_names=outputs.names, **output_description(outputs),
                attrs={"config_digest": self.digest, "alframe_version": alframe.__version__, "task": outputs.task,
                       **attrs, **({"classes": list(outputs.classes)} if outputs.classes else {})})
            return store, store.read().load()  # a damaged chunk is found here, not halfway through a run
        except (StoreMismatchError, StoreDamagedError):
            raise
        except Exception as exc:  # noqa: BLE001 - zarr and its codecs raise many kinds
            raise StoreDamagedError(f"{self.path} cannot be read back ({type(exc).__name__}: {exc}); restore it "
                                    "from a copy, or start again in a new directory") from None

    # -- reading --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the run has ended (its stop reason is recorded)."""
        return "stop_reason" in self.data.attrs

    def runs(self) -> Runs:
        """The runs recorded so far."""
        return Runs.from_store(self.data, self.space.dim, self.outputs.dim)

    @property
    def n_rounds(self) -> int:
        return self.data.sizes.get("round", 0)

    def recorded_charges(self) -> float:
        """The strategy's charges over the recorded rounds, in simulations."""
        return float(self.data["selection_cost"].values.sum()) if "selection_cost" in self.data else 0.0

    def test_set(self, draw: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """The stored test set; on a new run drawn by `draw()` and stored first."""
        if "x_test" in self.data:
            return self.data["x_test"].values, self.data["y_test"].values
        x_test, y_test = draw()
        self.store.write_test_set(x_test, y_test)
        return x_test, y_test

    # -- checkpoints ----------------------------------------------------------------------

    def _checkpoint_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{name}.pkl")

    def load(self, name: str = "resume", *, with_store: bool = True) -> Any:
        """The checkpoint `name` saved for this run, or None: none saved, or (`with_store`)
        one left beside a store that no longer exists."""
        path = self._checkpoint_path(name)
        if (with_store and not self.store.exists) or not path.exists():
            return None
        try:
            with open(path, "rb") as f:
                saved_digest, obj = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as exc:
            raise LoopError(f"checkpoint {path} is damaged ({type(exc).__name__}: {exc}); delete it to resume "
                            "from the store (the round it held is then chosen again)") from None
        if saved_digest != self.digest:
            raise LoopError(f"checkpoint {path} belongs to a different config; remove it or use a new directory")
        return obj

    def save(self, obj: Any, name: str = "resume", *, durable: bool = True) -> None:
        """Replace the checkpoint `name` with `obj`, atomically."""
        write_atomically(self._checkpoint_path(name), pickle.dumps((self.digest, obj)), durable=durable)

    def drop(self, name: str = "resume") -> None:
        self._checkpoint_path(name).unlink(missing_ok=True)

    # -- writing --------------------------------------------------------------------------

    def record_runs(self, x: np.ndarray, outcome, *, round_index) -> None:
        """Append finished runs (one commit)."""
        self.store.append_runs(x, outcome, round_index=round_index)

    def record_round(self, metrics: Mapping[str, Any], declared: tuple[str, ...] = ()) -> None:
        """Append a round's metrics, and name the better-higher ones in the attr `higher_is_better`."""
        names = json.dumps(metric_directions(metrics, declared))
        if self.store.attrs.get("higher_is_better") != names:
            self.store.update_attrs(higher_is_better=names)
        self.store.append_round(metrics)

    def finish(self, stop_reason: str, *checkpoints: str) -> xr.Dataset:
        """Record why the run ended, drop its checkpoints; the finished store."""
        self.store.update_attrs(stop_reason=stop_reason)
        for name in checkpoints or ("resume",):
            self.drop(name)
        return self.store.read()

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
