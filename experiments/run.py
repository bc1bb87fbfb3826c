"""One active learning run, configured by Hydra.

    python -m experiments.run                                   # the default: 1-D potential, QBC
    python -m experiments.run strategy=random seed=3 budget=500
    python -m experiments.run -m strategy=random,qbc seed='range(8)'   # a sweep

Writes `run.zarr` (every simulation, per-round metrics, the test set), `learning_curve.png`
and `queried_points.png` into Hydra's output directory. Running the same command again
resumes an interrupted run from its store.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import alframe
from alframe import plots
from alframe.asynchronous import AsyncActiveLearningLoop
from alframe.cache import CachedOracle, target_digest
from alframe.executors import SequentialExecutor
from alframe.loop import ActiveLearningLoop, LoopError
from alframe.lock import StoreLockedError
from alframe.store import StoreDamagedError, StoreMismatchError

log = logging.getLogger("alframe")


class ConfigError(ValueError):
    """A config node could not be built; the message names the node and the reason."""


def build(cfg: DictConfig, key: str):
    """Instantiate `cfg[key]`, turning Hydra's nested error into one line naming the node."""
    try:
        return instantiate(cfg[key])
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"config '{key}' ({cfg[key].get('_target_', '?')}): {cause}") from None
    except OmegaConfBaseException as exc:  # a missing mandatory value, say
        raise ConfigError(f"config '{key}': {str(exc).splitlines()[0]}") from None


def cache_version(cfg: DictConfig, oracle) -> str:
    """What the cached results of the simulator node depend on besides each query: its
    settings, and its code: the oracle's declared `version` when it has one, else a digest of
    the source of the node's `_target_` (its module, or its package's directory) with the
    alframe version."""
    settings = json.dumps(OmegaConf.to_container(cfg.simulator, resolve=True), sort_keys=True)
    declared = getattr(oracle, "version", None)
    if declared is not None:
        return f"{settings}|version {declared}"
    return f"{settings}|source {target_digest(str(cfg.simulator._target_))}|alframe {alframe.__version__}"


def build_oracle(cfg: DictConfig):
    """The simulator node, behind a result cache when `cache` names a directory."""
    oracle = build(cfg, "simulator")
    if cfg.get("cache") is None:
        return oracle
    cache = Path(cfg.cache).expanduser().resolve()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / f".alframe-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cache {cache}: cannot write there ({exc.strerror or exc})") from None
    # Change the settings or the code and no old result is reused.
    return CachedOracle(oracle, Path(cfg.cache).expanduser().resolve(), cache_version(cfg, oracle))


def learner_node(cfg: DictConfig, outputs) -> DictConfig:
    """The learner node, resolved; a `task: null` in it (as in learner=auto) is filled from the
    simulator's outputs, with `n_classes` from its classes, so one config serves both tasks.
    A learner whose task contradicts the simulator's is refused before anything runs."""
    node = OmegaConf.create(OmegaConf.to_container(cfg.learner, resolve=True))
    if "task" in node and node.task is None:
        node = OmegaConf.merge(node, {"task": outputs.task,
                                      "n_classes": len(outputs.classes) if outputs.classes else None})
    task = node.get("task")
    if task is not None and task != outputs.task:
        raise ConfigError(f"learner.task is {task!r} but the simulator's outputs are {outputs.task!r}; set "
                          f"learner.task={outputs.task}" + (f" learner.n_classes={len(outputs.classes)}"
                                                            if outputs.classes else " learner.n_classes=null"))
    return node


def build_learner(cfg: DictConfig, oracle):
    """The committee of `learner_node(cfg, oracle.outputs)`."""
    return build(OmegaConf.create({"learner": learner_node(cfg, oracle.outputs)}), "learner")


def check_settings(cfg: DictConfig) -> None:
    """Refuse, before anything runs, loop settings of the wrong type or range; say in one line
    what is clamped to the budget."""
    for name in ("budget", "batch_size", "n_initial", "test_size", "in_flight", "refit_every"):
        if isinstance(cfg[name], bool) or not isinstance(cfg[name], int) or cfg[name] < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {cfg[name]!r}")
    if isinstance(cfg.retries, bool) or not isinstance(cfg.retries, int) or cfg.retries < 0:
        raise ConfigError(f"retries must be an integer >= 0, got {cfg.retries!r}")
    target = cfg.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise ConfigError(f"target must be a number or null, got {target!r}")
    if not isinstance(cfg.target_metric, str) or not cfg.target_metric:
        raise ConfigError(f"target_metric must be a metric name, got {cfg.target_metric!r}")
    for name in ("n_initial", "batch_size"):
        if cfg[name] > cfg.budget:
            print(f"alframe: {name} {cfg[name]} is more than the budget {cfg.budget}; {cfg.budget} are used",
                  file=sys.stderr)


