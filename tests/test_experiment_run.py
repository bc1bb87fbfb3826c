"""experiments/run.py and conf/: Hydra composition, instantiation, and the command line."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import xarray as xr
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_method, instantiate

from alframe.learners import AutoCommittee, MLPCommittee
from alframe.loop import Candidates
from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box
from alframe.strategies import QueryByCommittee, RandomSampling, Spread, VarianceReduction
from omegaconf import OmegaConf

from alframe.asynchronous import AsyncActiveLearningLoop
from alframe.loop import ActiveLearningLoop
from experiments.run import NOT_IDENTITY, ConfigError, build, build_learner, build_loop

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def composed(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


# -- composition ------------------------------------------------------------------------


def test_default_config_instantiates_every_node():
    cfg = composed()
    oracle = instantiate(cfg.simulator)
    assert isinstance(oracle, FunctionOracle)
    assert oracle.space.names == ("x0", "v0", "t")
    assert oracle.outputs.names == ("x",)
    committee = build_learner(cfg, oracle)
    assert isinstance(committee, AutoCommittee)
    assert committee.task == "regression" and committee.capacity == cfg.budget
    assert set(committee.candidates()) == {"gp", "gp_log", "mlp", "extra_trees"}
    assert instantiate(cfg.strategy) == VarianceReduction(length=0.1, reference=1000, noise=1e-6)
    assert instantiate(cfg.candidates) == Candidates(size=2000, method="uniform")


def test_the_mlp_learner_node_instantiates_with_early_stopping():
    committee = instantiate(composed("learner=mlp").learner)
    assert isinstance(committee, MLPCommittee) and committee.early_stopping
    tuned = instantiate(composed("learner=mlp_potential").learner)
    assert not tuned.early_stopping and tuned.steps_warm == 600 and tuned.restart_growth == 2.0


def test_auto_learner_takes_its_task_from_a_classification_simulator():
    cfg = composed("learner=auto")
    classifier = FunctionOracle(lambda x: (x[:, 0] > 0).astype(float), Box(("a",), (-1.0,), (1.0,)),
                                OutputSpec(("label",), task="classification", classes=("no", "yes")))
    committee = build_learner(cfg, classifier)
    assert committee.task == "classification" and committee.n_classes == 2
    with pytest.raises(ConfigError, match="learner.task is 'regression' but the simulator's outputs are "
                                          "'classification'"):
        build_learner(composed("learner=extra_trees_regression"), classifier)


@pytest.mark.parametrize("learner", ["extra_trees_regression", "forest_regression", "bagged_extra_trees_regression",
                                     "gp", "mlp", "auto"])
def test_regression_learner_nodes_fit_the_default_simulator(learner):
    cfg = composed(f"learner={learner}", "budget=64")
    oracle = instantiate(cfg.simulator)
    x = oracle.space.draw(40, seed=0)
    y = oracle.run(x).y
    committee = build_learner(cfg, oracle)
    if learner == "mlp":
        committee = dataclasses.replace(committee, steps_first=100, steps_first_min=100, hidden=(8,))
    fitted = committee.fit(x, y, key=jax.random.key(0))
    members = np.asarray(fitted.predict_members(x[:7]))
    assert members.ndim == 3 and members.shape[1:] == (7, 1) and members.shape[0] >= 2


@pytest.mark.parametrize(
    ("overrides", "strategy", "candidates"),
    [
        (["strategy=random"], RandomSampling(), Candidates(size=2000, method="uniform")),
        (["strategy=qbc"], VarianceReduction(0.1, 1000, 1e-6), Candidates(size=2000, method="uniform")),
        (["strategy=qbc_spread"], QueryByCommittee("variance", batch=Spread(0.1)), None),
        (["strategy=qbc_topk"], QueryByCommittee("variance"), None),
        (["strategy=qbc_topk", "strategy.score=vote_entropy"], QueryByCommittee("vote_entropy"), None),
        (["strategy=sobol", "batch_size=5"], RandomSampling(), Candidates(size=5, method="sobol")),
        (["strategy=sobol"], RandomSampling(), Candidates(size=10, method="sobol")),
    ],
)
def test_strategy_choices(overrides, strategy, candidates):
    cfg = composed(*overrides)
    assert instantiate(cfg.strategy) == strategy
    if candidates is not None:
        assert instantiate(cfg.candidates) == candidates


def test_seed_budget_and_batch_size_flow_into_the_nodes():
    cfg = composed("seed=3", "budget=50", "batch_size=5", "simulator=potential1d")
    assert cfg.seed == 3 and cfg.budget == 50 and cfg.batch_size == 5
    oracle = instantiate(cfg.simulator)
    assert oracle.fn.seed == 3
    assert build_learner(cfg, oracle).capacity == 50  # the learner's buffer follows the budget
    assert build_learner(composed("learner.capacity=64", "budget=50"), oracle).capacity == 64


def test_simulator_overrides():
    cfg = composed("simulator.potential=double_well", "simulator.t_range=[0,2]", "simulator.noise_std=0.1")
    oracle = instantiate(cfg.simulator)
    assert oracle.fn.potential.name == "double_well"
    assert oracle.fn.noise_std == 0.1
    assert oracle.space.lower[2] == 0.0 and oracle.space.upper[2] == 2.0


def targets_in(node):
    if isinstance(node, dict):
        if "_target_" in node:
            yield node["_target_"]
        for value in node.values():
            yield from targets_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from targets_in(value)


def check_public_callable(target):
    assert not any(part.startswith("_") for part in target.split(".")), target
    assert callable(get_method(target)), target


@pytest.mark.parametrize("strategy", ["qbc", "random", "sobol"])
def test_every_built_node_names_a_public_callable(strategy):
    cfg = composed(f"strategy={strategy}")
    for key in ("simulator", "learner", "strategy", "candidates"):
        check_public_callable(cfg[key]["_target_"])


def test_every_target_in_conf_is_a_public_callable():
    targets = [t for path in sorted(CONF.rglob("*.yaml")) for t in targets_in(yaml.safe_load(path.read_text()))]
    assert len(targets) >= 5
    for target in targets:
        check_public_callable(target)


def test_build_turns_instantiation_errors_into_one_line():
    cfg = composed("strategy=qbc_spread", "strategy.score=bogus")
    with pytest.raises(ConfigError) as info:
        build(cfg, "strategy")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config 'strategy' (alframe.strategies.QueryByCommittee)")
    assert "'bogus'" in message


# -- the command line ---------------------------------------------------------------------

FAST = ["budget=40", "batch_size=10", "n_initial=10", "test_size=200", "learner=mlp", "learner.steps_first=200",
        "learner.steps_warm=50", "learner.hidden=[16]", "progress=false"]
ASYNC = ["executor=process", "executor.workers=2", "executor.timeout_s=120", "asynchronous=true", "in_flight=2",
         "refit_every=5", "strategy=qbc_avoid_failures", "retries=1"]


def _ignoring_sigint() -> None:
    # As a shell starts a background job (`... &`): with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def launch(out_dir: Path, overrides, *, ignoring_sigint: bool = False):
    return subprocess.Popen([sys.executable, "-m", "experiments.run", *overrides, f"hydra.run.dir={out_dir}"],
                            cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_ignoring_sigint if ignoring_sigint else None)


def finish(proc, timeout=240):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Both command-line runs of this module, started together (they are independent); bad
    settings are refused in one line in tests/test_bad_input_corpus.py."""
    root = tmp_path_factory.mktemp("cli")
    procs = {"run": launch(root / "run", FAST),
             "async": launch(root / "async", [*FAST, *ASYNC, f"cache={root / 'cache'}"])}
    results = {name: finish(proc) for name, proc in procs.items()}
    return root, results


