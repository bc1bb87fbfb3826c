"""MOCCA case: loader (local, fetched, checked), Harris reader, pool oracle and split, baseline
pieces, real-cluster predictions and the command line, and a short active-learning loop."""

from __future__ import annotations

import csv
import hashlib
import math
import re
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from alframe.learners import BaggedCommittee, EnsembleCommittee
from alframe.loop import ActiveLearningLoop, Candidates
from alframe.strategies import QueryByCommittee
from simulators.mocca import (
    CATALOG_COLUMNS,
    FEATURES,
    ChecksumError,
    HarrisFormatError,
    LogFeatures,
    MoccaDataError,
    PoolOracle,
    harris_relaxation_time,
    held_out_set,
    load_models,
    make_oracle,
    read_catalog,
    read_harris,
    split_table,
    stratified_split,
)
from simulators.mocca import data as mocca_data
from simulators.mocca.__main__ import main as cli
from simulators.mocca.baseline import cross_validate, shallow_tree
from simulators.mocca.harris import DEFAULT_PATH as HARRIS_PATH
from simulators.mocca.predict import agreement, harris_predictions, train

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data"
MODELS = DATA / "mocca" / "simulations.csv"
PAPER = DATA / "mocca" / "paper_predictions_harris.csv"
PAPER_NOVELOCITY = DATA / "mocca" / "paper_predictions_harris_novelocity.csv"


def need(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"MOCCA data not found: {path}")


@pytest.fixture(scope="module")
def table():
    need(MODELS)
    return load_models()


@pytest.fixture(scope="module")
def raw_rows():
    need(MODELS)
    with open(MODELS, newline="") as f:
        return list(csv.DictReader(f))


# -- loader -----------------------------------------------------------------------------


def test_models_features_and_labels(table, raw_rows):
    assert table.names == FEATURES and table.features.shape == (1289, 6)
    assert int(table.labels.sum()) == 162 and int(table.fallback.sum()) == 635
    assert np.all(table.labels[~table.fallback] == 0)  # every BH subsystem needs fallback
    # Recompute one model's features from the raw text.
    row = raw_rows[int(table.rows[5])]
    f = {k: float(v) for k, v in row.items() if k and v}
    v_ratio = f["Total V-band luminosity"] / f["Total Luminosity of Cluster at 12 Gyrs"]
    sigma0 = v_ratio * f["Central Surface Brightness Total"]
    mass = 2 * f["Total V-band luminosity"]
    t_rh = 2.055e6 / math.log(0.4 * mass * 3) * 3 * math.sqrt(mass) * f["Observational Half-Light Radius"] ** 1.5 / 1e6
    expected = [f["Observational Half-Light Radius"], sigma0, f["Central Velocity Dispersion"],
                f["Total V-band luminosity"], t_rh, f["Observational Core Radius"]]
    np.testing.assert_allclose(table.features[5], expected, rtol=1e-12)
    label = f["Single Black Holes"] + 2 * f["Binary Black Holes"] + f["Black Hole Other Count"] > 15
    assert table.labels[5] == int(label)


def test_loader_options(table):
    fallback = load_models(fallback_only=True)
    assert len(fallback) == 635 and fallback.fallback.all() and fallback.labels.sum() == 162
    no_velocity = load_models(velocity_dispersion=False)
    assert no_velocity.names == tuple(n for n in FEATURES if n != "central_velocity_dispersion")
    np.testing.assert_array_equal(no_velocity.features, np.delete(table.features, 2, axis=1))
    half_mass = load_models(relaxation_time="half_mass")
    assert not np.allclose(half_mass.features[:, 4], table.features[:, 4])
    np.testing.assert_array_equal(np.delete(half_mass.features, 4, 1), np.delete(table.features, 4, 1))
    counts = [int(load_models(bhs_threshold=t).labels.sum()) for t in (5, 15, 50)]
    assert counts[0] > counts[1] == 162 > counts[2]
    with pytest.raises(MoccaDataError, match="relaxation_time"):
        load_models(relaxation_time="core")