def build_loop(cfg: DictConfig, *, strategy_name: str) -> ActiveLearningLoop | AsyncActiveLearningLoop:
    """The loop `cfg` describes: batch-synchronous, or asynchronous when `cfg.asynchronous`."""
    check_settings(cfg)
    common = dict(
        oracle=(oracle := build_oracle(cfg)),
        committee=build_learner(cfg, oracle),
        strategy=build(cfg, "strategy"),
        candidates=build(cfg, "candidates"),
        budget=cfg.budget,
        n_initial=cfg.n_initial,
        initial_method=cfg.initial_method,
        test_size=cfg.test_size,
        test_seed=cfg.test_seed,
        test_set=build(cfg, "test_set") if cfg.get("test_set") is not None else None,
        seed=cfg.seed,
        target=cfg.target,
        target_metric=cfg.target_metric,
        retries=cfg.retries,
        progress=cfg.progress,
        label=f"{strategy_name} seed={cfg.seed}",
    )
    executor = build(cfg, "executor")
    scorer = build(cfg, "scorer") if cfg.get("scorer") is not None else None
    common.update(scorer=scorer, higher_is_better=tuple(cfg.get("higher_is_better") or ()))
    if cfg.asynchronous:
        return AsyncActiveLearningLoop(executor=executor, in_flight=cfg.in_flight, refit_every=cfg.refit_every,
                                       **common)
    # A sequential executor would run a batch query by query; one vectorised call is faster.
    parallel = None if isinstance(executor, SequentialExecutor) else executor
    return ActiveLearningLoop(executor=parallel, batch_size=cfg.batch_size, **common)


def run(cfg: DictConfig, out_dir: Path, *, strategy_name: str) -> dict[str, float]:
    """Build the pieces named by `cfg`, run the loop into `out_dir`, draw its plots."""
    loop = build_loop(cfg, strategy_name=strategy_name)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["strategy_name"] = strategy_name
    # The learner as built (its task filled in), so that a refit from the store needs no simulator.
    config["learner"] = OmegaConf.to_container(learner_node(cfg, loop.oracle.outputs))
    # How the runs are executed does not change what they compute: a run may resume on another executor.
    for name in ("executor", "progress"):
        config.pop(name, None)
    try:
        ds = loop.run(out_dir / "run.zarr", config=config)
    finally:
        if isinstance(loop, AsyncActiveLearningLoop) or loop.executor is not None:
            loop.executor.shutdown(wait=False, cancel_futures=True)
    label = f"{strategy_name}, seed {cfg.seed}"
    curve = plots.learning_curves({label: ds}, out_dir / "learning_curve.png")
    points = plots.queried_points({label: ds}, out_dir / "queried_points.png")
    final = {k: float(ds[k].values[-1]) for k in ("n_runs", "n_labeled", loop.target_metric) if k in ds}
    log.info("finished (%s): %s", ds.attrs.get("stop_reason"), final)
    log.info("store: %s | plots: %s, %s", out_dir / "run.zarr", curve, points)
    return final


def run_job(cfg: DictConfig, out_dir: Path) -> dict[str, float]:
    """A preset that is not a loop (a fixed data set trained once, say): call `cfg.job` with
    `out` = the output directory; it returns its headline figures."""
    return dict(build(cfg, "job")(out=out_dir))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    # Hydra logs at INFO; JAX's backend probing (no TPU, no GPU) is noise there.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        if cfg.get("job") is not None:
            final = run_job(cfg, Path(hc.runtime.output_dir))
        else:
            final = run(cfg, Path(hc.runtime.output_dir), strategy_name=hc.runtime.choices.get("strategy", "custom"))
    except (ConfigError, StoreMismatchError, StoreDamagedError, StoreLockedError, LoopError, ValueError) as exc:
        print(f"alframe: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a full disk, a read-only directory: the store stays as last committed
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"alframe: error: {where}{exc.strerror or exc}; what was committed is kept, and the same "
              "command resumes once this is fixed", file=sys.stderr)
        sys.exit(2)
    return final.get(cfg.target_metric, float("nan"))


if __name__ == "__main__":
    main()
