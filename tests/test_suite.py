"""experiments/bench/suite.py: the problem table, the command lines, the leaderboard on
synthetic verdicts, and one tiny real problem end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from experiments.bench.suite import (
    HELD_OUT,
    LEADERBOARD_COLUMNS,
    MOCCA_TABLE,
    PROBLEMS,
    TUNING,
    Problem,
    ProblemResult,
    SuiteError,
    error_slope,
    eta_seconds,
    final_median,
    leaderboard_markdown,
    main,
    problem_result,
    run_suite,
    seed_ratios,
    summary_lines,
    sweep_command,
    write_leaderboard,
)

REPO = Path(__file__).resolve().parents[1]
GRID = np.arange(10, 101, 10)
BUDGET = 100
EXTRA_TREES = ["learner=extra_trees", "learner.task=regression", "learner.n_classes=null",
               "learner.estimator._target_=sklearn.ensemble.ExtraTreesRegressor"]


def step_comp(passive_reach, strategy_reach, *, r2=(0.8, 0.95)) -> xr.Dataset:
    """mse curves (random, qbc) that drop from 1 to 0 at the given simulation counts (None: never),
    so that each seed's need for a target of 0.5 is known exactly."""
    def curves(reach):
        return np.array([[1.0 if r is None or n < r else 0.0 for n in GRID] for r in reach])

    mse = np.stack([curves(strategy_reach), curves(passive_reach)])  # strategies sorted: qbc, random
    seeds = len(passive_reach)
    r2_values = np.stack([np.full((seeds, len(GRID)), r2[1]), np.full((seeds, len(GRID)), r2[0])])
    return xr.Dataset(
        {"mse": (("strategy", "seed", "n_labeled"), mse), "r2": (("strategy", "seed", "n_labeled"), r2_values)},
        coords={"strategy": np.array(["qbc", "random"], dtype=object), "seed": np.arange(seeds), "n_labeled": GRID},
        attrs={"metric": "mse", "task": "regression", "budget": BUDGET},
    )


def problem(name="toy", kind="smooth") -> Problem:
    return Problem(name=name, kind=kind, select=("experiment=compare", f"simulator={name}"), budget=BUDGET,
                   quick_budget=50)


def fake_table(*, qbc=None, random=None, extra_rows=()) -> pd.DataFrame:
    """A compare summary with every column the suite reads, at target 0.5 (passive_final)."""
    base = dict(target=0.5, target_kind="passive_final", metric="mse", budget=BUDGET, median_bound="",
                seeds_reached=4, seeds=4, censored=False, ratio_bound="", p_value=float("nan"),
                p_worse=float("nan"), r2=0.9, final_metric=0.0)
    rows = [{**base, "strategy": "random", "median_simulations": 60.0, "ratio_vs_passive": 1.0, **(random or {})},
            {**base, "strategy": "qbc", "median_simulations": 30.0, "ratio_vs_passive": 2.0, "p_value": 0.03,
             "p_worse": 0.98, **(qbc or {})}]
    return pd.DataFrame([*rows, *extra_rows])


# -- the table and the command lines ------------------------------------------------------


