"""Runs chosen by committee on a cheap proxy against uniform n, through Hydra and the verdict.

The `turbulence_active` preset on the lognormal surrogate, shrunk to a tiny grid, committee
and budget: the strategies run through `experiments.run`, and `experiments.compare` reads
their stores. The committee's proxy runs must be charged against the budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from alframe.store import read_run
from experiments import compare, run
from alframe.strategies import ProxyDisagreement, ProxyInverseError
from simulators.turbulence import IndexCommittee, InvalidSetting, flipped, resolution_cost

CONF = Path(__file__).resolve().parents[2] / "conf"
STRATEGIES = ("random", "committee_proxy", "committee_proxy_error")
BUDGET, N_INITIAL, BATCH, CANDIDATES = 9, 4, 2, 8
TINY_LEARNER = ["learner.committee.members=2", "learner.committee.conv_features=[4]", "learner.committee.dense=[8]",
                "learner.committee.steps_first=40", "learner.committee.steps_warm=10"]
TINY = [
    "experiment=turbulence_active", "simulator=turbulence_surrogate", "simulator.n_cells=16",
    "simulator.image_size=8", "proxy_cells=8", f"budget={BUDGET}", f"batch_size={BATCH}",
    f"n_initial={N_INITIAL}", "test_size=6", f"candidates.size={CANDIDATES}", "progress=false",
    *TINY_LEARNER,
]


def composed(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, *overrides])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("turbulence_active")
    for strategy in STRATEGIES:
        out = root / strategy / "seed=0"
        out.mkdir(parents=True)
        run.run(composed(f"strategy={strategy}"), out, strategy_name=strategy)
    return root


@pytest.mark.parametrize("name, kind", [("committee_proxy", ProxyDisagreement), (None, ProxyInverseError)])
def test_the_preset_builds_a_proxy_strategy_charged_by_resolution(name, kind):
    cfg = composed(*([f"strategy={name}"] if name else []))  # the preset's own strategy when None
    strategy = instantiate(cfg.strategy)
    assert type(strategy) is kind
    assert strategy.proxy.simulator.n_cells == 8 and strategy.proxy.simulator.image_size == 8
    assert strategy.selection_cost(CANDIDATES) == pytest.approx(CANDIDATES / 16)
    learner = instantiate(cfg.learner)
    assert learner.committee.image_shape == (8, 8) and learner.committee.capacity == 4 * BUDGET


@pytest.mark.parametrize("strategy", STRATEGIES[1:])
def test_proxy_runs_are_charged_against_the_budget(sweep, strategy):
    uniform = read_run(sweep / "random" / "seed=0" / "run.zarr")
    proxy = read_run(sweep / strategy / "seed=0" / "run.zarr")
    assert uniform.sizes["sample"] == BUDGET and "selection_cost" not in uniform
    charge = proxy["selection_cost"].values
    assert charge[0] == pytest.approx(CANDIDATES * resolution_cost(16, 8))
    rows_at_fit = np.array([(proxy["round_of"].values < r).sum() for r in proxy["round"].values])
    np.testing.assert_allclose(proxy["n_runs"].values, rows_at_fit + np.concatenate([[0], np.cumsum(charge)[:-1]]))
    # 4 + (0.5 + 2) + (0.5 + 2) = 9: one full run fewer than the uniform strategy made.
    assert proxy.sizes["sample"] == BUDGET - 1 and proxy["n_runs"].values[-1] == BUDGET
    assert proxy.attrs["stop_reason"] == "budget spent"
    # The committee reads maps: the test error is of the predicted n, well below n's range.
    assert 0 < proxy["rmse"].values[-1] < 1.5


def test_the_verdict_reads_the_stores_at_equal_cost(sweep):
    # A tiny committee has no skill, so no default target is kept: compare at passive's final rmse.
    table = compare.compare(sweep, metric="rmse", relative=[1.0], retrain=False)
    assert set(table["strategy"]) == set(STRATEGIES)
    comparison = compare.combine(compare.load_runs(sweep), ["rmse"])
    assert comparison["n_labeled"].values.max() == BUDGET
    for name in ("summary.csv", "learning_curves.png", "queried_points.png"):
        assert (sweep / name).is_file()


def test_the_retrain_check_scores_with_the_runs_own_scorer(sweep):
    runs = compare.load_runs(sweep)
    scratch = compare.retrain_from_scratch(runs, metric="rmse").set_index("strategy")
    # Refitted map -> n committees scored on the held-out maps: an error of n, not of a map.
    assert set(scratch.index) == set(STRATEGIES)
    assert np.all((scratch["rmse_from_scratch"] > 0) & (scratch["rmse_from_scratch"] < 1.5))
    assert np.all(scratch["n_labeled"] == [read_run(sweep / s / "seed=0" / "run.zarr")["ok"].values.sum()
                                           for s in scratch.index])


def test_flips_and_bad_settings():
    images = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)
    flips = flipped(images, (2, 2)).reshape(4, 2, 2, 2)
    np.testing.assert_array_equal(flips[1, 0], images[0].reshape(2, 2)[::-1])
    np.testing.assert_array_equal(flips[3, 1], images[1].reshape(2, 2)[::-1, ::-1])
    with pytest.raises(InvalidSetting, match="proxy_cells must be below n_cells 16, got 16"):
        resolution_cost(16, 16)
    cfg = composed("strategy=committee_proxy")
    with pytest.raises(InvalidSetting, match="regression"):
        IndexCommittee(committee=instantiate(cfg.learner.committee, task="classification", n_classes=2))


# -- the reproduction preset (experiment=turbulence_index) ----------------------------------

INDEX_TINY = ["experiment=turbulence_index", "job.surrogate=true", "job.n_runs=5", "job.probe_runs=3",
              "job.steps=20", "job.members=2", "job.conv=[4]", "job.dense=[8]", "job.batch_size=16",
              "progress=false"]


def test_the_reproduction_preset_runs_the_script_and_returns_its_figures(tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=INDEX_TINY)
    final = run.run_job(cfg, tmp_path)
    assert 0.0 <= final["accuracy"] <= 1.0 and 0.0 <= final["f1"] <= 1.0
    for name in ("confusion.png", "response.png", "figures.json"):
        assert (tmp_path / name).is_file()


def test_the_reproduction_preset_names_a_bad_setting(tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*INDEX_TINY, "job.n_runs=2"])
    with pytest.raises(InvalidSetting, match="job.n_runs must be >= 5"):
        run.run_job(cfg, tmp_path)


# -- the proxy-signal benchmark ---------------------------------------------------------------

def test_the_proxy_signal_benchmark_writes_every_rating(tmp_path):
    from experiments.bench import turbulence_proxy_signal

    out = tmp_path / "signal.json"
    assert turbulence_proxy_signal.main(["--grid", "16", "--proxies", "8", "--train", "4", "--reps", "1",
                                         "--pool", "10", "--out", str(out), "--", *TINY_LEARNER]) == 0
    report = json.loads(out.read_text())
    (fit,) = report["fits"]
    for key in ("spearman_variance_full", "spearman_variance_proxy8", "spearman_error_proxy8"):
        assert -1 <= fit[key] <= 1
    assert report["summary"]["proxy_cost"] == {"8": pytest.approx(1 / 16)}
    with pytest.raises(SystemExit):
        turbulence_proxy_signal.main(["--train", "32", "--pool", "32"])
