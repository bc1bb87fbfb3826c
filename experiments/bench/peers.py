"""alframe against its peers (modAL, python-adaptive, emukit) on the same simulations.

    python -m experiments.bench.peers potential1d                     # 8 seeds, budget 1,000
    python -m experiments.bench.peers mocca --seeds 8 --budget 400 --jobs 2
    python -m experiments.bench.peers potential1d --seeds 2 --tools random modal_gp emukit -- test_size=500

Every tool chooses its own runs of the same alframe oracle, from the same initial design (the
config's `n_initial` Sobol or uniform points for each seed), with the same budget, batch size
and held-out test set; pool-based tools choose from the same candidate pools alframe draws.
alframe's tools are Hydra runs (`experiments.run.run` with a strategy preset). A peer runs
through the same core (`run_peer`): its model is the committee and its choice the strategy
of an `alframe.active_learner.ActiveLearner` (see `alframe.interop.peer`), and an
`alframe.recorder.Recorder` writes its store, with the layout and attrs of alframe's own
runs, so

    python -m experiments.compare OUT/<problem>

reads the peers beside alframe's strategies. Each store's config names the model it scores
as `learner` (a `_target_` node), so compare's retrain-from-scratch check refits it too.

The peers:

- `modal_committee`: modAL `CommitteeRegressor` of three Gaussian processes that differ by
  kernel (RBF, Matern 5/2, Matern 3/2), choosing by `max_std_sampling`; on MOCCA a modAL
  `Committee` of five random forests, each refitted on its own bootstrap resample
  (`teach(..., bootstrap=True)`), choosing by `vote_entropy_sampling`.
- `modal_gp`: modAL `ActiveLearner` with one Gaussian process and `max_std_sampling` (on MOCCA,
  `modal_uncertainty`: one random forest with `uncertainty_sampling`, and
  `modal_uncertainty_et`: the same with the extremely randomised forest alframe's MOCCA tools
  use, so that the learner's share of a difference is seen apart from the strategy's).
- `emukit`: emukit's `ExperimentalDesignLoop` with `ModelVariance` and its gradient acquisition
  optimiser over the box, batches by its greedy fantasy (`GreedyBatchPointCalculator`), on a
  scikit-learn Gaussian process wrapped in `alframe.interop.emukit.RefactorisingGP`: emukit 0.5.1's own wrapper
  sets new training data without refactorising, which breaks batches larger than one.
- `adaptive`: python-adaptive's `LearnerND` (its default loss) over the box; scored by the
  linear interpolation of its points, the learner's own model.

modAL 0.4.2.1 fails in `teach()` on scikit-learn >= 1.8 (it passes `force_all_finite` to
`check_X_y`); `alframe.interop.modal.patch_check_X_y()` renames the argument inside modAL's
learners module before any modAL loop starts (scikit-learn is neither patched nor pinned).

alframe's tools all share one learner per problem, the passive `random` included, so the
target (passive's final error) is set by the same model the active strategies train: on the
potential a SiLU committee with warm fits of 2,000 steps (`random_tanh` and `qbc_fantasy_tanh`
keep the earlier tanh recipe with 300-step warm fits), on MOCCA the extremely randomised forest
(`random_forest` and `qbc_vote_entropy_forest` keep the random forest the modAL peers use).

Writes OUT/<problem>/<tool>/seed=<s>/run.zarr (an interrupted benchmark keeps finished runs
and restarts unfinished ones), compare's verdict files in OUT/<problem>/, and
OUT/<problem>.json and OUT/<problem>.md: simulations each tool needs to reach passive's final
error (median and quartiles over seeds), and wall seconds per round near the full budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from alframe.interop.adaptive import AdaptivePeer
from alframe.interop.emukit import EmukitPeer
from alframe.interop.peer import Peer, PeerCommittee, PeerFailed, PeerStrategy, SeededPeer

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "results" / "bench" / "peers"

# The alframe committee recipe on the potential (the learner preset's values, stated
# here so that a change of preset does not silently change the benchmark).
_SCHEDULE = ["learner=mlp", "learner.early_stopping=false", "learner.steps_first=10000", "learner.warm_learning_rate=1e-3", "learner.final_learning_rate=1e-5"]
POTENTIAL_LEARNER = [*_SCHEDULE, "learner.activation=silu", "learner.steps_warm=2000"]
# The recipe before SiLU and long warm fits, for the learner's share of the gain.
TANH_LEARNER = [*_SCHEDULE, "learner.activation=tanh", "learner.steps_warm=300"]
# On MOCCA every alframe tool, passive included, uses the extremely randomised forest.
MOCCA_LEARNER = ["learner=extra_trees"]


@dataclasses.dataclass(frozen=True)
class ProblemSpec:
    """One benchmark problem: its Hydra overrides, its metric and the tools that apply."""

    overrides: tuple[str, ...]
    metric: str
    budget: int
    alframe: dict[str, tuple[str, ...]]  # alframe tool -> Hydra overrides
    peers: tuple[str, ...]


PROBLEMS: dict[str, ProblemSpec] = {
    "potential1d": ProblemSpec(
        overrides=(),
        metric="mse",
        budget=1000,
        alframe={
            "random": ("strategy=random", *POTENTIAL_LEARNER),
            "sobol": ("strategy=sobol", *POTENTIAL_LEARNER),
            "qbc_spread": ("strategy=qbc_spread", *POTENTIAL_LEARNER),
            "qbc_fantasy": ("strategy=qbc_fantasy", *POTENTIAL_LEARNER),
            "random_tanh": ("strategy=random", *TANH_LEARNER),
            "qbc_fantasy_tanh": ("strategy=qbc_fantasy", *TANH_LEARNER),
            "variance_reduction": ("strategy=variance_reduction", *POTENTIAL_LEARNER),
            "qbc_search": ("strategy=qbc_search", *POTENTIAL_LEARNER),
            "qbc_kcentre": ("strategy=qbc_kcentre", *POTENTIAL_LEARNER),
        },
        peers=("modal_committee", "modal_gp", "emukit", "adaptive"),
    ),
    "mocca": ProblemSpec(
        overrides=("experiment=mocca_bhs",),
        metric="f1",
        budget=400,
        alframe={
            "random": ("strategy=random", *MOCCA_LEARNER),
            "qbc_vote_entropy": ("strategy=qbc_vote_entropy", *MOCCA_LEARNER),
            "qbc_consensus_entropy": ("strategy=qbc_consensus_entropy", *MOCCA_LEARNER),
            "bald": ("strategy=bald", *MOCCA_LEARNER),
            # Among the many candidates the trees' votes split evenly on, a spread-out batch.
            "qbc_vote_kcentre": ("strategy=qbc_kcentre", "strategy.score=vote_entropy", "strategy.batch.fraction=0.05",
                                 *MOCCA_LEARNER),
            # The random forest the modAL peers use, for the learner's share of the gain.
            "random_forest": ("strategy=random", "learner=forest"),
            "qbc_vote_entropy_forest": ("strategy=qbc_vote_entropy", "learner=forest"),
        },
        peers=("modal_committee", "modal_uncertainty", "modal_uncertainty_et"),
    ),
}


def register_alframe_tool(problem: str, name: str, overrides: Sequence[str]) -> None:
    """Add an alframe tool (a name and its Hydra overrides) to a problem's line-up."""
    PROBLEMS[problem].alframe[name] = tuple(overrides)