def test_the_problem_table_covers_the_suite():
    assert TUNING == ("ishigami", "borehole", "otl_circuit", "piston", "friedman", "friedman10", "wing_weight",
                      "robot_arm", "hartmann6", "environmental", "genz_discontinuous", "genz_gaussian_peak",
                      "heteroscedastic_sine", "friedman_corner", "ishigami_hole", "cubic_root", "potential1d", "mocca")
    assert HELD_OUT == ("sobol_g", "welch", "dette_pepelyshev", "gramacy_lee", "franke", "currin", "branin",
                        "sir_epidemic", "standard_map", "driven_pendulum", "lotka_volterra", "resonance", "projectile",
                        "ringdown", "pendulum_flip")
    assert set(PROBLEMS) == set(TUNING) | set(HELD_OUT)
    not_smooth = {name for name, p in PROBLEMS.items() if not p.smooth}
    assert not_smooth == {"hartmann6", "genz_discontinuous", "genz_gaussian_peak", "heteroscedastic_sine", "mocca",
                          "friedman_corner", "ishigami_hole", "cubic_root",
                          "sobol_g", "gramacy_lee", "standard_map", "driven_pendulum", "resonance", "pendulum_flip"}
    for name, p in PROBLEMS.items():
        assert p.quick_budget < p.budget and (p.test_size, p.quick_test_size) == (1000, 500), name
        if "experiment=compare" in p.select:
            assert (REPO / "conf" / "simulator" / f"{name}.yaml").exists(), name
    assert (PROBLEMS["potential1d"].quick_budget, PROBLEMS["potential1d"].budget) == (300, 1000)
    assert (PROBLEMS["mocca"].quick_budget, PROBLEMS["mocca"].budget) == (200, 400)
    assert PROBLEMS["mocca"].select == ("experiment=mocca_bhs", "learner=auto") and PROBLEMS["mocca"].needs == MOCCA_TABLE


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_problem_composes_with_its_settings(name):
    from hydra import compose, initialize_config_dir

    p = PROBLEMS[name]
    settings = [f"{key}={value}" for key, value in p.settings(quick=True).items()]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*p.select, "strategy=qbc", "seed=0", *settings])
    assert (cfg.budget, cfg.batch_size, cfg.test_size) == (p.quick_budget, p.batch_size, p.quick_test_size)
    assert cfg.candidates.size == p.candidates
    # The MOCCA preset stops on F1; elsewhere target_metric only matters with a `target`, and the
    # verdict takes a classification store's F1 from the store's task.
    assert cfg.target_metric == ("f1" if name == "mocca" else "mse")
    # Problems that give their own held-out set: the MOCCA pool's models, the noise-free sine.
    assert (cfg.get("test_set") is not None) == (name in ("mocca", "heteroscedastic_sine"))


def test_a_problem_with_bad_settings_is_refused():
    with pytest.raises(SuiteError, match="kind must be one of"):
        Problem(name="x", kind="rough", select=(), budget=10, quick_budget=5)
    with pytest.raises(SuiteError, match="'x': batch_size must be an integer >= 1"):
        Problem(name="x", kind="smooth", select=(), budget=10, quick_budget=5, batch_size=0)


def test_sweep_command_carries_the_mode_settings(tmp_path):
    p = PROBLEMS["borehole"]
    command = sweep_command(p, quick=True, seeds=3, strategies=["random", "qbc"], sweep_dir=tmp_path / "b",
                            jobs=2, extra=["learner=mlp_fast"])
    assert command[1:5] == ["-m", "experiments.run", "-m", "experiment=compare"]
    for item in ("simulator=borehole", "strategy=random,qbc", "seed=range(0,3)", "budget=150", "test_size=500",
                 "batch_size=10", "n_initial=20", "candidates.size=2000", "progress=false",
                 f"hydra.sweep.dir={tmp_path / 'b'}", "hydra.launcher.n_jobs=2"):
        assert item in command, item
    assert command[-1] == "learner=mlp_fast"  # extra overrides come last, so they win
    assert "hydra.sweep.subdir='${hydra:runtime.choices.strategy}/seed=${seed}'" in command
    full = sweep_command(p, quick=False, seeds=8, strategies=["random", "qbc"], sweep_dir=tmp_path, jobs=1)
    assert "budget=300" in full and "test_size=1000" in full
    mocca = sweep_command(PROBLEMS["mocca"], quick=True, seeds=2, strategies=["random", "qbc"], sweep_dir=tmp_path,
                          jobs=2)
    assert "experiment=mocca_bhs" in mocca and not any(a.startswith("simulator=") for a in mocca)


def test_a_strategy_of_your_own_is_found_from_where_the_suite_was_started(tmp_path, monkeypatch):
    from experiments.bench.suite import _env_from_here

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([".", "lib"]))
    command = sweep_command(PROBLEMS["branin"], quick=True, seeds=1, strategies=["random", "mine"],
                            sweep_dir=tmp_path / "b", jobs=1, extra=["--config-dir", "conf", "-cd=more"])
    assert command[-3:] == ["--config-dir", str(tmp_path / "conf"), f"-cd={tmp_path / 'more'}"]
    assert _env_from_here()["PYTHONPATH"] == os.pathsep.join([str(tmp_path), str(tmp_path / "lib")])


