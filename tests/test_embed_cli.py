"""experiments/embed.py: the --table route (CSV and FITS), run and sweep directories of real
stores, and one-line errors; the synthetic chemical-tagging generator it is benchmarked on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor

from alframe.learners import EnsembleCommittee
from alframe.loop import ActiveLearningLoop, Candidates
from alframe.strategies import QueryByCommittee, RandomSampling
from experiments.bench.chemical_tagging import ELEMENTS, synthetic_stars
from experiments.embed import main
from simulators.testfunctions import make_ishigami

ISHIGAMI = {"_target_": "simulators.testfunctions.make_ishigami", "a": 7.0, "b": 0.1}


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("embed: error: ") and "\n" not in err, err
    return err


@pytest.fixture
def stars(tmp_path) -> tuple[Path, list[str]]:
    table = synthetic_stars(n_clusters=3, n_stars=60, seed=1)
    path = tmp_path / "stars.csv"
    table.to_csv(path, index=False)
    return path, [c for c in table.columns if c not in ("star", "cluster")]


def test_the_generator_makes_labelled_stars_in_dex():
    table = synthetic_stars(n_clusters=4, n_stars=100, seed=0)
    assert list(table.columns) == ["star", "cluster", "fe_h", *(f"{e}_fe" for e in ELEMENTS[1:])]
    assert len(table) == 100 and table.cluster.nunique() == 4 and table.cluster.value_counts().min() >= 5
    assert table.drop(columns=["star", "cluster"]).abs().to_numpy().max() < 1.0
    assert table.equals(synthetic_stars(n_clusters=4, n_stars=100, seed=0))
    with pytest.raises(ValueError, match="at least 5 stars per cluster"):
        synthetic_stars(n_clusters=30, n_stars=100)


def test_a_table_gets_tsne_beside_pca_with_scores(stars, capsys):
    path, features = stars
    assert main(["--table", str(path), "--features", *features, "--group", "cluster"]) == 0
    out = capsys.readouterr().out.strip()
    figure = path.with_name("stars_embedding.png")
    assert out.startswith("embed: 60 rows, 12 features, 3 groups (cluster): t-SNE k-NN ") and str(figure) in out
    assert figure.read_bytes().startswith(b"\x89PNG")
    scores = json.loads(figure.with_suffix(".json").read_text())
    assert scores["rows"] == 60 and scores["features"] == features and scores["groups"] == 3
    for view in ("tsne", "pca", "feature_space"):
        assert 0.0 <= scores[view]["knn_accuracy"] <= 1.0 and -1.0 <= scores[view]["cluster_recovery"] <= 1.0
    assert scores["perplexity"] == pytest.approx(59 / 3)


def test_a_fits_table_reads_through_astropy(stars, tmp_path, capsys):
    from astropy.table import Table

    path, features = stars
    fits = tmp_path / "stars.fits"
    Table.read(path, format="csv").write(fits)
    out = tmp_path / "maps" / "fits.png"
    assert main(["--table", str(fits), "--features", *features[:4], "--group", "cluster", "--out", str(out)]) == 0
    assert "embed: 60 rows, 4 features, 3 groups" in capsys.readouterr().out
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["features"] == features[:4]


@pytest.mark.parametrize("change, needles", [
    (lambda args: [*args[:-1], "parent"], ["no column 'parent'", "stars.csv"]),
    (lambda args: [a if a != "mg_fe" else "mg_h" for a in args], ["no column 'mg_h'"]),
    (lambda args: [*args, "--out", "figure.pdf"], ["name it *.png"]),
    (lambda args: [a for a in args if a != "--group" and a != "cluster"], ["--table needs --features"]),
])
def test_bad_table_arguments_fail_with_one_line(stars, capsys, change, needles):
    path, features = stars
    err = one_line_error(capsys, main(change(["--table", str(path), "--features", *features, "--group", "cluster"])))
    assert all(n in err for n in needles), err


def test_a_bad_cell_is_named_by_row_and_column(stars, capsys):
    path, features = stars
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = "n/a"  # the si_fe column of the star on row 4
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    err = one_line_error(capsys, main(["--table", str(path), "--features", *features, "--group", "cluster"]))
    assert "row 4, column 'si_fe': 'n/a' is not a number" in err


def small_run(path: Path, strategy, name: str, simulator: dict) -> None:
    """A finished 30-run store of Ishigami (3 inputs), written by the real loop."""
    loop = ActiveLearningLoop(
        oracle=make_ishigami(), strategy=strategy, budget=30, batch_size=10, n_initial=10, test_size=60,
        committee=EnsembleCommittee(ExtraTreesRegressor(n_estimators=10, random_state=0), task="regression"),
        candidates=Candidates(size=100), progress=False, seed=0)
    loop.run(path, config={"simulator": simulator, "strategy_name": name})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    small_run(root / "random" / "seed=0" / "run.zarr", RandomSampling(), "random", ISHIGAMI)
    small_run(root / "qbc" / "seed=0" / "run.zarr", QueryByCommittee(), "qbc", ISHIGAMI)
    return root


def test_a_sweep_is_embedded_in_one_map_with_a_reference_from_the_box(sweep, capsys):
    assert main([str(sweep), "--reference", "60"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("embed: qbc 30 runs, apart from uniform ") and "; random 30 runs" in out
    assert "reference 60 points (uniform in the simulator's box)" in out
    assert (sweep / "queried_embedding.png").read_bytes().startswith(b"\x89PNG")
    scores = json.loads((sweep / "queried_embedding.json").read_text())
    assert scores["inputs"] == ["x1", "x2", "x3"] and set(scores["runs"]) == {"qbc", "random"}
    assert scores["runs"]["random"]["runs"] == 30 and scores["runs"]["random"]["failed"] == 0
    assert 0.0 <= scores["runs"]["qbc"]["queried_vs_reference_knn_inputs"] <= 1.0


def test_a_run_whose_simulator_cannot_be_built_takes_its_test_set_as_reference(tmp_path, capsys):
    run_dir = tmp_path / "run"
    small_run(run_dir / "run.zarr", RandomSampling(), "random", {"_target_": "nowhere.make_oracle"})
    out = tmp_path / "one.png"
    assert main([str(run_dir), "--out", str(out), "--reference", "40"]) == 0
    line = capsys.readouterr().out
    assert "reference 40 points (the stored test set, a uniform draw of the space (the simulator node " \
           "nowhere.make_oracle could not be built" in line
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["reference"]["points"] == 40


def test_run_directories_that_cannot_be_embedded_fail_with_one_line(sweep, tmp_path, capsys):
    err = one_line_error(capsys, main([str(tmp_path / "missing")]))
    assert "missing: no such directory" in err
    err = one_line_error(capsys, main([str(tmp_path)]))
    assert "no run.zarr found under" in err
    err = one_line_error(capsys, main([str(sweep), "--run-seed", "3"]))
    assert "--run-seed 3: the sweep" in err and "has seeds [0]" in err
    err = one_line_error(capsys, main([str(sweep), "--reference", "2"]))
    assert "--reference must be an integer >= 5" in err


def test_a_plane_of_two_inputs_is_not_embedded(tmp_path, capsys):
    from tests.conftest import make_loop

    make_loop(committee=EnsembleCommittee(ExtraTreesRegressor(n_estimators=10, random_state=0), task="regression"),
              budget=20, test_size=20).run(tmp_path / "run.zarr", config={"strategy_name": "qbc"})
    err = one_line_error(capsys, main([str(tmp_path)]))
    assert "the space has 2 input(s) ['x0', 'x1']" in err


def test_every_runs_output_shares_one_colour_scale():
    import xarray as xr

    from experiments.embed import _output_colours

    def run(y):
        return xr.Dataset({"y": (("sample", "output"), np.asarray(y, dtype=np.float64)[:, None])},
                          coords={"output": ["price"]}, attrs={"task": "regression"})

    near_zero = np.r_[1e-250, np.linspace(1.0, 50.0, 199)]
    colours = _output_colours({"qbc": run(np.linspace(1.0, 50.0, 200)), "random": run(near_zero)})
    assert colours["qbc"][1] == colours["random"][1] == "log10 price"  # one decision for both panels
    assert colours["random"][0].min() > -1  # the 1e-250 is shown at the scale's low end, not at -250
    plain = _output_colours({"qbc": run(np.linspace(1.0, 5.0, 50)), "random": run(np.linspace(2.0, 6.0, 50))})
    assert plain["qbc"][1] == "price" and np.array_equal(plain["random"][0], np.linspace(2.0, 6.0, 50))