# -- models the peers use, as `_target_` nodes (the same node builds the peer's model and
#    goes into its store as `learner`) ----------------------------------------------------

GP_KERNELS = {
    "rbf": {"_target_": "sklearn.gaussian_process.kernels.RBF"},
    "matern52": {"_target_": "sklearn.gaussian_process.kernels.Matern", "nu": 2.5},
    "matern32": {"_target_": "sklearn.gaussian_process.kernels.Matern", "nu": 1.5},
}


def gp_node(dim: int, kernel: str = "rbf") -> dict[str, Any]:
    """A scikit-learn Gaussian process: constant x anisotropic `kernel` (rbf, matern52,
    matern32), normalised targets."""
    return {
        "_target_": "sklearn.gaussian_process.GaussianProcessRegressor",
        "kernel": {
            "_target_": "sklearn.gaussian_process.kernels.Product",
            "k1": {"_target_": "sklearn.gaussian_process.kernels.ConstantKernel",
                   "constant_value": 1.0, "constant_value_bounds": [1e-3, 1e3]},
            "k2": {**GP_KERNELS[kernel], "length_scale": [1.0] * dim, "length_scale_bounds": [1e-2, 1e2]},
        },
        "alpha": 1e-6,
        "normalize_y": True,
    }


def forest_node(n_estimators: int = 100, kind: str = "RandomForestClassifier") -> dict[str, Any]:
    """A scikit-learn forest classifier (`kind`: RandomForestClassifier or ExtraTreesClassifier)."""
    return {"_target_": f"sklearn.ensemble.{kind}", "n_estimators": n_estimators, "n_jobs": 1}


