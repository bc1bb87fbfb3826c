"""`alframe`: one active learning run driven from the command line, days between the steps.

    alframe ask RUN_DIR -n K [-o FILE.csv] [HYDRA_OVERRIDES...]   # the next K queries
    alframe tell RUN_DIR FILE.csv                                 # their results
    alframe status RUN_DIR [--pending [-o FILE.csv]]              # where the run stands
    alframe label RUN_DIR [--port 8000] [HYDRA_OVERRIDES...]      # a labelling page for people
    alframe label-studio export RUN_DIR -n K [-o tasks.json]      # items as Label Studio tasks
    alframe label-studio import RUN_DIR export.json               # Label Studio's annotations
    alframe repair RUN_DIR                                        # cut a damaged run back to its last good commit

The first `ask` creates the run in RUN_DIR from the overrides, composed exactly as
`python -m experiments.run` composes them (the same conf/ tree), and keeps the composed
config in RUN_DIR/config.yaml; later calls read it. Everything else lives beside the store
(RUN_DIR/run.zarr): the runs and rounds in it, and the committee and the queries asked but
not yet told in its checkpoint. Each call takes the store's lock, so two calls never write at
once, and each is crash-safe: a call killed at any moment leaves the run as it was before the
call or after it.

`ask` writes CSV `query_id,<input names>`: the initial design first, then the committee's
choices. Queries asked and not yet told are pending: a further `ask` never repeats them (and
a spread strategy keeps its distance from them). `tell` reads CSV `query_id,<output names>`
with optional `error` (non-empty: the run failed, its outputs may be blank) and `cost_s`
columns, appends every row in one commit and refits the committee; a file with any bad row
is refused whole, with the file, row and column named. With the same config and seed, and
each batch told before the next is asked, the store is the one `experiments.run` writes.

A simulator alframe cannot run is declared with `simulator=external` (input names and
bounds, output names, task); its test set is optional (`test_set` = a labelled CSV, see
`alframe.external.labelled_csv`), and without one each round records the committee's mean
disagreement (`mean_disagreement`) instead of test errors.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from alframe.active_learner import ActiveLearner, LoopError
from alframe.atomic import write_atomically
from alframe.compilation_cache import enable as enable_compilation_cache
from alframe.external import ExternalSimulator
from alframe.labels import ItemPool
from alframe.lock import StoreLock, StoreLockedError
from alframe.loop import check_target_metric, target_met, test_evaluator
from alframe.oracle import Outcome
from alframe.recorder import Recorder, draw_test_set, repair_run, version_attrs
from alframe.store import StoreDamagedError, StoreMismatchError, commit_path, differing_settings, flat_config
from alframe.strategies.stopping import disagreement
from alframe.tables import TableError, number, read_rows, write_rows
from alframe.tables import label as class_label
from experiments.run import (NOT_IDENTITY, ConfigError, build, build_learner, build_oracle, check_added_keys,
                             check_command_line,
                             learner_node, simulator_version)

CONF = Path(__file__).resolve().parents[1] / "conf"
CHECKPOINT = "detached"
REFERENCE_SIZE = 1000  # points the disagreement is averaged over when there is no test set


class CampaignError(ValueError):
    """A detached command cannot do what it was asked; the message says why."""


# -- the config -------------------------------------------------------------------------------


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """The run config for `overrides`, as `experiments.run` composes it, with `strategy_name`."""
    searched = [o for o in overrides if o.startswith("hydra.searchpath=[file://")]
    as_typed = [o for o in overrides if o not in searched]
    for entry in searched:
        as_typed += ["--config-dir", entry.removeprefix("hydra.searchpath=[file://").removesuffix("]")]
    if (problem := check_command_line(as_typed)) is not None:  # misspelt names, with the nearest ones
        raise CampaignError(problem)
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3", job_name="alframe"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
            check_added_keys(overrides, cfg.hydra.runtime.choices.keys(),
                             lambda rest: compose("config", overrides=rest))
    except HydraException as exc:
        raise CampaignError(str(exc).splitlines()[0]) from None
    strategy_name = cfg.hydra.runtime.choices.get("strategy") or "custom"
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.pop("repair", None)  # `alframe repair` does that here
        cfg.strategy_name = strategy_name
    if cfg.get("job") is not None:
        raise CampaignError("this preset trains once on a fixed data set; it has no queries to ask")
    return cfg


def run_config(run_dir: Path, overrides: Sequence[str]) -> tuple[DictConfig, bool]:
    """RUN_DIR's config, and whether it is new: composed from `overrides` on the first call
    (kept by `keep_config` once it has been built), read back after."""
    path = run_dir / "config.yaml"
    if path.exists():
        stored = OmegaConf.load(path)
        if overrides:
            try:
                asked = OmegaConf.to_container(compose_config(overrides), resolve=True)
            except CampaignError as exc:  # e.g. a user's simulator without the --config-dir that found it
                raise CampaignError(f"{run_dir} has its settings already (see {path}); overrides are needed on "
                                    f"the first call only, and these do not compose: {exc}") from None
            kept = OmegaConf.to_container(stored, resolve=True)
            if asked != kept:
                named = {o.lstrip("+~").partition("=")[0] for o in overrides}
                differ = differing_settings(*({k: v for k, v in flat_config(c).items()
                                               if any(k == n or k.startswith(n + ".") for n in named)}
                                              for c in (kept, asked)))
                differ = differ or "these overrides alone compose another config"
                raise CampaignError(f"{run_dir} was created with other settings ({differ}; see {path}); give "
                                    "overrides only on the first call, or use a new directory")
        return stored, False
    return OmegaConf.create(OmegaConf.to_container(compose_config(overrides), resolve=True)), True


def keep_config(run_dir: Path, cfg: DictConfig) -> None:
    write_atomically(run_dir / "config.yaml", OmegaConf.to_yaml(cfg).encode())


# -- one run directory ------------------------------------------------------------------------


def new_state() -> dict[str, Any]:
    """The detached checkpoint of a run nothing has been asked of."""
    return {"learner": None, "pending": {}, "next_id": 0, "design_asked": 0, "n_told": 0, "fitted_on": -1,
            "open_round": None, "round_select_s": 0.0, "round_charge": 0.0, "told": {}}


@dataclass
class Campaign:
    """A run directory opened for one command, under the store's lock."""

    run_dir: Path
    cfg: DictConfig
    oracle: Any
    recorder: Recorder
    learner: ActiveLearner
    state: dict[str, Any]

    @property
    def space(self):
        return self.oracle.space

    @property
    def outputs(self):
        return self.oracle.outputs

    def pending_points(self) -> np.ndarray:
        points = [entry["x"] for entry in self.state["pending"].values()]
        return np.array(points, dtype=np.float64).reshape(-1, self.space.dim)

    def save(self) -> None:
        self.recorder.save(self.state, CHECKPOINT)

    # -- rounds -------------------------------------------------------------------------

    def _record_open_round(self) -> None:
        metrics = self.state["open_round"]
        if metrics is None or self.recorder.n_rounds >= metrics["round"]:
            return
        record = self.learner.round_record(metrics, self.state["round_charge"], self.state["round_select_s"])
        self.recorder.record_round(record, tuple(self.cfg.get("higher_is_better") or ()))
        self.recorder.data = self.recorder.store.read()

    def finish(self, reason: str) -> None:
        self._record_open_round()
        self.recorder.finish(reason, CHECKPOINT)
        self.recorder.data = self.recorder.store.read()

    def fit_due(self) -> bool:
        """Whether a fit is due: the initial design is all in and runs were told since the last fit."""
        state = self.state
        design_pending = any(entry["round"] == 0 for entry in state["pending"].values())
        return not (state["n_told"] < min(self.cfg.n_initial, self.cfg.budget) or design_pending
                    or state["fitted_on"] == state["n_told"])

    def adopt_fit(self, committee, metrics: dict[str, Any], fitted_on: int) -> None:
        """Start the round of `committee`, fitted on the first `fitted_on` runs (recording the
        round before), and end the run if the target is met or the budget spent."""
        state, learner = self.state, self.learner
        self._record_open_round()
        learner.adopt(committee, metrics["round"])
        state.update(learner=learner.state(), open_round=metrics, fitted_on=fitted_on, round_select_s=0.0,
                     round_charge=0.0)
        declared = tuple(self.cfg.get("higher_is_better") or ())
        if target_met(metrics, self.cfg.target_metric, self.cfg.target, declared):
            self.finish(f"target {self.cfg.target_metric} {self.cfg.target} reached")
        elif learner.remaining() < 1 and not state["pending"]:
            self.finish("budget spent")

    def refit_if_due(self) -> None:
        """After runs are told: once the initial design is all in, refit on everything told."""
        if self.fit_due():
            committee, metrics = self.learner.fit()
            self.adopt_fit(committee, metrics, self.state["n_told"])

    def reconcile(self) -> None:
        """Finish a `tell` that was killed after its runs were committed: the store is the truth."""
        runs = self.learner.runs
        if len(runs) <= self.state["n_told"]:
            return
        first = self.state["n_told"]
        told = {row.tobytes(): first + i for i, row in enumerate(np.ascontiguousarray(runs.x[first:]))}
        for qid, entry in list(self.state["pending"].items()):
            row = told.get(np.asarray(entry["x"], np.float64).tobytes())
            if row is not None:
                self.state.setdefault("told", {})[qid] = row
                del self.state["pending"][qid]
        self.state["n_told"] = len(runs)
        self.refit_if_due()
        if not self.recorder.finished:
            self.save()


