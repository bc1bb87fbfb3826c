"""The one owner of a run's files: its store, the store's lock, its test set and its checkpoint.

A driver opens a `Recorder` for a run directory's `run.zarr`, and everything it writes goes
through it: runs and rounds into the store, the attrs, the held-out test set (drawn once),
and the checkpoint beside the store that lets a killed run resume. Opening takes the store's
lock (`alframe.lock`), so a second writer is refused at once; closing releases it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

import alframe
from alframe.active_learner import LoopError, Runs
from alframe.atomic import write_atomically
from alframe.lock import StoreLock
from alframe.metrics import higher_is_better, varies
from alframe.dispatch import run_batch, run_together
from alframe.oracle import Oracle, Outcome, OutputSpec, concat_outcomes
from alframe.space import Space, declaration
from alframe.store import (GROWING_DIMS, RepairRefused, RunStore, StoreDamagedError, StoreMismatchError,
                           StoreSurvey, commit_repair, finish_repair, naming, output_description, repair_hint,
                           repair_staging, stage_store, survey_store)


def config_digest(identity: Mapping[str, Any]) -> str:
    """A short digest of what identifies a run (its config and loop settings)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def version_attrs(simulator_version: str | None) -> dict[str, str]:
    """The store attrs naming the simulator's code (`RunStore.open` refuses to add runs of
    another version to a store); none when it is unknown."""
    return {} if simulator_version is None else {"simulator_version": simulator_version}


def metric_directions(metrics: Mapping[str, Any], declared: tuple[str, ...] = ()) -> list[str]:
    """The names in `metrics` (one round's) that are better higher: by
    `alframe.metrics.higher_is_better`, or `declared` so by whoever computed them."""
    return [name for name in metrics if higher_is_better(name) or name in declared]