@pytest.mark.slow
def test_command_line_run_writes_store_and_plots(cli):
    root, results = cli
    rc, out, err = results["run"]
    assert rc == 0, err[-3000:]
    out_dir = root / "run"
    for name in ("learning_curve.png", "queried_points.png"):
        data = (out_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    ds = xr.open_zarr(out_dir / "run.zarr")
    assert ds.sizes["sample"] == 40 and ds.sizes["round"] == 4 and ds.sizes["test_sample"] == 200
    assert list(ds["input"].values) == ["x0", "v0", "t"]
    assert ds.attrs["stop_reason"] == "budget spent"
    config = json.loads(ds.attrs["config"])
    assert config["strategy_name"] == "qbc"
    assert config["budget"] == 40 and config["learner"]["hidden"] == [16]
    assert config["learner"]["capacity"] == 40
    assert np.all(ds["ok"].values)


def test_running_the_same_command_again_runs_nothing_new(cli):
    root, results = cli
    assert results["run"][0] == 0
    store = root / "run" / "run.zarr"
    before = xr.open_zarr(store).load()
    rc, out, err = finish(launch(root / "run", [*FAST, f"cache={root / 'later_cache'}"]))  # a cache does not
    assert rc == 0, err[-3000:]                                                             # change what it computes
    xr.testing.assert_identical(xr.open_zarr(store).load(), before)  # timings too: nothing re-ran


def test_keys_that_change_nothing_computed_leave_the_run_directorys_name_alone():
    """A sweep resumed with a cache, another executor or no progress bars finds its runs again."""
    excluded = OmegaConf.load(CONF / "config.yaml").hydra.job.config.override_dirname.exclude_keys
    assert set(NOT_IDENTITY) <= set(excluded)


def test_asynchronous_run_on_worker_processes_with_a_cache(cli):
    root, results = cli
    rc, out, err = results["async"]
    assert rc == 0, err[-3000:]
    ds = xr.open_zarr(root / "async" / "run.zarr")
    assert ds.sizes["sample"] == 40 and ds.attrs["stop_reason"] == "budget spent"
    assert ds.attrs["in_flight"] == 2 and np.all(ds["ok"].values)
    assert len({row.tobytes() for row in ds["x"].values}) == 40
    assert len(list((root / "cache").glob("*/*.npy"))) == 40 + 200  # every run and the test set


@pytest.mark.slow
def test_ctrl_c_says_in_one_line_that_the_same_command_resumes(tmp_path):
    import signal
    import time

    from alframe.store import commit_path

    # A budget the run cannot finish while this process waits for its turn on a loaded machine.
    overrides = ["learner=gp", "budget=400", "batch_size=10", "n_initial=10", "test_size=50", "progress=false"]
    proc = launch(tmp_path, overrides, ignoring_sigint=True)  # it hears SIGINT all the same
    deadline = time.monotonic() + 120
    store = tmp_path / "run.zarr"
    while time.monotonic() < deadline and proc.poll() is None and not (
            commit_path(store).exists() and json.loads(commit_path(store).read_text())["sizes"].get("sample", 0) >= 30):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    rc, _, err = finish(proc)
    assert rc == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == ("alframe: interrupted; what was committed is kept, and the same command "
                                            "resumes")
    rc, _, err = finish(launch(tmp_path, overrides))
    assert rc == 0, err[-2000:]
    assert xr.open_zarr(store).sizes["sample"] == 400


@pytest.mark.slow
def test_a_sweep_killed_with_kill_9_takes_its_workers_with_it(tmp_path):
    import time

    sweep = subprocess.Popen([sys.executable, "-m", "experiments.run", "-m", "experiment=compare", "simulator=branin",
                              "learner=gp", "budget=400", "test_size=50", "progress=false",
                              f"hydra.sweep.dir={tmp_path}"], cwd=REPO, env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def workers() -> list[int]:
        listed = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
        return [int(line.split()[0]) for line in listed.splitlines()
                if line.split()[1] == str(sweep.pid) and "popen_loky" in line]

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and sweep.poll() is None and not list(tmp_path.rglob("run.zarr")):
        time.sleep(0.1)
    started = workers()
    if not started or sweep.poll() is not None:
        sweep.kill()
        pytest.fail(f"the sweep never started its jobs (exit {sweep.poll()}): {sweep.stderr.read()[-2000:]}")
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(running(pid) for pid in started):
        time.sleep(0.2)
    orphans = [pid for pid in started if running(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    sweep.stderr.close()
    assert not orphans  # they would run on, holding their stores' locks


@pytest.mark.parametrize("learner", ["extra_trees_regression", "gp", "auto"])
def test_the_potential_preset_takes_any_learner(learner):
    cfg = composed("experiment=potential1d_compare", f"learner={learner}")
    oracle = instantiate(cfg.simulator)
    committee = build_learner(cfg, oracle)
    assert type(committee).__name__ != "MLPCommittee"
    assert cfg.batch_size == 20 and cfg.test_size == 2000


def test_the_potential_preset_keeps_its_tuned_mlp():
    cfg = composed("experiment=potential1d_compare")
    committee = build_learner(cfg, instantiate(cfg.simulator))
    assert isinstance(committee, MLPCommittee) and not committee.early_stopping and committee.steps_warm == 600


def test_the_loop_group_chooses_the_driver_and_stores_the_config_it_always_did():
    as_dict = OmegaConf.to_container
    assert as_dict(composed("loop=batch")) == as_dict(composed()) and "loop" not in composed()
    assert as_dict(composed("loop=async")) == as_dict(composed("asynchronous=true"))  # an alias
    assert composed("loop=async", "asynchronous=false").asynchronous is False  # the command line has the last word
    assert isinstance(build_loop(composed("loop=async", "learner=gp"), strategy_name="qbc"), AsyncActiveLearningLoop)
    assert isinstance(build_loop(composed("learner=gp"), strategy_name="qbc"), ActiveLearningLoop)
    assert build_loop(composed("loop=async", "learner=gp"), strategy_name="qbc").max_lag is None
    assert build_loop(composed("loop=async", "learner=gp", "+max_lag=8"), strategy_name="qbc").max_lag == 8
