"""experiments/compare.py: the verdict of a sweep, on synthetic curves and on a real tiny sweep."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from alframe.store import write_zarr
from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box, declaration
from alframe.strategies import RandomSampling
from experiments.compare import (SweepError, Target, combine, compare, default_targets, display_table, load_runs,
                                 median_bound, strategy_free,
                                 main, retrain_from_scratch, sims_needed, summarise, verdict_lines)

REPO = Path(__file__).resolve().parents[1]


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
    assert table.censored.all()
    assert table.set_index("strategy").loc["qbc", "ratio_bound"] == "?"
    assert (display_table(table).median_simulations == "> 1000").all()


def test_default_targets_start_with_passive_final_error():
    comp = synthetic(speedup=2.0)
    targets, notes = default_targets(comp, "mse", "random")
    final = float(np.median(comp.mse.sel(strategy="random").values[:, -1]))
    assert targets[-1] == Target(final, "passive_final")
    assert all(final <= t.value for t in targets)
    assert {t.kind for t in targets[:-1]} == {"intermediate"} and 1 <= len(targets) - 1 <= 3
    assert notes == []


def test_a_censored_median_prints_over_budget_and_bounds_the_ratio():
    comp = synthetic(speedup=3.0)
    # passive reaches 1.05e-3 only on the seeds whose jitter is below 1.05, so at most half.
    target = float(np.sort(comp.mse.sel(strategy="random").values[:, -1])[2]) * 1.0001
    table = summarise(comp, metric="mse", passive="random", targets=[target], budget=1000)
    rows = table.set_index("strategy")
    assert rows.loc["random", "seeds_reached"] == 3 and rows.loc["random", "censored"]
    assert not rows.loc["qbc", "censored"] and rows.loc["qbc", "ratio_bound"] == ">="
    shown = display_table(table).set_index("strategy")
    assert shown.loc["random", "median_simulations"] == "> 1000"
    assert shown.loc["qbc", "ratio_vs_passive"].startswith(">= ")
    ratio = float(shown.loc["qbc", "ratio_vs_passive"][3:])
    assert ratio == pytest.approx(1001 / rows.loc["qbc", "median_simulations"], rel=0.05)
    assert rows.loc["qbc", "p_value"] < 0.01 and rows.loc["qbc", "p_worse"] > 0.99


def test_exactly_half_the_seeds_reaching_makes_the_median_a_lower_bound():
    comp = synthetic(speedup=3.0)
    target = float(np.sort(comp.mse.sel(strategy="random").values[:, -1])[3]) * 1.0001
    # A budget past the last round, so that the median (the last round averaged with budget + 1)
    # stays within it.
    rows = summarise(comp, metric="mse", passive="random", targets=[target], budget=1100).set_index("strategy")
    assert rows.loc["random", "seeds_reached"] == 4 and rows.loc["random", "median_bound"] == ">="
    assert not rows.loc["random", "censored"] and rows.loc["qbc", "ratio_bound"] == ">="


def test_half_the_seeds_reaching_at_the_last_round_is_censored_in_the_table_as_printed():
    # The median averages the last round (the budget) with an unreached seed (budget + 1): the
    # table says "> budget", and so must summary.csv's bound.
    rows = median_bound(4, 8, median=1000.5, budget=1000), median_bound(4, 8, median=990.0, budget=1000)
    assert rows == (">", ">=")
    assert median_bound(3, 8, median=900.0, budget=1000) == ">" and median_bound(5, 8, 900.0, 1000) == ""


def test_a_target_the_initial_design_reaches_is_dropped():
    comp = synthetic(speedup=3.0)
    comp["mse"][1] = comp["mse"][1, :, :1].values  # passive never improves on its initial design
    targets, notes = default_targets(comp, "mse", "random")
    assert targets == []
    assert len(notes) == 2 and "initial design" in notes[0] and "passive_final" in notes[0]


def test_errors_below_the_resolution_are_no_targets_and_intermediate_ones_stay_above_it():
    """A simulator learnt to round-off (R^2 = 1 - 1e-9 at the end): passive's final error is no
    target, and the intermediate targets lie above 1e-6 of the constant predictor's error."""
    comp = synthetic(speedup=3.0)
    comp["mse"] = comp["mse"] * 1e-4  # from 5e-6 at the initial design to passive's 1e-7 at the end
    comp["mse_constant"] = xr.full_like(comp["mse"], 1.0)
    targets, notes = default_targets(comp, "mse", "random")
    assert targets and all(t.kind == "intermediate" and t.value > 1e-6 for t in targets)
    assert len(notes) == 1 and "passive_final" in notes[0] and "R^2 above 1 - 1e-06" in notes[0]
    rmse_targets, rmse_notes = default_targets(comp.assign(rmse=np.sqrt(comp["mse"])), "rmse", "random")
    assert all(t.value > 1e-3 for t in rmse_targets)
    assert "the constant predictor's rmse is 1)" in rmse_notes[0]
    comp["mse_constant"] = xr.full_like(comp["mse"], 1e-6)  # the same errors, a constant predictor 1e6 times better
    targets, notes = default_targets(comp, "mse", "random")
    assert targets[-1].kind == "passive_final" and notes == []


def test_missing_passive_strategy_is_named():
    with pytest.raises(SweepError, match="'sobol'.*qbc, random.*--passive NAME"):
        summarise(synthetic(2.0), metric="mse", passive="sobol", targets=[1e-2], budget=1000)


def test_combine_holds_the_last_value_between_rounds():
    def run(n_runs, mse):
        return xr.Dataset({"n_runs": ("round", n_runs), "mse": ("round", mse)})

    comp = combine({("a", 0): run([10, 30], [1.0, 0.5]), ("b", 0): run([10, 20, 30], [2.0, 1.5, 1.0])}, ["mse"])
    np.testing.assert_array_equal(comp.n_labeled.values, [10, 20, 30])
    np.testing.assert_array_equal(comp.mse.sel(strategy="a", seed=0).values, [1.0, 1.0, 0.5])