def runs_outside(oracle) -> bool:
    """Whether the oracle's results come from outside alframe (a declared simulator, people)."""
    return isinstance(oracle, ExternalSimulator | ItemPool)


def _evaluator(cfg: DictConfig, oracle, recorder: Recorder):
    """Test metrics when a test set exists (drawn on first use for a simulator alframe runs);
    else the committee's mean disagreement over a fixed uniform sample of the space."""
    classification = oracle.outputs.task == "classification"
    given = build(cfg, "test_set") if cfg.get("test_set") is not None else None
    if given is not None or not runs_outside(oracle):
        x_test, y_test = recorder.test_set(lambda kept: draw_test_set(oracle, cfg.test_size, cfg.test_seed, given,
                                                                      progress=cfg.progress, label="test set",
                                                                      kept=kept))
        scorer = build(cfg, "scorer") if cfg.get("scorer") is not None else None
        return test_evaluator(x_test, y_test, classification=classification, scorer=scorer,
                              higher_is_better=tuple(cfg.get("higher_is_better") or ()))
    reference = oracle.space.draw(REFERENCE_SIZE, seed=cfg.test_seed, method="uniform")
    score = "vote_entropy" if classification else "variance"

    def evaluate(committee, y_train):
        return {"mean_disagreement": disagreement(committee, reference, score=score, relative=not classification)}
    return evaluate