def test_eta_extrapolates_the_rate_so_far():
    assert eta_seconds(100.0, 2.0, 6.0) == 300.0
    assert math.isnan(eta_seconds(0.0, 0.0, 5.0))


# -- per-seed ratios ----------------------------------------------------------------------


def test_seed_ratios_pair_seeds_and_count_misses_as_over_budget():
    comp = step_comp(passive_reach=[40, 60, 80, None], strategy_reach=[20, 30, 40, 50])
    spread = seed_ratios(comp, metric="mse", target=0.5, strategy="qbc", budget=BUDGET)
    np.testing.assert_allclose(spread.ratios, [2.0, 2.0, 2.0, 101 / 50])
    assert spread.median == 2.0
    assert spread.bound == ""  # the median stays 2 whatever passive's unreached count really is


def test_a_median_that_rests_on_cut_off_counts_is_a_bound():
    lower = seed_ratios(step_comp([40, None, None, 80], [20, 20, 20, 40]), metric="mse", target=0.5,
                        strategy="qbc", budget=BUDGET)
    assert lower.bound == ">=" and lower.median == pytest.approx((2 + 101 / 20) / 2)
    upper = seed_ratios(step_comp([40, 40, 40, 40], [20, None, None, 20]), metric="mse", target=0.5,
                        strategy="qbc", budget=BUDGET)
    assert upper.bound == "<="
    both = seed_ratios(step_comp([None, None, 40, 40], [None, None, 20, 20]), metric="mse", target=0.5,
                       strategy="qbc", budget=BUDGET)
    assert both.bound == "?"
    assert upper.q25 <= upper.median <= upper.q75


def test_final_median_reads_the_last_value_of_each_seed():
    comp = step_comp([40, 60], [20, 30], r2=(0.7, 0.9))
    assert final_median(comp, "r2", "random") == pytest.approx(0.7)
    assert math.isnan(final_median(comp, "accuracy", "random"))


# -- the leaderboard ----------------------------------------------------------------------


def test_rows_take_the_passive_final_target_and_mark_the_default():
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    table = fake_table(qbc={"ratio_bound": ">="}, random={"median_bound": ">="},
                       extra_rows=[dict(target=1.0, target_kind="intermediate", metric="mse", strategy="qbc",
                                        median_simulations=10.0, ratio_vs_passive=9.0)])
    result = problem_result(problem(), table, comp, budget=BUDGET)
    assert [r["strategy"] for r in result.rows] == ["random", "qbc"]
    random, qbc = result.rows
    assert set(LEADERBOARD_COLUMNS) == set(qbc)
    assert qbc["ratio_vs_passive"] == 2.0 and qbc["ratio_bound"] == ">=" and qbc["censored"] is True
    assert qbc["default"] is True and random["default"] is False
    assert qbc["p_better"] == 0.03 and qbc["p_worse"] == 0.98
    assert random["censored"] is False and random["note"] == "the passive baseline"
    assert qbc["target"] == 0.5 and qbc["smooth"] is True and qbc["task"] == "regression"
    assert set(result.spreads) == {"qbc"} and result.spreads["qbc"].median == 2.0


def test_rows_carry_each_strategy_median_failed_runs_where_compare_counted_them():
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    assert all(math.isnan(r["failed_runs"]) for r in problem_result(problem(), fake_table(), comp,
                                                                     budget=BUDGET).rows)
    comp.attrs["failed_runs"] = json.dumps({"qbc": 12.5, "random": 0.0})
    random, qbc = problem_result(problem(), fake_table(), comp, budget=BUDGET).rows
    assert qbc["failed_runs"] == 12.5 and "median 12.5 failed runs of 100, charged to the budget" in qbc["note"]
    assert random["failed_runs"] == 0.0 and "failed" not in random["note"]