def test_combine_keeps_every_numeric_per_round_variable():
    def run(r2):
        ds = xr.Dataset({"n_runs": ("round", [10, 20]), "n_labeled": ("round", [9, 19]), "mse": ("round", [1.0, 0.5]),
                         "learner": ("round", np.array(["mlp", "mlp"], dtype=object)),
                         "mse_per_output": (("round", "output"), [[1.0, 2.0], [0.5, 1.0]])},
                        coords={"round": [1, 2], "output": np.array(["u", "v"], dtype=object)})
        return ds.assign(r2=("round", r2)) if r2 is not None else ds

    comp = combine({("a", 0): run([0.1, 0.6]), ("b", 0): run(None)})  # b: an old store without r2
    assert {"round", "n_runs", "round_n_labeled", "mse", "r2", "mse_per_output"} == set(comp.data_vars)
    assert comp.mse_per_output.dims == ("strategy", "seed", "n_labeled", "output")
    np.testing.assert_array_equal(comp.round_n_labeled.sel(strategy="a", seed=0).values, [9, 19])
    assert np.isnan(comp.r2.sel(strategy="b").values).all()
    assert json.loads(comp.attrs["higher_is_better"]) == ["r2"]


def test_combine_keeps_what_the_outputs_are_where_and_in_which_units():
    ds = xr.Dataset({"n_runs": ("round", [10, 20]), "mse_per_output": (("round", "output"), [[1.0, 2.0], [0.5, 1.0]])},
                    coords={"round": [1, 2], "output": np.array(["f500", "f900"], dtype=object),
                            "wavelength": ("output", [500.0, 900.0])},
                    attrs={"output_coord_name": "wavelength", "output_units": ["erg/s", "erg/s"]})
    comp = combine({("a", 0): ds, ("b", 0): ds})
    np.testing.assert_array_equal(comp["wavelength"].values, [500.0, 900.0])
    assert comp["wavelength"].dims == ("output",) and comp.attrs["output_units"] == ["erg/s", "erg/s"]
    assert comp.attrs["output_coord_name"] == "wavelength"


def test_compare_refuses_an_empty_directory(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no run.zarr" in capsys.readouterr().err


# -- whole verdicts on small stores written straight to disk ---------------------------


TEST_INPUTS = np.random.default_rng(20190101).uniform(size=(5, 2))  # one test set for every seed and strategy


def fake_run(path: Path, *, strategy: str, seed: int, mse: np.ndarray, grid: np.ndarray, budget: int | None = None,
             mse_constant: float | None = None, extra: dict | None = None, attrs: dict | None = None,
             simulator: dict | None = None, test_inputs: np.ndarray | None = None, outputs: int = 1,
             failed: int = 0, test_size: int | None = None, target: float | None = None,
             test_set: dict | None = None) -> None:
    """A finished run store with per-round `mse` (and r2 when `mse_constant` is given) at `grid`,
    scored on the sweep's shared test set (or on `test_inputs`)."""
    budget = int(grid[-1]) if budget is None else budget
    n = int(grid[-1])
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2))
    x_test = TEST_INPUTS if test_inputs is None else test_inputs
    rounds = {"n_runs": grid, "n_labeled": grid, "mse": mse, "fit_s": np.zeros(len(grid)), **(extra or {})}
    if mse_constant is not None:
        rounds.update(mse_constant=np.full(len(grid), mse_constant), r2=1 - mse / mse_constant)
    config = {"strategy_name": strategy, "simulator": simulator or {"_target_": "simulators.toy.make_oracle"},
              **({} if test_size is None else {"test_size": test_size, "test_set": None}),
              **({} if target is None else {"target": target, "target_metric": "mse"}),
              **({} if test_set is None else {"test_set": test_set})}
    ds = xr.Dataset(
        {"x": (("sample", "input"), x), "y": (("sample", "output"), np.repeat(x[:, :1], outputs, axis=1)),
         "ok": ("sample", np.arange(n) >= failed),
         "round_of": ("sample", np.searchsorted(grid, np.arange(n), side="right").astype(np.int32)),
         "x_test": (("test_sample", "input"), x_test),
         "y_test": (("test_sample", "output"), np.repeat(x_test[:, :1], outputs, axis=1)),
         **{k: ("round", np.asarray(v, dtype=np.float64)) for k, v in rounds.items()}},
        coords={"input": np.array(["a", "b"], dtype=object),
                "output": np.array(["y"] if outputs == 1 else [f"y{i}" for i in range(outputs)], dtype=object),
                "round": np.arange(1, len(grid) + 1)},
        attrs={"config": json.dumps(config), "seed": seed, "task": "regression", "budget": budget, "batch_size": 10,
               "label": f"{strategy} seed={seed}", "stop_reason": "budget spent", **(attrs or {})},
    )
    write_zarr(ds, path / strategy / f"seed={seed}" / "run.zarr", mode="w")


def fake_sweep(sweep: Path, *, speedup: float = 3.0, seeds: int = 6, skill: float | None = None, **kwargs) -> Path:
    """qbc's mse = 1 / (speedup n), random's 1 / n after a shared initial design (1 / 20), jittered
    per seed; with r2 when `skill` (passive's final R^2) is given."""
    grid = np.arange(20, 401, 20)
    rng = np.random.default_rng(1)
    for seed in range(seeds):
        initial = 1.0 / 20 * rng.uniform(0.9, 1.1)
        for strategy, factor in (("qbc", speedup), ("random", 1.0)):
            mse = np.concatenate([[initial], 1.0 / (factor * grid[1:]) * rng.uniform(0.9, 1.1)])
            constant = None if skill is None else (1 / 400) / (1 - skill)
            fake_run(sweep, strategy=strategy, seed=seed, mse=mse, grid=grid, mse_constant=constant, **kwargs)
    return sweep


def test_a_passive_model_without_skill_is_no_target(tmp_path, capsys):
    sweep = fake_sweep(tmp_path, skill=0.1)
    # Every round value between passive's final error and the initial design's asks for R^2 < 0.2:
    # none is a target.
    assert compare(sweep, retrain=False).empty
    out = capsys.readouterr().out
    assert "no useful skill (R^2 = 0." in out and "no default target is left to compare at" in out
    verdict = (sweep / "verdict.txt").read_text()
    assert "no useful skill (R^2 = 0." in verdict and "qbc needs" not in verdict
    # A target of some skill, given, is compared at.
    table = compare(sweep, retrain=False, targets=[0.3])
    assert set(table.target_kind) == {"given"}
    records = json.loads((sweep / "summary_targets.json").read_text())
    assert isinstance(records, list) and {r["target_kind"] for r in records} == {"given"}
    assert set(records[0]) == {"target", "target_kind", "metric", "strategy", "budget", "median_simulations",
                               "median_bound", "q25_simulations", "q75_simulations", "seeds_reached", "seeds",
                               "censored", "ratio_vs_passive", "ratio_bound", "p_value", "p_worse", "r2",
                               "final_metric"}
    qbc = next(r for r in records if r["strategy"] == "qbc")
    assert 0.5 < qbc["r2"] < 1 and qbc["censored"] is False


