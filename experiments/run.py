"""One active learning run, configured by Hydra.

    python -m experiments.run                                   # the default: 1-D potential, QBC
    python -m experiments.run strategy=random seed=3 budget=500
    python -m experiments.run -m strategy=random,qbc seed='range(8)'   # a sweep

Writes `run.zarr` (every simulation, per-round metrics, the test set), `learning_curve.png`
and `queried_points.png` into Hydra's output directory. Running the same command again
resumes an interrupted run from its store.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import hydra
import yaml
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

import alframe
from alframe import plots
from alframe.asynchronous import AsyncActiveLearningLoop
from alframe.atomic import write_atomically
from alframe.cache import CachedOracle, target_digest
from alframe.compilation_cache import enable as enable_compilation_cache
from alframe.executors import SequentialExecutor, WorkersCannotStart, unsendable
from alframe.external import ExternalRunError
from alframe.loop import ActiveLearningLoop, LoopError
from alframe.lock import StoreLockedError
from alframe.recorder import repair_run
from alframe.space import DRAW_METHODS
from alframe.store import StoreDamagedError, StoreMismatchError, commit_path

log = logging.getLogger("alframe")
CONF = Path(__file__).resolve().parents[1] / "conf"
# How the runs are executed (or whether a damaged store was repaired first, where compiled
# programs or simulations are kept) does not change what they compute: a run may resume on
# another executor, without repair=true, with or without a cache (a simulator is deterministic),
# so these keys are no part of the config a store is identified by, nor of its directory's name
# (conf/config.yaml's hydra.job.config.override_dirname.exclude_keys lists them too).
NOT_IDENTITY = ("executor", "progress", "repair", "compilation_cache", "cache", "share_simulations")


class ConfigError(ValueError):
    """A config node could not be built; the message names the node and the reason."""


def build(cfg: DictConfig, key: str):
    """Instantiate `cfg[key]`, turning Hydra's nested error into one line naming the node."""
    try:
        return instantiate(cfg[key])
    except InstantiationException as exc:
        cause = " ".join(line.strip() for line in str(exc.__cause__ or exc).splitlines() if line.strip())
        if isinstance(exc.__cause__, LookupError):  # a KeyError says only the key: say what and where
            frame = traceback.extract_tb(exc.__cause__.__traceback__)[-1:]
            where = f" ({Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
            cause = f"{type(exc.__cause__).__name__}: {cause}{where}"
        raise ConfigError(f"config '{key}' ({cfg[key].get('_target_', '?')}): {cause}") from None
    except OmegaConfBaseException as exc:  # a missing mandatory value, say
        raise ConfigError(f"config '{key}': {str(exc).splitlines()[0]}") from None


def added_top_level_keys(overrides: Sequence[str], groups: Iterable[str]) -> list[tuple[str, str]]:
    """(key, override) for each override that adds a top-level key (`+key=...`, `++key=...`);
    config groups (`+experiment=...`), keys inside nodes and Hydra's own are not such keys."""
    groups = set(groups)
    added = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if ((override.is_add() or override.is_force_add()) and override.package is None and key not in groups
                and not any(c in key for c in "./") and key != "hydra"):
            added.append((key, override.input_line))
    return added


# Top-level keys `build_loop` reads only when set (`+max_lag=8`): kept out of config.yaml so
# that the config digest of every run made without them stays what it was.
RUNNER_KEYS_READ_WHEN_SET = frozenset({"max_lag"})


def keys_read_when_set() -> frozenset[str]:
    """Top-level keys that some node under conf/ reads only when set, `${oc.select:NAME,default}`,
    and `RUNNER_KEYS_READ_WHEN_SET`: settings of the config as much as the keys it holds."""
    pattern = re.compile(r"oc\.select:\s*([A-Za-z_]\w*)")
    return RUNNER_KEYS_READ_WHEN_SET | frozenset(
        name for path in CONF.rglob("*.yaml") for name in pattern.findall(path.read_text()))


