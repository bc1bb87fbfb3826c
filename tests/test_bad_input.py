"""Damaged run directories and bad settings: one clear line, and nothing committed is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from alframe.cache import CachedOracle
from alframe.loop import LoopError
from alframe.store import StoreDamagedError, StoreMismatchError, read_run
from experiments.cli import compose_config
from experiments.run import ConfigError, check_command_line, check_settings
from tests.conftest import make_loop, make_oracle


class DiesAfter:
    """The conftest oracle, raising once it has answered `n` queries (a node lost mid-run)."""

    def __init__(self, n):
        self.inner, self.n, self.seen = make_oracle(), n, 0
        self.space, self.outputs = self.inner.space, self.inner.outputs

    def run(self, queries):
        self.seen += len(queries)
        if self.seen > self.n:
            raise RuntimeError("lost the node")
        return self.inner.run(queries)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A run directory left by a run killed in its second round."""
    root = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(RuntimeError, match="lost the node"):
        make_loop(oracle=DiesAfter(200 + 10 + 10 + 5)).run(root / "run.zarr")
    return root


def damaged(interrupted: Path, tmp_path: Path, damage) -> Path:
    shutil.copytree(interrupted, tmp_path / "run", dirs_exist_ok=True)
    damage(tmp_path / "run")
    return tmp_path / "run" / "run.zarr"


def first_chunk(store: Path, name: str) -> Path:
    return next(p for p in sorted((store / name).rglob("*")) if p.is_file() and "c" in p.relative_to(store / name).parts)