@contextlib.contextmanager
def open_campaign(run_dir: str | Path, overrides: Sequence[str] = (), *, create: bool = False) -> Iterator[Campaign]:
    """The run in `run_dir`, locked for the duration; created from `overrides` if `create`."""
    run_dir = Path(run_dir)
    store_path = run_dir / "run.zarr"
    made = create and not run_dir.exists()
    if create:
        run_dir.mkdir(parents=True, exist_ok=True)
    if not create and not (run_dir / "config.yaml").exists():
        if (run_dir / "run.zarr").exists():
            raise CampaignError(f"{run_dir} holds a run of `python -m experiments.run`, not an `alframe ask` campaign "
                                f"(no config.yaml); read it with alframe.store.read_run('{store_path}') or "
                                "`python -m experiments.compare` on its sweep")
        raise CampaignError(f"{run_dir} holds no run (no config.yaml); create it with `alframe ask {run_dir} -n K ...`")
    lock = StoreLock(store_path).acquire()
    try:
        cfg, new = run_config(run_dir, overrides)
        enable_compilation_cache(cfg.get("compilation_cache"))
        for name in ("budget", "batch_size", "n_initial", "test_size"):
            if not isinstance(cfg[name], int) or cfg[name] < 1:
                raise ConfigError(f"{name} must be >= 1, got {cfg[name]!r}")
        oracle = build_oracle(cfg)
        if cfg.target is not None and cfg.get("scorer") is None and not runs_outside(oracle):
            check_target_metric(cfg.target_metric, oracle.outputs.task)
        config = OmegaConf.to_container(cfg, resolve=True)
        config["learner"] = OmegaConf.to_container(learner_node(cfg, oracle.outputs))
        for name in NOT_IDENTITY:
            config.pop(name, None)
        recorder = Recorder(store_path, space=oracle.space, outputs=oracle.outputs,
                            identity={"config": config, "detached": True}, lock=lock,
                            attrs={"config": json.dumps(config, sort_keys=True, default=str), "seed": cfg.seed,
                                   "budget": cfg.budget, "batch_size": cfg.batch_size,
                                   "label": f"{cfg.strategy_name} seed={cfg.seed}",
                                   **version_attrs(simulator_version(cfg, oracle))})
        if new:  # only a config that builds is kept
            keep_config(run_dir, cfg)
        # Saved before anything else is: a run of an external simulator may have no store yet.
        state = recorder.load(CHECKPOINT, with_store=False) or new_state()
        if state["next_id"] == 0 and state["design_asked"] == 0:
            # A run repaired back to its initial design has told part of it already.
            state["design_asked"] = int((recorder.data["round_of"].values == 0).sum()) if "round_of" in recorder.data else 0
        evaluate = None if recorder.finished else _evaluator(cfg, oracle, recorder)
        learner = ActiveLearner(oracle.space, build_learner(cfg, oracle), build(cfg, "strategy"),
                                build(cfg, "candidates"), seed=cfg.seed, budget=cfg.budget, evaluate=evaluate,
                                runs=recorder.runs(), charged=recorder.recorded_charges(),
                                charging="selection_cost" in recorder.data)
        if state["learner"] is not None:
            learner.restore(state["learner"])
        campaign = Campaign(run_dir, cfg, oracle, recorder, learner, state)
        if not recorder.finished:
            campaign.reconcile()
        yield campaign
    finally:
        lock.release()
        if made and [p.name for p in run_dir.iterdir()] == [lock.path.name]:  # refused before anything was kept
            lock.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()