def check_added_keys(overrides: Sequence[str], groups: Iterable[str],
                     compose_without: Callable[[list[str]], DictConfig]) -> None:
    """Refuse an override that adds a top-level key the config does not know: a typo would
    otherwise be accepted silently (and kept in the run's config). Known keys are those of the
    config composed without such overrides (`compose_without(the other overrides)`, so a
    preset's own keys count) and `keys_read_when_set`."""
    added = added_top_level_keys(overrides, groups)
    if not added:
        return
    adding = {line for _, line in added}
    known = set(compose_without([o for o in overrides if o not in adding]).keys()) | keys_read_when_set()
    for key, line in added:
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.0)
            raise ConfigError(f"{line}: {key!r} is not a top-level key of this config (nearest: "
                              f"{', '.join(near)}); to add a key inside a node, name the node, e.g. "
                              f"+learner.{key}=...")


def cache_version(cfg: DictConfig, oracle) -> str:
    """What the cached results of the simulator node depend on besides each query: its
    settings, and its code: the oracle's declared `version` when it has one, else a digest of
    the source of the node's `_target_` (its module, or its package's directory) with the
    alframe version."""
    settings = json.dumps(OmegaConf.to_container(cfg.simulator, resolve=True), sort_keys=True)
    # A simulator with no source file to digest is refused here, where its results would be kept.
    code = simulator_version(cfg, oracle) or f"source {target_digest(str(cfg.simulator._target_))}"
    return f"{settings}|{code}" if code.startswith("version ") else f"{settings}|{code}|alframe {alframe.__version__}"


def simulator_version(cfg: DictConfig, oracle) -> str | None:
    """The simulator's code, as a store records it (see `alframe.recorder.version_attrs`):
    `version <v>` when the oracle (behind any cache) declares one, else `source <digest>` of the
    module (or package) that defines the node's `_target_`; None when that has no source file."""
    oracle = oracle.oracle if isinstance(oracle, CachedOracle) else oracle
    declared = getattr(oracle, "version", None)
    if declared is not None:
        return f"version {declared}"
    try:
        return f"source {target_digest(str(cfg.simulator._target_))}"
    except ValueError:  # a built-in: its version goes unchecked
        return None


def build_oracle(cfg: DictConfig):
    """The simulator node, behind a result cache when `cache` names a directory."""
    node = cfg.get("simulator")
    if isinstance(node, DictConfig) and "_target_" not in node:
        keys = ", ".join(str(k) for k in node.keys()) or "none"
        choice = HydraConfig.get().runtime.choices.get("simulator", "") if HydraConfig.initialized() else ""
        raise ConfigError(
            f"simulator{'=' + choice if choice else ''}: its node has no _target_ (its keys: {keys}); a file in "
            "simulator/ is the node itself, `_target_: mymodule.make_oracle` at its top level, unless it starts "
            "with `# @package _global_` and nests the node under `simulator:`")
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
    for name in ("seed", "test_seed"):
        if isinstance(cfg[name], bool) or not isinstance(cfg[name], int) or cfg[name] < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {cfg[name]!r}")
    if isinstance(cfg.retries, bool) or not isinstance(cfg.retries, int) or cfg.retries < 0:
        raise ConfigError(f"retries must be an integer >= 0, got {cfg.retries!r}")
    if not isinstance(cfg.asynchronous, bool):
        raise ConfigError(f"asynchronous must be true or false, got {cfg.asynchronous!r}")
    if "initial_method" in cfg and cfg.initial_method not in DRAW_METHODS:  # before the test set is simulated
        raise ConfigError(f"initial_method must be one of {', '.join(DRAW_METHODS)}, got {cfg.initial_method!r}")
    declared = cfg.get("higher_is_better")
    if declared is not None and (not OmegaConf.is_list(declared) or not all(isinstance(m, str) for m in declared)):
        shown = OmegaConf.to_container(declared) if OmegaConf.is_config(declared) else declared
        raise ConfigError(f"higher_is_better must be a list of metric names or null, got {shown!r}")
    target = cfg.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise ConfigError(f"target must be a number or null, got {target!r}")
    if not isinstance(cfg.target_metric, str) or not cfg.target_metric:
        raise ConfigError(f"target_metric must be a metric name, got {cfg.target_metric!r}")
    size = cfg.candidates.get("size") if OmegaConf.is_dict(cfg.get("candidates")) else None
    if isinstance(size, int) and isinstance(cfg.batch_size, int) and 1 <= size < cfg.batch_size:
        print(f"alframe: candidates.size {size} is less than batch_size {cfg.batch_size}; a round picks at most "
              f"{size} runs", file=sys.stderr)
    for name in ("n_initial", "batch_size"):
        if cfg[name] > cfg.budget:
            print(f"alframe: {name} {cfg[name]} is more than the budget {cfg.budget}; {cfg.budget} are used",
                  file=sys.stderr)