def build(node: dict[str, Any]) -> Any:
    """Instantiate a `_target_` node with plain Python containers."""
    from hydra.utils import instantiate

    return instantiate({**node, "_convert_": "all"})


# -- the problem, as every tool sees it ------------------------------------------------------

@dataclasses.dataclass
class Setting:
    """One (problem, seed): the oracle, the test set and the loop's settings, from Hydra."""

    cfg: Any
    oracle: Any
    x_test: np.ndarray
    y_test: np.ndarray
    candidates: Any  # alframe.loop.Candidates
    scorer: Any = None  # the config's `scorer`, when it names one

    @property
    def classification(self) -> bool:
        return self.oracle.outputs.task == "classification"


def compose_config(problem: str, seed: int, budget: int, overrides: Sequence[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*PROBLEMS[problem].overrides, f"seed={seed}",
                                                        f"budget={budget}", "progress=false", *overrides])


def make_setting(problem: str, seed: int, budget: int, overrides: Sequence[str]) -> Setting:
    from hydra.utils import instantiate

    from alframe.loop import draw_test_set

    cfg = compose_config(problem, seed, budget, overrides)
    oracle = instantiate(cfg.simulator)
    given = instantiate(cfg.test_set) if cfg.get("test_set") is not None else None
    x_test, y_test = draw_test_set(oracle, cfg.test_size, cfg.test_seed, given)
    scorer = instantiate(cfg.scorer) if cfg.get("scorer") is not None else None
    return Setting(cfg, oracle, x_test, y_test, instantiate(cfg.candidates), scorer)


# -- a peer's run, through alframe's core ---------------------------------------------------