# -- the commands -----------------------------------------------------------------------------


def ask_queries(campaign: Campaign, n: int) -> tuple[list[list], str]:
    """Up to n new queries of an open campaign, recorded as pending: (rows [query_id, *inputs],
    a one-line summary). No rows when the run has ended or waits for results."""
    state, learner, cfg = campaign.state, campaign.learner, campaign.cfg
    if campaign.recorder.finished:
        return [], f"the run has ended ({campaign.recorder.data.attrs['stop_reason']}); nothing to ask"
    start = time.perf_counter()
    n_initial = min(cfg.n_initial, cfg.budget)
    if state["design_asked"] < n_initial:
        design = campaign.space.draw(n_initial, seed=cfg.seed, method=cfg.initial_method, offset=0)
        points = design[state["design_asked"]: state["design_asked"] + n]
        state["design_asked"] += len(points)
        round_of, note = 0, "from the initial design"
    elif state["fitted_on"] < 0:
        return [], (f"waiting for the initial design: {len(state['pending'])} queries pending; "
                    "tell their results first")
    else:
        pending = campaign.pending_points()
        # This process ends before the next tell: work started for later would be lost.
        selection = learner.ask(n, pending=pending if len(pending) else None, background=False)
        state["round_select_s"] += time.perf_counter() - start
        state["round_charge"] += selection.cost or 0.0
        state["learner"] = learner.state()
        points, round_of = selection.points, learner.round_index
        note = f"chosen by round {round_of}'s committee"
        if len(points) == 0:
            if not state["pending"]:
                campaign.finish(selection.stop_reason or "budget spent")
                return [], f"the run has ended ({selection.stop_reason or 'budget spent'})"
            campaign.save()
            return [], f"nothing to ask ({selection.stop_reason}); {len(state['pending'])} queries still pending"
    first = state["next_id"]
    for offset, point in enumerate(points):
        state["pending"][first + offset] = {"x": [float(v) for v in point], "round": int(round_of)}
    state["next_id"] = first + len(points)
    campaign.save()
    rows = [[first + i, *(float(v) for v in point)] for i, point in enumerate(points)]
    ids = f"id {first}" if len(rows) == 1 else f"ids {first}-{first + len(rows) - 1}"
    summary = (f"asked {len(rows)} queries ({ids}) {note}; {len(state['pending'])} pending, "
               f"budget left {learner.remaining() - len(state['pending']):g}")
    return rows, summary