def build_loop(cfg: DictConfig, *, strategy_name: str) -> ActiveLearningLoop | AsyncActiveLearningLoop:
    """The loop `cfg` describes: batch-synchronous, or asynchronous when `cfg.asynchronous`
    (which the config group `loop=batch|async` sets)."""
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
    if (why := unsendable(executor, oracle)) is not None:
        executor.shutdown(wait=False)
        raise ConfigError(f"simulator '{cfg.simulator.get('_target_', '?')}' cannot be sent to the worker processes of "
                          f"executor '{cfg.executor.get('_target_', '?')}': {why}; define the function it runs at module "
                          "level (a def, not a lambda or a function defined inside another)")
    scorer = build(cfg, "scorer") if cfg.get("scorer") is not None else None
    common.update(scorer=scorer, higher_is_better=tuple(cfg.get("higher_is_better") or ()))
    if cfg.asynchronous:
        return AsyncActiveLearningLoop(executor=executor, in_flight=cfg.in_flight, refit_every=cfg.refit_every,
                                       max_lag=cfg.get("max_lag"), **common)
    # A sequential executor would run a batch query by query; one vectorised call is faster.
    parallel = None if isinstance(executor, SequentialExecutor) else executor
    return ActiveLearningLoop(executor=parallel, batch_size=cfg.batch_size, **common)


def run(cfg: DictConfig, out_dir: Path, *, strategy_name: str) -> dict[str, float]:
    """Build the pieces named by `cfg`, run the loop into `out_dir`, draw its plots."""
    store = out_dir / "run.zarr"
    if cfg.get("repair") and (store.exists() or commit_path(store).exists()):
        print(f"alframe: {repair_run(store)}", file=sys.stderr)
    loop = build_loop(cfg, strategy_name=strategy_name)
    config = OmegaConf.to_container(cfg, resolve=True)
    config["strategy_name"] = strategy_name
    # The learner as built (its task filled in), so that a refit from the store needs no simulator.
    config["learner"] = OmegaConf.to_container(learner_node(cfg, loop.oracle.outputs))
    for name in NOT_IDENTITY:
        config.pop(name, None)
    try:
        ds = loop.run(store, config=config, simulator_version=simulator_version(cfg, loop.oracle))
    finally:
        if isinstance(loop, AsyncActiveLearningLoop) or loop.executor is not None:
            loop.executor.shutdown(wait=False, cancel_futures=True)
    label = f"{strategy_name}, seed {cfg.seed}"
    curve = plots.learning_curves({label: ds}, out_dir / "learning_curve.png")
    points = plots.queried_points({label: ds}, out_dir / "queried_points.png")
    headline = ("f1", "accuracy") if ds.attrs.get("task") == "classification" else ("mse", "r2")
    final = {k: float(ds[k].values[-1]) for k in ("n_runs", "n_labeled", loop.target_metric, *headline) if k in ds}
    log.info("finished (%s): %s", ds.attrs.get("stop_reason"), final)
    log.info("store: %s | plots: %s, %s", out_dir / "run.zarr", curve, points)
    return final


def run_job(cfg: DictConfig, out_dir: Path) -> dict[str, float]:
    """A preset that is not a loop (a fixed data set trained once, say): call `cfg.job` with
    `out` = the output directory; it returns its headline figures."""
    return dict(build(cfg, "job")(out=out_dir))


# Where the jobs of a sweep note their failures for `FailedJobs` (set by it for the sweep's processes).
FAILED_JOBS_ENV = "ALFRAME_FAILED_JOBS"


SWEEP_PID_ENV = "ALFRAME_SWEEP_PID"
_sweep_watch: threading.Thread | None = None