def test_harris_relaxation_time_by_hand():
    # L_V = 1e5 L_sun, r_h = 3 pc: M = 2e5, N = 6e5.
    expected = 2.055e6 / math.log(0.4 * 6e5) * 3 * math.sqrt(2e5) * 3**1.5 / 1e6
    assert harris_relaxation_time(np.array([1e5]), np.array([3.0]))[0] == pytest.approx(expected, rel=1e-12)


def _write_variant(src: Path, dst: Path, *, drop: str | None = None, cell: tuple[int, str, str] | None = None) -> Path:
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    if drop:
        frame = frame.drop(columns=[drop])
    if cell:
        frame.loc[cell[0], cell[1]] = cell[2]
    frame.to_csv(dst, index=False)
    return dst


def test_missing_column_and_bad_value_are_named(tmp_path):
    need(MODELS)
    path = _write_variant(MODELS, tmp_path / "a.csv", drop="Binary Black Holes")
    with pytest.raises(MoccaDataError, match=r"a\.csv: missing column\(s\) 'Binary Black Holes'"):
        load_models(path)
    path = _write_variant(MODELS, tmp_path / "b.csv", cell=(3, "Observational Core Radius", "0.3x"))
    with pytest.raises(MoccaDataError,
                       match=r"b\.csv: line 5, column 'Observational Core Radius': cannot parse '0.3x'"):
        load_models(path)
    path = _write_variant(MODELS, tmp_path / "c.csv", cell=(0, "Total V-band luminosity", "-3"))
    with pytest.raises(MoccaDataError, match=r"line 2, column 'Total V-band luminosity': -3.0 is not positive"):
        load_models(path)


def test_fetched_from_url_when_the_local_file_is_absent(tmp_path, monkeypatch, table):
    monkeypatch.setenv("ALFRAME_CACHE", str(tmp_path / "cache"))
    url = MODELS.resolve().as_uri()
    sha = hashlib.sha256(MODELS.read_bytes()).hexdigest()
    assert sha == mocca_data.DEFAULT_SHA256
    fetched = load_models(tmp_path / "absent.csv", url=url, sha256=sha)
    assert Path(fetched.source).parent == tmp_path / "cache" / "mocca"
    np.testing.assert_array_equal(fetched.features, table.features)
    np.testing.assert_array_equal(fetched.labels, table.labels)


def test_checksum_failure_keeps_nothing(tmp_path, monkeypatch):
    need(MODELS)
    monkeypatch.setenv("ALFRAME_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ChecksumError, match=r"sha256 f6f02444\w+ does not match the expected 0{64}"):
        load_models(tmp_path / "absent.csv", url=MODELS.resolve().as_uri(), sha256="0" * 64)
    assert not any((tmp_path / "cache").rglob("*"))
    # The default: the public URL, fetched by urllib; here the bytes of a tampered copy.
    tampered = MODELS.read_bytes().replace(b"4.48320946", b"4.48320947", 1)

    class Response:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    asked = []
    monkeypatch.setattr(mocca_data.urllib.request, "urlopen",
                        lambda url, timeout: asked.append(url) or Response(tampered))
    with pytest.raises(ChecksumError, match="does not match"):
        load_models(tmp_path / "absent.csv")
    assert asked == [mocca_data.DEFAULT_URL]
    monkeypatch.setattr(mocca_data.urllib.request, "urlopen", lambda url, timeout: Response(MODELS.read_bytes()))
    assert len(load_models(tmp_path / "absent.csv")) == 1289


# -- Harris catalogue -------------------------------------------------------------------


@pytest.mark.parametrize(("paper", "features"), [
    (PAPER, FEATURES),
    (PAPER_NOVELOCITY, tuple(n for n in FEATURES if n != "central_velocity_dispersion")),
])
def test_harris_reader_reproduces_the_paper_features(paper, features):
    need(HARRIS_PATH, paper)
    clusters = read_harris()
    assert len(clusters.names) == 157 and clusters.ids[0] == "NGC 104" and clusters.names[0] == "NGC104"
    frame = pd.read_csv(paper)
    rows = [clusters.names.index(name) for name in frame["Cluster Name"]]
    ours = clusters.features[rows][:, [FEATURES.index(n) for n in features]]
    theirs = frame[[CATALOG_COLUMNS[n] for n in features]].to_numpy()
    both = np.isfinite(ours) & np.isfinite(theirs)
    assert both.all()  # every feature of every listed cluster is available to us too
    assert np.max(np.abs(ours - theirs)[both] / np.abs(theirs[both])) <= 1e-3


def test_harris_reader_reports_a_bad_value(tmp_path):
    need(HARRIS_PATH)
    lines = HARRIS_PATH.read_text(encoding="latin-1").splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith(" NGC 288 ") and "-45.4" in line)
    lines[number] = lines[number][:66] + "2.x3" + lines[number][70:]  # r_h
    bad = tmp_path / "mwgc.dat"
    bad.write_text("\n".join(lines), encoding="latin-1")
    with pytest.raises(HarrisFormatError, match=rf"mwgc\.dat: line {number + 1}, field 'r_h': cannot parse '2\.x3'"):
        read_harris(bad)
    with pytest.raises(HarrisFormatError, match="no section starting with 'Part III:'"):
        (tmp_path / "cut.dat").write_text("\n".join(lines[:number - 30]), encoding="latin-1")
        read_harris(tmp_path / "cut.dat")