EXIT_ENDED = 3
"""`alframe ask`'s exit status when the run has ended: nothing will be asked again."""
EXIT_WAITING = 4
"""`alframe ask`'s exit status when nothing can be asked until pending results are told."""


def ask(run_dir: str | Path, n: int, overrides: Sequence[str] = ()) -> tuple[list[str], list[list], str, int]:
    """Ask for up to n queries: (header, rows, a one-line summary, exit status). Rows are
    [query_id, *inputs]; none when the run has ended (`EXIT_ENDED`) or waits for results
    (`EXIT_WAITING`); the status is 0 when there are rows."""
    if n < 1:
        raise CampaignError(f"-n must be >= 1, got {n}")
    with open_campaign(run_dir, overrides, create=True) as campaign:
        rows, summary = ask_queries(campaign, n)
        ask_status = 0 if rows else EXIT_ENDED if campaign.recorder.finished else EXIT_WAITING
        return ["query_id", *campaign.space.names], rows, summary, ask_status


def parse_results(path: str | Path, campaign: Campaign) -> tuple[list[int], np.ndarray, Outcome, int]:
    """The told rows of a results CSV, every cell checked: (ids, points (k, dim), outcome, repeats),
    leaving out the `repeats` rows that repeat, result for result, a query told before (a
    `tell` run again after it was killed, or twice by a script)."""
    header, rows = read_rows(path)
    outputs = campaign.outputs
    for name in ("query_id", *outputs.names):
        if name not in header:
            raise TableError(f"{path}: no column {name!r} (the header has {header})")
    if not rows:
        raise TableError(f"{path}: no rows after the header")
    readable = ["query_id", *outputs.names, "error", "cost_s", *campaign.space.names]
    unknown = [name for name in header if name not in readable]
    if unknown:  # a misspelt 'error' column would otherwise tell a failed run as a success
        near = difflib.get_close_matches(unknown[0], readable, n=1, cutoff=0.6)
        raise TableError(f"{path}: column {unknown[0]!r} is not one tell reads"
                         f"{f' (did you mean {near[0]!r}?)' if near else ''}; it reads {', '.join(readable)}")
    column = {name: header.index(name) for name in header}
    pending, told, seen = campaign.state["pending"], campaign.state.get("told", {}), {}
    ids, ys, oks, errors, costs = [], [], [], [], []
    repeats = 0
    for number_, row in enumerate(rows, start=2):
        cell = row[column["query_id"]].strip()
        try:
            qid = int(cell)
        except ValueError:
            raise TableError(f"{path}: row {number_}, column 'query_id': {cell!r} is not an integer") from None
        if qid in seen:
            raise TableError(f"{path}: row {number_}, column 'query_id': {qid} is told twice (also row {seen[qid]})")
        if qid not in pending and qid not in told:
            why = "was told already" if 0 <= qid < campaign.state["next_id"] else "was never asked"
            raise TableError(f"{path}: row {number_}, column 'query_id': query {qid} {why}")
        seen[qid] = number_
        error = row[column["error"]].strip() if "error" in column else ""
        if error:
            y = [np.nan] * outputs.dim
        elif outputs.task == "classification":
            name = outputs.names[0]
            y = [float(class_label(path, number_, name, row[column[name]], outputs.classes))]
        else:
            try:
                y = [number(path, number_, name, row[column[name]]) for name in outputs.names]
            except TableError as exc:
                raise TableError(f"{exc}; a run that failed is told with its reason in an 'error' column "
                                 "(its outputs may be blank)") from None
        cost = number(path, number_, "cost_s", row[column["cost_s"]]) if "cost_s" in column else np.nan
        if cost < 0:
            raise TableError(f"{path}: row {number_}, column 'cost_s': {cost:g} is negative")
        if qid not in pending:
            runs, row_of = campaign.learner.runs, told[qid]
            same = bool(runs.ok[row_of]) == (not error) and (
                bool(error) or np.allclose(runs.y[row_of], y, rtol=1e-12, atol=0.0))
            if not same:
                raise TableError(f"{path}: row {number_}, column 'query_id': query {qid} was told already, "
                                 "with other results")
            repeats += 1
            continue
        ids.append(qid)
        ys.append(y)
        oks.append(not error)
        errors.append(error)
        costs.append(cost)
    points = np.array([pending[qid]["x"] for qid in ids], dtype=np.float64).reshape(len(ids), campaign.space.dim)
    outcome = Outcome(np.array(ys, dtype=np.float64).reshape(len(ids), outputs.dim), np.array(oks, bool),
                      np.array(errors, dtype=object), np.array(costs, dtype=np.float64))
    return ids, points, outcome, repeats