def _test_chunks(size: int) -> int:
    """Runs per `oracle.run` call while drawing a test set of `size`: about 50 calls, so its
    progress shows from the start."""
    return max(1, size // 50)


MIN_TEST_SUCCESS = 0.5  # a test set with fewer successful runs than this share is refused


class FinishedTestRuns:
    """The test-set runs finished so far, kept in a file beside a run's store while its test set
    is simulated, so that a run stopped then simulates only the rest when it resumes. The file
    names the run's config digest; one of another config is not read."""

    def __init__(self, path: str | Path, digest: str):
        self.path, self.digest = Path(path), digest

    def load(self) -> list[Outcome]:
        """The outcomes of the first chunks of the test set, in order; [] when none are kept."""
        try:
            digest, outcomes = pickle.loads(self.path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            return []
        return list(outcomes) if digest == self.digest else []

    def keep(self, outcomes: list[Outcome]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, pickle.dumps((self.digest, outcomes)), durable=False)

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)


def draw_test_set(oracle: Oracle, size: int, seed: int,
                  given: tuple[np.ndarray, np.ndarray] | None = None, *,
                  progress: bool = False, label: str = "test set", executor: Executor | None = None,
                  retries: int = 0, kept: FinishedTestRuns | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set: `given` (checked and made 2-D), or `size` uniform draws run on the
    oracle with `seed`, failed runs dropped. Returns x (m, dim), y (m, n_outputs). With `kept`,
    the runs finished so far are kept after each chunk, and those kept before are not run again.

    The inputs are drawn at once, so the set depends only on `seed` and `size`; they are run
    in chunks, with a progress bar when `progress`: each chunk as one vectorised call, or on
    `executor` when one is given, each run a task of its own (so that the workers share the
    chunk and its timeout and lost-worker handling apply to every run alone, with `retries`).
    Fewer than half the runs succeeding is refused (a broken simulator would otherwise be
    scored on a few lucky points).
    """
    if given is not None:
        return _said_if_constant(oracle, *_checked_test_set(oracle, *given, label=label), label=label)
    exclusive = getattr(oracle, "exclusive", None)  # a shared cache: one process simulates it, the others reuse it
    # Named by what is simulated, not by the job asking (its label names its strategy and seed):
    # every job of a sweep draws this same set.
    shared = f"test set of {size} (seed {seed})"
    with exclusive(shared) if exclusive is not None else contextlib.nullcontext():
        return _simulated_test_set(oracle, size, seed, progress=progress, label=label, executor=executor,
                                   retries=retries, kept=kept)


def _simulated_test_set(oracle: Oracle, size: int, seed: int, *, progress: bool, label: str,
                        executor: Executor | None, retries: int,
                        kept: FinishedTestRuns | None) -> tuple[np.ndarray, np.ndarray]:
    """`draw_test_set` without a given set: `size` uniform draws with `seed`, run on the oracle."""
    x = oracle.space.draw(size, seed=seed, method="uniform")
    # On workers, a chunk is spread over them: at least 32 runs, so that many workers all have one.
    chunk = _test_chunks(len(x)) if executor is None else max(_test_chunks(len(x)), 32)
    outcomes = [] if kept is None else kept.load()
    done = sum(len(o) for o in outcomes)
    if done > len(x):
        outcomes, done = [], 0
    if done:
        tqdm.write(f"{label}: resuming at {done} of {len(x)} runs", file=sys.stderr)
    holds = getattr(oracle, "holds", None)  # a cache: a set read back, not run, gets a line, not a bar
    if progress and holds is not None and done < len(x) and all(holds(q) for q in x[done:]):
        tqdm.write(f"{label}: read back from {getattr(oracle, 'directory', 'the cache')}, where all {len(x)} runs "
                   "were simulated before", file=sys.stderr)
        progress = False
    with tqdm(total=len(x), initial=done, desc=label, unit="sim", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(done, len(x), chunk):
            queries = x[start : start + chunk]
            if executor is None:
                try:
                    outcomes.append(run_together(oracle, queries, retries=retries))
                except ValueError as exc:
                    raise LoopError(f"test set: {exc}") from None
            else:
                outcomes.append(run_batch(executor, oracle, queries, retries=retries))
            if kept is not None:
                kept.keep(outcomes)
            bar.update(len(outcomes[-1]))
    outcome = concat_outcomes(outcomes, oracle.outputs.dim)
    n_ok = int(outcome.ok.sum())
    first = next((e for e in outcome.error if e), "")
    if n_ok < MIN_TEST_SUCCESS * len(x):
        raise LoopError(f"only {n_ok} of {len(x)} test-set runs succeeded (first error: {first!r}); "
                        "fix the simulator or give a test_set")
    if n_ok < len(x):
        tqdm.write(f"{label}: {len(x) - n_ok} of {len(x)} runs failed and are left out (first error: {first!r}); "
                   "every test error is measured where the simulator succeeds", file=sys.stderr)
    return _said_if_constant(oracle, x[outcome.ok], outcome.y[outcome.ok], label=label)


def _said_if_constant(oracle: Oracle, x: np.ndarray, y: np.ndarray, *, label: str) -> tuple[np.ndarray, np.ndarray]:
    """x, y unchanged; a line on stderr when no output of a regression varies over the set (a
    simulator that ignores its inputs, or a setting that holds it still): every model then
    scores an error of 0 and R^2 has nothing to measure."""
    if oracle.outputs.task == "regression" and len(y) > 1 and not varies(np.reshape(y, (len(y), -1))).any():
        first = np.ravel(y[0])
        shown = ", ".join(f"{v:.6g}" for v in first[:3]) + (", ..." if first.size > 3 else "")
        tqdm.write(f"{label}: every output is the same at all {len(y)} points ({shown}): "
                   "the simulator does not depend on its inputs here, so any model scores an error of 0; "
                   "check its settings and bounds", file=sys.stderr)
    return x, y


def _checked_test_set(oracle: Oracle, x, y, *, label: str) -> tuple[np.ndarray, np.ndarray]:
    """A given test set x (n, dim), y (n,) or (n, n_outputs), refused in one line where it cannot
    be the simulator's: wrong shapes, inputs outside its space; rows whose outputs are not
    finite are left out, as failed runs of a drawn one are."""
    x, y = np.asarray(x), np.asarray(y)
    y = y[:, None] if y.ndim == 1 else y
    n_outputs = oracle.outputs.dim
    if len(x) != len(y) or x.ndim != 2 or x.shape[1] != oracle.space.dim or y.ndim != 2 or y.shape[1] != n_outputs:
        raise LoopError(f"test_set must be x (n, {oracle.space.dim}) and y (n, {n_outputs}) for inputs "
                        f"{list(oracle.space.names)} and outputs {list(oracle.outputs.names)}, "
                        f"got x {x.shape} and y {y.shape}")
    contains = getattr(oracle.space, "contains", None)
    outside = ~contains(x.astype(np.float64)) if contains is not None else np.zeros(len(x), bool)
    if outside.any():
        first = int(np.argmax(outside))
        raise LoopError(f"test_set: {int(outside.sum())} of {len(x)} inputs lie outside the simulator's space "
                        f"(the first, row {first}: {x[first].tolist()}); a model is judged where it learns")
    finite = np.all(np.isfinite(y.astype(np.float64)), axis=1)
    if finite.sum() < MIN_TEST_SUCCESS * len(x):
        raise LoopError(f"test_set: only {int(finite.sum())} of {len(x)} rows have finite outputs")
    if not finite.all():
        tqdm.write(f"{label}: {len(x) - int(finite.sum())} of {len(x)} given rows have outputs that are not finite "
                   "and are left out", file=sys.stderr)
    return x[finite], y[finite]


class CheckpointDamaged(ValueError):
    """A checkpoint file that cannot be read back; the message says why."""


def checkpoint_path(store: Path, name: str) -> Path:
    """Where the checkpoint `name` of the store at `store` lives."""
    return store.with_name(f"{store.name}.{name}.pkl")


def previous_path(checkpoint: Path) -> Path:
    """Where the version a checkpoint replaced is kept."""
    return checkpoint.with_name(checkpoint.name + ".prev")


def read_checkpoint(path: Path) -> tuple[dict[str, Any] | None, tuple[str, Any]]:
    """(header, (config digest, object)) of a checkpoint file: the pickled pair, then the
    header; the header is None for one written before checkpoints carried it. Raises
    `CheckpointDamaged`."""
    try:
        with open(path, "rb") as f:
            body = pickle.load(f)
            try:
                header = pickle.load(f)
            except EOFError:
                header = None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises almost anything
        raise CheckpointDamaged(f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(body, tuple) and len(body) == 2) or not (header is None or isinstance(header, dict)):
        raise CheckpointDamaged("not a checkpoint")
    return header, body


def keep_previous(path: Path) -> None:
    """Keep the checkpoint at `path` as its previous version (a hard link: no copy is made)."""
    previous = previous_path(path)
    scratch = previous.with_name(f".{previous.name}.{os.getpid()}.tmp")
    try:
        scratch.unlink(missing_ok=True)
        os.link(path, scratch)
        os.replace(scratch, previous)
    except OSError:  # no hard links here, or no room for a directory entry: only the newest is kept
        scratch.unlink(missing_ok=True)


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
        self._first_saved: dict[str, dict[str, int]] = {}
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
                       **attrs, **({"classes": list(outputs.classes)} if outputs.classes else {}),
                       **({"input_space": declared} if (declared := declaration(self.space)) else {})})
            return store, store.read().load()  # a damaged chunk is found here, not halfway through a run
        except (StoreMismatchError, StoreDamagedError):
            raise
        except Exception as exc:  # noqa: BLE001 - zarr and its codecs raise many kinds
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise StoreDamagedError(f"{self.path} cannot be read back ({type(exc).__name__}: {text}); "
                                    f"{repair_hint(self.path)}") from None

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

    def say_resuming(self, label: str, n_runs: int, budget: float | None) -> None:
        """One line on stderr where the run goes on from `n_runs` runs already recorded (none when
        it starts afresh)."""
        if n_runs:
            rounds = self.n_rounds
            tqdm.write(f"{label}: resuming {self.path} at {n_runs} runs of {budget} "
                       f"({rounds} round{'s' * (rounds != 1)} recorded)", file=sys.stderr)

    def recorded_charges(self) -> float:
        """The strategy's charges over the recorded rounds, in simulations."""
        return float(self.data["selection_cost"].values.sum()) if "selection_cost" in self.data else 0.0

    def test_set(self, draw: Callable[[FinishedTestRuns], tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The stored test set; on a new run drawn by `draw(kept)` and stored first, `kept` keeping
        the test-set runs finished so far (see `draw_test_set`) until it is stored."""
        if "x_test" in self.data:
            return self.data["x_test"].values, self.data["y_test"].values
        kept = FinishedTestRuns(self.path.with_name(self.path.name + ".test_set_runs"), self.digest)
        x_test, y_test = draw(kept)
        self.store.write_test_set(x_test, y_test)
        kept.drop()
        return x_test, y_test

    # -- checkpoints ----------------------------------------------------------------------

    def _checkpoint_path(self, name: str) -> Path:
        return checkpoint_path(self.path, name)

    def load(self, name: str = "resume", *, with_store: bool = True) -> Any:
        """The checkpoint `name` saved for this run, or None: none saved, or (`with_store`)
        one left beside a store that no longer exists."""
        path = self._checkpoint_path(name)
        if (with_store and not self.store.exists) or not path.exists():
            return None
        try:
            header, (saved_digest, obj) = read_checkpoint(path)
        except CheckpointDamaged as exc:
            raise LoopError(f"checkpoint {path} is damaged ({exc}); {repair_hint(self.path)}") from None
        if header is not None:
            self._first_saved.setdefault(name, header["first_saved_at"])
        if saved_digest != self.digest:
            raise LoopError(f"checkpoint {path} belongs to a different config; remove it or use a new directory")
        return obj

    def save(self, obj: Any, name: str = "resume", *, durable: bool = True) -> None:
        """Replace the checkpoint `name` with `obj`, atomically, keeping the one it replaces
        (a repair goes back to it should this one be damaged). Each checkpoint notes the store's
        sizes when it was saved (it is valid from there on) and when its first version was."""
        path = self._checkpoint_path(name)
        saved_at = {dim: self.store.sizes.get(dim, 0) for dim in GROWING_DIMS}
        if name not in self._first_saved:  # not loaded first: read it back here
            try:
                header = read_checkpoint(path)[0] if path.exists() else None
                self._first_saved[name] = saved_at if header is None else header["first_saved_at"]
            except (CheckpointDamaged, KeyError, TypeError):
                self._first_saved[name] = saved_at
        header = {"saved_at": saved_at, "first_saved_at": self._first_saved[name]}
        if path.exists():
            keep_previous(path)
        with naming(path):
            # The pair first, so that a plain `pickle.load` of the file gives (digest, object).
            write_atomically(path, pickle.dumps((self.digest, obj)) + pickle.dumps(header), durable=durable)

    def drop(self, name: str = "resume") -> None:
        self._checkpoint_path(name).unlink(missing_ok=True)
        previous_path(self._checkpoint_path(name)).unlink(missing_ok=True)

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


# -- repair -------------------------------------------------------------------------------


class _Version(NamedTuple):
    """One version of a checkpoint file: its header (None when written without one) and
    whether it reads back whole."""

    header: dict[str, Any] | None
    readable: bool


def _version(path: Path) -> _Version | None:
    if not path.exists():
        return None
    try:
        return _Version(read_checkpoint(path)[0], True)
    except CheckpointDamaged:
        return _Version(None, False)


def checkpoint_versions(store: Path) -> dict[str, tuple[_Version | None, _Version | None]]:
    """Every checkpoint beside the store at `store`: (its current version, its previous one)."""
    names = set()
    for suffix in (".pkl", ".pkl.prev"):
        for path in store.parent.glob(f"{glob.escape(store.name)}.*{suffix}"):
            names.add(path.name[len(store.name) + 1 : -len(suffix)])
    return {name: (_version(checkpoint_path(store, name)), _version(previous_path(checkpoint_path(store, name))))
            for name in sorted(names)}


def _at_or_before(sizes: Mapping[str, int], bound: Mapping[str, int]) -> bool:
    return all(sizes.get(d, 0) <= bound.get(d, 0) for d in GROWING_DIMS)


def resume_point(survey: StoreSurvey, versions: Mapping[str, tuple[_Version | None, _Version | None]]
                 ) -> tuple[dict[str, int], dict[str, str]]:
    """The sizes (along `sample` and `round`) to cut the store back to, and for each checkpoint
    whether to keep its "current" version, go back to its "previous" one, or "drop" it.

    A checkpoint is valid from the store state it was saved at onwards, its previous version
    exactly at its own saved state, and the state at a checkpoint's first save is reached
    without it. So the store keeps all it can read when each checkpoint's current version fits
    that, and is otherwise cut back to where the version kept (or none) fits; without any
    record of that, to its initial design.
    """
    committed = {d: survey.committed.get(d, 0) for d in GROWING_DIMS}
    target = {d: survey.readable.get(d, 0) for d in GROWING_DIMS}
    design = {"sample": min(survey.design_runs, target["sample"]), "round": 0}
    if not versions and target != committed:
        target = design  # a finished run keeps no checkpoint: only its design is reached without one
    choice: dict[str, str] = {}
    while True:
        before = dict(target)
        for name, (current, previous) in versions.items():
            if current is not None and current.readable and (
                    target == committed if current.header is None else _at_or_before(current.header["saved_at"], target)):
                choice[name] = "current"
            elif previous is not None and previous.readable and previous.header is not None \
                    and _at_or_before(previous.header["saved_at"], target):
                choice[name] = "previous"
                target = {d: previous.header["saved_at"].get(d, 0) for d in GROWING_DIMS}
            else:
                choice[name] = "drop"
                first = next((v.header["first_saved_at"] for v in (current, previous)
                              if v is not None and v.readable and v.header is not None), design)
                target = {d: min(target[d], first.get(d, 0)) for d in GROWING_DIMS}
        if target == before:
            return target, choice


def repair_run(store: str | Path) -> str:
    """Repair the run whose store is at `store`: cut the store back to the last state it can
    read whole and its checkpoints fit, and drop (or go back from) unreadable checkpoints, so
    that the same command resumes it. Atomic: killed at any moment, the run directory holds the
    old files or the repaired ones. The store replaced is kept at `<store>.damaged`.

    Returns a one-line summary; raises `alframe.store.RepairRefused` when nothing can be kept
    and `alframe.lock.StoreLockedError` while another process writes the store.
    """
    store = Path(store)
    with StoreLock(store):
        finish_repair(store)
        survey = survey_store(store)
        versions = checkpoint_versions(store)
        target, choice = resume_point(survey, versions)
        committed = {d: survey.committed.get(d, 0) for d in GROWING_DIMS}
        cut = target != committed
        found = list(survey.damage) + [f"checkpoint {name} unreadable" for name, (current, _) in versions.items()
                                       if current is not None and not current.readable]
        stale = [previous_path(checkpoint_path(store, name)).name for name, (_, previous) in versions.items()
                 if previous is not None and not previous.readable]
        if not found and not cut and not stale and all(c == "current" for c in choice.values()):
            return f"{store}: nothing to repair ({committed['sample']} runs, {committed['round']} rounds, all readable)"
        if target["sample"] == 0 and "test_sample" not in survey.readable:
            raise RepairRefused(f"{store}: nothing can be kept ({'; '.join(found) or 'no run reads back'}); "
                                "restore it from a copy, or start again in a new directory")
        replace, remove = [], list(stale)
        staging = repair_staging(store)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        if survey.damage or cut:
            attrs = {k: v for k, v in survey.attrs.items() if not (cut and k == "stop_reason")}
            sizes = {**{d: n for d, n in survey.readable.items() if d not in GROWING_DIMS},
                     **{d: n for d, n in target.items() if n > 0}}
            replace += stage_store(store, survey, sizes, attrs)
        notes = []
        for name, what in choice.items():
            current = checkpoint_path(store, name)
            if what == "previous":
                shutil.copyfile(previous_path(current), staging / current.name)
                replace.append(current.name)
                remove.append(previous_path(current).name)
                notes.append(f"checkpoint {name} went back to its previous version")
            elif what == "drop":
                remove += [current.name, previous_path(current).name]
                notes.append(f"checkpoint {name} dropped")
        commit_repair(store, replace=replace, remove=remove)
    kept = (f"kept {target['sample']} of {committed['sample']} runs and {target['round']} of {committed['round']} "
            "rounds")
    aside = f"; the old store is kept at {store.name}.damaged" if survey.damage or cut else ""
    return (f"{store}: repaired ({'; '.join(found) or 'store cut back to fit its checkpoints'}); {kept}"
            f"{''.join('; ' + n for n in notes)}{aside}; the same command resumes the run")