def test_leaderboard_files_print_bounds_and_the_summary(tmp_path):
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    smooth = problem_result(problem("smoothish"), fake_table(qbc={"ratio_bound": ">="}, random={"r2": 0.85}),
                            comp, budget=BUDGET)
    late = problem_result(problem("late", "sharp"),
                          fake_table(qbc={"median_simulations": 101.0, "median_bound": ">", "censored": True,
                                          "ratio_bound": "<=", "ratio_vs_passive": 60 / 101, "p_value": 0.99,
                                          "p_worse": 0.01, "r2": 0.5}), comp, budget=BUDGET)
    no_target = problem_result(problem("flat"), fake_table().assign(target_kind="intermediate"), comp, budget=BUDGET)
    skipped = ProblemResult(problem("pool", "classification"), "skipped", "/nowhere/simulations.csv is absent")
    paths = write_leaderboard([smooth, late, no_target, skipped], tmp_path, header=["mode: quick"])
    assert [p.name for p in paths] == ["leaderboard.csv", "leaderboard.json", "leaderboard.md", "leaderboard.png"]
    assert all(p.stat().st_size > 0 for p in paths)

    md = (tmp_path / "leaderboard.md").read_text()
    assert "| smoothish | smooth | **qbc** | 100 | 4 | mse | 0.5 | 30 | >= 2.00 | - | - | 0.90 |" in md
    assert "| late | sharp | **qbc** | 100 | 4 | mse | 0.5 | > 100 | <= 0.59 | - | - | 0.50 | 0.99 | 0.01 |" in md
    assert "| flat | smooth | **qbc** |" in md and "n/a" in md and "no passive_final target" in md
    assert "- median ratio vs random for `qbc` over 2 problems: 1.30 (2 of the ratios are bounds" in md
    assert "- without a ratio for `qbc`: flat" in md
    assert "saves less than 1.5x: late (<= 0.59)" in md
    assert "(p_worse < 0.05): late (qbc, p_worse = 0.01)" in md
    assert "final R^2 below 0.9: smoothish (random 0.85)" in md  # late is not smooth
    assert "- skipped: pool (/nowhere/simulations.csv is absent)" in md

    records = json.loads((tmp_path / "leaderboard.json").read_text())
    assert len(records) == 6
    required = {"problem", "strategy", "task", "budget", "seeds", "metric", "target", "r2", "final_metric",
                "median_simulations", "ratio_vs_passive", "censored", "ratio_bound", "p_better", "p_worse",
                "default", "note"}
    assert all(required <= set(r) for r in records)
    flat_qbc = next(r for r in records if r["problem"] == "flat" and r["strategy"] == "qbc")
    assert flat_qbc["ratio_vs_passive"] is None and flat_qbc["target"] is None  # NaN is null in JSON
    late_qbc = next(r for r in records if r["problem"] == "late" and r["strategy"] == "qbc")
    assert late_qbc["censored"] is True and late_qbc["ratio_vs_passive"] == pytest.approx(60 / 101)
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(csv.columns) == list(LEADERBOARD_COLUMNS) and len(csv) == 6


def test_the_final_error_ratio_compares_errors_at_the_same_budget():
    comp = step_comp([40, 60, 80, None], [20, 30, 40, None])  # one seed of each never gets below 1
    comp["mse"] = comp["mse"] + 0.1
    result = problem_result(problem(), fake_table(qbc={"final_metric": 0.05}, random={"final_metric": 0.1}), comp,
                            budget=BUDGET)
    random, qbc = result.rows
    assert random["final_error_vs_passive"] == pytest.approx(1.0)
    assert qbc["final_error_vs_passive"] == pytest.approx(0.1 / 0.05)  # passive's median final: 0.1
    assert "- median over 1 problem of random's final error over `qbc`'s, at the same budget: 2.00" in \
        summary_lines([result])
    f1 = comp.rename({"mse": "f1"})
    f1.attrs["metric"] = "f1"
    scored = problem_result(problem(), fake_table(qbc={"final_metric": 0.9}).assign(metric="f1"), f1, budget=BUDGET)
    assert math.isnan(scored.rows[1]["final_error_vs_passive"])  # higher is better: no error ratio


def test_the_error_slope_reads_a_power_law_from_the_second_half_of_the_budget():
    comp = step_comp([40, 60], [20, 30])
    curve = 5.0 * GRID.astype(float) ** -2.0
    comp["mse"] = comp["mse"] * 0 + curve  # every seed and strategy: 5 n^-2
    comp["mse"][1, 0, :3] = 100.0  # early rounds do not count
    assert error_slope(comp, "mse", "random", BUDGET) == pytest.approx(2.0)
    assert math.isnan(error_slope(comp, "mse", "random", 10 * BUDGET))  # too few rounds past half of it
    assert math.isnan(error_slope(comp, "f1", "random", BUDGET))
    row = problem_result(problem(), fake_table(), comp, budget=BUDGET).rows[0]
    assert row["passive_error_slope"] == pytest.approx(2.0)