def tell_outcome(campaign: Campaign, ids: Sequence[int], points: np.ndarray, outcome: Outcome) -> None:
    """Record the results of pending queries `ids` (points (k, dim)) in one commit, all rows or
    none, and hand them to the learner; the caller refits and saves."""
    state = campaign.state
    rounds = np.array([state["pending"][qid]["round"] for qid in ids])
    campaign.recorder.record_runs(points, outcome, round_index=rounds)
    first = len(campaign.learner.runs)
    campaign.learner.tell(points, outcome)
    for i, qid in enumerate(ids):
        del state["pending"][qid]
        state.setdefault("told", {})[qid] = first + i
    state["n_told"] = len(campaign.learner.runs)


def tell(run_dir: str | Path, path: str | Path) -> str:
    """Record the results in `path` and refit; a one-line summary."""
    with open_campaign(run_dir) as campaign:
        ids, points, outcome, repeats = parse_results(path, campaign)
        again = f"{repeats} row{'s' if repeats != 1 else ''} told already with the same results, left as they were"
        if not ids:
            return f"nothing new: {again}; " + status_line(campaign)
        if campaign.recorder.finished:
            raise CampaignError(f"{run_dir}: the run has ended ({campaign.recorder.data.attrs['stop_reason']})")
        tell_outcome(campaign, ids, points, outcome)
        campaign.refit_if_due()
        if not campaign.recorder.finished:
            campaign.save()
        failed = int((~outcome.ok).sum())
        summary = f"told {len(ids)} results" + (f" ({failed} failed)" if failed else "") + (
            f", {again}" if repeats else "")
        return summary + "; " + status_line(campaign)


def status_line(campaign: Campaign) -> str:
    """Runs, pending, rounds, the latest metrics and the stop state, in one line."""
    runs, state, data = campaign.learner.runs, campaign.state, campaign.recorder.data
    metrics = state["open_round"] or ({name: data[name].values[-1].item() for name in data.data_vars
                                       if data[name].dims == ("round",) and data[name].dtype.kind in "biuf"}
                                      if "round" in data.dims else {})
    shown = [f"{k} {metrics[k]:.4g}" for k in ("mse", "r2", "f1", "accuracy", "mean_disagreement")
             if isinstance(metrics.get(k), float | int)]
    parts = [f"{len(runs)} runs ({int((~runs.ok).sum())} failed)", f"{len(state['pending'])} pending",
             f"round {max(campaign.learner.round_index, campaign.recorder.n_rounds)}", *shown]
    if campaign.recorder.finished:
        parts.append(f"ended: {campaign.recorder.data.attrs['stop_reason']}")
    else:
        parts.append(f"budget left {campaign.learner.remaining() - len(state['pending']):g} of {campaign.cfg.budget}")
    return ", ".join(parts)


def status(run_dir: str | Path) -> tuple[str, list[str], list[list]]:
    """(summary line, header, pending rows [query_id, *inputs])."""
    with open_campaign(run_dir) as campaign:
        header = ["query_id", *campaign.space.names]
        rows = [[qid, *entry["x"]] for qid, entry in sorted(campaign.state["pending"].items())]
        return f"{run_dir}: " + status_line(campaign), header, rows