DAMAGE = {
    "truncated chunk": (lambda d: first_chunk(d / "run.zarr", "x").write_bytes(first_chunk(d / "run.zarr", "x").read_bytes()[:7]),
                        StoreDamagedError, "run.zarr cannot be read back"),
    "random chunk": (lambda d: first_chunk(d / "run.zarr", "y").write_bytes(np.random.default_rng(0).bytes(40)),
                     StoreDamagedError, "run.zarr cannot be read back"),
    "no root zarr.json": (lambda d: (d / "run.zarr" / "zarr.json").unlink(), StoreDamagedError, "cannot be read back"),
    "garbage commit": (lambda d: (d / "run.zarr.commit.json").write_text("{{{"), StoreDamagedError,
                       "run.zarr.commit.json is damaged"),
    "commit of another shape": (lambda d: (d / "run.zarr.commit.json").write_text("[1, 2]"), StoreDamagedError,
                                "not a commit record"),
    "empty checkpoint": (lambda d: (d / "run.zarr.resume.pkl").write_bytes(b""), LoopError,
                         "run.zarr.resume.pkl is damaged (EOFError"),
    "truncated checkpoint": (lambda d: (d / "run.zarr.resume.pkl").write_bytes((d / "run.zarr.resume.pkl").read_bytes()[:50]),
                             LoopError, "run.zarr.resume.pkl is damaged"),
    "store is a file": (lambda d: (shutil.rmtree(d / "run.zarr"), (d / "run.zarr").write_text("x")), StoreDamagedError,
                        "is a file, not a run store"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_resuming_a_damaged_run_says_what_is_damaged_in_one_line(interrupted, tmp_path, name):
    damage, error, message = DAMAGE[name]
    path = damaged(interrupted, tmp_path, damage)
    with pytest.raises(error) as caught:
        make_loop().run(path)
    text = str(caught.value)
    assert message in text and "\n" not in text
    if name != "store is a file":  # nothing there a repair could keep
        assert f"`alframe repair {path.parent}` (or the same command with repair=true)" in text


def test_the_undamaged_copy_resumes(interrupted, tmp_path):
    path = damaged(interrupted, tmp_path, lambda d: None)
    assert read_run(path).sizes["sample"] == 20  # the design and the first round
    assert make_loop().run(path).attrs["stop_reason"] == "budget spent"


@pytest.mark.parametrize("overrides, message", [
    (["target=abc"], "target must be a number or null, got 'abc'"),
    (["target=true"], "target must be a number or null"),
    (["budget=0"], "budget must be an integer >= 1, got 0"),
    (["batch_size=2.5"], "batch_size must be an integer >= 1, got 2.5"),
    (["retries=-1"], "retries must be an integer >= 0, got -1"),
    (["n_initial=abc"], "n_initial must be an integer >= 1, got 'abc'"),
])
def test_bad_settings_are_refused_before_any_work(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_settings(compose_config(overrides))


def test_settings_clamped_to_the_budget_are_said(capsys):
    check_settings(compose_config(["budget=30", "n_initial=50"]))
    assert "n_initial 50 is more than the budget 30; 30 are used" in capsys.readouterr().err
    check_settings(compose_config(["candidates.size=5"]))
    assert "candidates.size 5 is less than batch_size 10; a round picks at most 5 runs" in capsys.readouterr().err


@pytest.mark.parametrize("overrides, nearest", [
    (["+nonsense=1"], "nearest: "),
    (["+budgt=30"], "nearest: budget"),
    (["++test_sise=30"], "nearest: test_size"),
    (["++scorer=null"], "nearest: "),  # only a preset that scores its own way has a scorer
])
def test_an_unknown_top_level_key_is_refused_naming_the_nearest_known_ones(overrides, nearest):
    with pytest.raises(ConfigError) as caught:
        compose_config(overrides)
    text = str(caught.value)
    key = overrides[-1].lstrip("+").split("=")[0]
    assert text.startswith(f"{overrides[-1]}: {key!r} is not a top-level key of this config") and nearest in text
    assert "\n" not in text


@pytest.mark.parametrize("overrides", [
    ["+learner.foo=1"], ["+simulator.bar=2"], ["+executor.slurm_partition=cpu"],  # keys inside nodes
    ["++budget=30"],  # a key the config has
    ["experiment=turbulence_active", "++scorer=null"],  # a key the preset adds
    ["+proxy_cells=8"],  # a key a node reads when it is set (${oc.select:proxy_cells,16})
])
def test_keys_inside_nodes_and_keys_the_config_knows_may_be_added(overrides):
    compose_config(overrides)


# -- a run killed during a long test set keeps the results that finished --------------------


class Counting:
    """The conftest oracle, counting the queries it runs."""

    def __init__(self):
        self.inner, self.ran = make_oracle(), 0
        self.space, self.outputs = self.inner.space, self.inner.outputs

    def run(self, queries):
        self.ran += len(queries)
        return self.inner.run(queries)


def test_the_cache_keeps_each_result_as_soon_as_it_exists(tmp_path):
    cache = tmp_path / "cache"
    killed = CachedOracle(DiesAfter(150), cache, version="v")
    with pytest.raises(RuntimeError, match="lost the node"):
        make_loop(oracle=killed).run(tmp_path / "a" / "run.zarr")  # during its 200-run test set
    assert len(killed) == 150  # every run that finished, though its chunk of the test set did not
    counting = Counting()
    ds = make_loop(oracle=CachedOracle(counting, cache, version="v")).run(tmp_path / "b" / "run.zarr")
    assert counting.ran == 50 + 40 and ds.attrs["stop_reason"] == "budget spent"


def test_the_cache_can_run_what_it_misses_in_one_call(tmp_path):
    counting = Counting()
    batched = CachedOracle(counting, tmp_path / "cache", version="v", per_query=False)
    out = batched.run(np.linspace(-1, 1, 10).reshape(5, 2))
    assert out.ok.all() and counting.ran == 5 and len(batched) == 5
    assert batched.run(np.linspace(-1, 1, 10).reshape(5, 2)).ok.all() and counting.ran == 5


@pytest.mark.parametrize("vectorized, calls", [(True, 1), (False, 5)])
def test_the_cache_runs_what_it_misses_as_the_simulator_runs_best(tmp_path, vectorized, calls):
    from alframe.oracle import FunctionOracle, OutputSpec
    from alframe.space import Box

    sizes = []

    def square(x):
        sizes.append(len(np.atleast_2d(x)))
        return np.sum(np.atleast_2d(x) ** 2, axis=1) if vectorized else float(np.sum(x**2))

    oracle = FunctionOracle(square, Box(names=("a", "b"), lower=(-1, -1), upper=(1, 1)), OutputSpec(("y",)),
                            vectorized=vectorized)
    cached = CachedOracle(oracle, tmp_path / "cache", version="v")
    assert cached.run(np.linspace(-1, 1, 10).reshape(5, 2)).ok.all()
    assert len(sizes) == calls and len(cached) == 5  # a batch in one call; one input at a time, each kept at once
    assert cached.run(np.linspace(-1, 1, 10).reshape(5, 2)).ok.all() and len(sizes) == calls


@pytest.mark.parametrize("argument, says", [
    ("learner.capacty=10", "learner 'auto' has no setting 'capacty'"),
    ("executor.workerz=2", "executor 'sequential' has no setting 'workerz'"),
    ("candidates.sise=100", "candidates has no setting 'sise' (conf/config.yaml's candidates has: _target_, size,"),
    ("strategy.refrence=10", "strategy 'qbc' has no setting 'refrence'"),  # composed from variance_reduction
])
def test_a_misspelt_setting_of_a_default_node_is_named_in_one_line(argument, says):
    from experiments.run import check_command_line

    assert says in check_command_line([argument])
    assert check_command_line([argument.replace("capacty", "capacity").replace("sise", "size")
                               .replace("workerz=2", "_target_=x").replace("refrence", "reference")]) is None


@pytest.mark.parametrize("arguments, says", [
    (["experiment=compare", "simulator=branin", "learner.capacty=10"], "learner 'auto' has no setting 'capacty'"),
    # potential1d_compare is built from compare and overrides the learner
    (["experiment=potential1d_compare", "learner.stepz=5"], "learner 'mlp_potential' has no setting 'stepz'"),
    (["experiment=turbulence_active", "simulator.n_cellz=4"], "simulator 'turbulence' has no setting 'n_cellz'"),
    (["experiment=compare", "simulator=branin", "strategy=qbc", "strategy.failure_settlez=1"],
     "strategy 'qbc' has no setting 'failure_settlez'"),
])
def test_a_misspelt_setting_under_a_preset_is_named_in_one_line(arguments, says):
    from experiments.run import check_command_line

    assert says in check_command_line(arguments)
    assert check_command_line([a.replace("capacty", "capacity").replace("stepz", "steps_warm")
                               .replace("n_cellz", "n_cells").replace("settlez", "settles") for a in arguments]) is None


def test_a_setting_a_preset_adds_is_accepted():
    from experiments.run import check_command_line

    # turbulence_active sets candidates.size itself
    assert check_command_line(["experiment=turbulence_active", "candidates.size=10"]) is None


def test_a_setting_of_only_some_options_a_sweep_runs_says_how_to_set_it_for_one():
    from experiments.run import check_command_line

    # compare sweeps strategy=random,qbc; random has no failure_settles
    said = check_command_line(["experiment=compare", "simulator=branin", "strategy.failure_settles=0.5"])
    assert said.startswith("strategy.failure_settles=0.5: strategy 'random' has no setting 'failure_settles', and "
                           "the sweep runs strategy=random,qbc;")
    assert "'defaults: [qbc, _self_]'" in said and said.endswith("sweep strategy=random,NAME")
    said = check_command_line(["-m", "learner=gp,mlp", "learner.folds=3"])
    assert said.startswith("learner.folds=3: learner 'mlp' has no setting 'folds'")
    assert check_command_line(["experiment=compare", "simulator=branin", "strategy.failure_settlez=0.5"]).startswith(
        "strategy.failure_settlez=0.5: no strategy of the sweep strategy=random,qbc has a setting 'failure_settlez'")
    assert check_command_line(["-m", "strategy=qbc,variance_reduction", "strategy.reference=100"]) is None


def test_a_misspelt_option_is_named_before_what_it_would_have_changed():
    from experiments.run import check_command_line

    # --config-dir misspelt: "no such simulator" would blame the wrong thing
    assert check_command_line(["--config-dri", "conf", "simulator=kimura"]) == (
        "--config-dri: no such option (did you mean --config-dir or --config-path?)")
    assert check_command_line(["--config-dir=conf", "-m", "--cfg", "job", "simulator=branin"]) is None
    assert check_command_line(["--config-dir", "/no/such/confx", "simulator=branin"]) == (
        "--config-dir /no/such/confx: no such directory")


def test_options_among_the_overrides_are_read_as_if_they_came_first():
    from experiments.run import options_first

    # Hydra reads the overrides as one list: an option between them left the rest unrecognised
    assert options_first(["-m", "experiment=compare", "--config-dir", "conf", "budget=120", "--info", "defaults",
                          "seed=1", "-cd=more", "--cfg", "job", "--info", "x=1"]) == [
        "-m", "--config-dir", "conf", "--info", "defaults", "-cd=more", "--cfg", "job", "--info",
        "experiment=compare", "budget=120", "seed=1", "x=1"]
    assert options_first(["simulator=branin", "-m"]) == ["-m", "simulator=branin"]


def test_a_config_file_that_is_not_yaml_is_named_with_its_line(tmp_path):
    from experiments.run import check_command_line

    (tmp_path / "simulator").mkdir()
    (tmp_path / "simulator" / "mine.yaml").write_text("_target_: mine.make_oracle\n  extra: [1, 2\n")
    assert check_command_line(["--config-dir", str(tmp_path), "simulator=mine"]) == (
        f"{tmp_path / 'simulator' / 'mine.yaml'}, line 2, column 8: not valid YAML (mapping values are not allowed here)")
    (tmp_path / "simulator" / "mine.yaml").write_text("_target_: mine.make_oracle\n")
    assert check_command_line(["--config-dir", str(tmp_path), "simulator=mine"]) is None


def test_a_config_dir_option_named_like_one_of_alframes_own_is_refused(tmp_path):
    from experiments.run import check_command_line

    (tmp_path / "simulator").mkdir()
    (tmp_path / "simulator" / "projectile.yaml").write_text("_target_: mine.make_oracle\n")
    (tmp_path / "simulator" / "mine.yaml").write_text("_target_: mine.make_oracle\n")
    said = check_command_line(["--config-dir", str(tmp_path), "simulator=projectile"])
    assert said.startswith(f"simulator=projectile: {tmp_path / 'simulator' / 'projectile.yaml'} has the name of "
                           "alframe's own conf/simulator/projectile.yaml") and said.endswith("rename yours")
    assert check_command_line(["--config-dir", str(tmp_path), "simulator=mine"]) is None


def test_two_jobs_sharing_a_cache_simulate_their_common_test_set_once(tmp_path, capfd):
    import threading
    import time

    from alframe.oracle import FunctionOracle, OutputSpec
    from alframe.recorder import draw_test_set
    from alframe.space import Box

    simulated = []

    def slow(x):
        simulated.append(len(x))
        time.sleep(0.02)
        return np.sum(x**2, axis=1)

    oracle = FunctionOracle(slow, Box(names=("a", "b"), lower=(-1, -1), upper=(1, 1)), OutputSpec(("y",)))
    sets = []
    # two jobs of a sweep: their labels (strategy, seed) differ, their test set does not
    jobs = [threading.Thread(target=lambda label=label: sets.append(draw_test_set(
        CachedOracle(oracle, tmp_path / "cache", version="v"), 200, 7, label=f"{label} test set")))
        for label in ("random seed=0", "qbc seed=1")]
    jobs[0].start()
    while not simulated:
        time.sleep(0.005)
    jobs[1].start()
    for job in jobs:
        job.join()
    assert sum(simulated) == 200  # the second waited for the first, then read every run from the cache
    np.testing.assert_array_equal(sets[0][1], sets[1][1])
    assert "another process is simulating the same test set of 200 (seed 7)" in capfd.readouterr().err
    again = draw_test_set(CachedOracle(oracle, tmp_path / "cache", version="v"), 200, 7, label="qbc seed=2 test set",
                          progress=True)
    np.testing.assert_array_equal(again[1], sets[0][1])
    err = capfd.readouterr().err
    assert f"qbc seed=2 test set: read back from {tmp_path / 'cache'}, where all 200 runs were simulated before" in err
    assert "sim/s" not in err  # no progress bar for runs that are not run


def test_a_sweep_that_shares_its_directory_is_told_which_runs_to_compare(tmp_path):
    import os
    import time

    from experiments.run import FailedJobs

    for budget in (60, 150):
        (tmp_path / "qbc" / "seed=0" / f"budget={budget}" / "run.zarr").mkdir(parents=True)
    old = tmp_path / "qbc" / "seed=0" / "budget=150" / "run.zarr"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    hook = FailedJobs()
    hook.started = time.time() - 60
    assert hook._only(tmp_path) == " --only budget=60"
    shutil.rmtree(tmp_path / "qbc" / "seed=0" / "budget=150")
    assert hook._only(tmp_path) == ""  # one sweep: nothing to choose


def test_a_config_dir_on_the_command_line_adds_its_choices_to_the_check(tmp_path, monkeypatch):
    (tmp_path / "simulator").mkdir()
    (tmp_path / "simulator" / "mine.yaml").write_text("_target_: mine.make_oracle\n")
    monkeypatch.chdir(tmp_path.parent)
    for flags in (["--config-dir", tmp_path.name], [f"--config-dir={tmp_path}"], ["-cd", str(tmp_path)]):
        assert check_command_line([*flags, "simulator=mine", "strategy=qbc"]) is None
    problem = check_command_line(["-cd", str(tmp_path), "simulator=mien"])
    assert problem.startswith("simulator=mien: no such simulator") and "nearest: mine" in problem
    assert str(tmp_path / "simulator" / "mien.yaml") in problem
    assert "no such simulator" in check_command_line(["simulator=mine"])  # not without the directory


def test_runs_of_another_simulator_version_are_not_added_to_a_store(interrupted, tmp_path):
    """A run resumed after the simulator's code changed would mix two codes' results: refused,
    the store untouched; the same version resumes, and a store that names none is not checked."""
    shutil.copytree(interrupted, tmp_path / "run", dirs_exist_ok=True)
    path = tmp_path / "run" / "run.zarr"
    make_loop(budget=20).run(tmp_path / "short.zarr", simulator_version="version 1")
    with pytest.raises(StoreMismatchError, match=r"holds runs of another version of the simulator \(version 1; "
                                                 r"it is now version 2\)"):
        make_loop(budget=20).run(tmp_path / "short.zarr", simulator_version="version 2")
    assert make_loop(budget=20).run(tmp_path / "short.zarr", simulator_version="version 1").attrs[
        "simulator_version"] == "version 1"
    before = read_run(path).sizes["sample"]
    assert make_loop().run(path, simulator_version="source 0123").attrs["stop_reason"] == "budget spent"
    assert read_run(path).sizes["sample"] > before


def test_the_resource_trackers_warning_after_ctrl_c_is_filtered_and_other_filters_kept():
    from experiments.run import quiet_resource_tracker

    environ = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    quiet_resource_tracker(environ)
    quiet_resource_tracker(environ)  # once only
    assert environ["PYTHONWARNINGS"] == "error::DeprecationWarning,ignore:resource_tracker:UserWarning"
    empty: dict[str, str] = {}
    quiet_resource_tracker(empty)
    assert empty == {"PYTHONWARNINGS": "ignore:resource_tracker:UserWarning"}


def simulator_looked_up(name: str):
    """A simulator factory that looks its simulator up in a table."""
    return {"pendulum": object()}[name]


def test_a_key_error_in_a_simulators_factory_says_what_and_where():
    from omegaconf import OmegaConf

    from experiments.run import build

    cfg = OmegaConf.create({"simulator": {"_target_": "tests.test_bad_input.simulator_looked_up", "name": "pendulm"},
                            "learner": {"_target_": "alframe.space.Box", "names": ["a"], "lower": [1], "upper": [0]}})
    with pytest.raises(ConfigError) as caught:
        build(cfg, "simulator")
    assert str(caught.value) == ("config 'simulator' (tests.test_bad_input.simulator_looked_up): KeyError: 'pendulm' "
                                 "(test_bad_input.py:1)".replace(":1)", f":{simulator_looked_up.__code__.co_firstlineno + 2})"))
    with pytest.raises(ConfigError, match=r"^config 'learner' \(alframe.space.Box\): input 'a' needs lower < upper"):
        build(cfg, "learner")  # not a lookup: its message says enough


def test_a_simulator_file_that_nests_its_node_without_the_package_line_is_told_how():
    from omegaconf import OmegaConf

    from experiments.run import build_oracle

    cfg = OmegaConf.create({"simulator": {"simulator": {"_target_": "simulators.testfunctions.make_branin"}}})
    with pytest.raises(ConfigError) as caught:
        build_oracle(cfg)
    assert str(caught.value).startswith("simulator: its node has no _target_ (its keys: simulator); a file in "
                                        "simulator/ is the node itself")
    assert "# @package _global_" in str(caught.value)
