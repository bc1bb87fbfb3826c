"""experiments/compare.py: the verdict of a sweep, on synthetic curves and on a real tiny sweep."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from experiments.compare import SweepError, combine, default_targets, main, sims_needed, summarise

REPO = Path(__file__).resolve().parents[1]
TINY = ["budget=30", "batch_size=10", "n_initial=10", "test_size=200", "learner.steps_first=200",
        "learner.steps_warm=50", "learner.hidden=[16]", "progress=false"]


def synthetic(speedup: float, seeds: int = 8, budget: int = 1000) -> xr.Dataset:
    """Curves mse = 1/n for passive and 1/(speedup n) for active, with per-seed jitter."""
    grid = np.arange(20, budget + 1, 10)
    rng = np.random.default_rng(0)
    passive = np.array([1.0 / grid * rng.uniform(0.9, 1.1) for _ in range(seeds)])
    active = np.array([1.0 / (speedup * grid) * rng.uniform(0.9, 1.1) for _ in range(seeds)])
    return xr.Dataset(
        {"mse": (("strategy", "seed", "n_labeled"), np.stack([active, passive]))},
        coords={"strategy": np.array(["qbc", "random"], dtype=object), "seed": np.arange(seeds), "n_labeled": grid},
    )


def test_summary_recovers_a_known_speedup_and_calls_it_significant():
    comp = synthetic(speedup=3.0)
    table = summarise(comp, metric="mse", passive="random", targets=[1e-2, 2e-3], budget=1000)
    qbc = table[table.strategy == "qbc"].set_index("target")
    random = table[table.strategy == "random"].set_index("target")
    assert qbc.loc[1e-2, "ratio_vs_passive"] == pytest.approx(3.0, rel=0.2)
    assert qbc.loc[2e-3, "ratio_vs_passive"] == pytest.approx(3.0, rel=0.2)
    assert (qbc["p_value"] < 0.01).all()
    assert random["p_value"].isna().all()
    assert (random["ratio_vs_passive"] == 1.0).all()


def test_no_difference_is_not_significant():
    comp = synthetic(speedup=1.0)
    comp["mse"][0] = comp["mse"][1]  # identical curves
    table = summarise(comp, metric="mse", passive="random", targets=[1e-2], budget=1000)
    assert table.loc[table.strategy == "qbc", "p_value"].item() == 1.0


def test_a_target_never_reached_counts_as_over_budget():
    comp = synthetic(speedup=2.0)
    need = sims_needed(comp, "mse", 1e-5)
    assert np.isnan(need.values).all()
    table = summarise(comp, metric="mse", passive="random", targets=[1e-5], budget=1000)
    assert (table.median_simulations == 1001).all()
    assert (table.seeds_reached == 0).all()


def test_default_targets_start_with_passive_final_error():
    comp = synthetic(speedup=2.0)
    targets = default_targets(comp, "mse", "random")
    final = float(np.median(comp.mse.sel(strategy="random").values[:, -1]))
    assert final in targets
    assert all(final <= t for t in targets)


def test_missing_passive_strategy_is_named():
    with pytest.raises(SweepError, match="'sobol'"):
        summarise(synthetic(2.0), metric="mse", passive="sobol", targets=[1e-2], budget=1000)


def test_combine_holds_the_last_value_between_rounds():
    def run(n_runs, mse):
        return xr.Dataset({"n_runs": ("round", n_runs), "mse": ("round", mse)})

    comp = combine({("a", 0): run([10, 30], [1.0, 0.5]), ("b", 0): run([10, 20, 30], [2.0, 1.5, 1.0])}, ["mse"])
    np.testing.assert_array_equal(comp.n_labeled.values, [10, 20, 30])
    np.testing.assert_array_equal(comp.mse.sel(strategy="a", seed=0).values, [1.0, 1.0, 0.5])


def test_compare_refuses_an_empty_directory(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no run.zarr" in capsys.readouterr().err


def run_sweep(sweep: Path, *overrides: str) -> None:
    """A tiny `experiments.run -m` sweep into `sweep`; fails the test if it fails."""
    run = subprocess.run(
        [sys.executable, "-m", "experiments.run", "-m", *overrides, *TINY, f"hydra.sweep.dir={sweep}"],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=400,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_real_sweep_end_to_end(tmp_path):
    sweep = tmp_path / "sweep"
    run_sweep(sweep, "experiment=potential1d_compare", "seed=0,1")
    assert len(list(sweep.rglob("run.zarr"))) == 4
    verdict = subprocess.run([sys.executable, "-m", "experiments.compare", str(sweep)], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert verdict.returncode == 0, verdict.stderr[-2000:]
    assert "ratio_vs_passive" in verdict.stdout
    records = json.loads((sweep / "summary.json").read_text())
    assert {"target", "strategy", "median_simulations", "ratio_vs_passive", "p_value"} <= set(records[0])
    assert {r["strategy"] for r in records} == {"qbc_spread", "random"}
    comp = xr.open_zarr(sweep / "comparison.zarr")
    assert {"strategy", "seed", "n_labeled"} <= set(comp.dims)
    assert comp.sizes["seed"] == 2
    for name in ("learning_curves.png", "queried_points.png", "query_energy.png", "summary.csv", "retrain.csv"):
        assert (sweep / name).stat().st_size > 0, name


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="hydra-submitit-launcher is not installed (the slurm or test extra)")
def test_the_submitit_launcher_runs_a_sweep_locally(tmp_path):
    sweep = tmp_path / "sweep"
    run_sweep(sweep, "hydra/launcher=local_processes", "seed=0")
    (store,) = sweep.rglob("run.zarr")
    ds = xr.open_zarr(store)
    assert ds.sizes["sample"] == 30
    assert ds.attrs["stop_reason"] == "budget spent"