# -- pool oracle and split --------------------------------------------------------------


def test_stratified_split_is_a_pure_function_of_its_inputs(table):
    kept, held = stratified_split(table.labels, 0.3, 0)
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(table)
    assert np.sum(table.labels[held]) == round(0.3 * 162) and len(held) == round(0.3 * 162) + round(0.3 * 1127)
    again, other = stratified_split(table.labels, 0.3, 0), stratified_split(table.labels, 0.3, 1)
    np.testing.assert_array_equal(held, again[1])
    assert not np.array_equal(held, other[1])
    with pytest.raises(ValueError, match="held_out_fraction"):
        stratified_split(table.labels, 1.0, 0)


def test_oracle_and_held_out_set_agree(table):
    oracle = make_oracle(held_out_fraction=0.3, split_seed=4)
    x_test, y_test = held_out_set(held_out_fraction=0.3, split_seed=4)
    pool, held = split_table(table, 0.3, 4)
    assert isinstance(oracle, PoolOracle) and len(oracle.space) == len(pool) == 902
    np.testing.assert_array_equal(x_test, held.features)
    np.testing.assert_array_equal(y_test, held.labels)
    assert np.all(oracle.space.index_of(x_test) == -1)  # no held-out model is a candidate
    assert oracle.space.ids[0] == f"model-{pool.rows[0]}"

    outcome = oracle.run(np.vstack([oracle.space.values[[3, 0]], x_test[:1]]))
    np.testing.assert_array_equal(outcome.ok, [True, True, False])
    np.testing.assert_array_equal(outcome.y[:2, 0], oracle.labels[[3, 0]])
    assert np.isnan(outcome.y[2, 0]) and outcome.error[2].startswith("not a model of the pool")
    np.testing.assert_array_equal(outcome.cost_s, 3 * 86400.0)
    assert oracle.outputs.task == "classification" and oracle.outputs.classes == ("no_bhs", "bhs")


def test_hydra_preset_builds_matching_oracle_and_test_set():
    need(MODELS)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=mocca_bhs", "strategy=qbc_max_disagreement",
                                                       "simulator.split_seed=2", "simulator.fallback_only=true"])
    oracle, (x_test, y_test) = instantiate(cfg.simulator), instantiate(cfg.test_set)
    assert len(oracle.space) + len(y_test) == 635
    assert np.all(oracle.space.index_of(x_test) == -1)
    assert instantiate(cfg.strategy) == QueryByCommittee(score="max_disagreement")
    learner = instantiate(cfg.learner)
    assert isinstance(learner, EnsembleCommittee) and type(learner.estimator).__name__ == "ExtraTreesClassifier"
    assert cfg.target_metric == "f1" and cfg.candidates.size >= len(oracle.space)