def test_no_target_left_still_writes_the_files_and_says_why(tmp_path):
    grid = np.arange(20, 101, 20)
    for seed in range(3):
        for strategy in ("qbc", "random"):  # neither learns: the error stays at the initial design's
            fake_run(tmp_path, strategy=strategy, seed=seed, mse=np.full(len(grid), 0.1 + 0.01 * seed), grid=grid,
                     mse_constant=0.1)
    table = compare(tmp_path, retrain=False)
    assert table.empty and list(table.columns)[:3] == ["target", "target_kind", "metric"]
    assert json.loads((tmp_path / "summary.json").read_text()) == []
    verdict = (tmp_path / "verdict.txt").read_text()
    assert "no useful skill" in verdict and "no default target is left" in verdict


def test_a_skilled_passive_model_is_a_target_and_old_stores_have_no_r2(tmp_path):
    sweep = fake_sweep(tmp_path / "new", skill=0.9)
    table = compare(sweep, retrain=False)
    final = table[table.target_kind == "passive_final"].set_index("strategy")
    assert final.loc["random", "r2"] == pytest.approx(0.9, abs=0.1)
    assert final.loc["qbc", "ratio_vs_passive"] == pytest.approx(3.0, rel=0.35)
    assert (sweep / "learning_curves.png").stat().st_size > 0
    old = compare(fake_sweep(tmp_path / "old", seeds=3), retrain=False)
    assert "passive_final" in set(old.target_kind) and old.r2.isna().all()
    assert json.loads((tmp_path / "old" / "summary.json").read_text())[0]["r2"] is None


def test_the_verdict_shows_r2_to_the_digits_that_tell_strategies_apart(tmp_path):
    sweep = fake_sweep(tmp_path, skill=0.999)
    final = compare(sweep, retrain=False).query("target_kind == 'passive_final'").set_index("strategy")
    line = next(v for v in (sweep / "verdict.txt").read_text().splitlines() if "(passive_final)" in v)
    assert f"final R^2 {final.loc['qbc', 'r2']:.5f} against random's {final.loc['random', 'r2']:.5f}" in line
    assert "1.00" not in line


def test_a_vector_output_verdict_says_its_mse_is_of_standardised_outputs(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "vector", skill=0.9, outputs=3)
    compare(sweep, retrain=False)
    note = "mse is of the 3 outputs each divided by its test-set standard deviation"
    assert note in capsys.readouterr().out and note in (sweep / "verdict.txt").read_text()


def test_the_verdict_names_the_worst_learnt_output_of_a_vector():
    from experiments.compare import worst_output_note

    def comp(worst):
        r2 = np.array([[0.99, worst[0]], [0.98, worst[1]]])  # (strategy, output) at the last round
        per_output = np.broadcast_to(r2[:, None, None, :], (2, 3, 2, 2))
        return xr.Dataset({"r2_per_output": (("strategy", "seed", "n_labeled", "output"), per_output),
                           "r2": (("strategy", "seed", "n_labeled"), per_output.mean(axis=-1))},
                          coords={"strategy": ["random", "qbc"], "seed": [0, 1, 2], "n_labeled": [20, 40],
                                  "output": ["omega", "xi1"]})

    note = worst_output_note(comp((0.29, 0.89)), "random")
    assert note == ("the worst-learnt of the 2 outputs (by random's final R^2) is xi1: final R^2 qbc 0.89, "
                    "random 0.29 (median over seeds), against 0.935, 0.64 for all outputs together (r2_per_output in comparison.zarr has each)")
    assert worst_output_note(comp((0.97, 0.96)), "random") is None  # no output far below the combined R^2


def test_the_verdict_gives_relative_errors_where_positive_outputs_span_decades():
    from experiments.compare import relative_error_note

    def runs(y):
        return {("random", 0): xr.Dataset({"y_test": (("test_sample", "output"), np.asarray(y, dtype=np.float64))})}

    rel = np.array([[[0.1, 1.2e-4]] * 2, [[0.1, 3.7e-3]] * 2])  # (strategy, seed, n_labeled)
    comp = xr.Dataset({"rel_err_p95": (("strategy", "seed", "n_labeled"), rel)},
                      coords={"strategy": ["random", "qbc"], "seed": [0, 1], "n_labeled": [20, 60]})
    spectrum = np.column_stack([np.logspace(-30, 34, 50), np.logspace(0, 1, 50)])
    assert relative_error_note(runs(spectrum), comp, "mse", "random") == (
        "the test outputs are positive and span up to 64 decades (down to 1e-30), so mse is decided by their "
        "largest values and a relative error by their smallest: the "
        "final 95th-percentile relative error is qbc 0.0037, random 0.00012 (median over seeds; --metric "
        "rel_err_p95 for its verdict)")
    assert relative_error_note(runs(spectrum), comp, "rel_err_p95", "random") is None
    assert relative_error_note(runs(np.logspace(0, 1, 50)[:, None]), comp, "mse", "random") is None  # one decade
    assert relative_error_note(runs(np.linspace(-1, 1e6, 50)[:, None]), comp, "mse", "random") is None  # signed


def test_the_verdict_counts_each_strategys_failed_runs(tmp_path):
    grid = np.arange(20, 101, 20)
    for seed in range(3):
        for strategy, failed in (("qbc", 10 + seed), ("random", 4)):
            fake_run(tmp_path, strategy=strategy, seed=seed, grid=grid, failed=failed,
                     mse=1.0 / grid * (1 + 0.1 * seed), mse_constant=1.0, test_size=len(TEST_INPUTS) + 7)
    compare(tmp_path, retrain=False)
    verdict = (tmp_path / "verdict.txt").read_text()
    assert ("note: failed runs per seed (charged to the budget, never trained on): qbc 10-12 of 100 (median 11), "
            "random 4 of 100 (median 4)") in verdict
    assert json.loads(xr.open_zarr(tmp_path / "comparison.zarr").attrs["failed_runs"]) == {"qbc": 11.0, "random": 4.0}
    assert (f"note: 7 of the {len(TEST_INPUTS) + 7} test-set runs failed and are left out: every error is measured "
            "where the simulator succeeds") in verdict