def test_a_table_without_the_newer_columns_degrades_with_a_note():
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30], r2=(0.8, 0.93))
    final = final_median(comp, "mse", "random")
    table = pd.DataFrame([
        {"target": final, "strategy": "random", "median_simulations": 60.0, "ratio_vs_passive": 1.0},
        {"target": final, "strategy": "qbc", "median_simulations": 30.0, "ratio_vs_passive": 2.0},
        {"target": 0.3, "strategy": "qbc", "median_simulations": 25.0, "ratio_vs_passive": 2.2},
    ])
    result = problem_result(problem(), table, comp, budget=BUDGET)
    qbc = result.rows[1]
    assert qbc["ratio_vs_passive"] == 2.0 and math.isnan(qbc["p_worse"])
    assert qbc["r2"] == pytest.approx(0.93)  # from the comparison Dataset instead
    assert "no target_kind column" in qbc["note"] and "compare gave no" in qbc["note"]
    with pytest.raises(SuiteError, match=r"lacks the column\(s\) \['ratio_vs_passive'\]"):
        problem_result(problem(), table.drop(columns="ratio_vs_passive"), comp, budget=BUDGET)


def test_summary_without_any_ratio_says_so():
    lines = summary_lines([ProblemResult(problem(), "failed", "the sweep exited with status 1")])
    assert lines[0] == "- no problem gave `qbc` a ratio vs random"
    assert lines[-1] == "- failed: toy (the sweep exited with status 1)"
    assert "# T" in leaderboard_markdown([], title="T")


# -- the command line ---------------------------------------------------------------------