def test_active_loop_on_the_pool(tmp_path):
    need(MODELS)
    oracle = make_oracle()
    loop = ActiveLearningLoop(oracle=oracle, committee=EnsembleCommittee(RandomForestClassifier(n_estimators=20)),
                              strategy=QueryByCommittee(score="vote_entropy"), budget=60, batch_size=20, n_initial=20,
                              initial_method="uniform", candidates=Candidates(size=2000), test_set=held_out_set(),
                              target_metric="f1", progress=False, seed=0)
    ds = loop.run(tmp_path / "run.zarr")
    assert ds.sizes["sample"] == 60 and ds["ok"].values.all()
    rows = oracle.space.index_of(ds["x"].values)
    assert len(np.unique(rows)) == 60 and np.all(rows >= 0)  # 60 distinct pool models
    assert ds.sizes["test_sample"] == 387 and 0.5 < ds["f1"].values[-1] <= 1.0
    # The committee queries where it is unsure: more BH hosts than their 12.5 % share of the pool.
    assert oracle.labels[rows[20:]].mean() > 0.25


# -- learners, baseline and real clusters -----------------------------------------------


def test_log_features_wrapper(table):
    inner = BaggedCommittee(DecisionTreeClassifier(max_depth=2), members=1, bootstrap=False)
    wrapped = LogFeatures(inner).fit(table.features, table.labels, key=jax.random.key(0))
    direct = inner.fit(np.log10(table.features), table.labels, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(wrapped.predict_members(table.features)),
                                  np.asarray(direct.predict_members(np.log10(table.features))))
    with pytest.raises(ValueError, match="positive inputs"):
        wrapped.predict_members(-table.features[:2])


def test_baseline_pieces(table):
    folds = cross_validate("decision_tree", table.features, table.labels, n_splits=5, seed=0, progress=False)
    assert list(folds.columns) == ["classifier", "fold", "precision", "recall", "f1"] and len(folds) == 5
    assert 0.6 < folds["f1"].mean() < 1.0
    _, splits = shallow_tree(table.features, table.labels, table.names, max_depth=2)
    assert splits[0].depth == 0 and splits[0].feature == "core_radius" and splits[0].n_models == 1289
    assert [s.depth for s in splits] == [0, 1, 1]


def test_harris_predictions_agree_with_the_paper():
    need(HARRIS_PATH, PAPER)
    predictions = harris_predictions("random_forest", velocity_dispersion=True, seed=0)
    scores = agreement(predictions)
    assert scores["n_compared"] == 50 and scores["n_compared_fallback"] == 50
    assert scores["agreement"] >= 0.85 and scores["agreement_fallback"] >= 0.85
    assert predictions["probability"].between(0, 1).all()


