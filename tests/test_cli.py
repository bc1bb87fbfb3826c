"""The detached command line: `alframe ask`, `alframe tell`, `alframe status`."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from omegaconf import open_dict

from alframe.lock import StoreLock
from alframe.tables import write_rows
from experiments import cli
from experiments.run import build_oracle, run
from tests.conftest import make_loop

REPO = Path(__file__).resolve().parents[1]
FAST = ["simulator=ishigami", "learner=gp", "n_initial=20", "batch_size=10", "test_size=200", "progress=false"]
TIMING = ["cost_s", "fit_s", "select_s"]


def results_csv(path: Path, rows, y, *, errors=None) -> Path:
    """A results file for asked rows [id, *x] and outputs y (k,)."""
    header = ["query_id", "y", *(["error"] if errors is not None else [])]
    body = [[row[0], float(v), *([errors[i]] if errors is not None else [])] for i, (row, v) in enumerate(zip(rows, y))]
    buffer = io.StringIO()
    write_rows(header, body, buffer)
    path.write_text(buffer.getvalue())
    return path


def drive(run_dir: Path, overrides, oracle, scratch: Path, first: int = 20, then: int = 10) -> None:
    """Ask, run the simulator outside alframe, tell; until the run ends."""
    n = first
    while True:
        _, rows, _, _ = cli.ask(run_dir, n, overrides)
        if not rows:
            return
        y = oracle.run(np.array([row[1:] for row in rows])).y[:, 0]
        cli.tell(run_dir, results_csv(scratch / "results.csv", rows, y))
        n = then


@pytest.mark.slow
def test_six_rounds_of_ask_and_tell_give_the_batch_loops_store(tmp_path):
    overrides = [*FAST, "budget=70", "seed=3"]
    cfg = cli.compose_config(overrides)
    run(cfg, tmp_path / "batch", strategy_name=cfg.strategy_name)
    batch = xr.open_zarr(tmp_path / "batch" / "run.zarr")
    drive(tmp_path / "detached", overrides, build_oracle(cfg), tmp_path)
    detached = xr.open_zarr(tmp_path / "detached" / "run.zarr")
    assert detached.sizes["round"] == 6 and detached.attrs["stop_reason"] == "budget spent"
    xr.testing.assert_equal(detached.drop_vars(TIMING), batch.drop_vars(TIMING))
    assert not (tmp_path / "detached" / "run.zarr.detached.pkl").exists()
    header, rows, summary, status = cli.ask(tmp_path / "detached", 5)
    assert rows == [] and "ended (budget spent)" in summary and status == cli.EXIT_ENDED


def test_ask_with_nothing_to_ask_says_why_in_its_exit_status_and_keeps_the_queries_file(tmp_path, capsys):
    run_dir, queries = tmp_path / "run", tmp_path / "batch.csv"
    assert cli.main(["ask", str(run_dir), "-n", "20", "-o", str(queries), *FAST, "budget=40"]) == 0
    asked = queries.read_text()
    assert asked.count("\n") == 21
    capsys.readouterr()
    assert cli.main(["ask", str(run_dir), "-n", "5", "-o", str(queries)]) == cli.EXIT_WAITING
    assert "waiting for the initial design" in capsys.readouterr().err
    assert queries.read_text() == asked  # not overwritten by an empty batch before its queries have run


def test_pending_queries_are_never_asked_again(tmp_path):
    run_dir, overrides = tmp_path / "run", [*FAST, "budget=60"]
    oracle = build_oracle(cli.compose_config(overrides))
    _, design, _, _ = cli.ask(run_dir, 20, overrides)
    cli.tell(run_dir, results_csv(tmp_path / "r.csv", design, oracle.run(np.array([r[1:] for r in design])).y[:, 0]))
    _, first, _, _ = cli.ask(run_dir, 5)
    _, second, summary, _ = cli.ask(run_dir, 5)
    points = {tuple(row[1:]) for row in first + second}
    assert len(points) == 10 and [row[0] for row in first + second] == list(range(20, 30))
    assert "10 pending" in summary
    summary, _, pending = cli.status(run_dir)
    assert [row[0] for row in pending] == list(range(20, 30)) and "10 pending" in summary
    # Told out of order and in parts, with a failure: recorded as asked, then refitted.
    y = oracle.run(np.array([row[1:] for row in second])).y[:, 0]
    cli.tell(run_dir, results_csv(tmp_path / "r2.csv", second, y, errors=["", "", "node lost", "", ""]))
    ds = xr.open_zarr(run_dir / "run.zarr")
    assert ds.sizes["sample"] == 25 and ds["ok"].values.sum() == 24
    assert ds["error"].values[22] == "node lost" and np.isnan(ds["y"].values[22, 0])
    assert ds.sizes["round"] == 1  # round 1 is recorded once round 2 starts


@pytest.mark.parametrize("body, message", [
    ("query_id,y\n99,1.0\n", "row 2, column 'query_id': query 99 was never asked"),
    ("query_id,y\n0,1.0\n", "row 2, column 'query_id': query 0 was told already"),
    ("query_id,y\n20,1.0\n20,2.0\n", "row 3, column 'query_id': 20 is told twice"),
    ("query_id,y\n20,1.0\n21,abc\n", "row 3, column 'y': 'abc' is not a number"),
    ("query_id,y\n20,nan\n", "row 2, column 'y': 'nan' is not finite; a run that failed is told with its reason "
                             "in an 'error' column"),
    ("query_id,flux\n20,1.0\n", "no column 'y'"),
    ("query_id,y\n", "no rows after the header"),
    ("query_id,y\nx,1.0\n", "row 2, column 'query_id': 'x' is not an integer"),
    ("query_id,y\n20,1.0,3\n", "row 2 has 3 cells, the header has 2"),
    ("query_id,y,errors\n20,1.0,diverged\n", "column 'errors' is not one tell reads (did you mean 'error'?)"),
    ("query_id,y,cost_s\n20,1.0,-5\n", "row 2, column 'cost_s': -5 is negative"),
])
def test_bad_results_are_refused_whole_with_file_row_and_column(tmp_path, capsys, body, message):
    run_dir, overrides = tmp_path / "run", [*FAST, "budget=60"]
    oracle = build_oracle(cli.compose_config(overrides))
    _, design, _, _ = cli.ask(run_dir, 20, overrides)
    cli.tell(run_dir, results_csv(tmp_path / "r.csv", design, oracle.run(np.array([r[1:] for r in design])).y[:, 0]))
    cli.ask(run_dir, 5)
    before = xr.open_zarr(run_dir / "run.zarr").sizes["sample"]
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    assert cli.main(["tell", str(run_dir), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"alframe: error: {bad}") and message in err
    assert xr.open_zarr(run_dir / "run.zarr").sizes["sample"] == before
    assert len(cli.status(run_dir)[2]) == 5  # still pending


def test_telling_the_same_results_again_changes_nothing_and_other_results_are_refused(tmp_path, capsys):
    # A script that retries a tell killed after its commit must not see an error.
    run_dir, overrides = tmp_path / "run", [*FAST, "budget=60"]
    oracle = build_oracle(cli.compose_config(overrides))
    _, design, _, _ = cli.ask(run_dir, 20, overrides)
    y = oracle.run(np.array([r[1:] for r in design])).y[:, 0]
    first = results_csv(tmp_path / "r.csv", design, y)
    cli.tell(run_dir, first)
    _, batch, _, _ = cli.ask(run_dir, 5)
    before = xr.open_zarr(run_dir / "run.zarr").sizes["sample"]
    assert cli.main(["tell", str(run_dir), str(first)]) == 0
    assert "nothing new: 20 rows told already with the same results" in capsys.readouterr().err
    both = results_csv(tmp_path / "both.csv", [*design[:3], *batch],
                       np.r_[y[:3], oracle.run(np.array([r[1:] for r in batch])).y[:, 0]])
    assert cli.main(["tell", str(run_dir), str(both)]) == 0
    assert "told 5 results, 3 rows told already with the same results" in capsys.readouterr().err
    assert xr.open_zarr(run_dir / "run.zarr").sizes["sample"] == before + 5
    changed = results_csv(tmp_path / "changed.csv", design[:1], y[:1] + 1.0)
    assert cli.main(["tell", str(run_dir), str(changed)]) == 2
    assert "query 0 was told already, with other results" in capsys.readouterr().err


def test_ask_names_a_misspelt_setting_with_the_nearest_ones(tmp_path, capsys):
    for typo, nearest in (("budjet=60", "nearest: budget"), ("simulator=ishigamy", "nearest: ishigami")):
        assert cli.main(["ask", str(tmp_path / "run"), "-n", "5", typo]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"alframe: error: {typo}") and nearest in err
    assert not (tmp_path / "run").exists()  # a refused first ask leaves nothing behind
    assert cli.main(["ask", str(tmp_path / "run"), "-n", "5", *FAST, "budget=0"]) == 2
    assert not (tmp_path / "run").exists()


def test_a_spreadsheets_results_file_with_a_byte_order_mark_and_the_inputs_is_told(tmp_path):
    run_dir, overrides = tmp_path / "run", [*FAST, "budget=60"]
    oracle = build_oracle(cli.compose_config(overrides))
    header, design, _, _ = cli.ask(run_dir, 20, overrides)
    y = oracle.run(np.array([r[1:] for r in design])).y[:, 0]
    buffer = io.StringIO()
    write_rows([*header, "y"], [[*row, float(v)] for row, v in zip(design, y)], buffer)
    told = tmp_path / "excel.csv"
    told.write_text(buffer.getvalue(), encoding="utf-8-sig")
    assert told.read_bytes().startswith(b"\xef\xbb\xbf")
    assert cli.main(["tell", str(run_dir), str(told)]) == 0
    assert xr.open_zarr(run_dir / "run.zarr")["ok"].values.sum() == 20


def test_a_tell_killed_after_its_commit_finishes_on_the_next_call(tmp_path, monkeypatch):
    overrides = [*FAST, "budget=40", "seed=1"]
    oracle = build_oracle(cli.compose_config(overrides))
    drive(tmp_path / "whole", overrides, oracle, tmp_path)
    run_dir = tmp_path / "cut"
    _, design, _, _ = cli.ask(run_dir, 20, overrides)
    results = results_csv(tmp_path / "r.csv", design, oracle.run(np.array([r[1:] for r in design])).y[:, 0])
    real = cli.Campaign.refit_if_due

    def killed(self):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(cli.Campaign, "refit_if_due", killed)
    with pytest.raises(KeyboardInterrupt):
        cli.tell(run_dir, results)
    monkeypatch.setattr(cli.Campaign, "refit_if_due", real)
    summary, _, pending = cli.status(run_dir)  # the next call finds the committed runs and refits
    assert pending == [] and "20 runs" in summary and "round 1" in summary
    drive(run_dir, overrides, oracle, tmp_path, first=10)
    whole = xr.open_zarr(tmp_path / "whole" / "run.zarr").drop_vars(TIMING)
    xr.testing.assert_equal(xr.open_zarr(run_dir / "run.zarr").drop_vars(TIMING), whole)


def test_an_external_simulator_records_disagreement_without_a_test_set(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["simulator=external", "simulator.inputs={a:[0,1],b:[10,20]}", "simulator.outputs=[flux]",
                 "simulator.integer=[b]", "learner=gp", "budget=30", "n_initial=10", "batch_size=10", "progress=false"]
    header, rows, _, _ = cli.ask(run_dir, 10, overrides)
    assert header == ["query_id", "a", "b"]
    x = np.array([row[1:] for row in rows])
    assert np.all((x[:, 1] >= 10) & (x[:, 1] <= 20)) and np.all(x[:, 1] == np.round(x[:, 1]))
    (tmp_path / "r.csv").write_text("query_id,flux\n" + "".join(f"{r[0]},{r[1] + r[2] / 10}\n" for r in rows))
    cli.tell(run_dir, tmp_path / "r.csv")
    _, more, _, _ = cli.ask(run_dir, 10)
    assert len(more) == 10 and all(float(r[2]).is_integer() for r in more)
    (tmp_path / "r.csv").write_text("query_id,flux\n" + "".join(f"{r[0]},{r[1] + r[2] / 10}\n" for r in more))
    cli.tell(run_dir, tmp_path / "r.csv")
    ds = xr.open_zarr(run_dir / "run.zarr")
    assert "x_test" not in ds and "mse" not in ds
    assert ds["mean_disagreement"].values.shape == (1,) and np.all(ds["mean_disagreement"].values >= 0)


def test_status_of_a_finished_campaign_of_the_default_committee(tmp_path, capsys):
    """The default committee records which family it chose, a string, beside the numbers."""
    overrides = [*[o for o in FAST if not o.startswith("learner=")], "learner=auto", "budget=30"]
    drive(tmp_path / "run", overrides, build_oracle(cli.compose_config(overrides)), tmp_path)
    assert "learner" in xr.open_zarr(tmp_path / "run" / "run.zarr")
    assert cli.main(["status", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().err
    assert "30 runs (0 failed), 0 pending, round 2, mse " in out and "ended: budget spent" in out


def test_a_classification_campaign_takes_labels_by_name_or_index(tmp_path):
    run_dir = tmp_path / "phases"
    overrides = ["simulator=external", "simulator.inputs={T:[200,1200],logP:[-2,2]}", "simulator.outputs=[phase]",
                 "simulator.task=classification", "simulator.classes=[solid,liquid,gas]", "budget=30",
                 "n_initial=20", "batch_size=10", "progress=false"]
    _, rows, _, _ = cli.ask(run_dir, 20, overrides)
    names = ["solid", "liquid", "gas"]
    phase = [0 if r[1] < 500 else 1 if r[2] > 0 else 2 for r in rows]
    (tmp_path / "r.csv").write_text("query_id,phase\n" + "".join(
        f"{r[0]},{names[p] if i % 2 else p}\n" for i, (r, p) in enumerate(zip(rows, phase))))
    assert cli.tell(run_dir, tmp_path / "r.csv").startswith("told 20 results; 20 runs (0 failed)")
    _, more, _, _ = cli.ask(run_dir, 10)
    assert len(more) == 10
    np.testing.assert_array_equal(xr.open_zarr(run_dir / "run.zarr")["y"].values[:, 0], phase)


def test_later_calls_refuse_other_settings_and_a_held_lock(tmp_path, capsys):
    run_dir = tmp_path / "run"
    cli.ask(run_dir, 5, [*FAST, "budget=60"])
    assert cli.main(["ask", str(run_dir), "-n", "5", *FAST, "budget=70"]) == 2
    assert "was created with other settings (budget 60 -> 70; see " in capsys.readouterr().err
    assert cli.main(["ask", str(run_dir), "-n", "5", "budget=80"]) == 2  # the others left to the first call
    assert "was created with other settings (budget 60 -> 80; see " in capsys.readouterr().err
    assert cli.main(["ask", str(run_dir), "-n", "5", *FAST, "budget=60"]) == 0  # the same ones are fine
    capsys.readouterr()
    assert cli.main(["ask", str(run_dir), "-n", "5", "simulator=only_in_my_config_dir"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has its settings already" in err and "only_in_my_config_dir" in err and err.count("\n") == 0
    with StoreLock(run_dir / "run.zarr"):
        assert cli.main(["ask", str(run_dir), "-n", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"is being written by pid {os.getpid()}" in err and err.count("\n") == 0
    assert cli.main(["status", str(tmp_path / "nothing")]) == 2
    assert "holds no run" in capsys.readouterr().err
    made_by_a_run = tmp_path / "runs" / "one"
    (made_by_a_run / "run.zarr").mkdir(parents=True)
    assert cli.main(["status", str(made_by_a_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a run of `python -m experiments.run`, not an `alframe ask` campaign" in err and "\n" not in err


def test_the_console_script_asks_and_reports_with_a_simulator_in_the_working_directory(tmp_path):
    """`alframe ask` imports a simulator module from where it is run, as `python -m` does."""
    (tmp_path / "mysim.py").write_text(
        "import numpy as np\nfrom alframe.oracle import FunctionOracle, OutputSpec\nfrom alframe.space import Box\n\n\n"
        "def make_oracle():\n    return FunctionOracle(lambda x: np.sin(3 * x[:, :1]) + x[:, 1:], "
        "Box(names=('a', 'b'), lower=(0, 0), upper=(1, 1)), OutputSpec(('f',)))\n")
    (tmp_path / "conf" / "simulator").mkdir(parents=True)
    (tmp_path / "conf" / "simulator" / "mysim.yaml").write_text("_target_: mysim.make_oracle\n")
    script = Path(sys.executable).parent / "alframe"
    if not script.exists():
        pytest.skip(f"no console script at {script} (the project is not installed in this environment)")
    out = tmp_path / "q.csv"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(script), "ask", "run", "-n", "3", "-o", str(out), "--config-dir", "conf",
                           "simulator=mysim", "learner=gp", "n_initial=20", "budget=30", "test_size=20",
                           "progress=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[0] == "query_id,a,b" and len(out.read_text().splitlines()) == 4
    assert "asked 3 queries (ids 0-2) from the initial design" in done.stderr


@pytest.mark.slow
def test_a_second_writer_of_a_running_loop_is_refused_and_the_first_finishes(tmp_path):
    command = [sys.executable, "-m", "experiments.run", *FAST, "budget=40", f"hydra.run.dir={tmp_path}"]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock_file = StoreLock(tmp_path / "run.zarr").path
    deadline = time.monotonic() + 120
    # Until the first holds the lock: read its name from the lock file rather than trying the
    # lock, which would refuse the first writer if it came at the same moment.
    while time.monotonic() < deadline and f'"pid": {first.pid},' not in (
            lock_file.read_text() if lock_file.exists() else ""):
        time.sleep(0.05)
    first.send_signal(signal.SIGSTOP)  # paused mid-run, so that the second surely meets it
    try:
        second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert lines[-1].startswith("alframe: error: ") and f"is being written by pid {first.pid}" in lines[-1]
    ds = xr.open_zarr(tmp_path / "run.zarr")
    assert ds.sizes["sample"] == 40 and ds.attrs["stop_reason"] == "budget spent"


def test_an_unknown_top_level_key_is_refused_before_a_run_is_made(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert cli.main(["ask", str(run_dir), "-n", "5", *FAST, "budget=30", "+batchsize=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("alframe: error: +batchsize=5: 'batchsize' is not a top-level key") and "batch_size" in err
    assert not (run_dir / "config.yaml").exists()


def test_alframe_repair_cuts_a_damaged_run_back_and_says_so_in_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    make_loop(budget=20).run(run_dir / "run.zarr")
    before = xr.open_zarr(run_dir / "run.zarr").load()
    (run_dir / "run.zarr.commit.json").write_text("{{{")
    assert cli.main(["repair", str(run_dir)]) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"alframe: {run_dir / 'run.zarr'}: repaired (")
    assert "kept 20 of 20 runs" in err
    xr.testing.assert_identical(xr.open_zarr(run_dir / "run.zarr").load(), before)
    assert cli.main(["repair", str(run_dir)]) == 0
    assert "nothing to repair" in capsys.readouterr().err
    assert cli.main(["repair", str(tmp_path / "nothing")]) == 2
    assert "holds no run store (no run.zarr); nothing to repair" in capsys.readouterr().err


@pytest.mark.slow
def test_repair_true_repairs_before_the_run_resumes(tmp_path, capsys):
    cfg = cli.compose_config(["simulator=ishigami", "learner=gp", "n_initial=10", "batch_size=10", "test_size=50",
                              "budget=20", "progress=false"])
    run_dir = tmp_path / "run"
    whole = run(cfg, run_dir, strategy_name=cfg.strategy_name)
    before = xr.open_zarr(run_dir / "run.zarr").load()
    # A damaged chunk of a finished run: repair=true cuts it back to what it can read, and the
    # run is finished again, the same.
    chunk = run_dir / "run.zarr" / "y" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:9])
    with open_dict(cfg):
        cfg.repair = True
    assert run(cfg, run_dir, strategy_name=cfg.strategy_name) == whole
    assert "repaired (y unreadable from row 0); kept 0 of 20 runs" in capsys.readouterr().err
    xr.testing.assert_equal(xr.open_zarr(run_dir / "run.zarr").drop_vars(TIMING).load(), before.drop_vars(TIMING))


def test_a_simulator_from_a_config_dir_of_ones_own(tmp_path, monkeypatch, capsys):
    """`--config-dir` on the first call adds the user's config groups; later calls read the run's config."""
    (tmp_path / "mine.py").write_text("from simulators.testfunctions import make_ishigami\n"
                                      "def ishigami_like():\n    return make_ishigami()\n")
    (tmp_path / "conf" / "simulator").mkdir(parents=True)
    (tmp_path / "conf" / "simulator" / "mine.yaml").write_text("_target_: mine.ishigami_like\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    settings = [*FAST[1:], "budget=30", "simulator=mine"]
    assert cli.main(["ask", str(run_dir), "-n", "3", "--config-dir", str(tmp_path / "conf"), *settings]) == 0
    assert "_target_: mine.ishigami_like" in (run_dir / "config.yaml").read_text()
    assert cli.main(["ask", str(run_dir), "-n", "2"]) == 0
    assert cli.main(["ask", str(tmp_path / "other"), "-n", "1", *settings]) == 2  # not without the directory
    assert "simulator" in capsys.readouterr().err.splitlines()[-1]


def test_a_campaign_refuses_to_go_on_with_another_version_of_its_simulator(tmp_path, monkeypatch, capsys):
    """The simulator's source changed between two asks: the second is refused in one line, so
    that answers from two codes never share a store."""
    module = tmp_path / "versioned_sim.py"
    module.write_text("import numpy as np\nfrom alframe.oracle import FunctionOracle, OutputSpec\n"
                      "from alframe.space import Box\n\n\ndef f(x):\n    return np.sin(3 * x[:, 0]) + x[:, 1]\n\n\n"
                      "def make_oracle():\n    return FunctionOracle(f, Box(('a', 'b'), (0, 0), (1, 1)), OutputSpec(('y',)))\n")
    (tmp_path / "conf" / "simulator").mkdir(parents=True)
    (tmp_path / "conf" / "simulator" / "versioned.yaml").write_text("_target_: versioned_sim.make_oracle\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    common = ["--config-dir", str(tmp_path / "conf"), "simulator=versioned", "learner=gp", "n_initial=20",
              "budget=30", "test_size=20", "progress=false"]
    assert cli.main(["ask", str(run_dir), "-n", "3", "-o", str(tmp_path / "q.csv"), *common]) == 0
    module.write_text(module.read_text().replace("np.sin(3 *", "np.sin(4 *"))
    capsys.readouterr()
    assert cli.main(["ask", str(run_dir), "-n", "3", "-o", str(tmp_path / "q2.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds runs of another version of the simulator" in err and err.count("\n") == 0