def test_a_classifier_barely_better_than_the_commonest_class_is_no_target():
    from experiments.compare import commonest_class_f1

    labels = np.array([0] * 895 + [1] * 105, dtype=np.float64)[:, None]  # rare outbreaks
    store = xr.Dataset({"y_test": (("test_sample", "output"), labels)},
                       attrs={"task": "classification", "classes": ["fizzle", "outbreak"]})
    constant = commonest_class_f1({("random", 0): store})
    assert constant == pytest.approx(2 * 0.895 / 1.895 / 2)  # 0.472

    def comp(final_f1):
        f1 = np.array([[[0.47, 0.50, final_f1]] * 3, [[0.47, 0.7, 0.8]] * 3])
        return xr.Dataset({"f1": (("strategy", "seed", "n_labeled"), f1)},
                          coords={"strategy": ["random", "qbc"], "seed": [0, 1, 2], "n_labeled": [20, 60, 100]},
                          attrs={"task": "classification", "f1_constant": constant})

    targets, notes = default_targets(comp(0.52), "f1", "random")
    assert all(t.kind != "passive_final" for t in targets)
    assert any("no useful skill (f1 only 9% of the way from 0.47, what predicting the commonest class everywhere "
               "scores, to 1" in n for n in notes)
    targets, notes = default_targets(comp(0.9), "f1", "random")
    assert any(t.kind == "passive_final" for t in targets) and not any("skill" in n for n in notes)
    table = summarise(comp(0.7), metric="f1", passive="random", targets=[0.7], budget=100)
    assert verdict_lines(table, passive="random", higher=True)[0].endswith("; final f1 0.8 against random's 0.7")


def test_the_verdict_names_a_class_with_few_test_points():
    from experiments.compare import rare_class_note

    def store(labels):
        return xr.Dataset({"y_test": (("test_sample", "output"), np.asarray(labels, dtype=np.float64)[:, None])},
                          attrs={"task": "classification", "classes": ["gas", "liquid", "plasma"]})

    common = [0] * 300 + [1] * 197 + [2] * 3
    runs = {("qbc", 0): store(common), ("random", 0): store(common[:-1] + [1])}
    note = rare_class_note(runs, "f1")
    assert note.startswith("few test points of a class (plasma 2 of 500): macro f1 weighs each of the 3 classes")
    balanced = {("qbc", 0): store([0] * 200 + [1] * 200 + [2] * 100)}
    assert rare_class_note(balanced, "f1") is None
    assert rare_class_note(runs, "accuracy") is None


def test_the_verdict_says_when_the_noise_is_near_passives_final_error(tmp_path):
    noisy = fake_sweep(tmp_path / "noisy", skill=0.9, seeds=3, extra={"noise_fraction": np.full(20, 0.05)})
    compare(noisy, retrain=False)
    said = (noisy / "verdict.txt").read_text()
    assert "down to observation noise (51% of random's final mse)" in said and "a noise-free test_set avoids" in said
    given = fake_sweep(tmp_path / "given", skill=0.9, seeds=3, extra={"noise_fraction": np.full(20, 0.05)},
                       test_set={"_target_": "simulators.toy.noise_free_test_set"})
    compare(given, retrain=False)
    said = (given / "verdict.txt").read_text()
    assert "scored on a given test_set: if its outputs carry that noise" in said and "avoids" not in said
    exact = fake_sweep(tmp_path / "exact", skill=0.9, seeds=3, extra={"noise_fraction": np.full(20, 1e-8)})
    compare(exact, retrain=False)
    verdict = (exact / "verdict.txt").read_text()  # one output, no failed run, no noise: none of those notes
    assert "noise" not in verdict and "standard deviation" not in verdict and "failed runs" not in verdict
    # Learnt to round-off: an error as small as the noise level's lower bound is not noise.
    rounded = fake_sweep(tmp_path / "rounded", skill=1 - 1e-8, seeds=3, extra={"noise_fraction": np.full(20, 1e-8)})
    compare(rounded, retrain=False)
    assert "noise" not in (rounded / "verdict.txt").read_text()


def test_a_custom_metric_with_a_declared_direction(tmp_path):
    grid = np.arange(20, 401, 20)
    rng = np.random.default_rng(2)
    for seed in range(6):
        for strategy, rate in (("qbc", 3.0), ("random", 1.0)):
            # "coverage" grows towards 1; only the store attr says higher is better.
            coverage = 1 - np.exp(-rate * grid / 200) * rng.uniform(0.9, 1.1)
            fake_run(tmp_path, strategy=strategy, seed=seed, mse=1.0 / grid, grid=grid,
                     extra={"coverage": coverage, "max_rel_err": 1.0 / grid},
                     attrs={"higher_is_better": json.dumps(["coverage"])})
    everything = compare(tmp_path, metric="coverage", retrain=False)
    table = everything[everything.target_kind == "passive_final"].set_index("strategy")
    assert table.loc["qbc", "ratio_vs_passive"] > 2 and table.loc["qbc", "p_value"] < 0.05
    # Round shortfalls from 1 between the initial design's coverage and passive's final one.
    final = table.loc["random", "target"]
    intermediate = sorted(everything[everything.target_kind == "intermediate"].target.unique())
    assert 1 <= len(intermediate) <= 3 and all(0 < t < final for t in intermediate)
    assert all(any(np.isclose(1 - t, m * 10.0**k) for m in (1, 3) for k in range(-6, 1)) for t in intermediate)
    comp = xr.open_zarr(tmp_path / "comparison.zarr")
    assert {"coverage", "max_rel_err", "mse"} <= set(comp.data_vars)
    assert "coverage" in json.loads(comp.attrs["higher_is_better"])
    assert "max_rel_err" not in json.loads(comp.attrs["higher_is_better"])
    assert main([str(tmp_path), "--metric", "max_rel_err", "--no-retrain"]) == 0
    # Each metric's verdict beside the others', none over the default one.
    assert main([str(tmp_path), "--no-retrain"]) == 0
    for metric, suffix in (("coverage", "_coverage"), ("max_rel_err", "_max_rel_err"), ("mse", "")):
        assert f"target {metric} (" in (tmp_path / f"verdict{suffix}.txt").read_text().splitlines()[0]
        assert (tmp_path / f"summary{suffix}.csv").exists() and (tmp_path / f"learning_curves{suffix}.png").exists()