def test_bad_arguments_exit_with_one_line(tmp_path, capsys):
    assert main(["--problems", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown problem(s) ['nope']" in capsys.readouterr().err
    assert main(["--problems", "friedman", "--strategies", "qbc", "--out", str(tmp_path)]) == 2
    assert "must include the passive baseline 'random'" in capsys.readouterr().err
    assert main(["--problems", "friedman", "--held-out", "--out", str(tmp_path)]) == 2
    assert "give --problems or --held-out, not both" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_held_out_problems_are_summarised_apart():
    table = fake_table()
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    tuned = problem_result(problem(), table, comp, budget=BUDGET)
    held = problem_result(dataclasses.replace(problem(), name="unseen", held_out=True), table, comp, budget=BUDGET)
    assert [r["held_out"] for r in held.rows] == [True, True] and not tuned.rows[0]["held_out"]
    lines = summary_lines([tuned, held])
    first, second = lines.index("Problems the defaults were chosen on:"), lines.index(
        "Held-out problems (never used to choose a default):")
    assert first < second
    assert sum(line.startswith("- median ratio vs random") for line in lines) == 2
    assert lines[:first] == [] and "unseen (held out)" in leaderboard_markdown([tuned, held], title="T")
    assert summary_lines([held]) == summary_lines([tuned])  # one set alone: no headings


def test_a_problem_without_its_data_is_skipped_with_the_reason(tmp_path, capsys):
    absent = Problem(name="pool", kind="classification", select=("experiment=mocca_bhs",), budget=10,
                     quick_budget=5, needs=tmp_path / "absent.csv")
    results = run_suite([absent], quick=True, seeds=1, strategies=["random", "qbc"], out=tmp_path)
    assert results[0].status == "skipped" and "absent.csv is absent" in results[0].reason
    err = capsys.readouterr().err
    assert "[suite] 1/1 pool: skipped" in err and "total elapsed" in err
    assert "- skipped: pool (" in (tmp_path / "leaderboard.md").read_text()


def test_verdicts_only_skips_a_problem_that_never_ran(tmp_path):
    results = run_suite([problem("toy")], quick=True, seeds=1, strategies=["random", "qbc"], out=tmp_path,
                        verdicts_only=True)
    assert results[0].status == "skipped" and "run the suite without --verdicts-only first" in results[0].reason
    assert not (tmp_path / "runs" / "toy").exists()


@pytest.mark.slow
def test_one_tiny_problem_end_to_end(tmp_path):
    tiny = Problem(name="friedman", kind="smooth", select=("experiment=compare", "simulator=friedman"), budget=30,
                   quick_budget=30, batch_size=10, n_initial=10, candidates=200, test_size=200, quick_test_size=200)
    # One job at a time: in the sweep's own process, with no workers to start.
    results = run_suite([tiny], quick=False, seeds=1, strategies=["random", "qbc"], out=tmp_path, extra=EXTRA_TREES,
                        jobs=1)
    assert results[0].status == "ok", results[0].reason
    assert len(list((tmp_path / "runs" / "friedman").rglob("run.zarr"))) == 2
    assert (tmp_path / "runs" / "friedman" / "comparison.zarr").exists()
    records = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [(r["strategy"], r["budget"], r["seeds"]) for r in records] == [("random", 30, 1), ("qbc", 30, 1)]
    qbc = records[1]
    # A tiny run's passive model may have no skill, and then there is no passive_final target.
    assert qbc["ratio_vs_passive"] is not None or "no passive_final target" in qbc["note"]
    assert qbc["r2"] is not None and qbc["metric"] == "mse"
    # The same leaderboard from the verdict the sweep left, running nothing.
    (tmp_path / "leaderboard.json").rename(tmp_path / "first.json")
    again = run_suite([tiny], quick=False, seeds=1, strategies=["random", "qbc"], out=tmp_path, verdicts_only=True)
    assert again[0].status == "ok" and again[0].seconds < 30
    assert json.loads((tmp_path / "leaderboard.json").read_text()) == json.loads((tmp_path / "first.json").read_text())
    assert "nothing ran" in (tmp_path / "leaderboard.md").read_text()


def test_the_summary_sets_the_default_beside_the_strategy_that_knows_the_answers():
    table = fake_table(extra_rows=[{**fake_table().iloc[1].to_dict(), "strategy": "hindsight",
                                    "median_simulations": 24.0, "ratio_vs_passive": 2.5}])
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    comp = xr.concat([comp, comp.sel(strategy=["qbc"]).assign_coords(strategy=["hindsight"])], dim="strategy")
    lines = summary_lines([problem_result(problem(), table, comp, budget=BUDGET)])
    assert "- median ratio vs random for `qbc` over 1 problem: 2.00" in lines
    assert "- median ratio vs random for `hindsight` over 1 problem: 2.50" in lines
    assert ("- `qbc`'s ratio over `hindsight`'s (which knows the simulator's answers), median over 1 problem: 0.80"
            in lines)


def test_the_summary_marks_bounds_for_every_strategy():
    bounded = {**fake_table().iloc[1].to_dict(), "strategy": "mine", "ratio_vs_passive": 1.5, "ratio_bound": ">="}
    table = fake_table(extra_rows=[bounded])
    comp = step_comp([40, 60, 80, 60], [20, 30, 40, 30])
    comp = xr.concat([comp, comp.sel(strategy=["qbc"]).assign_coords(strategy=["mine"])], dim="strategy")
    lines = summary_lines([problem_result(problem(), table, comp, budget=BUDGET)])
    assert [line for line in lines if "for `mine`" in line] == [
        "- median ratio vs random for `mine` over 1 problem: 1.50 (1 of the ratios are bounds, counted at their value)"]


def test_a_misspelt_strategy_is_refused_before_any_problem_runs(tmp_path, capsys):
    assert main(["--problems", "branin", "--strategies", "random,qbcc", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("suite: error: strategy=qbcc: no such strategy") and "nearest: qbc" in err
    assert not (tmp_path / "runs").exists()


def test_a_suite_where_every_problem_failed_leaves_the_last_leaderboard(tmp_path, capsys, monkeypatch):
    import experiments.bench.suite as suite

    (tmp_path / "leaderboard.md").write_text("the last good one")
    monkeypatch.setattr(suite, "run_problem", lambda problem, **_: ProblemResult(problem, "failed", "exit 1"))
    results = run_suite([problem("toy")], quick=True, seeds=1, strategies=["random", "qbc"], out=tmp_path)
    assert results[0].status == "failed"
    assert (tmp_path / "leaderboard.md").read_text() == "the last good one"
    assert "every problem failed: nothing was measured" in capsys.readouterr().err