def stored_config(cfg: Any, tool: str, description: str, learner: dict[str, Any]) -> dict[str, Any]:
    """The config a peer's store keeps, as `experiments.run.run` keeps an alframe run's: the
    resolved config without how runs are executed, the tool as `strategy_name`, the peer's
    model as `learner` and what the peer is as `tool` (in place of the strategy it ignores)."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(cfg, resolve=True)
    for name in ("executor", "progress", "repair", "strategy"):
        config.pop(name, None)
    return {**config, "strategy_name": tool, "tool": description, "learner": learner}


def run_peer(start: Callable[[np.ndarray, np.ndarray], Peer], setting: Setting, path: Path, config: dict[str, Any],
             *, progress: bool = False) -> xr.Dataset:
    """Run a peer into the store at `path` through alframe's core; returns the finished store.

    `start(x, y)` makes the peer from the initial design's runs. Like alframe's batch loop,
    the run draws that design, then fits, scores, records and asks round after round until
    the budget is spent, the target is met or the peer fails (its stop reason names the
    failure). A peer keeps no checkpoint: an unfinished run starts again.
    """
    from alframe.active_learner import ActiveLearner
    from alframe.loop import target_met, test_evaluator
    from alframe.recorder import Recorder

    cfg, oracle = setting.cfg, setting.oracle
    seed, budget, batch = int(cfg.seed), int(cfg.budget), int(cfg.batch_size)
    committee, strategy = PeerCommittee(start), PeerStrategy()
    declared = tuple(cfg.get("higher_is_better") or ())
    label = f"{config['strategy_name']} seed={seed}"
    attrs = {"config": json.dumps(config, sort_keys=True, default=str), "seed": seed, "budget": budget,
             "batch_size": batch, "label": label}
    with Recorder(path, space=oracle.space, outputs=oracle.outputs, identity={"config": config, "peer": True},
                  attrs=attrs) as recorder:
        x_test, y_test = recorder.test_set(lambda _kept: (setting.x_test, setting.y_test))
        evaluate = test_evaluator(x_test, y_test, classification=setting.classification,
                                  scorer=setting.scorer, higher_is_better=declared)
        learner = ActiveLearner(oracle.space, committee, strategy, setting.candidates, seed=seed, budget=budget,
                                evaluate=evaluate, runs=recorder.runs())
        with tqdm(total=budget, desc=label, unit="sim", disable=not progress) as bar:

            def run(queries: np.ndarray, round_index: int) -> None:
                outcome = oracle.run(queries)
                recorder.record_runs(queries, outcome, round_index=round_index)
                learner.tell(queries, outcome)
                bar.update(len(queries))

            run(oracle.space.draw(min(int(cfg.n_initial), budget), seed=seed, method=cfg.initial_method), 0)
            while True:
                try:
                    metrics = learner.refit()
                except PeerFailed as exc:
                    return recorder.finish(str(exc))
                start_s = time.perf_counter()
                met = target_met(metrics, cfg.target_metric, cfg.get("target"), declared)
                selection = None if met else learner.ask(batch)
                recorder.record_round(learner.round_record(metrics, None if selection is None else selection.cost,
                                                           time.perf_counter() - start_s), declared)
                if selection is None:
                    return recorder.finish(f"target {cfg.target_metric} {cfg.target} reached")
                if len(selection) == 0:
                    return recorder.finish(selection.stop_reason)
                run(selection.points, learner.round_index)


# -- the peers ---------------------------------------------------------------------------------

def modal_peer(tool: str, setting: Setting, seed: int) -> tuple[Callable, dict[str, Any], str]:
    """(factory of the peer from the initial runs, its learner node, a description)."""
    from modAL.disagreement import max_std_sampling, vote_entropy_sampling
    from modAL.models import ActiveLearner, Committee, CommitteeRegressor
    from modAL.uncertainty import uncertainty_sampling

    from alframe.interop.modal import ModalPeer, modal_targets, numpy_global_seed, patch_check_X_y

    patch_check_X_y()
    dim = setting.oracle.space.dim
    classification = setting.classification
    n_classes = len(setting.oracle.outputs.classes) if classification else None
    rng = np.random.default_rng([seed, 8])

    def estimator(node):
        est = build(node)
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=int(rng.integers(2**31)))
        return est

    if tool == "modal_committee":
        if classification:
            # Five forests, each refitted on its own bootstrap resample: modAL's bagging.
            nodes, bootstrap = [forest_node()] * 5, True
            description = "modAL Committee of 5 random forests (bagging), vote_entropy_sampling"
        else:
            # Three GPs that differ by kernel, each fitted on all the data: bootstrap
            # resamples would hand each GP a third of duplicated points and a worse fit.
            nodes, bootstrap = [gp_node(dim, k) for k in GP_KERNELS], False
            description = "modAL CommitteeRegressor of 3 GPs (RBF, Matern 5/2, Matern 3/2), max_std_sampling"
        learner = {"_target_": "alframe.interop.modal.ModalCommittee", "bootstrap": bootstrap,
                   "task": setting.oracle.outputs.task, "n_classes": n_classes,
                   "learners": [{"_target_": "modAL.models.ActiveLearner", "estimator": node} for node in nodes]}

        def factory(x, y):
            with numpy_global_seed(seed):
                learners = [ActiveLearner(estimator(node), X_training=x, y_training=modal_targets(y, classification),
                                          bootstrap_init=bootstrap) for node in nodes]
            model = (Committee(learners, query_strategy=vote_entropy_sampling) if classification
                     else CommitteeRegressor(learners, query_strategy=max_std_sampling))
            return SeededPeer(ModalPeer(model, bootstrap=bootstrap, classes=n_classes), seed)
    elif tool in ("modal_gp", "modal_uncertainty", "modal_uncertainty_et"):
        forest = "ExtraTreesClassifier" if tool.endswith("_et") else "RandomForestClassifier"
        node = forest_node(kind=forest) if classification else gp_node(dim)
        learner = {"_target_": "alframe.learners.BaggedCommittee", "estimator": node, "members": 1,
                   "bootstrap": False, "task": setting.oracle.outputs.task, "n_classes": n_classes}
        description = (f"modAL ActiveLearner, {forest}, uncertainty_sampling" if classification
                       else "modAL ActiveLearner, GP, max_std_sampling")
        query = uncertainty_sampling if classification else max_std_sampling

        def factory(x, y):
            model = ActiveLearner(estimator(node), query_strategy=query, X_training=x,
                                  y_training=modal_targets(y, classification))
            return SeededPeer(ModalPeer(model, bootstrap=False, classes=n_classes), seed)
    else:
        raise ValueError(f"unknown modAL tool {tool!r}")
    return factory, learner, description


def peer_parts(tool: str, setting: Setting, seed: int) -> tuple[Callable, dict[str, Any], str]:
    """(factory of the peer from the initial runs, its learner node, a description)."""
    dim = setting.oracle.space.dim
    if tool.startswith("modal_"):
        return modal_peer(tool, setting, seed)
    if setting.classification:
        raise ValueError(f"peer {tool!r} does regression on a box; the problem is a classification pool")
    if tool == "emukit":
        learner = {"_target_": "alframe.learners.BaggedCommittee", "estimator": gp_node(dim), "members": 1,
                   "bootstrap": False, "task": "regression", "n_classes": None}
        space, batch = setting.oracle.space, int(setting.cfg.batch_size)
        return (lambda x, y: SeededPeer(EmukitPeer(space, build(gp_node(dim)), x, y, batch), seed), learner,
                "emukit ExperimentalDesignLoop, ModelVariance, GP (scikit-learn, refactorised)")
    if tool == "adaptive":
        return (lambda x, y: AdaptivePeer(setting.oracle.space, x, y),
                {"_target_": "alframe.interop.adaptive.LinearInterpolation"},
                "python-adaptive LearnerND, default loss")
    raise ValueError(f"unknown peer {tool!r}")


# -- one (tool, seed) ----------------------------------------------------------------------------

def run_tool(problem: str, tool: str, seed: int, budget: int, overrides: Sequence[str], out: Path,
             progress: bool = False) -> dict[str, Any]:
    """Run one tool on one seed into out/<tool>/seed=<seed>/run.zarr; returns its wall time."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from alframe.store import read_run

    # Early rounds put GP length scales at their bounds; the warning says nothing new then.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    logging.getLogger("alframe").setLevel(logging.WARNING)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    run_dir = out / tool / f"seed={seed}"
    store_path = run_dir / "run.zarr"
    if store_path.exists():
        try:
            if "stop_reason" in read_run(store_path).attrs:
                return {"tool": tool, "seed": seed, "wall_s": None, "skipped": True}
        except (FileNotFoundError, KeyError, ValueError):
            pass
    spec = PROBLEMS[problem]
    start = time.perf_counter()
    if tool in spec.alframe:
        from experiments.run import run

        cfg = compose_config(problem, seed, budget, [*spec.alframe[tool], *overrides])
        run_dir.mkdir(parents=True, exist_ok=True)
        run(cfg, run_dir, strategy_name=tool)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a peer's state cannot be resumed: start it again
        run_dir.mkdir(parents=True)
        setting = make_setting(problem, seed, budget, overrides)
        start_peer, learner, description = peer_parts(tool, setting, seed)
        run_peer(start_peer, setting, store_path, stored_config(setting.cfg, tool, description, learner),
                 progress=progress)
    return {"tool": tool, "seed": seed, "wall_s": time.perf_counter() - start, "skipped": False}