def repair(run_dir: str | Path) -> str:
    """Repair RUN_DIR's store and checkpoints (see `alframe.recorder.repair_run`); a one-line summary."""
    store = Path(run_dir) / "run.zarr"
    if not (store.exists() or commit_path(store).exists()):
        raise CampaignError(f"{run_dir} holds no run store (no run.zarr); nothing to repair")
    return repair_run(store)


# -- the command line -------------------------------------------------------------------------


def _emit(header: list[str], rows: list[list], out: str | None) -> None:
    buffer = io.StringIO()
    write_rows(header, rows, buffer)
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        write_atomically(out, buffer.getvalue().encode(), durable=False)


CONFIG_DIR_HELP = ("a directory of your own config groups (simulator/NAME.yaml, ...) beside alframe's, "
                   "on the first call only")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="alframe", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    a = commands.add_parser("ask", help="write the next queries as CSV",
                            epilog=f"exit status: 0 queries written; {EXIT_ENDED} the run has ended; "
                                   f"{EXIT_WAITING} nothing to ask until pending results are told; 2 an error")
    a.add_argument("run_dir")
    a.add_argument("-n", type=int, required=True, help="queries to ask")
    a.add_argument("-o", "--out", help="CSV file to write (default: stdout)")
    a.add_argument("--config-dir", default=None, help=CONFIG_DIR_HELP)
    a.add_argument("overrides", nargs="*", help="Hydra overrides, on the first call only")
    t = commands.add_parser("tell", help="record results from a CSV and refit")
    t.add_argument("run_dir")
    t.add_argument("results")
    s = commands.add_parser("status", help="where the run stands")
    s.add_argument("run_dir")
    s.add_argument("--pending", action="store_true", help="also write the pending queries as CSV")
    s.add_argument("-o", "--out", help="with --pending: CSV file to write (default: stdout)")
    r = commands.add_parser("repair", help="cut a damaged run directory back to its last good commit")
    r.add_argument("run_dir")
    lab = commands.add_parser("label", help="serve a labelling page for a pool labelled by people")
    lab.add_argument("run_dir")
    lab.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    lab.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    lab.add_argument("--lease", type=float, default=300.0, help="seconds an item handed out is held for its labeller")
    lab.add_argument("--config-dir", default=None, help=CONFIG_DIR_HELP)
    lab.add_argument("overrides", nargs="*", help="Hydra overrides, on the first call only")
    studio = commands.add_parser("label-studio", help="hand items to Label Studio and take its annotations back")
    studio_commands = studio.add_subparsers(dest="studio_command", required=True)
    out = studio_commands.add_parser("export", help="ask for items and write them as Label Studio tasks")
    out.add_argument("run_dir")
    out.add_argument("-n", type=int, required=True, help="items to ask")
    out.add_argument("-o", "--out", default="tasks.json",
                     help="tasks JSON to write; labeling_config.xml is written beside it (default: tasks.json)")
    out.add_argument("--image-prefix", default=None,
                     help="put before each picture's absolute path, without its leading slash "
                          "(default: /data/local-files/?d=, Label Studio's local-file storage)")
    out.add_argument("--config-dir", default=None, help=CONFIG_DIR_HELP)
    out.add_argument("overrides", nargs="*", help="Hydra overrides, on the first call only")
    back = studio_commands.add_parser("import", help="tell the annotations of a Label Studio JSON or JSON-MIN export")
    back.add_argument("run_dir")
    back.add_argument("export")
    return top


def label_studio_export(run_dir: str | Path, n: int, out: str | Path, overrides: Sequence[str], *,
                        image_prefix: str | None) -> str:
    """Ask for up to n items, write them as Label Studio tasks to `out` and the labelling
    interface beside it; a one-line summary."""
    from experiments.label_studio import DEFAULT_IMAGE_PREFIX, export_tasks, labeling_config

    if n < 1:
        raise CampaignError(f"-n must be >= 1, got {n}")
    out = Path(out)
    if not out.resolve().parent.is_dir():
        raise CampaignError(f"-o {out}: no such directory {out.resolve().parent}")
    with open_campaign(run_dir, overrides, create=True) as campaign:
        tasks, summary = export_tasks(campaign, n, image_prefix=DEFAULT_IMAGE_PREFIX if image_prefix is None
                                      else image_prefix)
        pool = campaign.oracle
        config = labeling_config(pool.outputs.classes, image=pool.images is not None, features=pool.space.names)
    write_atomically(out, (json.dumps(tasks, indent=1) + "\n").encode(), durable=False)
    write_atomically(out.with_name("labeling_config.xml"), config.encode(), durable=False)
    return f"{summary}; wrote {len(tasks)} tasks to {out} and the labelling interface to " \
           f"{out.with_name('labeling_config.xml')}"