def stop_with_the_sweep(environ: Mapping[str, str] = os.environ, poll_s: float = 1.0) -> threading.Thread | None:
    """In a job that a sweep's process started as its own child on this machine (a worker of
    Hydra's joblib launcher), a watch that ends this process once that sweep process is gone
    (killed with kill -9, say). An orphaned worker would otherwise run its job to the end and
    hold its store's lock, and the same command run again would be refused by a process its
    user never started. Ending it loses nothing: every store survives being killed at any
    point, and the same command resumes. None, and no watch, anywhere else."""
    global _sweep_watch
    sweep = environ.get(SWEEP_PID_ENV)
    if sweep is None or str(os.getppid()) != sweep:
        return None
    if _sweep_watch is not None and _sweep_watch.is_alive():  # a worker runs job after job
        return _sweep_watch

    def watch() -> None:
        while str(os.getppid()) == sweep:
            time.sleep(poll_s)
        try:  # stderr may have gone with the sweep (a pipe to it): stop all the same
            print(f"alframe: the sweep (pid {sweep}) that started this job is gone; stopping its job too (what was "
                  "committed is kept, and the same command resumes)", file=sys.stderr, flush=True)
        finally:
            os._exit(1)

    _sweep_watch = threading.Thread(target=watch, name="alframe-sweep-watch", daemon=True)
    _sweep_watch.start()
    return _sweep_watch


class FailedJobs(Callback):
    """A sweep whose jobs fail (bad settings, a damaged store) runs every other job, then says
    in one line per failed job which it was (its overrides) and why, and exits with status 2;
    one that succeeds ends with the command that judges it.

    A failing job notes its error in a directory inside the sweep's (named to the sweep's
    processes by the environment variable `FAILED_JOBS_ENV`) instead of exiting, which would
    stop the launcher's other jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.started = time.time()
        notes = Path(config.hydra.sweep.dir).resolve() / f".alframe-failed-jobs-{os.getpid()}"
        shutil.rmtree(notes, ignore_errors=True)
        notes.mkdir(parents=True)
        os.environ[FAILED_JOBS_ENV] = str(notes)
        os.environ[SWEEP_PID_ENV] = str(os.getpid())

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        os.environ.pop(SWEEP_PID_ENV, None)
        notes = os.environ.pop(FAILED_JOBS_ENV, None)
        if notes is None:
            return
        failed = sorted((json.loads(p.read_text()) for p in Path(notes).glob("*.json")), key=lambda f: f["num"])
        shutil.rmtree(notes, ignore_errors=True)
        for job in failed:
            print(f"alframe: error: job {job['num']} ({job['overrides'] or 'no overrides'}): {job['error']}",
                  file=sys.stderr)
        if failed:
            sys.exit(2)
        print(f"alframe: sweep done; its verdict: python -m experiments.compare {config.hydra.sweep.dir}"
              f"{self._only(Path(config.hydra.sweep.dir))}", file=sys.stderr)

    def _only(self, sweep_dir: Path) -> str:
        """` --only SETTINGS` where `sweep_dir` also holds another sweep's runs (the same preset at
        another budget, say), naming this sweep's; '' otherwise."""
        from experiments.compare import sweep_variant

        variant_of = {path: sweep_variant(path, sweep_dir) for path in sweep_dir.rglob("run.zarr")}
        if len(set(variant_of.values())) < 2:
            return ""
        started = getattr(self, "started", 0.0)
        mine = {variant for path, variant in variant_of.items() if path.stat().st_mtime >= started}
        return f" --only {mine.pop()}" if len(mine) == 1 else " --only SETTINGS (the folder below each seed's)"