# -- the verdict ---------------------------------------------------------------------------------

def round_seconds(ds: xr.Dataset, budget: int, batch_size: int, last: int = 3) -> float:
    """Median fit + select seconds of the last `last` rounds that chose a batch (n_runs < budget)."""
    n_runs = ds["n_runs"].values
    chosen = np.flatnonzero(n_runs < budget)[-last:]
    if len(chosen) == 0:
        return float("nan")
    return float(np.median(ds["fit_s"].values[chosen] + ds["select_s"].values[chosen]))


def summarise_tools(sweep_dir: Path, *, metric: str, passive: str = "random") -> dict[str, Any]:
    """Simulations each tool needs to reach passive's final error, and seconds per round.

    The target is the median over seeds of passive's final error. Each tool is summarised
    over the seeds it has finished runs for (tools may have different numbers of seeds); a
    run that never reaches the target for good counts as budget + 1.
    """
    from experiments import compare

    runs = compare.load_runs(sweep_dir)
    comp = compare.combine(runs, [metric])
    if passive not in comp.strategy.values:
        raise compare.SweepError(f"no passive {passive!r} runs in {sweep_dir}")
    present = {tool: sorted(seed for t, seed in runs if t == tool) for tool in comp.strategy.values}
    final = [float(runs[(passive, seed)][metric].values[-1]) for seed in present[passive]]
    target = float(np.median(final))
    need = compare.sims_needed(comp, metric, target)
    budget = int(max(ds.attrs["budget"] for ds in runs.values()))

    def censored(tool: str) -> np.ndarray:
        values = need.sel(strategy=tool, seed=present[tool]).values
        return np.where(np.isfinite(values), values, budget + 1)

    passive_median = float(np.median(censored(passive)))
    rows = []
    for tool in comp.strategy.values:
        tool = str(tool)
        values = censored(tool)
        tool_runs = [runs[(tool, seed)] for seed in present[tool]]
        rows.append({
            "tool": tool,
            "median_simulations": float(np.median(values)),
            "q25_simulations": float(np.percentile(values, 25)),
            "q75_simulations": float(np.percentile(values, 75)),
            "per_seed": dict(zip(present[tool], values.tolist())),
            "seeds_reached": int(np.sum(values <= budget)),
            "seeds": len(values),
            "ratio_vs_passive": passive_median / float(np.median(values)),
            f"final_{metric}_median": float(np.median([float(ds[metric].values[-1]) for ds in tool_runs])),
            "seconds_per_round_at_budget": float(np.median([round_seconds(ds, budget, int(ds.attrs["batch_size"]))
                                                             for ds in tool_runs])),
            "stop_reasons": sorted({str(ds.attrs.get("stop_reason")) for ds in tool_runs}),
        })
    rows.sort(key=lambda r: (r["median_simulations"], r["q75_simulations"]))
    return {"metric": metric, "higher_is_better": compare.is_higher_better(comp, metric), "passive": passive,
            "target": target, "budget": budget, "seeds": len(present[passive]), "rows": rows}