def label_studio_import(run_dir: str | Path, path: str | Path) -> str:
    """Tell the annotated tasks of a Label Studio export; a one-line summary."""
    from experiments.label_studio import import_annotations

    with open_campaign(run_dir) as campaign:
        return import_annotations(campaign, path) + "; " + status_line(campaign)


def _stop_serving(signum, frame) -> None:
    raise KeyboardInterrupt


def label(run_dir: str | Path, overrides: Sequence[str], *, host: str, port: int, lease_s: float) -> str:
    """Serve the labelling page until interrupted; a one-line summary."""
    from experiments.label_server import LabelSession, serve

    with open_campaign(run_dir, overrides, create=True) as campaign:
        session = LabelSession(campaign, lease_s=lease_s)
        try:
            server = serve(session, host=host, port=port)
        except OSError as exc:
            session.close()
            raise CampaignError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        print(f"alframe: labelling {run_dir} at http://{shown}:{server.server_address[1]}/ "
              f"({status_line(campaign)}); Ctrl-C stops", file=sys.stderr, flush=True)
        # Started in the background of a script (`alframe label RUN &`), a process inherits SIGINT
        # ignored; Ctrl-C, `kill -INT` and a plain `kill` all stop the server cleanly.
        previous = {signum: signal.signal(signum, _stop_serving) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            server.server_close()
            session.close()
        return f"stopped; {session.labelled_this_session} labels this time; " + status_line(campaign)


def main(argv: list[str] | None = None) -> int:
    # A console script's path starts at its own directory; `python -m` starts at the working one,
    # where a user's simulator module usually is: the same config must find it either way.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    top = parser()
    args, extra = top.parse_known_args(argv)
    takes_overrides = args.command in ("ask", "label") or getattr(args, "studio_command", None) == "export"
    if extra and (not takes_overrides or any(e.startswith("-") for e in extra)):
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "config_dir", None) is not None:
        added = Path(args.config_dir).expanduser().resolve()
        if not added.is_dir():
            top.error(f"--config-dir {args.config_dir}: no such directory")
        args.overrides = [f"hydra.searchpath=[file://{added}]", *args.overrides]
    try:
        if args.command == "ask":
            if args.out is not None and not Path(args.out).resolve().parent.is_dir():
                raise CampaignError(f"-o {args.out}: no such directory {Path(args.out).resolve().parent}")
            header, rows, summary, ask_status = ask(args.run_dir, args.n, [*args.overrides, *extra])
            if not rows:  # -o keeps what it held: queries written before may not have run yet
                print(f"alframe: {summary}", file=sys.stderr)
                return ask_status
            _emit(header, rows, args.out)
        elif args.command == "tell":
            summary = tell(args.run_dir, args.results)
        elif args.command == "label":
            summary = label(args.run_dir, [*args.overrides, *extra], host=args.host, port=args.port,
                            lease_s=args.lease)
        elif args.command == "label-studio" and args.studio_command == "export":
            summary = label_studio_export(args.run_dir, args.n, args.out, [*args.overrides, *extra],
                                          image_prefix=args.image_prefix)
        elif args.command == "label-studio":
            summary = label_studio_import(args.run_dir, args.export)
        elif args.command == "repair":
            summary = repair(args.run_dir)
        else:
            summary, header, rows = status(args.run_dir)
            if args.pending:
                _emit(header, rows, args.out)
    except (CampaignError, ConfigError, TableError, StoreLockedError, StoreMismatchError, StoreDamagedError, LoopError,
            ValueError, OSError) as exc:
        print(f"alframe: error: {exc}", file=sys.stderr)
        return 2
    print(f"alframe: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