def fail(hc, message: str) -> None:
    """End the job with `message`: exit with status 2 after one line on stderr, or in a sweep
    that `FailedJobs` watches, note it for the sweep's report and let the other jobs run."""
    notes = os.environ.get(FAILED_JOBS_ENV)
    if hc.mode != RunMode.MULTIRUN or notes is None:
        print(f"alframe: error: {message}", file=sys.stderr)
        sys.exit(2)
    log.error("%s", message)
    note = {"num": int(hc.job.num), "overrides": " ".join(hc.overrides.task), "error": message}
    write_atomically(Path(notes) / f"{hc.job.num}.json", json.dumps(note).encode(), durable=False)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    if hc.mode == RunMode.MULTIRUN:
        stop_with_the_sweep()
    # Hydra logs at INFO; JAX's backend probing (no TPU, no GPU) is noise there.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    try:
        enable_compilation_cache(cfg.get("compilation_cache"))
        check_added_keys(hc.overrides.task, hc.runtime.choices.keys(),
                         lambda rest: compose(config_name=hc.job.config_name, overrides=rest))
        if hc.mode == RunMode.MULTIRUN and cfg.get("share_simulations") and cfg.get("cache") is None:
            with open_dict(cfg):
                cfg.cache = str(Path(hc.runtime.cwd) / hc.sweep.dir / "simulations")  # hydra.job.chdir moves cwd
        if cfg.get("job") is not None:
            final = run_job(cfg, Path(hc.runtime.output_dir))
        else:
            final = run(cfg, Path(hc.runtime.output_dir), strategy_name=hc.runtime.choices.get("strategy", "custom"))
    except (ConfigError, StoreMismatchError, StoreDamagedError, StoreLockedError, LoopError, ValueError,
            ExternalRunError) as exc:
        fail(hc, str(exc))
        return float("nan")
    except WorkersCannotStart as exc:  # the executor, not the simulations: nothing is recorded as failed
        fail(hc, str(exc))
        return float("nan")
    except OSError as exc:  # a full disk, a read-only directory: the store stays as last committed
        where = f"{exc.filename}: " if exc.filename else ""
        fail(hc, f"{where}{exc.strerror or exc}; what was committed is kept, and the same command resumes once "
                 "this is fixed")
        return float("nan")
    return final.get(cfg.target_metric, float("nan"))


HYDRA_VALUE_OPTIONS = frozenset({"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                                 "--config-dir", "-cd", "--experimental-rerun"})
"""Hydra's options that take the next argument as their value."""
HYDRA_INFO_OPTIONS = frozenset({"--info", "-i"})
HYDRA_INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})
"""`--info` takes the next argument only where it is one of these."""
HYDRA_FLAGS = HYDRA_VALUE_OPTIONS | HYDRA_INFO_OPTIONS | {
    "--help", "-h", "--hydra-help", "--version", "--resolve", "--run", "-r", "--multirun", "-m",
    "--shell-completion", "-sc"}
"""The options Hydra's command line takes (hydra/_internal/utils.py, get_args_parser)."""


def check_command_line(argv: Sequence[str]) -> str | None:
    """What Hydra would refuse over several lines, or stumble on with a traceback, said in one
    line before it starts: a config group choice with no file under conf/ and a top-level key
    that is no setting (each with the nearest names), and a run or sweep directory that cannot
    be made (a file where a folder must go).
    None when the command line looks fine."""
    for argument in argv:
        flag = argument.partition("=")[0]
        if flag.startswith("-") and flag not in HYDRA_FLAGS:
            near = difflib.get_close_matches(flag, sorted(HYDRA_FLAGS), n=2, cutoff=0.6)
            return f"{flag}: no such option" + (f" (did you mean {' or '.join(near)}?)" if near else "")
    conf_dirs = [CONF, *added_config_dirs(argv)]
    for conf_dir in conf_dirs[1:]:
        if not conf_dir.is_dir():
            return f"--config-dir {conf_dir}: " + ("not a directory" if conf_dir.exists() else "no such directory")
    if (unreadable := unreadable_config(conf_dirs[1:])) is not None:
        return unreadable
    known_keys: set[str] = set()  # read on the first plain key
    for argument in argv:
        if argument.startswith("-"):
            continue
        key, sep, value = argument.lstrip("+~").partition("=")
        if not sep:
            continue
        if key in ("hydra.run.dir", "hydra.sweep.dir") and "${" not in value:
            for parent in (Path(value), *Path(value).parents):
                if parent.exists():
                    if not parent.is_dir():
                        return f"{argument}: {parent} is a file, not a directory"
                    break
            continue
        groups = [d / key for d in conf_dirs if (d / key).is_dir()]
        if not argument.startswith(("+", "~")) and "." not in key and "/" not in key and not groups:
            known_keys = known_keys or top_level_keys(conf_dirs)
            if key not in known_keys:
                near = difflib.get_close_matches(key, sorted(known_keys), n=3, cutoff=0.0)
                return (f"{argument}: {key!r} is not a setting of this config (nearest: {', '.join(near)}); "
                        f"+{key}=... adds a new one")
        if "." in key or "/" in key or not (CONF / key).is_dir() or value in ("", "null"):
            continue
        known = sorted({path.stem for group in groups for path in group.glob("*.yaml")})
        for choice in value.split(","):  # a sweep's comma list
            files = option_files(key, choice, conf_dirs)
            if len(files) > 1 and files[0].parent.parent == CONF and files[1].resolve() != files[0].resolve():
                return (f"{key}={choice}: {files[1]} has the name of alframe's own conf/{key}/{choice}.yaml, which "
                        f"Hydra would use instead; rename yours")
            if choice and not choice.startswith(("range(", "choice(", "glob(")) and choice not in known:
                near = difflib.get_close_matches(choice, known, n=3, cutoff=0.0)
                where = " or ".join(str(d / key / f"{choice}.yaml") if d != CONF else f"conf/{key}/{choice}.yaml"
                                    for d in conf_dirs)
                return (f"{key}={choice}: no such {key} ({where}); nearest: {', '.join(near)}; "
                        f"all: {', '.join(known)}")
    return _unknown_node_key(argv, conf_dirs)