def test_predict_command(tmp_path, capsys):
    need(MODELS, PAPER, PAPER_NOVELOCITY)
    out = tmp_path / "out" / "pred.csv"
    assert cli(["predict", str(PAPER), "--classifier", "decision_tree", "--out", str(out)]) == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["name", "probability", "bhs"] and len(pred) == 50
    assert pred["name"].iloc[0] == "NGC104" and pred["probability"].between(0, 1).all()
    assert (pred["bhs"] == (pred["probability"] > 0.5)).all()

    assert cli(["predict", str(PAPER_NOVELOCITY), "--classifier", "decision_tree"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m simulators.mocca: error:") and "'Central Velocity Dispersion'" in err
    assert len(err.splitlines()) == 1
    assert cli(["predict", str(PAPER_NOVELOCITY), "--classifier", "decision_tree", "--without-velocity",
                "--fallback", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 61


@pytest.mark.parametrize("cell, message", [
    ("inf", "'inf' is not a finite value below 1e+30"),
    ("nan", "'nan' is not a number (NaN)"),
    ("-inf", "'-inf' is not positive"),
    ("1e308", "'1e308' is not a finite value below 1e+30"),
    ("1e400", "'1e400' is not a finite value below 1e+30"),
    ("-2", "'-2' is not positive"),
])
def test_catalog_values_that_would_break_the_log_features_are_named(tmp_path, cell, message):
    need(PAPER)
    bad = _write_variant(PAPER, tmp_path / "cat.csv", cell=(4, "Total V-band luminosity", cell))
    with pytest.raises(MoccaDataError, match=rf"cat\.csv: line 6, column 'Total V-band luminosity': {re.escape(message)}"):
        read_catalog(bad)


def test_a_header_only_catalog_and_repeated_names_are_refused(tmp_path):
    need(PAPER)
    header = Path(PAPER).read_text().splitlines()[0]
    (tmp_path / "empty.csv").write_text(header + "\n")
    with pytest.raises(MoccaDataError, match="empty.csv: no clusters"):
        read_catalog(tmp_path / "empty.csv")
    twice = _write_variant(PAPER, tmp_path / "twice.csv", cell=(3, "Cluster Name", "NGC104"))
    with pytest.raises(MoccaDataError, match="twice.csv: line 5, column 'Cluster Name': cluster 'NGC104' appears again "
                                             r"\(first on line 2\)"):
        read_catalog(twice)


def test_predict_refuses_an_unwritable_out_before_training(tmp_path, capsys):
    need(PAPER)
    (tmp_path / "file").write_text("")
    start = time.perf_counter()
    assert cli(["predict", str(PAPER), "--out", str(tmp_path / "file" / "out.csv")]) == 2
    assert time.perf_counter() - start < 5  # refused before any training
    assert "--out" in capsys.readouterr().err


def test_catalog_errors_name_file_line_and_column(tmp_path):
    need(PAPER)
    bad = _write_variant(PAPER, tmp_path / "cat.csv", cell=(1, "Observational Core Radius", ""))
    with pytest.raises(MoccaDataError, match=r"cat\.csv: line 3, column 'Observational Core Radius': empty value"):
        read_catalog(bad)
    renamed = pd.read_csv(PAPER).rename(columns={CATALOG_COLUMNS[n]: n for n in FEATURES})
    renamed.to_csv(tmp_path / "ids.csv", index=False)
    names, x = read_catalog(tmp_path / "ids.csv")
    assert names[:2] == ("NGC104", "NGC288") and x.shape == (50, 6)


def test_every_repeated_cluster_name_is_listed(tmp_path):
    need(PAPER)
    frame = pd.read_csv(PAPER, dtype=str, keep_default_na=False)
    frame.loc[3, "Cluster Name"] = frame.loc[0, "Cluster Name"]
    frame.loc[7, "Cluster Name"] = frame.loc[5, "Cluster Name"]
    frame.loc[9, "Cluster Name"] = frame.loc[5, "Cluster Name"]
    frame.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(MoccaDataError, match=rf"line 5, column 'Cluster Name': cluster 'NGC104' appears again "
                                             rf"\(first on line 2\); 1 more names repeat: '{frame.loc[5, 'Cluster Name']}'$"):
        read_catalog(tmp_path / "twice.csv")


def test_an_infinite_model_value_is_refused_not_left_out(tmp_path):
    need(MODELS)
    path = _write_variant(MODELS, tmp_path / "inf.csv", cell=(3, "Observational Core Radius", "inf"))
    with pytest.raises(MoccaDataError, match=r"inf\.csv: line 5, column 'Observational Core Radius': inf is not finite"):
        load_models(path)


def test_models_of_one_class_train_no_classifier(tmp_path):
    need(MODELS)
    frame = pd.read_csv(MODELS, dtype=str, keep_default_na=False)
    frame[["Single Black Holes", "Binary Black Holes", "Black Hole Other Count"]] = "0"
    frame.to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(MoccaDataError, match=r"none\.csv: all 1289 models lack a BH subsystem"):
        train("decision_tree", models_path=tmp_path / "none.csv")


@pytest.mark.parametrize("args, message", [
    (["--out", "{paper}"], "--out {paper}: is a file this command reads"),
    (["--out", "{tmp}/file/out.csv"], "--out {tmp}/file/out.csv: {tmp}/file is a file, not a directory"),
    (["--models", "{tmp}/absent.csv"], "--models {tmp}/absent.csv: file not found"),
    (["--classifier", "svm"], "argument --classifier: invalid choice: 'svm'"),
])
def test_predict_refuses_bad_arguments_in_one_line_before_any_work(tmp_path, capsys, args, message):
    need(PAPER)
    (tmp_path / "file").write_text("")
    argv = ["predict", str(PAPER), *(a.format(paper=PAPER, tmp=tmp_path) for a in args)]
    try:
        status = cli(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("python -m simulators.mocca: error: ") and message.format(paper=PAPER, tmp=tmp_path) in err
    assert not (tmp_path / "file").stat().st_size and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