def test_an_unknown_metric_lists_the_available_ones(tmp_path, capsys):
    fake_sweep(tmp_path, seeds=2, skill=0.9)
    assert main([str(tmp_path), "--metric", "max_rel_err", "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert "'max_rel_err'" in err and "available: mse, mse_constant, r2" in err and len(err.splitlines()) == 1


def test_targets_beyond_what_the_metric_can_be_are_said_to_be(tmp_path):
    sweep = fake_sweep(tmp_path, seeds=2, skill=0.9)
    assert main([str(sweep), "--no-retrain", "--metric", "r2", "--targets", "1.5", "--relative-targets", "2"]) == 0
    assert "target r2 = 1.5 (given) lies beyond what r2 can be (at most 1): no run reaches it" in (
        sweep / "verdict_r2_targets.txt").read_text()
    assert "(relative) lies beyond what r2 can be (at most 1)" in (sweep / "verdict_r2_relative.txt").read_text()
    assert main([str(sweep), "--no-retrain", "--targets", "-0.1"]) == 0
    assert "target mse = -0.1 (given) lies beyond what mse can be (at least 0)" in (
        sweep / "verdict_targets.txt").read_text()


def test_given_and_relative_targets_write_beside_the_default_summary(tmp_path, capsys):
    sweep = fake_sweep(tmp_path, skill=0.9)
    assert main([str(sweep), "--no-retrain", "--targets", "1e-3", "--relative-targets", "0.5"]) == 0
    default = (sweep / "summary.json").read_text()
    assert {r["target_kind"] for r in json.loads(default)} == {"intermediate", "passive_final"}
    given = json.loads((sweep / "summary_targets.json").read_text())
    assert {r["target_kind"] for r in given} == {"given"} and given[0]["target"] == 1e-3
    # passive never gets below ~2.3e-3 and qbc (1 / 3n) does at n ~ 350: a lower bound on the ratio.
    rows = {r["strategy"]: r for r in given}
    assert rows["random"]["censored"] and rows["qbc"]["ratio_bound"] == ">="
    out = capsys.readouterr().out
    assert "> 400" in out and ">= " in out
    relative = json.loads((sweep / "summary_relative.json").read_text())
    final = next(r for r in json.loads(default) if r["strategy"] == "random")["final_metric"]
    assert relative[0]["target_kind"] == "relative" and relative[0]["target"] == pytest.approx(final / 0.5)
    assert (sweep / "verdict_targets.txt").is_file() and (sweep / "verdict_relative.txt").is_file()
    assert "round-off" not in (sweep / "verdict_targets.txt").read_text()
    # The constant predictor's mse is 0.025: a target of 1e-9 asks for R^2 above 1 - 1e-6.
    assert main([str(sweep), "--no-retrain", "--targets", "1e-9"]) == 0
    assert ("target mse = 1e-09 (given) asks for R^2 above 1 - 1e-06 (the constant predictor's mse is 0.025): its "
            "counts measure round-off") in (sweep / "verdict_targets.txt").read_text()


def test_runs_of_different_budgets_are_refused(tmp_path):
    grid = np.arange(20, 101, 20)
    fake_run(tmp_path, strategy="random", seed=0, mse=1 / grid, grid=grid, budget=100)
    fake_run(tmp_path, strategy="qbc", seed=0, mse=1 / grid[:3], grid=grid[:3], budget=60)
    with pytest.raises(SweepError, match=r"different budgets.*: 60 in .*qbc.*, 100 in .*random"):
        load_runs(tmp_path)


def test_runs_of_different_simulators_are_refused(tmp_path):
    grid = np.arange(20, 101, 20)
    fake_run(tmp_path, strategy="random", seed=0, mse=1 / grid, grid=grid, simulator={"_target_": "a", "noise": 0.1})
    fake_run(tmp_path, strategy="qbc", seed=0, mse=1 / grid, grid=grid, simulator={"_target_": "a", "noise": 0.2})
    with pytest.raises(SweepError, match=r"different simulators: noise: 0.2 vs 0.1 \(.*qbc.* against .*random"):
        load_runs(tmp_path)


def test_a_simulator_seeded_by_the_run_is_one_simulator(tmp_path):
    grid = np.arange(20, 101, 20)
    for seed in (0, 1):
        for strategy in ("qbc", "random"):
            fake_run(tmp_path, strategy=strategy, seed=seed, mse=1 / grid, grid=grid,
                     simulator={"_target_": "a", "seed": seed, "noise": {"seed": seed, "scale": 0.1}})
    assert len(load_runs(tmp_path)) == 4
    fake_run(tmp_path, strategy="sobol", seed=1, mse=1 / grid, grid=grid, simulator={"_target_": "a", "seed": 7})
    with pytest.raises(SweepError, match=r"different simulators: noise: .* vs null; seed: 1 vs 7"):
        load_runs(tmp_path)


def test_a_sweep_without_the_passive_strategy_is_one_line(tmp_path, capsys):
    grid = np.arange(20, 101, 20)
    fake_run(tmp_path, strategy="qbc", seed=0, mse=1 / grid, grid=grid)
    assert main([str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert "'random' is not in the sweep (strategies found: qbc)" in err and "--passive NAME" in err
    assert len(err.splitlines()) == 1


def test_a_damaged_store_is_named(tmp_path):
    grid = np.arange(20, 101, 20)
    fake_run(tmp_path, strategy="random", seed=0, mse=1 / grid, grid=grid)
    store = tmp_path / "random" / "seed=0" / "run.zarr"
    (store / "zarr.json").write_text("{not json")
    with pytest.raises(SweepError, match=f"cannot read the run store {store}"):
        load_runs(tmp_path)


def test_the_refit_from_scratch_sees_the_inputs_as_the_loop_did(tmp_path):
    """A log-scale input reaches the loop's learner as its log10; refitting the final runs on the
    raw values instead would judge a different model."""
    from hydra.utils import instantiate

    from tests.conftest import make_loop

    box = Box(names=("rate", "u"), lower=(1e-4, 0.0), upper=(1e-1, 1.0), log=("rate",))
    oracle = FunctionOracle(fn=lambda x: np.log10(x[:, 0]) * np.cos(3 * x[:, 1]), space=box,
                            outputs=OutputSpec(names=("y",)))
    learner = {"_target_": "alframe.learners.GaussianProcessCommittee", "folds": 2}
    ds = make_loop(oracle=oracle, committee=instantiate(learner), strategy=RandomSampling(), budget=30).run(
        tmp_path / "run.zarr", config={"learner": learner})
    assert Box(**json.loads(ds.attrs["input_space"])) == box and json.loads(ds.attrs["input_space"]) == declaration(box)
    refit = retrain_from_scratch({("random", 0): ds}, metric="mse").iloc[0]
    assert refit.mse_from_scratch == pytest.approx(refit.mse_in_loop, rel=0.05)


USER_SIMULATOR = """
import os

import numpy as np
from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box


def simulate(x):
    with open(os.environ["USERSIM_LOG"], "a") as log:  # one line per simulation, whichever process ran it
        log.write("x\\n" * len(x))
    return (np.sin(3 * x[:, 0]) + x[:, 1] ** 2)[:, None]


def make_oracle(width: float = 1.0):
    box = Box(names=("a", "b"), lower=(-width, -width), upper=(width, width))
    return FunctionOracle(simulate, box, OutputSpec(("f",)), version="1")
"""


@pytest.mark.slow
def test_a_real_sweep_of_a_simulator_from_outside_the_repository_end_to_end(tmp_path, capsys):
    """A user's module and config directory (`--config-dir`), experiment=compare with a forest
    committee: the sweep lands under multirun/compare/<simulator>/<learner>, so another
    simulator's or learner's sweep never meets it, and its verdict is complete."""
    (tmp_path / "usersim.py").write_text(USER_SIMULATOR)
    (tmp_path / "conf" / "simulator").mkdir(parents=True)
    (tmp_path / "conf" / "simulator" / "usersim.yaml").write_text("_target_: usersim.make_oracle\nwidth: 1.0\n")
    # One job at a time: in the sweep's own process, with no workers to start.
    overrides = ["-m", "--config-dir", "conf", "experiment=compare", "simulator=usersim",
                 "learner=extra_trees_regression", "learner.estimator.n_estimators=10",
                 "seed=0,1", "budget=30", "batch_size=10", "n_initial=10", "test_size=50", "candidates.size=100",
                 "progress=false", "hydra.launcher.n_jobs=1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
           "USERSIM_LOG": str(tmp_path / "simulations.log")}
    proc = subprocess.run([sys.executable, "-m", "experiments.run", *overrides], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sweep = tmp_path / "multirun" / "compare" / "usersim" / "extra_trees_regression"
    # The jobs share their simulations: the test set once, each seed's initial design once.
    simulated = len((tmp_path / "simulations.log").read_text().splitlines())
    assert (sweep / "simulations").is_dir()
    assert simulated <= 50 + 2 * (10 + 20 + 20), simulated  # against 4 jobs x (50 + 30) = 320 unshared
    assert proc.stderr.strip().splitlines()[-1] == ("alframe: sweep done; its verdict: python -m experiments.compare "
                                                   "multirun/compare/usersim/extra_trees_regression")
    stores = sorted(sweep.rglob("run.zarr"))
    assert len(stores) == 4  # random and qbc, seeds 0 and 1
    strategies = {json.loads(xr.open_zarr(p).attrs["config"])["strategy_name"] for p in stores}
    assert strategies == {"random", "qbc"}

    status = main([str(sweep)])  # `python -m experiments.compare SWEEP`, in this process
    verdict = capsys.readouterr()
    assert status == 0, verdict.err[-2000:]
    assert "ratio_vs_passive" in verdict.out
    records = json.loads((sweep / "summary.json").read_text())
    notes = (sweep / "verdict.txt").read_text()
    # A tiny run's passive model may lack skill, and then every default target can go.
    assert records or "no default target" in notes
    if records:
        assert {"target", "target_kind", "strategy", "median_simulations", "censored", "ratio_vs_passive",
                "ratio_bound", "p_value", "p_worse", "r2"} <= set(records[0])
        assert {r["strategy"] for r in records} == strategies
        assert "random" in {r["strategy"] for r in records} and len(records) % 2 == 0
    comp = xr.open_zarr(sweep / "comparison.zarr")
    assert {"strategy", "seed", "n_labeled"} <= set(comp.dims)
    assert comp.sizes["seed"] == 2
    for name in ("learning_curves.png", "queried_points.png", "summary.csv", "retrain.csv"):
        assert (sweep / name).stat().st_size > 0, name


def test_a_potential1d_sweep_gets_a_histogram_of_the_queried_energies_and_others_none(tmp_path):
    from experiments.compare import _potential1d_energy_plot

    def run(strategy: str, target: str) -> xr.Dataset:
        x = np.random.default_rng(len(strategy)).uniform(-1, 1, (30, 3))
        return xr.Dataset({"x": (("sample", "input"), x), "round_of": ("sample", np.repeat([0, 1, 2], 10))},
                          coords={"input": ["x0", "v0", "t"]},
                          attrs={"config": json.dumps({"simulator": {"_target_": target}})})

    potential = "simulators.potential1d.make_oracle"
    runs = {(s, 0): run(s, potential) for s in ("qbc", "random")}
    path = _potential1d_energy_plot(runs, tmp_path / "query_energy.png")
    assert path == tmp_path / "query_energy.png" and path.read_bytes().startswith(b"\x89PNG")
    other = {(s, 0): run(s, "usersim.make_oracle") for s in ("qbc", "random")}
    assert _potential1d_energy_plot(other, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="hydra-submitit-launcher is not installed (the slurm or test extra)")
@pytest.mark.slow
def test_the_submitit_launcher_runs_a_sweep_locally(tmp_path):
    sweep = tmp_path / "sweep"
    # A cheap forest: what is tested is the launcher, not the committee.
    run = subprocess.run([sys.executable, "-m", "experiments.run", "-m", "hydra/launcher=local_processes",
                          "learner=extra_trees_regression", "learner.estimator.n_estimators=10", "seed=0", "budget=30",
                          "batch_size=10", "n_initial=10", "test_size=50", "candidates.size=100", "progress=false",
                          f"hydra.sweep.dir={sweep}"], cwd=REPO, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-2000:]
    (store,) = sweep.rglob("run.zarr")
    ds = xr.open_zarr(store)
    assert ds.sizes["sample"] == 30
    assert ds.attrs["stop_reason"] == "budget spent"


# -- sweeps whose runs do not belong together ------------------------------------------


def pair(path: Path, grid: np.ndarray = np.arange(20, 101, 20), **differences) -> None:
    """Seed 0 of qbc and random, random's run changed by `differences` (fake_run arguments)."""
    fake_run(path, strategy="qbc", seed=0, mse=1 / grid, grid=grid)
    fake_run(path, strategy="random", seed=0, mse=1 / grid, grid=grid, **differences)


@pytest.mark.parametrize("differences, message", [
    ({"attrs": {"batch_size": 20}}, r"different batch sizes: batch_size 10 in .*qbc.*, 20 in .*random"),
    ({"test_inputs": TEST_INPUTS + 0.5},
     r"different test sets: the test inputs \(x_test\) of .*qbc.*run\.zarr and .*random.*run\.zarr differ \(sha256 "),
])
def test_runs_on_other_settings_are_refused_naming_both_stores(tmp_path, capsys, differences, message):
    pair(tmp_path, **differences)
    with pytest.raises(SweepError, match=message):
        load_runs(tmp_path)
    assert main([str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("compare: error: runs ") and "--allow-mixed" in err


def test_test_outputs_must_agree_within_a_seed_not_across_seeded_simulators(tmp_path):
    grid = np.arange(20, 101, 20)
    for seed in (0, 1):
        for strategy in ("qbc", "random"):
            fake_run(tmp_path, strategy=strategy, seed=seed, mse=1 / grid, grid=grid,
                     simulator={"_target_": "a", "seed": seed})
    def shift_test_outputs(strategy: str, seed: int) -> None:
        store = tmp_path / strategy / f"seed={seed}" / "run.zarr"
        ds = xr.open_zarr(store).load()
        write_zarr(ds.assign(y_test=ds.y_test + 0.01), store, mode="w")

    # A simulator whose noise follows the run's seed answers the same test inputs otherwise.
    shift_test_outputs("qbc", 1)
    shift_test_outputs("random", 1)
    assert len(load_runs(tmp_path)) == 4
    shift_test_outputs("random", 0)
    with pytest.raises(SweepError, match=r"the test outputs \(y_test\) of .*qbc.seed=0.*and .*random.seed=0.* differ"):
        load_runs(tmp_path)


def test_allow_mixed_compares_and_says_so_everywhere(tmp_path, capsys):
    grid = np.arange(20, 401, 20)
    rng = np.random.default_rng(3)
    for seed in range(4):
        for strategy, budget in (("qbc", 400), ("random", 200)):
            mse = 1.0 / (grid * (3.0 if strategy == "qbc" else 1.0)) * rng.uniform(0.9, 1.1)
            fake_run(tmp_path, strategy=strategy, seed=seed, mse=mse, grid=grid, budget=budget, attrs={"batch_size": 20}
                     if strategy == "qbc" else None)
    assert main([str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert "different budgets" in err and len(err.splitlines()) == 1
    table = compare(tmp_path, retrain=False, allow_mixed=True)
    assert [n.split(" differs")[0] for n in table.attrs["mixed"][:2]] == [
        "mixed sweep (--allow-mixed), budget", "mixed sweep (--allow-mixed), batch_size"]
    assert "first 200 simulations, the smallest budget" in table.attrs["mixed"][2]
    assert set(table.budget) == {200}
    verdict = (tmp_path / "verdict.txt").read_text().splitlines()
    assert "a MIXED sweep: 3 notes below say how" in verdict[0]
    assert sum(line.startswith("note: mixed sweep") for line in verdict) == 3
    out = capsys.readouterr().out
    assert "MIXED sweep" in out and "note: mixed sweep (--allow-mixed), budget differs" in out
    comp = xr.open_zarr(tmp_path / "comparison.zarr")
    assert int(comp.n_labeled.max()) == 200 and len(json.loads(comp.attrs["mixed"])) == 3


def test_seeds_without_a_passive_run_are_refused_unless_allowed(tmp_path, capsys):
    grid = np.arange(20, 401, 20)
    fake_sweep(tmp_path, seeds=4)
    for seed in (2, 3):
        shutil.rmtree(tmp_path / "random" / f"seed={seed}")
    assert main([str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "'random' has no run for seeds 2, 3, which " in err
    assert "qbc/seed=2/run.zarr" in err and "--allow-mixed" in err
    table = compare(tmp_path, retrain=False, allow_mixed=True)
    assert any("unpaired seeds" in n for n in table.attrs["mixed"])
    assert len(grid) and "unpaired seeds" in (tmp_path / "verdict.txt").read_text()


def test_every_damaged_store_is_named_in_one_line(tmp_path, capsys):
    fake_sweep(tmp_path, seeds=2)
    broken = [tmp_path / "qbc" / "seed=1" / "run.zarr", tmp_path / "random" / "seed=0" / "run.zarr"]
    for store in broken:
        (store / "zarr.json").write_text("{not json")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("compare: error: cannot read 2 run stores: ")
    assert all(str(store) in err for store in broken)


@pytest.mark.parametrize("args, message", [
    (["--targets", "nan"], "--targets must be finite values of the metric, got [nan]"),
    (["--targets", "x"], "argument --targets: invalid float value: 'x'"),
    (["--relative-targets", "-0.5"], "--relative-targets must be positive fractions"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_flags_are_one_line(tmp_path, capsys, args, message):
    fake_sweep(tmp_path, seeds=2, skill=0.9)
    try:
        status = main([str(tmp_path), "--no-retrain", *args])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("compare: error: ") and message in err


def test_runs_that_stopped_at_their_target_are_said_to_have(tmp_path, capsys):
    grid = np.arange(20, 101, 10)
    for seed in range(3):
        fake_run(tmp_path, strategy="random", seed=seed, mse=1.0 / grid, grid=grid)
        fake_run(tmp_path, strategy="qbc", seed=seed, mse=0.5 / grid[:5], grid=grid[:5], budget=100,
                 attrs={"stop_reason": "target mse 0.008 reached"})
    compare(tmp_path, retrain=False)
    note = "3 of 6 runs stopped early at their target (qbc seed 0 at 60, qbc seed 1 at 60, qbc seed 2 at 60)"
    assert note in (tmp_path / "verdict.txt").read_text()


def test_runs_stopped_at_their_target_are_compared_there_not_beyond(tmp_path):
    """Random runs its budget to an error below the target at which `qbc` stopped: at random's
    final error `qbc` would count as never reaching it."""
    grid = np.arange(20, 101, 10)
    for seed in range(3):
        fake_run(tmp_path, strategy="random", seed=seed, mse=1.0 / grid, grid=grid, target=0.012)
        fake_run(tmp_path, strategy="qbc", seed=seed, mse=0.6 / grid[:4], grid=grid[:4], budget=100, target=0.012,
                 attrs={"stop_reason": "target mse 0.012 reached"})
    table = compare(tmp_path, retrain=False)
    assert "passive_final" not in table["target_kind"].tolist()
    qbc = table[(table["strategy"] == "qbc") & (table["target_kind"] == "given")].iloc[0]
    assert qbc["target"] == 0.012 and qbc["median_simulations"] == 50 and qbc["ratio_vs_passive"] == 90 / 50
    assert "target mse = 0.01 (passive_final) is left out: runs stopped once they reached 0.012" in (
        tmp_path / "verdict.txt").read_text()


def test_one_of_two_sweeps_sharing_a_directory_is_compared_with_only(tmp_path, capsys):
    # experiment=compare at two budgets: Hydra puts both under <strategy>/seed=N/<settings>.
    for budget in (60, 100):
        grid = np.arange(20, budget + 1, 10)
        for seed in range(3):
            for strategy, scale in (("random", 1.0), ("qbc", 0.5)):
                fake_run(tmp_path / "made", strategy=strategy, seed=seed, mse=scale / grid, grid=grid,
                         mse_constant=1.0)
                target = tmp_path / "sweeps" / strategy / f"seed={seed}" / f"budget={budget}" / "run.zarr"
                target.parent.mkdir(parents=True)
                (tmp_path / "made" / strategy / f"seed={seed}" / "run.zarr").rename(target)
    assert main([str(tmp_path / "sweeps"), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 sweeps ('budget=100', 'budget=60'): --only budget=60 compares one" in err
    assert len(err.splitlines()) == 1
    assert main([str(tmp_path / "sweeps"), "--no-retrain", "--only", "budget=60"]) == 0
    verdict = (tmp_path / "sweeps" / "budget=60" / "verdict.txt").read_text()
    assert verdict.startswith(f"verdict of {tmp_path / 'sweeps'} (--only budget=60)") and "budget 60" in verdict
    assert not (tmp_path / "sweeps" / "verdict.txt").exists()
    assert main([str(tmp_path / "sweeps"), "--no-retrain", "--only", "budget=70"]) == 2
    assert "no run of --only 'budget=70'" in capsys.readouterr().err


def test_a_sweep_of_one_strategys_own_settings_is_compared_with_the_passive_runs_of_the_sweep_it_varies(
        tmp_path, capsys):
    # experiment=compare budget=60, then strategy=qbc strategy.failure_settles=0.75 budget=60 beside it
    grid = np.arange(20, 61, 10)
    for seed in range(3):
        for strategy, scale, settings in (("random", 1.0, "budget=60"), ("qbc", 0.5, "budget=60"),
                                          ("qbc", 0.25, "budget=60,strategy.failure_settles=0.75")):
            fake_run(tmp_path / "made", strategy=strategy, seed=seed, mse=scale / grid, grid=grid, mse_constant=1.0)
            target = tmp_path / "sweeps" / strategy / f"seed={seed}" / settings / "run.zarr"
            target.parent.mkdir(parents=True)
            (tmp_path / "made" / strategy / f"seed={seed}" / "run.zarr").rename(target)
    assert strategy_free("budget=60,strategy.failure_settles=0.75") == "budget=60"
    only = "budget=60,strategy.failure_settles=0.75"
    assert main([str(tmp_path / "sweeps"), "--no-retrain", "--only", only]) == 0
    assert f"compare: random from the sweep 'budget=60', which differs from {only!r} only in strategy settings" in (
        capsys.readouterr().err)
    summary = pd.read_csv(tmp_path / "sweeps" / only / "summary.csv")
    final = summary[summary.target_kind == "passive_final"].set_index("strategy")
    assert final.loc["qbc", "final_metric"] == pytest.approx(0.25 / 60, rel=1e-6)  # the varied qbc, not the first


def test_a_sweep_with_only_the_passive_strategys_runs_is_refused(tmp_path, capsys):
    grid = np.arange(20, 61, 10)
    for seed in range(3):
        fake_run(tmp_path, strategy="random", seed=seed, mse=1.0 / grid, grid=grid)
    assert main([str(tmp_path), "--no-retrain"]) == 2
    assert "only 'random' has finished runs in the sweep: there is nothing to compare it with" in (
        capsys.readouterr().err)


def test_a_directory_holding_two_simulators_sweeps_is_refused_naming_the_cause(tmp_path, capsys):
    grid = np.arange(20, 61, 10)
    for name in ("a", "b"):
        fake_run(tmp_path / name, strategy="random", seed=0, mse=1.0 / grid, grid=grid,
                 simulator={"_target_": f"simulators.{name}.make_oracle"})
    assert main([str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert "a sweep of another simulator belongs in a directory of its own" in err and len(err.splitlines()) == 1


def test_the_verdict_says_when_refitting_from_scratch_compares_otherwise():
    import pandas as pd

    from experiments.compare import retrain_note

    def table(qbc_loop, qbc_fresh, random_loop, random_fresh, metric="mse"):
        return pd.DataFrame([{"strategy": s, "seed": seed, f"{metric}_in_loop": loop, f"{metric}_from_scratch": fresh}
                             for seed in range(3) for s, loop, fresh in
                             (("qbc", qbc_loop, qbc_fresh), ("random", random_loop, random_fresh))])

    note = retrain_note(table(146.0, 78.0, 148.0, 178.0), "mse", "random", higher=False)
    assert note.startswith("refitted from scratch, the final training sets compare otherwise (final mse, medians over "
                           "seeds; random/qbc 2.3 from scratch against 1 in the loop): refitting moved one run's final "
                           "mse by up to 1.9x")
    assert retrain_note(table(1.0, 1.1, 2.0, 2.1), "mse", "random", higher=False) is None  # the same story
    assert retrain_note(table(1.0, 2.2, 2.0, 2.0), "mse", "random", higher=False) is not None  # opposite ways
    assert retrain_note(table(0.9, 0.9, 0.8, 0.5, "f1"), "f1", "random", higher=True) is not None
    assert retrain_note(table(0.9, 0.9, 0.8, 0.78, "f1"), "f1", "random", higher=True) is None


def test_the_verdict_says_when_passive_sampling_already_learnt_the_simulator_almost_perfectly():
    from experiments.compare import near_perfect_note

    def comp(random_r2):
        r2 = np.array([[[0.9, 0.999999]] * 2, [[0.9, random_r2]] * 2])  # (strategy, seed, n_labeled)
        return xr.Dataset({"r2": (("strategy", "seed", "n_labeled"), r2)},
                          coords={"strategy": ["qbc", "random"], "seed": [0, 1], "n_labeled": [20, 60]})

    assert near_perfect_note(comp(0.999996), "random") == (
        "random's final model already explains all but 4e-06 of the test set's variance (R^2 0.999996): the counts "
        "are of runs to errors that small, which matter only where the emulator's use needs them")
    assert near_perfect_note(comp(0.998), "random") is None