def unreadable_config(conf_dirs: Iterable[Path]) -> str | None:
    """The first YAML file in `conf_dirs` (a user's `--config-dir`) that cannot be read, in one
    line with its line and column; Hydra reports it as a 30-line traceback of its parser. The
    files where Hydra looks are read: the directory's own, its config groups' and their
    subgroups' (`hydra/launcher/`), none in hidden folders."""
    for conf_dir in conf_dirs:
        found = [*conf_dir.glob("*.yaml"), *conf_dir.glob("*/*.yaml"), *conf_dir.glob("*/*/*.yaml")]
        for path in sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(conf_dir).parts)):
            try:
                OmegaConf.load(path)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                return f"{path}{where}: not valid YAML ({problem})"
            except (OSError, UnicodeDecodeError, OmegaConfBaseException) as exc:
                return f"{path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


def _unknown_node_key(argv: Sequence[str], conf_dirs: Sequence[Path]) -> str | None:
    """`simulator.n_max=4.99` where the config group option chosen (`simulator=mysim` on the
    command line, or conf/config.yaml's default) has no key `n_max`, or `candidates.sise=100`
    where conf/config.yaml's node has no such key, said in one line (Hydra's own refusal spans
    five). Under a preset (`experiment=compare`), the options it chooses (its defaults list's
    overrides, its sweep's) count, and so do the keys it sets; none are checked where the preset
    cannot be read without Hydra."""
    settings = dict(a.partition("=")[::2] for a in argv if "=" in a and not a.startswith(("-", "+", "~")))
    main_config = OmegaConf.load(CONF / "config.yaml")
    preset_choices: dict[str, str] = {}
    preset_keys: dict[str, set[str]] = {}
    if "experiment" in settings:
        preset = preset_settings(settings["experiment"], conf_dirs)
        if preset is None:
            return None
        preset_choices, preset_keys = preset
    chosen = {**default_choices(main_config), **preset_choices, **settings}
    for argument in argv:
        key, sep, _ = argument.partition("=")
        group, dot, name = key.partition(".")
        if argument.startswith(("-", "+", "~")) or not (sep and dot) or group == "hydra":
            continue
        top = name.split(".")[0]
        if top in preset_keys.get(group, ()):
            continue
        plain = main_config.get(group) if group not in chosen else None
        if isinstance(plain, DictConfig) and "_target_" in plain and top not in list(plain.keys()):
            return (f"{argument}: {group} has no setting {top!r} (conf/config.yaml's {group} has: "
                    f"{', '.join(str(k) for k in plain.keys())}); +{key}=... adds one")
        choice = chosen.get(group, "")
        if isinstance(choice, str) and "," in choice:
            options = choice.split(",")
            lacking = _options_lacking(group, options, top, conf_dirs)
            if len(lacking) == len(options):
                path, keys = node_keys(group, options[-1], conf_dirs)
                return (f"{argument}: no {group} of the sweep {group}={choice} has a setting {top!r} ({path} has: "
                        f"{', '.join(keys) or 'none'}); +{key}=... adds one")
            if lacking:
                having = [c for c in options if c not in lacking]
                return (f"{argument}: {group} {lacking[0]!r} has no setting {top!r}, and the sweep runs {group}={choice}; "
                        f"to change it for {having[0]!r} alone, make a {group} of your own in your --config-dir "
                        f"({group}/NAME.yaml holding 'defaults: [{having[0]}, _self_]' and '{top}: VALUE') and sweep "
                        f"{group}={','.join(c if c in lacking else 'NAME' for c in options)}")
            continue
        if not isinstance(choice, str) or not choice:
            continue
        found = node_keys(group, choice, conf_dirs)
        if found is None:
            continue
        path, keys = found
        if top not in keys:
            return (f"{argument}: {group} {choice!r} has no setting {top!r} ({path} has: "
                    f"{', '.join(keys) or 'none'}); +{key}=... adds one")
    return None