def paired_verdict(sweep_dir: Path, *, metric: str, target: float, passive: str = "random") -> Any:
    """compare's table (paired Wilcoxon test included) on the seeds every tool has finished."""
    from experiments import compare

    runs = compare.load_runs(sweep_dir)
    tools = {t for t, _ in runs}
    common = sorted(set.intersection(*({s for t, s in runs if t == tool} for tool in tools)))
    if not common:
        return None
    subset = {(t, s): ds for (t, s), ds in runs.items() if s in common}
    comp = compare.combine(subset, [metric])
    budget = int(max(ds.attrs["budget"] for ds in subset.values()))
    return compare.summarise(comp, metric=metric, passive=passive, targets=[target], budget=budget)


def stopping_points(sweep_dir: Path, *, metric: str, thresholds: Sequence[float] = (1e-3, 3e-4, 1e-4),
                    patience: int = 2) -> list[dict[str, Any]]:
    """Where `StopWhenAgreed`'s rule would have stopped each committee run, after the fact.

    The rule is applied to the recorded disagreement on the test set (`mean_variance`) relative
    to the test outputs' variance, `patience` rounds in a row at or below each threshold.
    One row per (tool, threshold): median simulations at the stop and median metric there.
    """
    from alframe.strategies.stopping import first_stop
    from experiments import compare

    rows = []
    by_tool: dict[str, list[xr.Dataset]] = {}
    for (tool, _), ds in compare.load_runs(sweep_dir).items():
        if "mean_variance" in ds and float(np.nanmax(ds["mean_variance"].values)) > 0:
            by_tool.setdefault(tool, []).append(ds)
    for tool, runs in sorted(by_tool.items()):
        for threshold in thresholds:
            stops = []
            for ds in runs:
                relative = ds["mean_variance"].values / float(np.var(ds["y_test"].values))
                i = first_stop(relative, threshold, patience=patience)
                stops.append((float(ds["n_runs"].values[i]), float(ds[metric].values[i])) if i is not None
                             else (float("nan"), float("nan")))
            n, value = np.array(stops).T
            rows.append({"tool": tool, "threshold": threshold, "stopped": int(np.isfinite(n).sum()),
                         "seeds": len(runs), "median_simulations_at_stop": float(np.nanmedian(n)) if np.isfinite(n).any()
                         else float("nan"), f"median_{metric}_at_stop": float(np.nanmedian(value))
                         if np.isfinite(value).any() else float("nan")})
    return rows