def node_keys(group: str, choice: str, conf_dirs: Sequence[Path], depth: int = 0) -> tuple[Path, list[str]] | None:
    """(the file, the keys) of config group option `choice`, with those of the options of its group
    that its defaults list composes it from (`strategy=qbc` from `variance_reduction`); None where
    that cannot be told without Hydra (no such file, a node placed elsewhere, other groups)."""
    files = option_files(group, choice, conf_dirs)
    if not files or depth > 8:
        return None
    loaded = OmegaConf.load(files[-1])
    if not isinstance(loaded, DictConfig):
        return None
    node = loaded.get(group) if "@package _global_" in files[-1].read_text() else loaded
    if not isinstance(node, DictConfig):
        return None
    keys = [str(k) for k in node.keys() if k != "defaults"]  # `in` a DictConfig is False for a null key
    for entry in loaded.get("defaults", []):
        if entry == "_self_":
            continue
        if not isinstance(entry, str):
            return None  # another group's option, or an override: Hydra knows the keys
        inner = node_keys(group, entry, conf_dirs, depth + 1)
        if inner is None:
            return None
        keys += [k for k in inner[1] if k not in keys]
    return files[-1], keys


def _options_lacking(group: str, choices: Sequence[str], key: str, conf_dirs: Sequence[Path]) -> list[str]:
    """The options among `choices` of a sweep over `group` that lack setting `key` ([] where any
    cannot be read without Hydra)."""
    found = [node_keys(group, c, conf_dirs) for c in choices]
    if any(f is None for f in found):
        return []
    return [c for c, (_, keys) in zip(choices, found) if key not in keys]


def preset_settings(preset: str, conf_dirs: Sequence[Path], depth: int = 0) -> tuple[dict[str, str], dict[str, set[str]]] | None:
    """What preset `experiment=preset` chooses and sets: (config group -> option, from its
    defaults list's `override /group: option` and its sweep's params; config group -> the keys
    it sets in that group's node), with those of the presets it is built from (`potential1d_compare`
    from `compare`); None where that cannot be told without Hydra (no such file, a comma list)."""
    files = option_files("experiment", preset, conf_dirs)
    if not files or "," in preset or depth > 8:
        return None
    loaded = OmegaConf.load(files[-1])
    if not isinstance(loaded, DictConfig):
        return None
    choices: dict[str, str] = {}
    keys: dict[str, set[str]] = {}
    for entry in loaded.get("defaults", []):
        if entry == "_self_":
            continue
        if isinstance(entry, str):
            inner = preset_settings(entry, conf_dirs, depth + 1)
            if inner is None:
                return None
            choices.update(inner[0])
            for group, names in inner[1].items():
                keys.setdefault(group, set()).update(names)
            continue
        if not isinstance(entry, DictConfig):
            return None
        for key, value in entry.items():
            group = str(key).removeprefix("override").strip().lstrip("/")
            if isinstance(value, str):
                choices[group] = value
    sweep = OmegaConf.select(loaded, "hydra.sweeper.params", default=None)
    if isinstance(sweep, DictConfig):
        choices.update({str(k): str(v) for k, v in sweep.items()})
    for key, value in loaded.items():
        if key not in ("defaults", "hydra") and isinstance(value, DictConfig):
            keys.setdefault(str(key), set()).update(str(k) for k in value.keys())
    return choices, keys