def markdown(summary: dict[str, Any], problem: str) -> str:
    metric = summary["metric"]
    title = (f"### {problem}: simulations to reach passive's final {metric} "
             f"({summary['target']:.3g}; budget {summary['budget']}, {summary['seeds']} seeds)")
    lines = [title, "",
             f"| tool | median | q25-q75 | seeds reached | passive / tool | final {metric} | s per round |",
             "|---|---|---|---|---|---|---|"]
    budget = summary["budget"]
    for r in summary["rows"]:
        median = f"{r['median_simulations']:.0f}" if r["median_simulations"] <= budget else f"> {budget}"
        q = lambda v: f"{v:.0f}" if v <= budget else f">{budget}"
        lines.append(f"| {r['tool']} | {median} | {q(r['q25_simulations'])}-{q(r['q75_simulations'])} | "
                     f"{r['seeds_reached']}/{r['seeds']} | {r['ratio_vs_passive']:.2f} | "
                     f"{r[f'final_{metric}_median']:.3g} | {r['seconds_per_round_at_budget']:.3g} |")
    if summary.get("stopping"):
        lines += ["", ("Stopping on committee agreement (test-set disagreement / output variance, two rounds "
                       "in a row at or below the threshold), after the fact:"), "",
                  f"| tool | threshold | runs stopped | median simulations at stop | median {metric} at stop |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['tool']} | {r['threshold']:g} | {r['stopped']}/{r['seeds']} | "
                  f"{r['median_simulations_at_stop']:.0f} | {r[f'median_{metric}_at_stop']:.3g} |"
                  for r in summary["stopping"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("problem", choices=sorted(PROBLEMS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=None, help="simulations per run (default: the problem's)")
    parser.add_argument("--tools", nargs="+", default=None, help="alframe tools and peers (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (spawned processes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--retrain", action="store_true", help="also run compare's retrain-from-scratch check")
    parser.add_argument("--progress", action="store_true", help="a progress bar per peer run")
    parser.add_argument("--no-summary", action="store_true",
                        help="only run (e.g. one of several processes filling the same directory)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every tool, e.g. test_size=500")
    args = parser.parse_intermixed_args(argv)
    spec = PROBLEMS[args.problem]
    budget = args.budget or spec.budget
    tools = args.tools or [*spec.alframe, *spec.peers]
    unknown = [t for t in tools if t not in spec.alframe and t not in spec.peers]
    if unknown:
        print(f"peers: error: unknown tool(s) {unknown} for {args.problem}; "
              f"choose from {[*spec.alframe, *spec.peers]}", file=sys.stderr)
        return 2
    out = (args.out / args.problem).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(t, s) for s in range(args.first_seed, args.first_seed + args.seeds) for t in tools]
    load_before = os.getloadavg()
    walls = []
    if args.jobs <= 1:
        for tool, seed in tqdm(jobs, desc=f"{args.problem} runs"):
            walls.append(run_tool(args.problem, tool, seed, budget, args.overrides, out, args.progress))
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_tool, args.problem, t, s, budget, args.overrides, out) for t, s in jobs]
            for future in tqdm(futures, desc=f"{args.problem} runs"):
                walls.append(future.result())

    if args.no_summary:
        return 0
    from experiments import compare

    try:
        summary = summarise_tools(out, metric=spec.metric)
    except compare.SweepError as exc:
        print(f"peers: error: {exc}", file=sys.stderr)
        return 2
    if len({row["seeds"] for row in summary["rows"]}) == 1:
        compare.compare(out, passive="random", metric=spec.metric, targets=[summary["target"]],
                        retrain=args.retrain)
    else:
        print("tools have different numbers of seeds: compare's files are left out; the paired test "
              "below uses the seeds every tool has")
    paired = paired_verdict(out, metric=spec.metric, target=summary["target"])
    if paired is not None:
        paired.to_csv(out / "paired_summary.csv", index=False)
        summary["paired"] = paired.to_dict(orient="records")
        print(paired.to_string(index=False))
    summary["stopping"] = stopping_points(out, metric=spec.metric)
    summary.update(problem=args.problem, overrides=args.overrides, run_wall_s=walls,
                   load_average_before_after=[load_before, os.getloadavg()], cpus=os.cpu_count())
    (out.parent / f"{args.problem}.json").write_text(json.dumps(summary, indent=2, default=float))
    table = markdown(summary, args.problem)
    (out.parent / f"{args.problem}.md").write_text(table + "\n")
    print("\n" + table)
    print(f"\nwritten to {out.parent / (args.problem + '.json')} and .md; stores and compare's files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