def option_files(group: str, choice: str, conf_dirs: Sequence[Path]) -> list[Path]:
    """The files of config group option `choice` in `conf_dirs`, in search-path order."""
    return [d / group / f"{choice}.yaml" for d in conf_dirs if (d / group / f"{choice}.yaml").is_file()]


def default_choices(main_config: DictConfig) -> dict[str, str]:
    """Config group -> the option conf/config.yaml's defaults list chooses (`learner` -> `auto`)."""
    choices = {}
    for entry in main_config.get("defaults", []):
        if isinstance(entry, DictConfig):
            choices.update({str(k): v for k, v in entry.items() if isinstance(v, str)})
    return choices


def top_level_keys(conf_dirs: Sequence[Path]) -> set[str]:
    """Every top-level key an override may set without `+`: those of each directory's config.yaml
    (conf/ first), the config groups, the keys of files placed at the top level (`# @package
    _global_`, e.g. presets), the keys nodes read when set (`keys_read_when_set`), and `hydra`."""
    keys = keys_read_when_set() | {"hydra"}
    for conf in conf_dirs:
        keys |= {group.name for group in conf.iterdir() if group.is_dir()}
        if (conf / "config.yaml").is_file():
            keys |= set(OmegaConf.load(conf / "config.yaml").keys())
        for path in conf.glob("*/*.yaml"):
            if "@package _global_" in path.read_text():
                loaded = OmegaConf.load(path)
                keys |= set(loaded.keys()) if isinstance(loaded, DictConfig) else set()
    return {str(k) for k in keys} - {"defaults"}


def added_config_dirs(argv: Sequence[str]) -> list[Path]:
    """The directories `--config-dir`/`-cd` add to Hydra's search path, as given on the command line."""
    dirs = []
    for i, argument in enumerate(argv):
        flag, sep, value = argument.partition("=")
        if flag in ("--config-dir", "-cd"):
            if not sep:
                value = argv[i + 1] if i + 1 < len(argv) else ""
            if value:
                dirs.append(Path(value).expanduser().resolve())
    return dirs


def options_first(argv: Sequence[str]) -> list[str]:
    """argv with Hydra's options (each with its value) moved before the overrides, in their own
    order. Hydra reads the overrides as one list, so `simulator=mysim --config-dir conf budget=60`
    would otherwise stop at `budget=60` as an unrecognised argument."""
    options: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        argument = argv[i]
        flag, sep, _ = argument.partition("=")
        if not argument.startswith("-") or argument == "-":
            overrides.append(argument)
        else:
            options.append(argument)
            value_follows = not sep and i + 1 < len(argv) and (
                flag in HYDRA_VALUE_OPTIONS or (flag in HYDRA_INFO_OPTIONS and argv[i + 1] in HYDRA_INFO_CHOICES))
            if value_follows:
                options.append(argv[i + 1])
                i += 1
        i += 1
    return options + overrides


def quiet_resource_tracker(environ: dict[str, str]) -> None:
    """After Ctrl-C, multiprocessing's resource tracker (a process of its own, reading its warning
    filters from the environment) warns of the semaphores of the stopped workers, which it then
    removes: nothing is lost or left, so the line only alarms. The filter matches that warning
    alone, by the start of its message."""
    quiet = "ignore:resource_tracker:UserWarning"
    filters = [f for f in environ.get("PYTHONWARNINGS", "").split(",") if f]
    if quiet not in filters:
        environ["PYTHONWARNINGS"] = ",".join([*filters, quiet])


if __name__ == "__main__":
    # Started as a script's background job (`... &`), a process inherits SIGINT ignored, and
    # `kill -INT` (or Ctrl-C on the script) would go unheard; it stops here as Ctrl-C does.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    quiet_resource_tracker(os.environ)
    sys.argv[1:] = options_first(sys.argv[1:])
    if (problem := check_command_line(sys.argv[1:])) is not None:
        print(f"alframe: error: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        main()
    except KeyboardInterrupt:
        print("alframe: interrupted; what was committed is kept, and the same command resumes", file=sys.stderr)
        sys.exit(130)
